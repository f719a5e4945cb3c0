"""One JSON access line per request, with the request's story, and no key anywhere."""

from __future__ import annotations

import json

import httpx
import openai

from tests.service.conftest import BRIDGE_KEY, CAT_KEY, make_bridge
from tests.support.servers import serve_in_thread

# A client's own Dify app key (LLMChatflow), not one the bridge holds: passthrough refuses those.
CLIENT_APP_KEY = "app-llmchatflow"


def access_lines(stderr: str) -> dict[str, dict]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return {line["request_id"]: line for line in lines if line.get("event") == "request"}


def test_access_line_is_json_with_the_request_fields_and_no_key(capsys, emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1", passthrough=True)) as url:
        managed = openai.OpenAI(base_url=f"{url}/v1", api_key=BRIDGE_KEY)
        stream = managed.chat.completions.create(
            model="o1",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"X-Request-Id": "req-managed-stream"},
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        passthrough = openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_APP_KEY)
        passthrough.chat.completions.create(
            model="whatever-the-client-calls-it",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Request-Id": "req-passthrough"},
        )
        refused = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": "Bearer sk-wrong-bridge-key-0000", "X-Request-Id": "req-401"},
            json={"model": "o1", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert refused.status_code == 401
    stderr = capsys.readouterr().err
    lines = access_lines(stderr)

    streamed = lines["req-managed-stream"]
    assert streamed["method"] == "POST" and streamed["path"] == "/v1/chat/completions"
    assert streamed["status"] == 200 and streamed["stream"] is True
    assert streamed["model"] == "o1" and streamed["mode"] == "advanced-chat"
    assert streamed["conversation"] == "new"
    assert 0 <= streamed["ttft_ms"] <= streamed["duration_ms"]
    assert streamed["total_tokens"] >= 0 and "prompt_tokens" in streamed

    plain = lines["req-passthrough"]
    assert plain["stream"] is False and plain["status"] == 200
    assert plain["ttft_ms"] is not None and "total_tokens" in plain
    assert lines["req-401"]["status"] == 401
    # Refused before any Dify call, the line still names the model asked for.
    assert lines["req-401"]["model"] == "o1"

    for secret in (BRIDGE_KEY, CAT_KEY, CLIENT_APP_KEY, "sk-wrong-bridge-key-0000", "app-slowchat"):
        assert secret not in stderr


def test_response_carries_the_clients_request_id_or_a_new_one(emulator_url):
    with serve_in_thread(make_bridge(f"{emulator_url}/v1")) as url:
        given = httpx.get(f"{url}/healthz", headers={"X-Request-Id": "abc-123"})
        fresh = httpx.get(f"{url}/healthz")
    assert given.headers["x-request-id"] == "abc-123"
    assert fresh.headers["x-request-id"].startswith("req_")
