"""Honest accounting at the edge, through the shipped entry point (`dify-bridge serve` as its
own process, default settings; issue 17 item 6): what the server's edge refuses is counted and
logged as the status the client got, an early 413 reaches a client still sending its body,
uvicorn's own lines are JSON like the rest of the log, and a huge `model` makes neither a huge
answer nor a huge log line."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.shipped import ShippedBridge, shipped_bridge

# Bounded waits only: an answer or a close must show up well within this.
WAIT = 15.0
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def bridge() -> Iterator[ShippedBridge]:
    # Default settings (demo mode: no Dify configured, no keys) except a short request
    # deadline, so a stalled body is refused within a test's patience.
    with shipped_bridge(BRIDGE_REQUEST_TIMEOUT="1") as served:
        yield served


def connect(bridge: ShippedBridge) -> socket.socket:
    port = int(bridge.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"connection still open; got {received!r}")


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def samples(bridge: ShippedBridge) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{bridge.url}/metrics", timeout=WAIT).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def counted(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def statuses_counted(before: dict, after: dict, name: str, status_label: str) -> set[str]:
    """The statuses of `name` that grew between the two scrapes."""
    return {
        dict(labels)[status_label]
        for (sample, labels), value in after.items()
        if sample == name and value > before.get((sample, labels), 0.0)
    }


def lines_for(bridge: ShippedBridge, request_id: str, wait: float = WAIT) -> list[dict]:
    """The log lines of one request, once its access line is written (bounded wait)."""
    deadline = time.monotonic() + wait
    while True:
        lines = [line for line in bridge.log_lines() if line.get("request_id") == request_id]
        if any(line.get("event") == "request" for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def access_line(lines: list[dict]) -> dict:
    (line,) = [line for line in lines if line.get("event") == "request"]
    return line


HEAD = (
    "POST /v1/chat/completions HTTP/1.1\r\nHost: bridge\r\nX-Request-Id: {rid}\r\n"
    "Content-Type: application/json\r\n"
)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("rid", "raw", "status", "code"),
    [
        (
            "req-slow-body",
            HEAD + "Content-Length: 200\r\n\r\n" + '{"model": "o1", "mess',
            408,
            "request_timeout",
        ),
        (
            "req-bad-chunk",
            HEAD + "Transfer-Encoding: chunked\r\n\r\n" + '5\r\n{"a":\r\nzz\r\n{}\r\n0\r\n\r\n',
            400,
            "invalid_http_request",
        ),
    ],
    ids=["slow-body-408", "malformed-chunked-400"],
)
def test_an_edge_refusal_is_counted_and_logged_as_the_status_the_client_got(
    bridge: ShippedBridge, rid: str, raw: str, status: int, code: str
) -> None:
    before = samples(bridge)
    with connect(bridge) as sock:
        sock.sendall(raw.replace("{rid}", rid).encode())
        got = read_until_closed(sock)
    assert status_of(got) == status, got
    lines = lines_for(bridge, rid)
    after = samples(bridge)

    line = access_line(lines)
    assert line["status"] == status and line["error_code"] == code
    assert not [entry for entry in lines if entry.get("level") == "error"], lines
    assert not any("disconnected prematurely" in json.dumps(entry) for entry in lines)
    (refused,) = [entry for entry in lines if entry.get("event") == "request_refused"]
    assert refused["status"] == status and refused["level"] == "warning"

    http = {"app_name": "dify-openai-bridge", "method": "POST", "path": CHAT}
    assert statuses_counted(before, after, "bridge_http_requests_total", "status_code") == {
        str(status)
    }
    assert counted(before, after, "bridge_http_requests_total", status_code=str(status), **http)
    assert statuses_counted(before, after, "bridge_chat_requests_total", "status") == {str(status)}
    assert counted(before, after, "bridge_edge_refusals_total", status=str(status), code=code) == 1


def test_a_refusal_before_the_app_is_counted_at_the_edge_only(bridge: ShippedBridge) -> None:
    # Content-Length with Transfer-Encoding: refused while the head is parsed, before any app
    # code runs, so no request series may move, and none may count a 5xx.
    before = samples(bridge)
    raw = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    with connect(bridge) as sock:
        sock.sendall(raw)
        assert status_of(read_until_closed(sock)) == 400
    after = samples(bridge)
    assert (
        counted(
            before, after, "bridge_edge_refusals_total", status="400", code="invalid_http_request"
        )
        == 1
    )
    grown = statuses_counted(before, after, "bridge_http_requests_total", "status_code")
    assert not {s for s in grown if s.startswith("5")}


def test_a_client_leaving_mid_body_is_a_499_not_a_server_error(bridge: ShippedBridge) -> None:
    rid = "req-left-mid-body"
    before = samples(bridge)
    with connect(bridge) as sock:
        sock.sendall((HEAD.replace("{rid}", rid) + "Content-Length: 500\r\n\r\n{").encode())
        time.sleep(0.2)  # let the app start reading the body
    lines = lines_for(bridge, rid)
    after = samples(bridge)
    assert access_line(lines)["status"] == 499
    assert access_line(lines)["error_code"] == "client_closed_request"
    assert not [entry for entry in lines if entry.get("level") == "error"], lines
    assert statuses_counted(before, after, "bridge_http_requests_total", "status_code") == {"499"}


# ---------------------------------------------------------------- 413


def test_a_25_mb_body_gets_its_413_even_when_the_client_closes_after_it(
    bridge: ShippedBridge,
) -> None:
    # urllib sends `Connection: close` and the whole body before it reads the answer: with an
    # immediate close the unread bytes made the kernel reset the connection, and urllib raised
    # ConnectionResetError instead of showing the 413.
    body = b'{"model": "o1", "messages": [{"role": "user", "content": "' + b"a" * (25 << 20)
    request = urllib.request.Request(
        f"{bridge.url}{CHAT}",
        data=body + b'"}]}',
        headers={"Content-Type": "application/json", "X-Request-Id": "req-25mb"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=WAIT)
    assert answer.value.code == 413
    error = json.loads(answer.value.read())["error"]
    assert error["code"] == "request_too_large"
    assert access_line(lines_for(bridge, "req-25mb"))["status"] == 413


def test_a_413_over_a_raw_socket_is_readable_after_the_whole_body_was_sent(
    bridge: ShippedBridge,
) -> None:
    size = 25 << 20
    head = (
        HEAD.replace("{rid}", "req-25mb-raw")
        + f"Connection: close\r\nContent-Length: {size}\r\n\r\n"
    )
    with connect(bridge) as sock:
        sock.sendall(head.encode())
        block = b"a" * 65536
        for _ in range(size // len(block)):
            sock.sendall(block)  # raised ConnectionResetError before the lingering close
        got = read_until_closed(sock)
    assert status_of(got) == 413, got[:200]


# ---------------------------------------------------------------- the log


def test_uvicorns_own_lines_are_json_like_every_other_line(bridge: ShippedBridge) -> None:
    with connect(bridge) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nX-Bad: a\x01b\r\n\r\n")
        assert status_of(read_until_closed(sock)) == 400
    deadline = time.monotonic() + WAIT
    while True:
        lines = bridge.log_lines()
        warned = [line for line in lines if line.get("event") == "Invalid HTTP request received."]
        if warned or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert warned and warned[0]["logger"] == "uvicorn.error" and warned[0]["level"] == "warning"
    assert [line["raw"] for line in lines if "raw" in line] == []


def test_a_huge_model_name_is_a_400_and_a_short_log_line(bridge: ShippedBridge) -> None:
    model = "m" * 1_000_000
    response = httpx.post(
        f"{bridge.url}{CHAT}",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"X-Request-Id": "req-huge-model"},
        timeout=WAIT,
    )
    assert response.status_code == 400
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["param"] == "model" and error["code"] == "invalid_model_name"
    assert error["type"] == "invalid_request_error" and model not in error["message"]
    assert len(response.content) < 1000
    lines = lines_for(bridge, "req-huge-model")
    assert access_line(lines)["status"] == 400
    raw = bridge.log.read_text()
    assert max(len(line) for line in raw.splitlines()) < 2000
    assert access_line(lines)["model"].startswith("m" * 256 + "…")
