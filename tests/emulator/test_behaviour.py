"""Behaviour beyond single recordings: memory, stop, timeouts, pings, journal, files."""

from __future__ import annotations

import threading
import time

import httpx

from tests.emulator.sse import events, names

CAT, ECHO, SLOWCHAT, SLOWWF = "app-cat-llm", "app-echochat", "app-slowchat", "app-slowwf"
LLMCHAT, COMPLETION, LLMFLOW, TIMEOUT_WF = (
    "app-llmchat",
    "app-llmcompletion",
    "app-llmchatflow",
    "app-emutimeoutwf",
)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(client: httpx.Client, key: str, query: str, **extra) -> httpx.Response:
    body = {"inputs": {}, "query": query, "response_mode": "streaming", "user": "tester"}
    body.update(extra)
    return client.post("/v1/chat-messages", json=body, headers=auth(key))


def answer_of(body: str) -> str:
    return "".join(e.get("answer", "") for e in events(body) if e["event"] == "message")


def test_cat_llm_answers_meow(client: httpx.Client) -> None:
    response = chat(client, CAT, "Hello cat")
    assert answer_of(response.text) == "喵"
    blocking = chat(client, CAT, "Hello cat", response_mode="blocking")
    assert blocking.json()["answer"] == "喵"


def test_echochat_remembers_previous_query_in_conversation_variable(client: httpx.Client) -> None:
    inputs = {"system_prompt": "be brief"}
    first = chat(client, ECHO, "first question", inputs=inputs)
    conversation_id = events(first.text)[0]["conversation_id"]
    assert "Previous query: []" in answer_of(first.text)
    second = chat(client, ECHO, "second question", inputs=inputs, conversation_id=conversation_id)
    assert "Previous query: [first question] End: second question" in answer_of(second.text)
    started = events(second.text)[0]
    assert started["data"]["inputs"]["sys.dialogue_count"] == 2
    listed = client.get(
        "/v1/messages",
        params={"conversation_id": conversation_id, "user": "tester"},
        headers=auth(ECHO),
    ).json()
    assert [m["query"] for m in listed["data"]] == ["first question", "second question"]


def test_conversation_of_another_user_is_not_found(client: httpx.Client) -> None:
    first = chat(client, CAT, "mine", response_mode="blocking")
    conversation_id = first.json()["conversation_id"]
    other = chat(
        client, CAT, "theirs", response_mode="blocking", conversation_id=conversation_id, user="x"
    )
    assert other.status_code == 404


def _stop_after_first_event(client: httpx.Client, key: str, path: str, body: dict, stop_path: str):
    """Start a stream, stop it via its task_id after the first data event; return frames + time."""
    seen: list[str] = []
    with client.stream("POST", path, json=body, headers=auth(key)) as response:
        stopped_at = None
        for line in response.iter_lines():
            seen.append(line)
            if line.startswith("data: ") and stopped_at is None:
                task_id = events(line + "\n\n")[0]["task_id"]
                client.post(stop_path.format(task_id), json={"user": "tester"}, headers=auth(key))
                stopped_at = time.monotonic()
        ended_at = time.monotonic()
    return "\n".join(seen), ended_at - stopped_at


def test_stop_ends_a_chatflow_with_stopped_workflow_finished(client: httpx.Client) -> None:
    body = {
        "inputs": {"sleep": 30},
        "query": "slow job",
        "response_mode": "streaming",
        "user": "tester",
    }
    text, delay = _stop_after_first_event(
        client, SLOWCHAT, "/v1/chat-messages", body, "/v1/chat-messages/{}/stop"
    )
    assert delay < 3
    final = events(text)[-1]
    assert final["event"] == "workflow_finished"
    assert final["data"]["status"] == "stopped"
    assert final["data"]["error"] == "Stopped by user."
    assert "message_end" not in names(text)


def test_stop_ends_a_workflow_run(client: httpx.Client) -> None:
    body = {"inputs": {"sleep": 30}, "response_mode": "streaming", "user": "tester"}
    text, delay = _stop_after_first_event(
        client, SLOWWF, "/v1/workflows/run", body, "/v1/workflows/tasks/{}/stop"
    )
    assert delay < 3
    assert events(text)[-1]["data"]["status"] == "stopped"


