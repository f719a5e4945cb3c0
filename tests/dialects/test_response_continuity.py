"""Responses API continuity as OpenAI defines it (issue 17, item 4), on every response store.

- A stored response belongs to the key that created it, not to `user`: a follow-up without
  `user` continues the same Dify conversation as the Dify user stored with the response;
  another key gets 404 for `previous_response_id`, `GET` and `DELETE`.
- `item_reference` inputs are resolved from the store (the answer text they name), for the
  owning key only; an unknown or foreign id is a 404 naming it, with param `input`. The
  Vercel AI SDK (v6 and v5) sends its previous answer that way: its second turn continues the
  same Dify conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.dialects.conftest import app_runs
from tests.dialects.node_sdk import run_node
from tests.integration.conftest import BRIDGE_KEY, make_bridge
from tests.support.redis_server import RedisServer, redis_server_binary, start_redis_server
from tests.support.servers import serve_in_thread

OTHER_KEY = "sk-bridge-other-key"
APP_KEY = "app-llmchatflow"  # passthrough: the client's key is the Dify app key
OTHER_APP_KEY = "app-echochat"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (CI installs it: apt-get install redis-server)")
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["memory", "sqlite", "redis"])
def bridge(
    request: pytest.FixtureRequest, emulator_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A bridge with two bridge keys and passthrough, on each response store in turn."""
    if request.param == "memory":
        store = "memory://"
    elif request.param == "sqlite":
        store = f"sqlite:///{tmp_path_factory.mktemp('continuity')}/conversations.db"
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        import redis

        redis.Redis.from_url(server.url).flushdb()
        store = server.url
    app = make_bridge(emulator_url, store=store, api_keys=[BRIDGE_KEY, OTHER_KEY])
    with serve_in_thread(app) as url:
        yield url


