"""The HTTP Request node's JSON body, as Dify 1.13.2 builds it (issue 10 item 10).

Source: api/dify_graph/nodes/http_request/executor.py at 1.13.2 renders the body template raw,
passes it through `json_repair.repair_json`, then `json.loads(..., strict=False)`; checked on a
real Dify 1.13.2 with the LightRAG_o1 sample: quotes, newlines, emoji and `{{x}}` reach LightRAG,
a literal backslash-n arrives as a newline. The expected values below are computed the same way.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from json_repair import repair_json

from bridge.emulator import EmulatorConfig, create_emulator_app, default_key
from tests.emulator.sse import events
from tests.support.servers import serve_in_thread

SAMPLE = Path(__file__).resolve().parents[2] / "dify-dsl" / "LightRAG_o1.yml"
TEMPLATE = '{"query": "{{#sys.query#}}", "mode": "hybrid"}'
KEY = default_key("LightRAG_o1")

HOSTILE = {
    "double quotes": 'say "hello" to "them"',
    "backslashes": "C:\\temp\\new folder \\ end",
    "literal backslash-n": "first\\nsecond",
    "newlines": "line one\nline two\r\nline three",
    "tab and control": "a\tb\x01c",
    "emoji": "cats 🐱 and 🐶, 中文",
    "braces": "{{x}} and {not json}",
    "system prompt and quotes": 'System: You are "helpful".\n\nQuote: "a \\"nested\\" one"\nQ?',
    "20 KB": ('lorem "ipsum" dolor\n' * 1024)[:20_000],
}


def dify_json_body(query: str) -> Any:
    """What Dify sends for the sample's body template and this query."""
    return json.loads(repair_json(TEMPLATE.replace("{{#sys.query#}}", query)), strict=False)


@contextlib.contextmanager
def lightrag_stand_in(status: int = 200) -> Iterator[tuple[str, list[Any]]]:
    """POST /query: records the parsed JSON body, answers like LightRAG (or with `status`)."""
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"unparsable": raw.decode("utf-8", "replace")}
            received.append(payload)
            if status == 200:
                reply = {"response": f"answer #{len(received)}"}
            else:
                reply = {"detail": "invalid JSON"}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def sample_dir(tmp: Path, lightrag_url: str) -> Path:
    """The sample as a user configures it: LIGHTRAG_URL pointing at the stand-in."""
    dsl = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    for var in dsl["workflow"]["environment_variables"]:
        if var["name"] == "LIGHTRAG_URL":
            var["value"] = lightrag_url
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / SAMPLE.name).write_text(yaml.safe_dump(dsl, allow_unicode=True), encoding="utf-8")
    return tmp


@pytest.fixture(scope="module")
def lightrag() -> Iterator[tuple[str, list[Any]]]:
    with lightrag_stand_in() as served:
        yield served


@pytest.fixture(scope="module")
def emulator(lightrag, tmp_path_factory) -> Iterator[str]:
    dsl_dir = sample_dir(tmp_path_factory.mktemp("dsl"), lightrag[0])
    with serve_in_thread(create_emulator_app(EmulatorConfig(dsl_dir=dsl_dir))) as url:
        yield url


def _ask(base: str, query: str, mode: str = "streaming") -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat-messages",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"query": query, "inputs": {}, "user": "hostile", "response_mode": mode},
        timeout=30,
    )


def test_the_sample_template_is_still_the_one_the_expectations_use() -> None:
    dsl = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    http = next(n["data"] for n in dsl["workflow"]["graph"]["nodes"] if n["id"] == "http")
    assert http["body"]["data"][0]["value"] == TEMPLATE


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_query_reaches_lightrag_as_dify_repairs_it(
    emulator: str, lightrag: tuple[str, list[Any]], case: str
) -> None:
    query = HOSTILE[case]
    received = lightrag[1]
    before = len(received)
    body = _ask(emulator, query).text
    assert received[before:] == [dify_json_body(query)]
    finished = events(body)[-1]
    assert finished["event"] == "workflow_finished"
    assert finished["data"]["status"] == "succeeded"
    answer = "".join(e["answer"] for e in events(body) if e["event"] == "message")
    assert answer.startswith("answer #")


def test_quotes_newlines_and_emoji_arrive_unchanged(
    emulator: str, lightrag: tuple[str, list[Any]]
) -> None:
    """The measured cases: on a real Dify these reach LightRAG as typed."""
    for query in ('say "hi"', "two\nlines", "emoji 🐱", "{{x}}"):
        _ask(emulator, query, "blocking")
        assert lightrag[1][-1] == {"query": query, "mode": "hybrid"}
    _ask(emulator, "first\\nsecond", "blocking")
    assert lightrag[1][-1]["query"] == "first\nsecond"  # a literal backslash-n → newline


def test_logged_request_shows_the_repaired_body(emulator: str) -> None:
    body = _ask(emulator, 'a "quoted" word').text
    http = next(
        e["data"]
        for e in events(body)
        if e["event"] == "node_finished" and e["data"]["node_id"] == "http"
    )
    logged = json.dumps({"query": 'a "quoted" word', "mode": "hybrid"})
    # 43a: request line, Host, the node's own headers, Content-Length, body — no client headers
    assert http["process_data"]["request"].split("\r\n")[2:] == [
        "Content-Type: application/json",
        f"Content-Length: {len(logged)}",
        "",
        logged,
    ]


def test_a_non_2xx_lightrag_answer_fails_the_run(tmp_path: Path) -> None:
    with lightrag_stand_in(status=422) as (url, _):
        app = create_emulator_app(EmulatorConfig(dsl_dir=sample_dir(tmp_path, url)))
        with serve_in_thread(app) as base:
            streamed = _ask(base, "anything").text
            blocking = _ask(base, "anything", "blocking")
    finished = events(streamed)[-1]
    assert finished["event"] == "workflow_finished"
    assert finished["data"]["status"] == "failed"
    assert "LightRAG answered HTTP 422" in finished["data"]["error"]
    assert not any(e["event"] == "message" for e in events(streamed))
    # blocking chatflow failure: 400 "Run failed: …" (27b)
    assert blocking.status_code == 400
    assert blocking.json()["message"].startswith("Run failed: ")
    assert "LightRAG answered HTTP 422" in blocking.json()["message"]