def test_stop_ends_a_chat_app_stream_with_plain_message_end(client: httpx.Client) -> None:
    body = {
        "inputs": {},
        "query": "SLOW one two three four five six seven eight nine ten",
        "response_mode": "streaming",
        "user": "tester",
    }
    text, delay = _stop_after_first_event(
        client, LLMCHAT, "/v1/chat-messages", body, "/v1/chat-messages/{}/stop"
    )
    assert delay < 3
    assert names(text)[-1] == "message_end"
    assert "ten" not in answer_of(text)


def test_stop_call_is_journaled(client: httpx.Client) -> None:
    client.delete("/_emulator/journal")
    client.post("/v1/chat-messages/some-task/stop", json={"user": "u"}, headers=auth(CAT))
    journal = client.get("/_emulator/journal").json()
    assert journal[-1]["path"] == "/v1/chat-messages/some-task/stop"
    assert journal[-1]["json"] == {"user": "u"}
    assert journal[-1]["app"] == "Cat_LLM"


def test_journal_records_and_clears(client: httpx.Client) -> None:
    client.delete("/_emulator/journal")
    chat(client, CAT, "journal me", response_mode="blocking")
    journal = client.get("/_emulator/journal").json()
    assert [(e["method"], e["path"], e["json"]["query"]) for e in journal] == [
        ("POST", "/v1/chat-messages", "journal me")
    ]
    assert client.delete("/_emulator/journal").status_code == 204
    assert client.get("/_emulator/journal").json() == []


def test_code_node_time_limit_fails_the_run(client: httpx.Client) -> None:
    body = {"inputs": {}, "response_mode": "streaming", "user": "tester"}
    response = client.post("/v1/workflows/run", json=body, headers=auth(TIMEOUT_WF))
    finished = events(response.text)
    node = next(
        e for e in finished if e["event"] == "node_finished" and e["data"]["node_id"] == "spin"
    )
    assert node["data"]["status"] == "failed"
    assert "timed out" in node["data"]["error"]
    assert finished[-1]["data"]["status"] == "failed"


def test_silence_is_filled_with_pings(client: httpx.Client) -> None:
    # ping_interval is 0.3 s in these tests; WAIT15 waits 0.8 s before the first chunk (36a).
    response = chat(client, LLMCHAT, "WAIT15 then answer")
    assert names(response.text)[0] == "ping"
    assert answer_of(response.text) == "Echo: WAIT15 then answer"


def test_unknown_conversation_streams_one_ping_then_hangs_until_idle_timeout(
    client: httpx.Client,
) -> None:
    started = time.monotonic()
    response = chat(client, CAT, "hi", conversation_id="00000000-0000-4000-8000-000000000000")
    assert response.status_code == 200
    assert names(response.text) == ["ping"]
    assert time.monotonic() - started >= 0.5


def test_uploaded_file_reaches_sys_files_when_upload_is_enabled(client: httpx.Client) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    upload = client.post(
        "/v1/files/upload",
        files={"file": ("cat.png", png, "image/png")},
        data={"user": "tester"},
        headers=auth(ECHO),
    )
    assert upload.status_code == 201
    file_id = upload.json()["id"]
    assert client.get(f"/_emulator/files/{file_id}").content == png
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": file_id}]
    enabled = chat(client, ECHO, "look", inputs={"system_prompt": "x"}, files=files)
    sys_files = events(enabled.text)[0]["data"]["inputs"]["sys.files"]
    assert sys_files[0]["related_id"] == file_id
    disabled = chat(client, CAT, "look", files=files)
    assert events(disabled.text)[0]["data"]["inputs"]["sys.files"] == []
    no_file = client.post("/v1/files/upload", data={"user": "tester"}, headers=auth(ECHO))
    assert no_file.json()["code"] == "no_file_uploaded"


def test_client_disconnect_does_not_break_the_emulator(client: httpx.Client) -> None:
    body = {"inputs": {"sleep": 30}, "query": "slow", "response_mode": "streaming", "user": "t"}
    with client.stream("POST", "/v1/chat-messages", json=body, headers=auth(SLOWCHAT)) as r:
        next(r.iter_lines())
    assert answer_of(chat(client, CAT, "still alive?").text) == "喵"


def test_concurrent_streams_are_independent(client: httpx.Client, emulator_url: str) -> None:
    results: list[str] = []

    def run() -> None:
        with httpx.Client(base_url=emulator_url, timeout=20) as c:
            results.append(answer_of(chat(c, LLMFLOW, "hello there").text))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["Echo: hello there"] * 4
