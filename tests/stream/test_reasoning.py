"""Reasoning per model option (off / reasoning_content / think) over recorded streams of
every app mode, stream and non-stream."""

from __future__ import annotations

import pytest

from tests.stream.conftest import AUTH, HI
from tests.support.replay import DifyReplay
from tests.support.sse import content_of, parse_sse, reasoning_of

# recording, Dify path, mode, answer, reasoning with the mode's default / reasoning_content
CASES = [
    ("01", "chat-messages", "advanced-chat", "喵", "Code…\n"),
    ("40", "chat-messages", "advanced-chat", "Items: - 0:ALPHA\n- 1:BETA\n- 2:GAMMA",
     "Make list…\nMake list done (0.1s)\nIteration: 3 items…\nIteration: item 1\n"
     "Iteration: item 2\nIteration: item 3\nIteration done (0.4s)\n"),
    ("05", "workflows/run", "workflow", "HELLO WORKFLOW\n14", "Upper…\n"),
    ("31e", "chat-messages", "agent-chat", "Echo: tool said: 2026-11-22 01:35:45",
     'Using current_time: {}\ncurrent_time returned: {"current_time": "2026-11-22 01:35:45"}\n'),
    ("30a", "chat-messages", "chat", "Echo: hello llm world", ""),
    ("32a", "completion-messages", "completion", "Echo: Answer this: complete me\n", ""),
]


def model(reasoning: str | None, moderation: str | None = None) -> list[dict]:
    options = {"reasoning": reasoning, "moderation": moderation}
    options = {k: v for k, v in options.items() if v}
    return [{"id": "o1", **options}] if options else []


async def ask(bridge_for, rec, path, mode, reasoning, *, stream, moderation=None):
    replay = DifyReplay.of(rec, path, mode=mode)
    async with bridge_for(replay, models=model(reasoning, moderation)) as client:
        return await client.post("/v1/chat/completions", json={**HI, "stream": stream}, headers=AUTH)


def assert_clean_chunks(chunks: list[dict]) -> None:
    for chunk in chunks[1:-1]:
        delta = chunk["choices"][0]["delta"]
        # LobeChat reads `content` first: a reasoning chunk has no content key at all.
        assert not ("reasoning_content" in delta and "content" in delta)
        assert delta and all(delta.values())
        # Cherry Studio trims each fragment: reasoning goes out one whole line per chunk.
        if "reasoning_content" in delta:
            assert delta["reasoning_content"].endswith("\n")
            assert delta["reasoning_content"].count("\n") == 1


@pytest.mark.parametrize(("rec", "path", "mode", "answer", "reasoning"), CASES)
@pytest.mark.parametrize("setting", [None, "reasoning_content"])
async def test_reasoning_content_streams_steps_as_whole_lines(bridge_for, rec, path, mode, answer, reasoning, setting):
    response = await ask(bridge_for, rec, path, mode, setting, stream=True)
    chunks, done, _ = parse_sse(response.text)
    assert done
    assert_clean_chunks(chunks)
    assert content_of(chunks) == answer
    assert reasoning_of(chunks) == reasoning


@pytest.mark.parametrize(("rec", "path", "mode", "answer", "reasoning"), CASES)
async def test_reasoning_off_sends_the_answer_only(bridge_for, rec, path, mode, answer, reasoning):
    streamed = await ask(bridge_for, rec, path, mode, "off", stream=True)
    chunks, _, _ = parse_sse(streamed.text)
    assert all("reasoning_content" not in c["choices"][0]["delta"] for c in chunks)
    assert content_of(chunks) == answer
    message = (await ask(bridge_for, rec, path, mode, "off", stream=False)).json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": answer}


@pytest.mark.parametrize(("rec", "path", "mode", "answer", "reasoning"), CASES)
async def test_think_format_puts_reasoning_in_a_think_block_before_the_answer(bridge_for, rec, path, mode, answer, reasoning):
    expected = f"<think>\n{reasoning}</think>\n\n{answer}" if reasoning else answer
    streamed = await ask(bridge_for, rec, path, mode, "think", stream=True)
    chunks, _, _ = parse_sse(streamed.text)
    assert content_of(chunks) == expected
    assert reasoning_of(chunks) == ""
    message = (await ask(bridge_for, rec, path, mode, "think", stream=False)).json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": expected}


