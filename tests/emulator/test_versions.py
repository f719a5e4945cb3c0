"""The emulator speaking older Dify releases (versions.py; dify-versions.md is the evidence).

Each profile is served over real HTTP; every test drives one difference and checks what each
profile sends. Waits are bounded (threads with timeouts), never measured.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.emulator import EmulatorConfig, create_emulator_app
from bridge.emulator.versions import PROFILE_VERSIONS, profile_for
from tests.emulator.sse import events, names
from tests.support.recordings import DSL_DIR
from tests.support.servers import serve_in_thread

PROFILES = ["0.15.3", "1.0.1", "1.4.3", "1.9.2", "1.12.1", "1.13.0", "1.13.2"]
CAT, ECHO, FAIL, SLOW = "app-cat-llm", "app-echochat", "app-failchat", "app-slowchat"
LLMCHAT, MODCHAT, MODFLOW, WF = "app-llmchat", "app-modchat", "app-modchatflow", "app-wf-upper"
LOOP, LLMFLOW = "app-loopchat", "app-llmchatflow"  # LLMChatflow: a chatflow without a Code node

# Long, so a held stream is visibly still open; tests that do not test titles send
# auto_generate_name false.
TITLE_WAIT = 30.0


# Only the apps these tests use: every profile gets its own emulator, so start-up counts.
DSL_FILES = [
    Path(DSL_DIR) / name
    for name in (
        "Cat_LLM.yml",
        "echo_chat.yml",
        "fail_chat.yml",
        "slow_chat.yml",
        "llm_chat.yml",
        "llm_chatflow.yml",
        "mod_chat.yml",
        "mod_chatflow.yml",
        "wf_upper.yml",
        "loop_chat.yml",
    )
]


def _config(version: str, **overrides: Any) -> EmulatorConfig:
    settings: dict[str, Any] = dict(
        dsl_paths=DSL_FILES,
        dify_version=version,
        ping_interval=30.0,  # no keepalive pings inside these short runs
        idle_timeout=0.3,
        start_failure_hold=0.3,
        title_wait=TITLE_WAIT,
        code_timeout=5.0,
        llm_slow_interval=0.05,
        llm_wait_before_first=0.1,
    )
    settings.update(overrides)
    return EmulatorConfig(**settings)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """version → base URL; each profile's emulator is started on first use."""
    stack = contextlib.ExitStack()
    started: dict[str, str] = {}

    class Lazy(dict):
        def __missing__(self, version: str) -> str:
            url = stack.enter_context(serve_in_thread(create_emulator_app(_config(version))))
            started[version] = url
            self[version] = url
            return url

    with stack:
        yield Lazy()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _post(url: str, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=_auth(key), timeout=20)


def _chat(query: str = "hi", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": {},
        "query": query,
        "response_mode": "streaming",
        "user": "tester",
        "auto_generate_name": False,  # only the title tests wait for a title
    }
    body.update(extra)
    return body


def _stream(url: str, key: str, body: dict[str, Any], path: str = "/v1/chat-messages") -> str:
    response = _post(url, path, key, body)
    assert response.status_code == 200, response.text
    return response.text


# --- choosing a profile -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "played"),
    [
        ("1.13.2", "1.13.2"),
        ("v1.9.2", "1.9.2"),
        ("1.9.5", "1.9.2"),
        ("1.12", "1.11.4"),  # 1.12.0 < 1.12.1: the nearest at or below is 1.11.4
        ("1.0.0", "1.0.0"),
        ("1.13.1-fix.1", "1.13.1"),
        ("2.0.0", "1.13.2"),
        ("0.15.3", "0.15.3"),
    ],
)
def test_a_version_plays_the_nearest_profile_at_or_below_it(asked: str, played: str) -> None:
    assert profile_for(asked).version == played
    assert played in PROFILE_VERSIONS


