"""IF/ELSE and HTTP Request nodes, on the emulator's own test apps (emu_ifelse_chat.yml,
emu_http_wf.yml) — no recording covers them, so these check behaviour, not bytes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.emulator.sse import events, names
from tests.emulator.test_behaviour import answer_of, auth, chat
from tests.support.servers import free_port

IFELSE, HTTPWF = "app-emuifelsechat", "app-emuhttpwf"


# --- IF/ELSE ------------------------------------------------------------------------------------


def _ran(body: str) -> list[str]:
    return [e["data"]["node_id"] for e in events(body) if e["event"] == "node_started"]


@pytest.mark.parametrize(
    ("query", "n", "case_id", "answer_node", "answer"),
    [
        ("an apple a day", None, "true", "fruit", "fruit: an apple a day"),
        ("a number", 11, "big", "big", "big number 11"),
        ("a number", 7, "big", "big", "big number 7"),  # second condition of an `or` case
        ("a number", 3, "false", "other", "other"),
        ("apple and 11", 11, "true", "fruit", "fruit: apple and 11"),  # first case wins
    ],
)
def test_if_else_takes_the_first_matching_case(
    client: httpx.Client, query: str, n: int | None, case_id: str, answer_node: str, answer: str
) -> None:
    inputs = {} if n is None else {"n": n}
    body = chat(client, IFELSE, query, inputs=inputs).text
    assert _ran(body) == ["start", "branch", answer_node]
    branch = next(
        e["data"]
        for e in events(body)
        if e["event"] == "node_finished" and e["data"]["node_id"] == "branch"
    )
    assert branch["outputs"] == {"result": case_id != "false", "selected_case_id": case_id}
    # Only the taken branch's Answer streams, literal text included.
    assert answer_of(body) == answer
    assert events(body)[-1]["data"]["outputs"]["answer"] == answer
    assert names(body)[-2:] == ["message_end", "workflow_finished"]


def test_if_else_in_blocking_mode(client: httpx.Client) -> None:
    response = chat(client, IFELSE, "nothing", inputs={"n": 1}, response_mode="blocking")
    assert response.json()["answer"] == "other"


# --- HTTP Request -------------------------------------------------------------------------------


class _EchoHandler(BaseHTTPRequestHandler):
    """POST /echo… → 200 JSON describing the request; anything else → 404."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if not self.path.startswith("/echo"):
            self._reply(404, {"error": "no such path"})
            return
        self._reply(
            200,
            {
                "method": self.command,
                "path": self.path,
                "x_name": self.headers.get("X-Name"),
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(raw) if raw else None,
            },
        )

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run_wf(client: httpx.Client, inputs: dict, mode: str = "streaming") -> httpx.Response:
    body = {"inputs": inputs, "response_mode": mode, "user": "tester"}
    return client.post("/v1/workflows/run", json=body, headers=auth(HTTPWF))


def _node(body: str, node_id: str) -> dict:
    return next(
        e["data"]
        for e in events(body)
        if e["event"] == "node_finished" and e["data"]["node_id"] == node_id
    )


def test_http_request_sends_method_url_params_headers_and_json_body(
    client: httpx.Client, echo_server: str
) -> None:
    body = _run_wf(client, {"base": echo_server, "name": "bob"}).text
    finished = events(body)[-1]["data"]
    assert finished["status"] == "succeeded"
    assert finished["outputs"]["status"] == 200
    seen = json.loads(finished["outputs"]["body"])
    assert seen == {
        "method": "POST",
        "path": "/echo?q=bob",
        "x_name": "bob",
        "content_type": "application/json",
        "body": {"name": "bob"},
    }
    http = _node(body, "http")
    assert list(http["outputs"]) == ["status_code", "body", "headers", "files"]
    assert http["outputs"]["headers"]["content-type"] == "application/json"
    # 43a: process_data.request holds the raw request text
    request_text = http["process_data"]["request"]
    assert request_text.startswith("POST /echo?q=bob HTTP/1.1\r\n")
    assert request_text.endswith('\r\n\r\n{"name": "bob"}')
    # End-node outputs stream as text_chunk in workflow apps (05)
    chunks = [e["data"]["text"] for e in events(body) if e["event"] == "text_chunk"]
    assert chunks[0] == "200"


def test_http_error_status_is_an_output_not_a_failure(
    client: httpx.Client, echo_server: str
) -> None:
    response = _run_wf(client, {"base": echo_server + "/nowhere", "name": "x"}, "blocking")
    data = response.json()["data"]
    assert data["status"] == "succeeded"
    assert data["outputs"]["status"] == 404
    assert json.loads(data["outputs"]["body"]) == {"error": "no such path"}


def test_unreachable_url_fails_the_node_and_the_run(client: httpx.Client) -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    body = _run_wf(client, {"base": base, "name": "x"}).text
    http = _node(body, "http")
    assert http["status"] == "failed"
    assert f"{base}/echo" in http["error"]
    finished = events(body)[-1]
    assert finished["event"] == "workflow_finished"
    assert finished["data"]["status"] == "failed"
    assert finished["data"]["error"] == http["error"]
