"""Real Dify 1.13.2 responses, replayed byte for byte into the bridge, and the exact OpenAI
output a client receives (stream and non-stream)."""

from __future__ import annotations

import pytest

from tests.replay.conftest import AUTH
from tests.support.replay import DifyReplay
from tests.support.sse import content_of, parse_sse, reasoning_of

HI = {"model": "o1", "messages": [{"role": "user", "content": "hi"}]}

# recording, Dify path, app mode, expected content, expected reasoning (None: not checked)
SUCCESS_CASES = [
    ("01", "chat-messages", "advanced-chat", "喵", "Code…\n"),
    ("05", "workflows/run", "workflow", "HELLO WORKFLOW\n14", "Upper…\n"),
    ("30a", "chat-messages", "chat", "Echo: hello llm world", ""),
    ("31e", "chat-messages", "agent-chat", "Echo: tool said: 2026-11-22 01:35:45",
     'Using current_time: {}\ncurrent_time returned: {"current_time": "2026-11-22 01:35:45"}\n'),
    ("32a", "completion-messages", "completion", "Echo: Answer this: complete me\n", ""),
    ("40", "chat-messages", "advanced-chat", "Items: - 0:ALPHA\n- 1:BETA\n- 2:GAMMA",
     "Make list…\nMake list done (0.1s)\nIteration: 3 items…\nIteration: item 1\n"
     "Iteration: item 2\nIteration: item 3\nIteration done (0.4s)\n"),
    ("41", "chat-messages", "advanced-chat", "Loop done, num=3",
     "Loop: round 1…\nLoop: round 2…\nLoop: round 3…\nLoop done (0.4s)\n"),
    ("43a", "chat-messages", "advanced-chat",
     "[LightRAG stand-in, mode=hybrid] Based on the knowledge graph, the answer to "
     "“Who founded the Acme guild?” is 42.",
     "LightRAG /query…\nLightRAG /query done (1.0s)\nExtract response…\n"),
    # Thinking goes out in whole lines, each ending in a newline (issue 4, Cherry Studio).
    ("47a", "chat-messages", "chat", "Echo:  Hello there", "I should greet\n"),
]


@pytest.mark.parametrize(("rec", "path", "mode", "content", "reasoning"), SUCCESS_CASES)
async def test_recorded_stream_becomes_openai_chunks(bridge_for, rec, path, mode, content, reasoning):
    replay = DifyReplay.of(rec, path, mode=mode)
    async with bridge_for(replay) as client:
        response = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    chunks, done, _ = parse_sse(response.text)
    assert done
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    # Never an empty delta, and a reasoning chunk has no `content` key (LobeChat).
    for chunk in chunks[1:-1]:
        delta = chunk["choices"][0]["delta"]
        assert delta and all(value for value in delta.values())
    assert content_of(chunks) == content
    assert reasoning_of(chunks) == reasoning


@pytest.mark.parametrize(("rec", "path", "mode", "content", "reasoning"), SUCCESS_CASES)
async def test_recorded_stream_aggregates_into_one_completion(bridge_for, rec, path, mode, content, reasoning):
    replay = DifyReplay.of(rec, path, mode=mode)
    async with bridge_for(replay) as client:
        response = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert message["content"] == content
    assert message.get("reasoning_content", "") == reasoning
    # The Dify call is always streaming, also for a non-stream client.
    assert replay.bodies(path)[0]["response_mode"] == "streaming"


async def test_usage_is_dify_real_usage(bridge_for):
    replay = DifyReplay.of("30a", mode="chat")
    async with bridge_for(replay) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={**HI, "stream": True, "stream_options": {"include_usage": True}},
            headers=AUTH,
        )
    chunks, done, _ = parse_sse(response.text)
    assert done
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


async def test_moderated_output_is_replaced_in_non_stream(bridge_for):
    replay = DifyReplay.of("44b", mode="chat")
    async with bridge_for(replay) as client:
        response = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    assert response.json()["choices"][0]["message"]["content"] == "[output blocked by keyword moderation]"


FAILURE_CASES = [
    # recording, path, mode, status (non-stream), code, message fragment
    ("27a", "chat-messages", "advanced-chat", 400, "dify_workflow_failed", "ValueError: boom: kaboom"),
    ("27c", "workflows/run", "workflow", 400, "dify_workflow_failed", "ValueError: boom: kaboom"),
    ("34a", "chat-messages", "chat", 400, "completion_request_error", "fake upstream 503: model overloaded"),
    ("34e", "chat-messages", "advanced-chat", 400, "dify_workflow_failed", "model overloaded"),
    ("07b", "workflows/run", "workflow", 400, "dify_empty_stream", "required app input"),
]