@pytest.mark.parametrize(("asked", "says"), [("latest", "not a Dify version"), ("0.14.0", "older")])
def test_a_bad_version_is_refused_with_a_clear_error(asked: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        create_emulator_app(_config(asked))


# --- the HTTP surface -------------------------------------------------------------------------


@pytest.mark.parametrize("version", PROFILES)
def test_index_and_x_version_report_the_profile(servers: dict[str, str], version: str) -> None:
    response = httpx.get(servers[version] + "/v1/")
    assert response.status_code == 200
    assert response.json() == {
        "welcome": "Dify OpenAPI",
        "api_version": "v1",
        "server_version": version,
    }
    assert response.headers["x-version"] == version
    missing = httpx.get(servers[version] + "/v1/nowhere")
    assert missing.headers["x-version"] == version


@pytest.mark.parametrize("version", PROFILES)
def test_info_has_mode_from_1_4_and_site_exists_from_1_4(
    servers: dict[str, str], version: str
) -> None:
    url = servers[version]
    info = httpx.get(url + "/v1/info", headers=_auth(CAT)).json()
    site = httpx.get(url + "/v1/site", headers=_auth(CAT))
    if version in ("0.15.3", "1.0.1"):
        assert list(info) == ["name", "description", "tags"]
        assert site.status_code == 404
        assert site.headers["content-type"].startswith("text/html")
    else:
        assert info["mode"] == "advanced-chat" and info["author_name"] == "admin"
        assert site.status_code == 200 and "title" in site.json()


@pytest.mark.parametrize("version", PROFILES)
def test_body_validation_errors_have_the_era_s_shape(servers: dict[str, str], version: str) -> None:
    response = _post(servers[version], "/v1/chat-messages", CAT, {"query": "hi", "user": "u"})
    assert response.status_code == 400
    body = response.json()
    if version in ("0.15.3", "1.0.1", "1.4.3"):
        assert body == {
            "code": "invalid_param",
            "message": "Missing required parameter in the JSON body",
            "params": "inputs",
        }
    elif version == "1.9.2":
        assert body == {
            "errors": {
                "inputs": "Input parameters for chat Missing required parameter in the JSON body"
            },
            "message": "Input payload validation failed",
        }
    else:
        assert list(body) == ["code", "message", "status"]
        assert body["message"].startswith("1 validation error for ChatRequestPayload\ninputs\n")


@pytest.mark.parametrize("version", PROFILES)
def test_401_carries_www_authenticate_from_1_8(servers: dict[str, str], version: str) -> None:
    response = _post(servers[version], "/v1/chat-messages", "app-nope", _chat())
    assert response.status_code == 401
    assert ("www-authenticate" in response.headers) == (version not in ("0.15.3", "1.0.1", "1.4.3"))


@pytest.mark.parametrize("version", PROFILES)
def test_unknown_conversation(servers: dict[str, str], version: str) -> None:
    """≤1.12: an immediate 404 also when streaming; 1.13.x: a ping, then silence, then EOF.
    The 404 text gains flask-restx's "did you mean" suffix from 1.8."""
    body = _chat(conversation_id=str(uuid.uuid4()))
    response = _post(servers[version], "/v1/chat-messages", CAT, body)
    blocking = _post(
        servers[version], "/v1/chat-messages", CAT, {**body, "response_mode": "blocking"}
    )
    assert blocking.status_code == 404
    hinted = version not in ("0.15.3", "1.0.1", "1.4.3")
    assert blocking.json()["message"].startswith("Conversation Not Exists.")
    assert ("You have requested this URI" in blocking.json()["message"]) == hinted
    if version.startswith("1.13"):
        assert response.status_code == 200 and names(response.text) == ["ping"]
    else:
        assert response.status_code == 404
        assert response.json() == blocking.json()


@pytest.mark.parametrize("version", PROFILES)
def test_refused_inputs_when_streaming(servers: dict[str, str], version: str) -> None:
    response = _post(servers[version], "/v1/chat-messages", ECHO, _chat())  # system_prompt missing
    if version.startswith("1.13"):
        assert response.status_code == 200 and names(response.text) == ["ping"]
    else:
        assert response.status_code == 400
        assert response.json() == {
            "code": "invalid_param",
            "message": "system_prompt is required in input form",
            "status": 400,
        }


@pytest.mark.parametrize("version", PROFILES)
def test_delete_conversation_status(servers: dict[str, str], version: str) -> None:
    url = servers[version]
    first = events(_stream(url, LLMCHAT, _chat()))[0]
    response = httpx.request(
        "DELETE",
        f"{url}/v1/conversations/{first['conversation_id']}",
        json={"user": "tester"},
        headers=_auth(LLMCHAT),
    )
    if version in ("0.15.3", "1.0.1"):
        assert (response.status_code, response.json()) == (200, {"result": "success"})
    else:
        assert (response.status_code, response.content) == (204, b"")
    again = _post(
        url,
        "/v1/chat-messages",
        LLMCHAT,
        {**_chat(conversation_id=first["conversation_id"]), "response_mode": "blocking"},
    )
    assert again.status_code == 404


def test_messages_are_newest_first_on_1_0_0_only(servers: dict[str, str]) -> None:
    for version, expected in (("1.0.0", ["two", "one"]), ("1.0.1", ["one", "two"])):
        url = servers[version]
        conv = events(_stream(url, LLMCHAT, _chat("one")))[0]["conversation_id"]
        _stream(url, LLMCHAT, _chat("two", conversation_id=conv))
        listed = httpx.get(
            url + "/v1/messages",
            params={"conversation_id": conv, "user": "tester"},
            headers=_auth(LLMCHAT),
        ).json()
        assert [m["query"] for m in listed["data"]] == expected


# --- how streams end --------------------------------------------------------------------------


@pytest.mark.parametrize("version", PROFILES)
def test_chatflow_success_ending_and_leading_ping(servers: dict[str, str], version: str) -> None:
    seen = names(_stream(servers[version], LLMFLOW, _chat()))
    assert (seen[0] == "ping") == version.startswith("1.13")
    if version == "1.13.0":
        assert seen[-1] == "workflow_finished" and "message_end" not in seen
    elif version == "1.13.2":
        assert seen[-2:] == ["message_end", "workflow_finished"]
    else:
        assert seen[-2:] == ["workflow_finished", "message_end"]


@pytest.mark.parametrize("version", PROFILES)
def test_chatflow_output_moderation_ending(servers: dict[str, str], version: str) -> None:
    seen = names(_stream(servers[version], MODFLOW, _chat("boom")))  # "Echo: boom" is flagged
    if version == "1.13.0":
        assert seen[-1] == "workflow_finished" and "message_replace" not in seen
    elif version == "1.13.2":
        assert seen[-3:] == ["message_replace", "message_end", "workflow_finished"]
    else:
        assert seen[-3:] == ["workflow_finished", "message_replace", "message_end"]


@pytest.mark.parametrize("version", PROFILES)
def test_chatflow_failure_ending(servers: dict[str, str], version: str) -> None:
    text = _stream(servers[version], FAIL, _chat("kaboom"))
    seen = events(text)
    if version.startswith("1.13"):
        assert seen[-1]["event"] == "workflow_finished" and seen[-1]["data"]["status"] == "failed"
        assert "error" not in names(text)
    else:
        finished, error = seen[-2:]
        assert finished["event"] == "workflow_finished"
        assert finished["data"]["status"] == "failed"
        assert error["event"] == "error"
        assert (error["code"], error["status"]) == ("invalid_param", 400)
        assert error["message"] == "Run failed: " + finished["data"]["error"]
        assert "task_id" not in error


@pytest.mark.parametrize("version", PROFILES)
def test_chatflow_stopped_ending(servers: dict[str, str], version: str) -> None:
    url = servers[version]
    body = _chat("slow", inputs={"sleep": 5})
    lines: list[str] = []
    with (
        httpx.Client(base_url=url, timeout=20) as client,
        client.stream("POST", "/v1/chat-messages", json=body, headers=_auth(SLOW)) as response,
    ):
        stopped = False
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data: ") and not stopped:
                task_id = json.loads(line[6:])["task_id"]
                client.post(
                    f"/v1/chat-messages/{task_id}/stop",
                    json={"user": "tester"},
                    headers=_auth(SLOW),
                )
                stopped = True
    seen = events("\n".join(lines))
    if version.startswith("1.13"):
        assert seen[-1]["event"] == "workflow_finished"
        assert seen[-1]["data"]["status"] == "stopped"
    else:
        assert [e["event"] for e in seen[-2:]] == ["workflow_finished", "message_end"]
        assert seen[-2]["data"]["status"] == "stopped"
        assert seen[-1]["metadata"]["usage"]["total_tokens"] == 0


class _Reader:
    """Streams one request over a raw socket in a thread: `terminal` is set once the given event
    arrived, `closed` when the server closed the connection (the request says Connection:
    close, so the end of the response is the end of the socket). `close()` hangs up at once."""

    def __init__(self, url: str, key: str, body: dict[str, Any], terminal: str) -> None:
        self.terminal, self.closed = threading.Event(), threading.Event()
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        payload = json.dumps(body).encode()
        head = (
            f"POST /v1/chat-messages HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode() + payload)
        # 0.15.3 writes `"event": "…"`, later releases `"event":"…"`
        self._pattern = re.compile(rb'"event": ?"' + terminal.encode() + rb'"')
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        received = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                received += chunk
                if self._pattern.search(received):
                    self.terminal.set()
        self.closed.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_title_wait_holds_a_new_conversation_open_with_the_default() -> None:
    """≤1.10 (here 1.9.2, default title_wait): after message_end the connection stays open."""
    app = create_emulator_app(EmulatorConfig(dsl_paths=DSL_FILES, dify_version="1.9.2"))
    with serve_in_thread(app) as url:
        reader = _Reader(url, CAT, _chat(auto_generate_name=True), "message_end")
        try:
            assert reader.terminal.wait(10)
            assert not reader.closed.wait(0.3)  # still open, well inside the default wait
        finally:
            reader.close()


def test_title_wait_ends_and_the_stream_closes() -> None:
    app = create_emulator_app(_config("0.15.3", title_wait=0.2))
    with serve_in_thread(app) as url:
        reader = _Reader(url, LLMCHAT, _chat(auto_generate_name=True), "message_end")
        try:
            assert reader.terminal.wait(10)
            assert reader.closed.wait(10)
        finally:
            reader.close()


@pytest.mark.parametrize(
    ("version", "key", "auto_name", "held"),
    [
        ("0.15.3", LLMCHAT, True, True),
        ("1.4.3", CAT, True, True),
        ("1.9.2", LLMCHAT, True, True),
        ("1.9.2", LLMCHAT, False, False),
        ("1.12.1", LLMCHAT, True, False),
        ("1.13.2", LLMCHAT, True, False),
    ],
)
def test_title_wait_only_on_1_10_and_older(
    servers: dict[str, str], version: str, key: str, auto_name: bool, held: bool
) -> None:
    """The module's emulators wait TITLE_WAIT (long) for a title: a held stream is still open
    after the last event; one that is not held closes at once."""
    reader = _Reader(servers[version], key, _chat(auto_generate_name=auto_name), "message_end")
    try:
        assert reader.terminal.wait(10)
        if held:
            assert not reader.closed.wait(0.3)
        else:
            assert reader.closed.wait(5)
    finally:
        reader.close()


def test_title_wait_is_only_for_a_new_conversation(servers: dict[str, str]) -> None:
    url = servers["1.9.2"]
    conv = events(_stream(url, LLMCHAT, _chat("one")))[0]["conversation_id"]
    reader = _Reader(
        url, LLMCHAT, _chat("two", conversation_id=conv, auto_generate_name=True), "message_end"
    )
    try:
        assert reader.terminal.wait(10)
        assert reader.closed.wait(5)
    finally:
        reader.close()


# --- answers and fields -----------------------------------------------------------------------


def _upload(url: str, key: str) -> str:
    response = httpx.post(
        url + "/v1/files/upload",
        files={"file": ("pic.png", b"\x89PNG\r\n\x1a\nfake", "image/png")},
        data={"user": "tester"},
        headers=_auth(key),
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.parametrize("version", ["1.9.2", "1.12.1", "1.13.2"])
def test_chat_answer_as_message_file_events_on_1_11_2_to_1_12(
    servers: dict[str, str], version: str
) -> None:
    url = servers[version]
    file_id = _upload(url, LLMCHAT)
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": file_id}]
    with_file = events(_stream(url, LLMCHAT, _chat("hello there", files=files)))
    plain = events(_stream(url, LLMCHAT, _chat("hello there")))
    assert [e["event"] for e in plain[:-1]] == ["message"] * (len(plain) - 1)
    chunks = [e for e in with_file if e["event"] != "message_end"]
    expected = "message_file" if version == "1.12.1" else "message"
    assert {e["event"] for e in chunks} == {expected}
    assert "".join(e["answer"] for e in chunks) == "Echo: hello there"
    assert all("url" not in e for e in chunks)


@pytest.mark.parametrize("version", ["0.15.3", "1.0.1"])
def test_follow_up_inputs_are_ignored_on_0_15_3(servers: dict[str, str], version: str) -> None:
    url = servers[version]
    first = {"system_prompt": "be brief", "tone": "plain"}
    turn1 = _post(url, "/v1/chat-messages", ECHO, _chat(inputs=first, response_mode="blocking"))
    assert turn1.status_code == 200, turn1.text
    conv = turn1.json()["conversation_id"]
    turn2 = _post(
        url,
        "/v1/chat-messages",
        ECHO,
        _chat("again", inputs={"tone": "loud"}, conversation_id=conv, response_mode="blocking"),
    )
    if version == "0.15.3":
        assert turn2.status_code == 200, turn2.text
        listed = httpx.get(
            url + "/v1/messages",
            params={"conversation_id": conv, "user": "tester"},
            headers=_auth(ECHO),
        ).json()
        assert listed["data"][-1]["inputs"] == first
    else:
        assert turn2.status_code == 400
        assert turn2.json()["message"] == "system_prompt is required in input form"


@pytest.mark.parametrize("version", ["0.15.3", "1.4.3", "1.9.2", "1.13.2"])
def test_workflow_pinning_from_1_7_2(servers: dict[str, str], version: str) -> None:
    url = servers[version]
    run = {"inputs": {"query": "abc"}, "response_mode": "blocking", "user": "tester"}
    workflow_id = _post(url, "/v1/workflows/run", WF, run).json()["data"]["workflow_id"]
    pinned = _post(url, f"/v1/workflows/{workflow_id}/run", WF, run)
    bad_chat = _post(
        url, "/v1/chat-messages", LLMFLOW, _chat(workflow_id="nope", response_mode="blocking")
    )
    if version in ("0.15.3", "1.4.3"):
        assert pinned.status_code == 404 and pinned.headers["content-type"].startswith("text/html")
        assert bad_chat.status_code == 200  # the field is dropped by the parser
    else:
        assert pinned.status_code == 200 and pinned.json()["data"]["outputs"]["text"] == "ABC"
        assert bad_chat.status_code == 400 and bad_chat.json()["code"] == "bad_request"
        other = _post(url, f"/v1/workflows/{uuid.uuid4()}/run", WF, run)
        assert other.status_code == 404 and other.json()["code"] == "not_found"


@pytest.mark.parametrize("version", PROFILES)
def test_graph_event_fields_per_release(servers: dict[str, str], version: str) -> None:
    text = _stream(servers[version], LLMFLOW, _chat())
    seen = {e["event"]: e["data"] for e in events(text) if "data" in e}
    started, node = seen["workflow_started"], seen["node_started"]
    assert ("sequence_number" in started) == (version in ("0.15.3", "1.0.1"))
    assert ("sequence_number" in seen["workflow_finished"]) == (version in ("0.15.3", "1.0.1"))
    assert ("reason" in started) == version.startswith("1.13")
    old_engine = version in ("0.15.3", "1.0.1", "1.4.3")
    assert ("parallel_id" in node) == old_engine
    assert ("inputs_truncated" in node) == (not old_engine)
    assert ("outputs_truncated" in seen["node_finished"]) == (not old_engine)
    assert ("loop_id" in node) == (version != "0.15.3")
    assert ("agent_strategy" in node) == (version != "0.15.3")


@pytest.mark.parametrize("version", PROFILES)
def test_message_end_metadata_per_release(servers: dict[str, str], version: str) -> None:
    end = events(_stream(servers[version], LLMCHAT, _chat()))[-1]
    assert end["event"] == "message_end"
    if version in ("0.15.3", "1.0.1"):
        assert list(end["metadata"]) == ["usage"]
    else:
        assert list(end["metadata"]) == ["annotation_reply", "retriever_resources", "usage"]
    timing = "time_to_first_token" in end["metadata"]["usage"]
    assert timing == (version in ("1.12.1", "1.13.0", "1.13.2"))
    blocking = _post(
        servers[version], "/v1/chat-messages", LLMCHAT, _chat(response_mode="blocking")
    )
    assert list(blocking.json()["metadata"]) == list(end["metadata"])
    charset = "charset=utf-8" in blocking.headers["content-type"]
    assert charset == (version in ("1.12.1", "1.13.0", "1.13.2"))


@pytest.mark.parametrize("version", PROFILES)
def test_message_replace_reason_from_1_3_1(servers: dict[str, str], version: str) -> None:
    replace = next(
        e
        for e in events(_stream(servers[version], MODCHAT, _chat("boom")))
        if e["event"] == "message_replace"
    )
    assert ("reason" in replace) == (version not in ("0.15.3", "1.0.1"))


@pytest.mark.parametrize("version", PROFILES)
def test_sse_json_is_ascii_escaped_before_1_8_1(servers: dict[str, str], version: str) -> None:
    text = _stream(servers[version], LLMCHAT, _chat("喵"))
    assert "".join(e.get("answer", "") for e in events(text)) == "Echo: 喵"
    old = version in ("0.15.3", "1.0.1", "1.4.3")
    assert ("\\u55b5" in text) == old
    assert ('"event": "message"' in text) == old
    assert ("喵" in text) == (not old)


@pytest.mark.parametrize("version", ["0.15.3", "1.0.1"])
def test_loop_node_needs_1_0_1(servers: dict[str, str], version: str) -> None:
    text = _stream(servers[version], LOOP, _chat())
    seen = names(text)
    if version == "0.15.3":
        assert seen == ["error"]
        error = events(text)[0]
        assert (error["code"], error["status"]) == ("internal_server_error", 500)
        blocking = _post(
            servers[version], "/v1/chat-messages", LOOP, _chat(response_mode="blocking")
        )
        assert blocking.status_code == 500
    else:
        assert "loop_started" in seen and seen[-1] == "message_end"
