"""openai-python's Responses API (`client.responses`) against the bridge and the emulator."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.dialects.conftest import app_runs
from tests.integration.conftest import BRIDGE_KEY

MODES = [
    ("o1", "hi", "喵"),  # advanced-chat (Cat_LLM), with flow steps as reasoning
    ("upper", "hello workflow", "HELLO WORKFLOW"),  # workflow
    ("echo-llm", "hello there", "Echo: hello there"),  # chat
    ("agent", "hello agent", "Echo: hello agent"),  # agent-chat
    ("completer", "complete me", "complete me"),  # completion
]


@pytest.mark.parametrize(("model", "text", "expected"), MODES)
def test_create_non_stream_for_every_mode(client, model, text, expected):
    response = client.responses.create(model=model, input=text)
    assert response.object == "response"
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.model == model
    assert expected in response.output_text
    assert response.output[-1].type == "message"
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


@pytest.mark.parametrize(("model", "text", "expected"), MODES)
def test_create_stream_yields_typed_events_for_every_mode(client, model, text, expected):
    events = list(client.responses.create(model=model, input=text, stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert isinstance(events[0], openai.types.responses.ResponseCreatedEvent)
    deltas = [e for e in events if isinstance(e, openai.types.responses.ResponseTextDeltaEvent)]
    streamed = "".join(e.delta for e in deltas)
    assert expected in streamed
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == streamed
    final = events[-1].response
    assert final.output_text == streamed
    assert final.usage is not None


@pytest.mark.parametrize(("model", "text", "expected"), MODES)
def test_stream_helper_builds_the_final_response(client, model, text, expected):
    with client.responses.stream(model=model, input=text) as stream:
        snapshots = [
            event.snapshot for event in stream if event.type == "response.output_text.delta"
        ]
        final = stream.get_final_response()
    assert expected in final.output_text
    assert snapshots and snapshots[-1] == final.output_text


def test_flow_steps_arrive_as_a_reasoning_item_with_summary_events(client):
    events = list(client.responses.create(model="o1", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[2:6] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        *types[5:6],
    ]
    reasoning = events[-1].response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text.strip()
    assert events[-1].response.output[1].type == "message"
    # The reasoning closes before the message opens: the SDK accepts no interleaving.
    assert types.index("response.reasoning_summary_text.done") < types.index(
        "response.content_part.added"
    )


def test_input_items_and_instructions_reach_the_app(client, journal):
    response = client.responses.create(
        model="echo-llm",
        instructions="Answer briefly.",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "what is two plus two"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # echoed back by agents: ignored
        ],
    )
    query = app_runs(journal())[-1]["json"]["query"]
    assert "Answer briefly." in query
    assert "what is two plus two" in query
    assert response.instructions == "Answer briefly."


def test_previous_response_id_continues_one_dify_conversation(client, journal):
    first = client.responses.create(model="o1", input="first question")
    second = client.responses.create(
        model="o1", input="second question", previous_response_id=first.id
    )
    third = client.responses.create(
        model="o1", input="third question", previous_response_id=second.id
    )
    assert third.previous_response_id == second.id
    runs = [entry["json"] for entry in app_runs(journal())]
    assert [run["query"] for run in runs] == ["first question", "second question", "third question"]
    conversation = runs[1]["conversation_id"]
    assert runs[0]["conversation_id"] == ""
    assert conversation and runs[2]["conversation_id"] == conversation


def test_previous_response_id_streamed_turns_continue_too(client, journal):
    with client.responses.stream(model="echo-llm", input="one") as stream:
        first = stream.get_final_response()
    with client.responses.stream(
        model="echo-llm", input="two", previous_response_id=first.id
    ) as stream:
        stream.get_final_response()
    runs = [entry["json"] for entry in app_runs(journal())]
    assert [run["query"] for run in runs] == ["one", "two"]
    assert runs[1]["conversation_id"]


def test_fork_from_turn_one_starts_a_new_conversation_carrying_its_history(client, journal):
    first = client.responses.create(model="echo-llm", input="alpha")
    second = client.responses.create(model="echo-llm", input="beta", previous_response_id=first.id)
    fork = client.responses.create(model="echo-llm", input="gamma", previous_response_id=first.id)
    runs = [entry["json"] for entry in app_runs(journal())]
    assert runs[1]["conversation_id"]  # turn 2 continued turn 1's conversation
    forked = runs[2]
    assert forked["conversation_id"] == ""
    assert "alpha" in forked["query"] and "Echo: alpha" in forked["query"]
    assert "beta" not in forked["query"]
    assert forked["query"].endswith("gamma")
    # And the fork is itself continuable, in its own new conversation.
    client.responses.create(model="echo-llm", input="delta", previous_response_id=fork.id)
    runs = [entry["json"] for entry in app_runs(journal())]
    assert runs[3]["query"] == "delta"
    assert runs[3]["conversation_id"] not in ("", runs[1]["conversation_id"])
    assert second.id != fork.id


def test_workflow_follow_up_carries_the_history(client, journal):
    first = client.responses.create(model="upper", input="one")
    client.responses.create(model="upper", input="two", previous_response_id=first.id)
    second_query = app_runs(journal())[-1]["json"]["inputs"]["query"]
    assert "one" in second_query and "ONE" in second_query and second_query.endswith("two")


def test_get_and_delete_a_stored_response(client):
    created = client.responses.create(model="echo-llm", input="keep me")
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id
    assert fetched.output_text == created.output_text
    assert fetched.status == "completed"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve(created.id)
    assert err.value.code == "response_not_found"


def test_unknown_ids_are_openai_shaped_404s(client, bridge_url):
    for call in (
        lambda: client.responses.retrieve("resp_nope"),
        lambda: client.responses.delete("resp_nope"),
        lambda: client.responses.create(model="o1", input="x", previous_response_id="resp_nope"),
    ):
        with pytest.raises(openai.NotFoundError) as err:
            call()
        assert err.value.code == "response_not_found"
        assert "resp_nope" in err.value.message
    body = httpx.get(
        f"{bridge_url}/v1/responses/resp_nope", headers={"Authorization": f"Bearer {BRIDGE_KEY}"}
    ).json()
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_store_false_is_not_kept(client):
    created = client.responses.create(model="echo-llm", input="forget me", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_failed_flow_stream_ends_with_response_failed_and_the_sdk_raises(client):
    seen = []
    with pytest.raises(openai.APIError) as err:
        for event in client.responses.create(model="fail-flow", input="kaboom", stream=True):
            seen.append(event)
    assert "boom: kaboom" in err.value.message
    assert seen[-1].type == "response.failed"
    assert seen[-1].response.status == "failed"
    assert "boom: kaboom" in seen[-1].response.error.message


def test_failed_flow_raises_in_the_stream_helper_and_non_stream(client):
    with (
        pytest.raises(openai.APIError, match="boom: kaboom"),
        client.responses.stream(model="fail-flow", input="kaboom") as stream,
    ):
        stream.get_final_response()
    with pytest.raises(openai.BadRequestError, match="boom: kaboom"):
        client.responses.create(model="fail-flow", input="kaboom")


def test_bad_requests_are_400s(client, bridge_url):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="o1", input=[])
    assert err.value.param == "input"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="o1", input=[{"role": "robot", "content": "x"}])
    assert err.value.param == "input[0].role"
    reply = httpx.post(
        f"{bridge_url}/v1/responses",
        content=b"{not json",
        headers={"Authorization": f"Bearer {BRIDGE_KEY}"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_async_client(bridge_url):
    import asyncio

    async def main() -> str:
        aclient = openai.AsyncOpenAI(base_url=f"{bridge_url}/v1", api_key=BRIDGE_KEY, max_retries=0)
        async with aclient.responses.stream(model="echo-llm", input="async hi") as stream:
            final = await stream.get_final_response()
        return final.output_text

    assert asyncio.run(main()) == "Echo: async hi"