def client_for(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture
def owner(bridge: str) -> openai.OpenAI:
    return client_for(bridge, BRIDGE_KEY)


@pytest.fixture
def stranger(bridge: str) -> openai.OpenAI:
    return client_for(bridge, OTHER_KEY)


def create(client: openai.OpenAI, **params: Any) -> tuple[Any, str | None]:
    """The Response and the Dify conversation it came from (the bridge's header)."""
    raw = client.responses.with_raw_response.create(**params)
    return raw.parse(), raw.headers.get("x-dify-conversation-id")


def runs(journal) -> list[dict[str, Any]]:
    return [entry["json"] for entry in app_runs(journal())]


def user_text(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}


def reference(item_id: str) -> dict[str, Any]:
    return {"type": "item_reference", "id": item_id}


# ---------------------------------------------------------------- previous_response_id


def test_follow_up_without_user_continues_as_the_stored_user(owner, journal):
    first, conversation = create(owner, model="echo-llm", input="one", user="x")
    second, second_conversation = create(
        owner, model="echo-llm", input="two", previous_response_id=first.id
    )
    _, third_conversation = create(
        owner, model="echo-llm", input="three", previous_response_id=second.id
    )
    sent = runs(journal)
    assert [run["query"] for run in sent] == ["one", "two", "three"]
    assert [run["user"] for run in sent] == ["x", "x", "x"]
    assert conversation
    assert [run["conversation_id"] for run in sent] == ["", conversation, conversation]
    assert second_conversation == third_conversation == conversation
    assert second.output_text == "Echo: two"


def test_streamed_follow_up_without_user_continues_too(owner, journal):
    with owner.responses.stream(model="echo-llm", input="one", user="y") as stream:
        first = stream.get_final_response()
    with owner.responses.stream(
        model="echo-llm", input="two", previous_response_id=first.id
    ) as stream:
        assert stream.get_final_response().output_text == "Echo: two"
    sent = runs(journal)
    assert [run["user"] for run in sent] == ["y", "y"]
    assert sent[1]["query"] == "two"
    assert sent[1]["conversation_id"]


def test_follow_up_naming_another_user_forks_as_that_user(owner, journal):
    # Same key, so the response is readable; but the Dify conversation is alice's.
    first, conversation = create(owner, model="echo-llm", input="alpha", user="alice")
    second, fork = create(
        owner, model="echo-llm", input="beta", user="bob", previous_response_id=first.id
    )
    create(owner, model="echo-llm", input="gamma", previous_response_id=second.id)
    sent = runs(journal)
    assert sent[1]["user"] == "bob"
    assert sent[1]["conversation_id"] == ""
    assert "Echo: alpha" in sent[1]["query"]
    assert sent[1]["query"].endswith("beta")
    assert fork and fork != conversation
    # The fork is bob's and continues as bob without naming him.
    assert (sent[2]["query"], sent[2]["user"], sent[2]["conversation_id"]) == ("gamma", "bob", fork)


def test_follow_up_on_another_model_forks_with_the_history(owner, journal):
    first, _ = create(owner, model="echo-llm", input="alpha")
    second, _ = create(owner, model="agent", input="beta", previous_response_id=first.id)
    sent = runs(journal)
    assert sent[1]["conversation_id"] == ""
    assert "Echo: alpha" in sent[1]["query"]
    assert second.output_text.endswith("beta")


def test_another_key_gets_404_for_follow_up_get_and_delete(owner, stranger, journal):
    created = owner.responses.create(model="echo-llm", input="mine", user="x")
    attempts = {
        "previous_response_id": lambda: stranger.responses.create(
            model="echo-llm", input="x", user="x", previous_response_id=created.id
        ),
        None: lambda: stranger.responses.retrieve(created.id),
    }
    for param, call in attempts.items():
        with pytest.raises(openai.NotFoundError) as err:
            call()
        assert err.value.code == "response_not_found"
        assert created.id in err.value.message
        assert err.value.param == param
    with pytest.raises(openai.NotFoundError):
        stranger.responses.delete(created.id)
    # Nothing ran, and the owner still has it (the stranger's DELETE deleted nothing).
    assert len(runs(journal)) == 1
    assert owner.responses.retrieve(created.id).output_text == "Echo: mine"
    owner.responses.create(model="echo-llm", input="again", previous_response_id=created.id)
    owner.responses.delete(created.id)


def test_a_passthrough_app_key_owns_what_it_stores(bridge, journal):
    app = client_for(bridge, APP_KEY)
    created, conversation = create(app, model="anything", input="pass")
    _, continued = create(app, model="anything", input="again", previous_response_id=created.id)
    assert continued == conversation
    assert runs(journal)[1]["query"] == "again"
    # A bridge key is another key, and so is another app's key.
    others = {BRIDGE_KEY: "echo-llm", OTHER_APP_KEY: "anything"}
    for key, model in others.items():
        client = client_for(bridge, key)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model=model, input="x", previous_response_id=created.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(created.id)
    assert len(runs(journal)) == 2


def test_an_open_bridge_scopes_responses_to_the_key_presented(emulator_url):
    # No bridge keys: anyone may call, and the key a caller presents (or none) is its scope.
    with serve_in_thread(make_bridge(emulator_url, api_keys=[], passthrough=False)) as url:
        mine = client_for(url, "sk-anything")
        created = mine.responses.create(model="echo-llm", input="hi")
        assert mine.responses.retrieve(created.id).id == created.id
        with pytest.raises(openai.NotFoundError):
            client_for(url, "sk-something-else").responses.retrieve(created.id)
        assert httpx.get(f"{url}/v1/responses/{created.id}").status_code == 404
        keyless = httpx.post(
            f"{url}/v1/responses", json={"model": "echo-llm", "input": "no key"}
        ).json()
        assert httpx.get(f"{url}/v1/responses/{keyless['id']}").status_code == 200
        with pytest.raises(openai.NotFoundError):
            mine.responses.retrieve(keyless["id"])


# ---------------------------------------------------------------- item_reference


def test_item_references_continue_the_dify_conversation(owner, journal):
    first, conversation = create(owner, model="o1", input="first question")
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "message"]
    second, continued = create(
        owner,
        model="o1",
        input=[
            user_text("first question"),
            *(reference(item.id) for item in first.output),
            user_text("second question"),
        ],
    )
    sent = runs(journal)
    assert sent[1]["query"] == "second question"
    assert sent[1]["conversation_id"] == conversation
    assert continued == conversation
    assert second.output_text == "喵"