# The app's own LLM thinking (rec. 47a chat, 47b chatflow `separated`, 47d chatflow `tagged`):
# Dify streams `<think>` inside the answer in every case; it joins the same reasoning channel.
THINK_CASES = [
    ("47a", "chat", "Echo:  Hello there", "I should greet\n"),
    ("47b", "advanced-chat", "Echo:  Hello there\n[reasoning_content: I should greet]", "LLM…\nI should greet\n"),
    ("47d", "advanced-chat", "Echo:  Hello there", "LLM…\nI should greet\n"),
]


@pytest.mark.parametrize(("rec", "mode", "answer", "reasoning"), THINK_CASES)
async def test_app_llm_thinking_joins_the_reasoning_channel(bridge_for, rec, mode, answer, reasoning):
    streamed = await ask(bridge_for, rec, "chat-messages", mode, "reasoning_content", stream=True)
    chunks, _, _ = parse_sse(streamed.text)
    assert_clean_chunks(chunks)
    assert content_of(chunks) == answer and "<think>" not in content_of(chunks)
    assert reasoning_of(chunks) == reasoning
    message = (await ask(bridge_for, rec, "chat-messages", mode, "reasoning_content", stream=False)).json()
    assert message["choices"][0]["message"]["reasoning_content"] == reasoning


@pytest.mark.parametrize(("rec", "mode", "answer", "reasoning"), THINK_CASES)
async def test_app_llm_thinking_is_dropped_when_reasoning_is_off(bridge_for, rec, mode, answer, reasoning):
    streamed = await ask(bridge_for, rec, "chat-messages", mode, "off", stream=True)
    chunks, _, _ = parse_sse(streamed.text)
    assert content_of(chunks) == answer
    assert "should greet" not in content_of(chunks).replace("[reasoning_content: I should greet]", "")


async def test_think_format_non_stream_moves_mid_answer_thinking_to_the_start(bridge_for):
    # 47a: the fake model writes `Echo: ` before its <think>. A stream cannot take back the
    # text already sent, so there the block stays where it came; the aggregate puts it first.
    # `replace`: the replay has no /parameters, and the default `hold` would keep the answer
    # back until the end (after the thinking), which is not the case under test.
    streamed = await ask(bridge_for, "47a", "chat-messages", "chat", "think", stream=True, moderation="replace")
    chunks, _, _ = parse_sse(streamed.text)
    assert content_of(chunks) == "Echo: <think>\nI should greet\n</think>\n\n Hello there"
    message = (await ask(bridge_for, "47a", "chat-messages", "chat", "think", stream=False)).json()
    assert message["choices"][0]["message"]["content"] == "<think>\nI should greet\n</think>\n\nEcho:  Hello there"


def test_reasoning_chunk_events_join_the_channel_in_whole_lines():
    # Newer Dify sends an LLM node's separated thinking as `reasoning_chunk` (dify-service-api.md);
    # it is the app's thinking, so it flows even after the answer started and with narration off.
    import json

    from bridge.dify.events import decode_event
    from bridge.translate.stream import ReasoningDelta, StreamTranslator

    def event(payload: dict):
        return decode_event("", json.dumps({"task_id": "t", **payload}))

    translator = StreamTranslator("advanced-chat", reasoning=False)
    items = []
    for payload in [
        {"event": "message", "answer": "Hi"},
        {"event": "reasoning_chunk", "data": {"reasoning": "first li"}},
        {"event": "reasoning_chunk", "data": {"reasoning": "ne\nsecond"}},
        {"event": "reasoning_chunk", "data": {"reasoning": "", "is_final": True}},
    ]:
        items += translator.feed(event(payload))
    assert [i.text for i in items if isinstance(i, ReasoningDelta)] == ["first line\n", "second\n"]
    off = StreamTranslator("advanced-chat", reasoning=False, thinking=False)
    assert off.feed(event({"event": "reasoning_chunk", "data": {"reasoning": "x\n"}})) == []