@pytest.mark.parametrize(("rec", "path", "mode", "status", "code", "fragment"), FAILURE_CASES)
async def test_failed_run_is_an_error_chunk_mid_stream(bridge_for, rec, path, mode, status, code, fragment):
    replay = DifyReplay.of(rec, path, mode=mode)
    async with bridge_for(replay) as client:
        response = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
    assert response.status_code == 200
    chunks, _done, _ = parse_sse(response.text)
    errors = [c["error"] for c in chunks if "error" in c]
    assert len(errors) == 1 and chunks[-1].get("error")
    assert errors[0]["code"] == code
    assert fragment in errors[0]["message"]
    assert set(errors[0]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(("rec", "path", "mode", "status", "code", "fragment"), FAILURE_CASES)
async def test_failed_run_is_a_non_retryable_error_response(bridge_for, rec, path, mode, status, code, fragment):
    replay = DifyReplay.of(rec, path, mode=mode)
    async with bridge_for(replay) as client:
        response = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    assert response.status_code == status
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["code"] == code and fragment in error["message"]


HTTP_ERROR_CASES = [
    ("10", "chat-messages", "chat", 401, "invalid_api_key"),
    ("13b", "chat-messages", "advanced-chat", 400, "invalid_param"),
    ("13c", "chat-messages", "advanced-chat", 404, "conversation_not_found"),
    ("22d", "chat-messages", "advanced-chat", 400, "invalid_param"),
]


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(("rec", "path", "mode", "status", "code"), HTTP_ERROR_CASES)
async def test_dify_http_errors_keep_their_status(bridge_for, rec, path, mode, status, code, stream):
    replay = DifyReplay.of(rec, path, mode=mode)
    async with bridge_for(replay) as client:
        response = await client.post("/v1/chat/completions", json={**HI, "stream": stream}, headers=AUTH)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "replaykey" not in response.text
    assert response.headers["x-should-retry"] == "false"


async def test_unknown_conversation_hang_hits_the_first_event_deadline(bridge_for):
    # Rec. 13a: 200, one ping, then silence for 300 s.
    replay = DifyReplay.of("13a", mode="advanced-chat", hang=True)
    async with bridge_for(replay, first_event_timeout=0.5) as client:
        response = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "dify_first_event_timeout"


async def test_wrong_mode_with_a_fixed_mode_is_a_clear_400(bridge_for):
    replay = DifyReplay.of("08a", mode="advanced-chat")
    async with bridge_for(replay, models=[{"id": "o1", "mode": "advanced-chat"}]) as client:
        response = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "not_chat_app" and "mode" in error["message"]


async def test_auto_mode_falls_back_on_the_wrong_mode_error(bridge_for):
    # /info said advanced-chat (stale), but chat-messages answers not_chat_app (rec. 08a).
    from tests.support.recordings import load

    replay = DifyReplay(routes={"chat-messages": load("08a"), "workflows/run": load("05")})
    async with bridge_for(replay) as client:
        first = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
        second = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    assert first.json()["choices"][0]["message"]["content"] == "HELLO WORKFLOW\n14"
    assert second.status_code == 200
    paths = [r.url.path for r in replay.requests]
    # The learned mode is cached: the second request goes straight to workflows/run.
    assert paths.count("/v1/chat-messages") == 1 and paths.count("/v1/workflows/run") == 2
    assert replay.bodies("workflows/run")[0]["inputs"] == {"query": "hi"}


async def test_continued_conversation_hang_reports_the_shorter_deadline(bridge_for):
    # A pinned conversation that Dify does not run (rec. 13a) fails after
    # `conversation_check_timeout`, and the message names that deadline, not the longer one.
    import httpx

    from tests.support.recordings import load

    replay = DifyReplay(
        routes={
            "chat-messages": load("13a"),
            "messages": lambda request: httpx.Response(200, json={"limit": 1, "has_more": False, "data": []}),
        },
        hang=True,
    )
    async with bridge_for(replay, first_event_timeout=30, conversation_check_timeout=0.5) as client:
        response = await client.post(
            "/v1/chat/completions",
            json=HI,
            headers={**AUTH, "X-Dify-Conversation-Id": "4f4f71a6-b29a-41d1-99f6-c4ff3790d024"},
        )
    assert response.status_code == 504
    message = response.json()["error"]["message"]
    assert "within 0.5s" in message and "conversation may not exist" in message
