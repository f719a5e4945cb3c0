"""ResponseBuilder (pure): output items → Responses events and the final Response."""

from __future__ import annotations

import msgspec

from bridge.errors import BridgeError
from bridge.openai.responses import ResponseCreateRequest
from bridge.openai.types import ChatCompletionRequest, ChatMessage, Usage
from bridge.translate.responses import MAX_HISTORY_CHARS, turn_history
from bridge.translate.responses_out import ResponseAggregator, ResponseBuilder, ResponseEncoder
from bridge.translate.stream import ContentDelta, ContentReplaced, Failed, Finished, ReasoningDelta

REQUEST = ResponseCreateRequest(model="o1", input="hi")
USAGE = Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7)


def events_of(items) -> list[dict]:
    encoder = ResponseEncoder(ResponseBuilder(REQUEST))
    frames = [encoder.start()] + [frame for item in items for frame in encoder.encode(item)]
    raw = b"".join(frames).decode()
    return [
        msgspec.json.decode(block.split("\ndata: ", 1)[1]) for block in raw.strip().split("\n\n")
    ]


def test_alternating_reasoning_and_text_keep_their_order_in_separate_items():
    events = events_of(
        [
            ReasoningDelta("step 1\n"),
            ContentDelta("a"),
            ReasoningDelta("step 2\n"),
            ContentDelta("b"),
            Finished("stop", USAGE),
        ]
    )
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == [
        "reasoning",
        "message",
        "reasoning",
        "message",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert final["usage"]["input_tokens"] == 5 and final["usage"]["output_tokens"] == 2
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    assert added == [0, 1, 2, 3]


def test_a_run_without_text_still_ends_with_an_empty_message():
    final = events_of([ReasoningDelta("thinking\n"), Finished("stop", None)])[-1]["response"]
    assert final["output"][-1]["type"] == "message"
    assert final["output"][-1]["content"][0]["text"] == ""
    assert final["usage"]["total_tokens"] == 0


def test_a_stream_appends_the_moderation_replacement_and_non_stream_replaces():
    streamed = events_of(
        [ContentDelta("bad words"), ContentReplaced("[removed]"), Finished("stop", None)]
    )
    assert streamed[-1]["response"]["output"][0]["content"][0]["text"] == "bad words\n\n[removed]"
    aggregator = ResponseAggregator(ResponseBuilder(REQUEST, replace_in_place=True))
    for item in (ContentDelta("bad words"), ContentReplaced("[removed]"), Finished("stop", None)):
        aggregator.add(item)
    assert [part.text for part in aggregator.result().output[0].content] == ["[removed]"]


def test_failure_closes_the_open_item_then_failed_then_error():
    error = BridgeError(400, "The Dify app failed: boom", code="dify_workflow_failed")
    events = events_of([ContentDelta("par"), Failed(error)])
    assert [e["type"] for e in events[-3:]] == [
        "response.output_item.done",
        "response.failed",
        "error",
    ]
    assert events[-3]["item"]["status"] == "incomplete"
    assert events[-2]["response"]["error"] == {"code": "server_error", "message": error.message}
    assert events[-1]["code"] == "dify_workflow_failed"
    assert events[-1]["error"]["message"] == error.message


def test_stored_history_is_bounded_oldest_first():
    long = "x" * (MAX_HISTORY_CHARS // 2)
    chat = ChatCompletionRequest(
        model="o1",
        messages=[
            ChatMessage(role="system", content="not kept"),
            ChatMessage(role="user", content=long),
            ChatMessage(role="assistant", content=long),
            ChatMessage(role="user", content="latest"),
        ],
    )
    history = turn_history(chat, "answer")
    assert history == [("assistant", long), ("user", "latest"), ("assistant", "answer")]
    assert turn_history(chat, None)[-1] == ("user", "latest")
