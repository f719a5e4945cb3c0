"""Iteration (40) and Loop (41) nodes: event order, indexes, outputs and the rendered answer."""

from __future__ import annotations

import httpx

from tests.emulator.sse import events
from tests.emulator.test_behaviour import answer_of, auth, chat

ITER, LOOP = "app-iterchat", "app-loopchat"


def _container_view(body: str) -> list[tuple]:
    """(event, node_id, index-or-container) for graph events, message events dropped."""
    view = []
    for e in events(body):
        data = e.get("data") or {}
        if e["event"].startswith(("iteration_", "loop_")):
            view.append((e["event"], data["node_id"], data.get("index")))
        elif e["event"] in ("node_started", "node_finished"):
            view.append((e["event"], data["node_id"], data["iteration_id"] or data["loop_id"]))
    return view


def test_iteration_runs_each_item_and_renders_the_list(client: httpx.Client) -> None:
    body = chat(client, ITER, "iterate please").text
    inner = [("node_started", "inner", "iter"), ("node_finished", "inner", "iter")]
    assert _container_view(body)[4:-2] == [
        ("iteration_started", "iter", None),
        ("iteration_next", "iter", 0),
        *inner,
        ("iteration_next", "iter", 1),
        *inner,
        ("iteration_next", "iter", 2),
        *inner,
        ("iteration_completed", "iter", None),
    ]
    assert answer_of(body) == "Items: - 0:ALPHA\n- 1:BETA\n- 2:GAMMA"
    all_events = events(body)
    started = next(e for e in all_events if e["event"] == "iteration_started")["data"]
    assert started["id"] == "iter"
    assert started["metadata"] == {"iteration_length": 3}
    assert started["inputs"] == {"iterator_selector": ["alpha", "beta", "gamma"]}
    finished = [e["data"] for e in all_events if e["event"] == "node_finished"]
    inner_meta = [d["execution_metadata"] for d in finished if d["node_id"] == "inner"]
    assert inner_meta == [{"iteration_id": "iter", "iteration_index": i} for i in range(3)]
    assert [d["inputs"] for d in finished if d["node_id"] == "inner"][1] == {
        "item": "beta",
        "idx": 1,
    }
    completed = next(e for e in all_events if e["event"] == "iteration_completed")["data"]
    assert completed["outputs"] == {"output": ["0:ALPHA", "1:BETA", "2:GAMMA"]}
    assert completed["steps"] == 3
    assert set(completed["execution_metadata"]["iteration_duration_map"]) == {"0", "1", "2"}
    # The container counts as one step, its inner nodes do not (40: total_steps 4).
    assert all_events[-1]["data"]["total_steps"] == 4


def test_iteration_answer_text_waits_for_the_iteration(client: httpx.Client) -> None:
    evs = events(chat(client, ITER, "iterate please").text)
    first_message = next(i for i, e in enumerate(evs) if e["event"] == "message")
    completed = next(i for i, e in enumerate(evs) if e["event"] == "iteration_completed")
    assert first_message == completed + 1


def test_loop_breaks_on_its_condition(client: httpx.Client) -> None:
    body = chat(client, LOOP, "loop please").text
    round_ = [
        ("node_started", "lcode", "loop"),
        ("node_finished", "lcode", "loop"),
        ("node_started", "lasg", "loop"),
        ("node_finished", "lasg", "loop"),
    ]
    assert _container_view(body)[2:-2] == [
        ("loop_started", "loop", None),
        *round_,
        ("loop_next", "loop", 1),
        *round_,
        ("loop_next", "loop", 2),
        *round_,
        ("loop_completed", "loop", None),
    ]
    assert answer_of(body) == "Loop done, num=3"
    all_events = events(body)
    started = next(e for e in all_events if e["event"] == "loop_started")["data"]
    assert started["metadata"] == {"loop_length": 10}
    assert started["inputs"] == {"loop_count": 10, "num": 0}
    nexts = [e["data"] for e in all_events if e["event"] == "loop_next"]
    assert [n["pre_loop_output"] for n in nexts] == [{}, {}]
    completed = next(e for e in all_events if e["event"] == "loop_completed")["data"]
    assert completed["outputs"] == {"num": 3, "loop_round": 3}
    assert completed["steps"] == 10
    meta = completed["execution_metadata"]
    assert meta["completed_reason"] == "loop_break"
    assert meta["loop_variable_map"] == {"0": {"num": 1}, "1": {"num": 2}, "2": {"num": 3}}
    finished = [e["data"] for e in all_events if e["event"] == "node_finished"]
    assert [d["inputs"] for d in finished if d["node_id"] == "lcode"] == [
        {"num": 0},
        {"num": 1},
        {"num": 2},
    ]
    assert [d["execution_metadata"] for d in finished if d["node_id"] == "lasg"][2] == {
        "loop_id": "loop",
        "loop_index": 2,
    }
    assert all_events[-1]["data"]["total_steps"] == 3


def test_containers_work_in_blocking_mode(client: httpx.Client) -> None:
    iterated = chat(client, ITER, "x", response_mode="blocking").json()
    assert iterated["answer"] == "Items: - 0:ALPHA\n- 1:BETA\n- 2:GAMMA"
    looped = chat(client, LOOP, "x", response_mode="blocking").json()
    assert looped["answer"] == "Loop done, num=3"


# --- the emulator's own workflow (emu_containers_wf.yml): cases no recording shows ----------

CONTAINERS_WF = "app-emucontainerswf"


def _run_wf(client: httpx.Client, items: str) -> list[dict]:
    body = {"inputs": {"items": items}, "response_mode": "streaming", "user": "tester"}
    return events(client.post("/v1/workflows/run", json=body, headers=auth(CONTAINERS_WF)).text)


def test_loop_that_never_breaks_runs_loop_count_rounds(client: httpx.Client) -> None:
    evs = _run_wf(client, "a,b")
    assert [e["data"]["index"] for e in evs if e["event"] == "loop_next"] == [1]
    completed = next(e for e in evs if e["event"] == "loop_completed")["data"]
    assert completed["outputs"] == {"num": 2, "loop_round": 2}
    assert completed["execution_metadata"]["completed_reason"] == "loop_completed"
    finished = evs[-1]["data"]
    assert finished["status"] == "succeeded"
    assert finished["outputs"] == {"num": 2, "upper": ["A", "B"]}
    # workflow events keep the four top-level fields (05), container events included
    assert all(list(e) == ["event", "workflow_run_id", "task_id", "data"] for e in evs)


def test_failing_inner_node_fails_the_iteration_and_the_run(client: httpx.Client) -> None:
    evs = _run_wf(client, "a,bad,c")
    kinds = [(e["event"], (e["data"] or {}).get("node_id")) for e in evs]
    assert kinds[-4:] == [
        ("node_started", "upper"),
        ("node_finished", "upper"),
        ("iteration_completed", "iter"),
        ("workflow_finished", None),
    ]
    assert [e["data"]["index"] for e in evs if e["event"] == "iteration_next"] == [0, 1]
    completed = evs[-2]["data"]
    assert completed["status"] == "failed"
    assert "bad item" in completed["error"]
    assert evs[-1]["data"]["status"] == "failed"
    assert evs[-1]["data"]["error"] == completed["error"]
