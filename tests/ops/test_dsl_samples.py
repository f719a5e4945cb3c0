"""dify-dsl/: the sample apps parse, have the promised shape, and run in the emulator
(LightRAG_o1 against a stand-in LightRAG server on 127.0.0.1)."""

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

from tests.support.servers import serve_in_thread

from .helpers import REPO

DSL_DIR = REPO / "dify-dsl"
SAMPLES = {
    "Cat_LLM.yml": "advanced-chat",
    "LightRAG_o1.yml": "advanced-chat",
    "Upper_WF.yml": "workflow",
}


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DSL_DIR / name).read_text(encoding="utf-8"))


def _nodes(dsl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node["data"] for node in dsl["workflow"]["graph"]["nodes"]}


@pytest.mark.parametrize(("name", "mode"), SAMPLES.items())
def test_dsl_parses_as_a_dify_app(name: str, mode: str) -> None:
    dsl = _load(name)
    assert dsl["kind"] == "app"
    assert dsl["app"]["mode"] == mode
    assert dsl["app"]["name"] == Path(name).stem
    nodes = _nodes(dsl)
    edges = dsl["workflow"]["graph"]["edges"]
    for edge in edges:
        assert edge["source"] in nodes, edge
        assert edge["target"] in nodes, edge
    types = [data["type"] for data in nodes.values()]
    assert types.count("start") == 1
    assert ("answer" if mode == "advanced-chat" else "end") in types


def test_lightrag_uses_the_environment_variable() -> None:
    dsl = _load("LightRAG_o1.yml")
    env = {var["name"]: var for var in dsl["workflow"]["environment_variables"]}
    assert env["LIGHTRAG_URL"]["value_type"] == "string"
    nodes = _nodes(dsl)
    http = next(data for data in nodes.values() if data["type"] == "http-request")
    assert http["method"] == "post"
    assert http["url"] == "{{#env.LIGHTRAG_URL#}}/query"
    body = http["body"]["data"][0]["value"]
    assert "{{#sys.query#}}" in body
    assert '"mode": "hybrid"' in body
    code = next(data for data in nodes.values() if data["type"] == "code")
    assert "response" in code["code"]


def test_upper_workflow_shape() -> None:
    nodes = _nodes(_load("Upper_WF.yml"))
    start = next(data for data in nodes.values() if data["type"] == "start")
    (query,) = start["variables"]
    assert query["variable"] == "query"
    assert query["required"] is True
    assert query["type"] == "text-input"
    end = next(data for data in nodes.values() if data["type"] == "end")
    assert [out["variable"] for out in end["outputs"]] == ["text"]


# ---------------------------------------------------------------- in the emulator

try:
    from bridge.emulator import EmulatorConfig, create_emulator_app, default_key
except ImportError as exc:  # the emulator is built in parallel with these tests
    EMULATOR_MISSING = f"bridge.emulator is not importable yet ({exc})"
else:
    EMULATOR_MISSING = ""

needs_emulator = pytest.mark.skipif(bool(EMULATOR_MISSING), reason=EMULATOR_MISSING)


@contextlib.contextmanager
def lightrag_stand_in() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """POST /query {"query", "mode"} → {"response": ...}, like LightRAG's server API."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            received.append(payload)
            if self.path != "/query":
                self.send_response(404)
                self.end_headers()
                return
            answer = f"[stand-in, mode={payload.get('mode')}] about {payload.get('query')}: 42"
            body = json.dumps({"response": answer}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _dsl_copy_with_env(tmp_path: Path, name: str, env_name: str, value: str) -> Path:
    """The app as a user would configure it: its environment variable set to `value`."""
    dsl = _load(name)
    for var in dsl["workflow"]["environment_variables"]:
        if var["name"] == env_name:
            var["value"] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(dsl, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _chat(base: str, app_name: str, query: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/v1/chat-messages",
        headers={"Authorization": f"Bearer {default_key(app_name)}"},
        json={"query": query, "inputs": {}, "user": "ops-test", "response_mode": "blocking"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


@needs_emulator
def test_samples_load_into_the_emulator() -> None:
    app = create_emulator_app(EmulatorConfig(dsl_dir=DSL_DIR))
    with serve_in_thread(app) as base:
        assert _chat(base, "Cat_LLM", "hello")["answer"] == "喵"
        response = httpx.post(
            f"{base}/v1/workflows/run",
            headers={"Authorization": f"Bearer {default_key('Upper_WF')}"},
            json={
                "inputs": {"query": "shout this"},
                "user": "ops-test",
                "response_mode": "blocking",
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["outputs"] == {"text": "SHOUT THIS"}
        info = httpx.get(
            f"{base}/v1/info", headers={"Authorization": f"Bearer {default_key('LightRAG_o1')}"}
        )
        assert info.status_code == 200, info.text
        assert info.json()["mode"] == "advanced-chat"


@needs_emulator
def test_lightrag_answers_through_a_stand_in_server(tmp_path: Path) -> None:
    with lightrag_stand_in() as (lightrag_url, received):
        dsl = _dsl_copy_with_env(tmp_path, "LightRAG_o1.yml", "LIGHTRAG_URL", lightrag_url)
        app = create_emulator_app(EmulatorConfig(dsl_paths=[dsl]))
        with serve_in_thread(app) as base:
            reply = _chat(base, "LightRAG_o1", "what is the answer")
    assert received == [{"query": "what is the answer", "mode": "hybrid"}]
    assert reply["answer"] == "[stand-in, mode=hybrid] about what is the answer: 42"
