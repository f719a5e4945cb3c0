"""The emulator answers the recorded requests like Dify 1.13.2 did: same status, same error body,
same SSE event sequence (pings included), same field names in the same order."""

from __future__ import annotations

import json
import re
import shlex

import httpx
import pytest

from tests.emulator.sse import frames
from tests.support.recordings import Recording, load

# recording id → the emulator key of the app it was recorded against
CASES = {
    "01": "app-cat-llm",
    "03": "app-cat-llm",
    "05": "app-wf-upper",
    "06": "app-wf-upper",
    "07a": "app-wf-upper",
    "07b": "app-wf-upper",
    "07c": "app-wf-upper",
    "08a": "app-wf-upper",
    "08b": "app-cat-llm",
    "08c": "app-cat-llm",
    "10": None,
    "11a": None,
    "11b": None,
    "12a": "app-cat-llm",
    "12b": "app-cat-llm",
    "12c": "app-cat-llm",
    "12d": "app-cat-llm",
    "12e": "app-cat-llm",
    "12f": "app-cat-llm",
    "13a": "app-cat-llm",
    "13b": "app-cat-llm",
    "13c": "app-cat-llm",
    "13d": "app-cat-llm",
    "14a": "app-cat-llm",
    "14b": "app-wf-upper",
    "14c": "app-echochat",
    "15a": "app-cat-llm",
    "15b": "app-wf-upper",
    "16-meta": "app-cat-llm",
    "16b": "app-cat-llm",
    "17b": "app-cat-llm",
    "17c": "app-wf-upper",
    "18b": "app-cat-llm",
    "18c": "app-cat-llm",
    "20a": "app-cat-llm",
    "20b": "app-cat-llm",
    "21a": "app-cat-llm",
    "21b": "app-echochat",
    "21c": "app-echochat",
    "22a": "app-echochat",
    "22d": "app-echochat",
    "22e": "app-echochat",
    "23c": "app-slowchat",
    "23e": "app-slowchat",
    "25c": "app-slowwf",
    "27a": "app-failchat",
    "27b": "app-failchat",
    "27c": "app-failwf",
    "27d": "app-failwf",
    "30a": "app-llmchat",
    "30c": "app-llmchat",
    "30e": "app-llmchat",
    "31a": "app-llmagent",
    "31b": "app-llmagent",
    "32a": "app-llmcompletion",
    "32b": "app-llmcompletion",
    "32c": "app-llmcompletion",
    "32d": "app-llmcompletion",
    "32e": "app-llmchat",
    "33a": "app-llmchatflow",
    "33b": "app-llmchatflow",
    "34a": "app-llmchat",
    "34b": "app-llmchat",
    "34c": "app-llmagent",
    "34d": "app-llmcompletion",
    "34e": "app-llmchatflow",
    "34f": "app-llmchatflow",
    "31e": "app-llmagenttool",
    "40": "app-iterchat",
    "41": "app-loopchat",
    "44a": "app-modchat",
    "44b": "app-modchat",
    "44c": "app-modchatflow",
    "44d": "app-modchatflow",
    "44g": "app-modchatflow",
    "45a": "app-llmchat",
    "47a": "app-llmchat",
    "47b": "app-thinkchatflow",
    "47c": "app-thinkchatflow",
    "47d": "app-llmchatflow",
}

# GET /v1/messages recordings: (list recording, the recording whose run created the conversation)
MESSAGE_LISTS = {
    "31f": ("31e", "app-llmagenttool"),
    "44e": ("44b", "app-modchat"),
    "44f": ("44d", "app-modchatflow"),
}


def replay(client: httpx.Client, rec: Recording, key: str | None) -> httpx.Response:
    """Send the recording's curl request to the emulator, its app key swapped for ours."""
    args = shlex.split(rec.curl)
    method, url, headers, data = "GET", "", {}, None
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-X":
            method = args[i + 1]
            i += 1
        elif arg == "-H":
            name, _, value = args[i + 1].partition(": ")
            if value == "Bearer app-REDACTED":
                value = f"Bearer {key}"
            headers[name] = value
            i += 1
        elif arg == "-d":
            data = args[i + 1].encode()
            method = "POST" if method == "GET" else method
            i += 1
        elif arg.startswith("http"):
            url = arg.replace("\\", "")
        i += 1
    if data is not None and "Content-Type" not in headers:
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
    path = url.split("127.0.0.1:5001", 1)[1]
    return client.request(method, path, headers=headers, content=data)


# objects whose key order the comparison checks, recursively
SHAPED = ("data", "metadata", "usage", "execution_metadata", "outputs")


def shape(value):
    """Field names in order, recursively for the objects whose layout the protocol fixes."""
    if isinstance(value, dict):
        return [(k, shape(v) if k in SHAPED else None) for k, v in value.items()]
    return None


@pytest.mark.parametrize("rec_id", sorted(CASES))
def test_replayed_request_matches_recording(client: httpx.Client, rec_id: str) -> None:
    rec = load(rec_id)
    response = replay(client, rec, CASES[rec_id])
    assert response.status_code == rec.status
    recorded_type = rec.headers.get("content-type", "")
    assert response.headers["content-type"] == recorded_type
    if recorded_type.startswith("text/event-stream"):
        got, want = frames(response.text), frames(rec.body.decode())
        assert [d["event"] if d else k for k, d in got] == [d["event"] if d else k for k, d in want]
        for (_, g), (_, w) in zip(got, want, strict=True):
            assert shape(g) == shape(w)
        return
    got_json, want_json = response.json(), rec.json
    if "code" in want_json and rec.status >= 400:
        if want_json["message"].startswith("Run failed: Traceback"):
            # The recorded traceback came from the sandbox stand-in's own wrapper (README).
            assert got_json["message"].splitlines()[-1] == want_json["message"].splitlines()[-1]
            got_json["message"] = want_json["message"]
        assert got_json == want_json
        assert list(json.loads(response.content)) == ["code", "message", "status"]
        if rec.status == 401:
            assert response.headers["www-authenticate"] == 'Bearer realm="api"'
        return
    assert shape(got_json) == shape(want_json)


@pytest.mark.parametrize("rec_id", sorted(MESSAGE_LISTS))
def test_message_list_after_replayed_run_matches_recording(
    client: httpx.Client, rec_id: str
) -> None:
    """Replay the run that made the conversation, then list it: same items, same stored answer."""
    run_id, key = MESSAGE_LISTS[rec_id]
    run = replay(client, load(run_id), key)
    conversation_id = frames(run.text)[-1][1]["conversation_id"]
    user = load(run_id).request_json["user"]
    response = client.get(
        "/v1/messages",
        params={"conversation_id": conversation_id, "user": user},
        headers={"Authorization": f"Bearer {key}"},
    )
    want = load(rec_id)
    assert response.status_code == want.status
    got_items, want_items = response.json()["data"], want.json["data"]
    assert [list(i) for i in got_items] == [list(i) for i in want_items]
    for got, recorded in zip(got_items, want_items, strict=True):
        for field in ("query", "answer", "inputs", "agent_thoughts", "message_files", "status"):
            assert _stable(got[field]) == _stable(recorded[field]), field


def _stable(value):
    """Drop per-run ids and times (31f's tool result is the current time)."""
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, dict):
        return {
            k: _stable(v) for k, v in value.items() if k not in ("id", "message_id", "created_at")
        }
    if isinstance(value, str):
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<now>", value)
    return value