def test_a_referenced_answer_is_carried_in_a_new_conversation(owner, journal):
    first, _ = create(owner, model="echo-llm", input="alpha", user="alice")
    message = first.output[-1]
    # As bob, nothing continues: the query carries the history, with the referenced answer
    # (`type` may be left out of a reference).
    create(
        owner,
        model="echo-llm",
        user="bob",
        input=[user_text("alpha"), {"id": message.id}, user_text("beta")],
    )
    query = runs(journal)[1]["query"]
    assert "alpha" in query and "Echo: alpha" in query and query.endswith("beta")


def test_unknown_and_foreign_item_references_are_404s_naming_the_id(bridge, owner, journal):
    mine = owner.responses.create(model="echo-llm", input="mine")
    foreign = mine.output[-1].id
    for key, item_id in ((BRIDGE_KEY, "msg_nope"), (OTHER_KEY, foreign), (BRIDGE_KEY, "x" * 999)):
        reply = httpx.post(
            f"{bridge}/v1/responses",
            json={
                "model": "echo-llm",
                "input": [user_text("hi"), reference(item_id), user_text("again")],
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert reply.status_code == 404
        error = reply.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == "input"
        assert error["code"] == "item_not_found"
        assert item_id[:200] in error["message"]
    with pytest.raises(openai.NotFoundError) as err:
        client_for(bridge, OTHER_KEY).responses.create(
            model="echo-llm", input=[user_text("hi"), reference(foreign), user_text("x")]
        )
    assert foreign in err.value.message
    assert len(runs(journal)) == 1  # none of them reached Dify


def test_items_of_a_deleted_response_are_gone(owner):
    created = owner.responses.create(model="echo-llm", input="forget me")
    owner.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as err:
        owner.responses.create(
            model="echo-llm", input=[user_text("forget me"), reference(created.output[-1].id)]
        )
    assert err.value.param == "input"


def test_an_item_reference_without_an_id_is_a_400(owner):
    with pytest.raises(openai.BadRequestError) as err:
        owner.responses.create(
            model="echo-llm", input=[user_text("hi"), {"type": "item_reference"}]
        )
    assert err.value.param == "input[1].id"


# ---------------------------------------------------------------- the real AI SDK


@pytest.mark.parametrize("major", ["6", "5"])
def test_vercel_ai_sdk_second_turn_continues_the_dify_conversation(bridge, journal, major):
    summary = run_node("ai_sdk_turns.mjs", bridge, BRIDGE_KEY, AI_SDK=major)
    conversations = []
    for scenario in ("generate", "stream"):
        one, two = summary[scenario]
        assert one["text"] == two["text"] == "喵"
        # What the SDK sent: the previous answer as references to the bridge's item ids.
        references = [item["id"] for item in two["body"]["input"] if "role" not in item]
        assert [item_id.split("_")[0] for item_id in references] == ["rs", "msg"]
        assert "previous_response_id" not in two["body"]
        assert one["conversation"] and two["conversation"] == one["conversation"]
        conversations.append(one["conversation"])
    sent = runs(journal)
    assert [run["query"] for run in sent] == [
        "first question",
        "second question",
        "first streamed question",
        "second streamed question",
    ]
    assert [run["conversation_id"] for run in sent] == [
        "",
        conversations[0],
        "",
        conversations[1],
    ]
