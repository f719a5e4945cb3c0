"""One OpenAI chat ↔ one Dify conversation, through the official openai SDK (in-thread bridge)."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from tests.conversations_e2e.conftest import (
    BRIDGE_KEY,
    CONVERSATION_HEADER,
    Chat,
    previous_query,
    send,
)


def test_a_five_turn_chat_is_one_dify_conversation_that_receives_only_each_new_message(
    client, emulator, user
):
    chat = Chat(client, user)
    replies = [chat.say(f"turn {n} from the client", stream=n % 2 == 0) for n in range(1, 6)]

    sent = emulator.journal(user)
    assert [body["query"] for body in sent] == [f"turn {n} from the client" for n in range(1, 6)]
    conversation_id = replies[0].conversation_id
    assert conversation_id
    assert not sent[0].get("conversation_id")
    assert [body["conversation_id"] for body in sent[1:]] == [conversation_id] * 4
    assert [reply.conversation_id for reply in replies] == [conversation_id] * 5
    # Dify's own memory: each answer shows the previous turn's query from the conversation.
    assert [previous_query(reply.answer) for reply in replies] == [
        "",
        *(f"turn {n} from the client" for n in range(1, 5)),
    ]


def test_whitespace_think_blocks_and_text_parts_echoed_back_still_continue_the_conversation(
    client, emulator, user
):
    chat = Chat(client, user)
    first = chat.say("hello there")
    # The client re-serialises the assistant turn: padding, CRLF and a <think> block.
    chat.messages[-1]["content"] = (
        "<think>I should echo.</think>\n  " + first.answer.replace("\n", "\r\n") + "  \n"
    )
    chat.messages[-1]["reasoning_content"] = "reasoning the client echoed back"
    second = chat.say("second message", stream=True)
    # Next: the assistant text as a list of text parts (split at its line break) and the
    # user's own message padded.
    head, _, tail = second.answer.partition("\n")
    chat.messages[-1]["content"] = [{"type": "text", "text": head}, {"type": "text", "text": tail}]
    chat.messages[-2]["content"] = "  second message\n"
    third = chat.say("third message")

    sent = emulator.journal(user)
    assert [body["query"] for body in sent] == ["hello there", "second message", "third message"]
    assert [body["conversation_id"] for body in sent[1:]] == [first.conversation_id] * 2
    assert second.conversation_id == third.conversation_id == first.conversation_id
    assert previous_query(third.answer) == "second message"


def test_an_edited_earlier_message_starts_a_new_conversation_that_carries_the_whole_history(
    client, emulator, user
):
    chat = Chat(client, user)
    original = [chat.say(text) for text in ("my name is Ada", "I like tea", "what do I like?")]
    edited = [dict(message) for message in chat.messages[:4]]
    edited[0]["content"] = "my name is Grace"
    edited.append({"role": "user", "content": "and my name?"})

    reply = send(client, edited, user=user)

    body = emulator.journal(user)[-1]
    assert not body.get("conversation_id")
    for text in ("my name is Grace", "I like tea", "and my name?"):
        assert text in body["query"]
    assert "[Conversation so far]" in body["query"]
    assert reply.conversation_id and reply.conversation_id != original[0].conversation_id
    assert previous_query(reply.answer) == ""


def test_regenerating_an_answer_forks_a_new_conversation_and_the_new_branch_continues(
    client, emulator, user
):
    chat = Chat(client, user)
    first = chat.say("one")
    chat.say("two")
    chat.say("three")  # the conversation moved on past "two"
    branch = chat.messages[:4]  # the client regenerates the answer to "two"

    regenerated = send(client, branch[:3], user=user)

    fork = emulator.journal(user)[-1]
    assert not fork.get("conversation_id")
    assert "one" in fork["query"] and fork["query"].endswith("[New message]\ntwo")
    assert regenerated.conversation_id not in (None, first.conversation_id)

    branch = [*branch[:3], {"role": "assistant", "content": regenerated.answer}]
    branch.append({"role": "user", "content": "four on the new branch"})
    follow_up = send(client, branch, user=user)

    body = emulator.journal(user)[-1]
    assert body["query"] == "four on the new branch"
    assert body["conversation_id"] == regenerated.conversation_id
    assert follow_up.conversation_id == regenerated.conversation_id
    assert previous_query(follow_up.answer) == fork["query"]

    # The old branch is untouched: continuing it still continues the first conversation.
    old_branch = chat.say("four on the old branch")
    body = emulator.journal(user)[-1]
    assert (body["conversation_id"], body["query"]) == (
        first.conversation_id,
        "four on the old branch",
    )
    assert old_branch.conversation_id == first.conversation_id
    assert previous_query(old_branch.answer) == "three"


def test_a_conversation_pinned_by_header_or_body_is_continued_with_the_new_message(
    client, emulator, user
):
    chat = Chat(client, user)
    started = chat.say("remember me")
    conversation_id = started.conversation_id

    by_header = send(
        client,
        [{"role": "user", "content": "pinned by header"}],
        user=user,
        extra_headers={CONVERSATION_HEADER: conversation_id},
    )
    by_body = send(
        client,
        [{"role": "user", "content": "pinned by body"}],
        user=user,
        stream=True,
        extra_body={"conversation_id": conversation_id},
    )

    sent = emulator.journal(user)[-2:]
    assert [(b["query"], b["conversation_id"]) for b in sent] == [
        ("pinned by header", conversation_id),
        ("pinned by body", conversation_id),
    ]
    assert by_header.conversation_id == by_body.conversation_id == conversation_id
    assert previous_query(by_header.answer) == "remember me"
    assert previous_query(by_body.answer) == "pinned by header"


def test_a_pinned_id_that_is_not_a_uuid_is_a_bad_request(client, user):
    with pytest.raises(openai.BadRequestError) as raised:
        send(
            client,
            [{"role": "user", "content": "hi"}],
            user=user,
            extra_headers={CONVERSATION_HEADER: "not-a-uuid"},
        )
    assert raised.value.status_code == 400


def test_pinning_another_users_conversation_is_not_found(client, emulator, user):
    owner = Chat(client, user)
    conversation_id = owner.say("private").conversation_id
    for pin in (
        {"extra_headers": {CONVERSATION_HEADER: conversation_id}},
        {"extra_body": {"conversation_id": conversation_id}},
    ):
        with pytest.raises(openai.NotFoundError):
            send(client, [{"role": "user", "content": "let me in"}], user=user + "-other", **pin)
    assert [b["query"] for b in emulator.journal(user + "-other")] == []


def test_an_unknown_pinned_conversation_is_not_found_without_hanging(client, user):
    with pytest.raises(openai.NotFoundError):
        send(
            client,
            [{"role": "user", "content": "anyone there?"}],
            user=user,
            stream=True,
            extra_headers={CONVERSATION_HEADER: str(uuid.uuid4())},
        )


def test_one_conversation_key_is_one_dify_conversation_even_when_only_the_last_message_is_sent(
    client, emulator, user
):
    key_a, key_b = f"chat-a-{user}", f"chat-b-{user}"
    replies = []
    for key, text in [(key_a, "a1"), (key_b, "b1"), (key_a, "a2"), (key_b, "b2"), (key_a, "a3")]:
        replies.append(
            send(
                client,
                [{"role": "user", "content": text}],
                user=user,
                extra_headers={"X-Conversation-Key": key},
            )
        )

    ids = {
        text: body.get("conversation_id")
        for text, body in zip(["a1", "b1", "a2", "b2", "a3"], emulator.journal(user), strict=True)
    }
    conversation_a, conversation_b = replies[0].conversation_id, replies[1].conversation_id
    assert conversation_a and conversation_b and conversation_a != conversation_b
    assert not ids["a1"] and not ids["b1"]
    assert ids["a2"] == ids["a3"] == conversation_a
    assert ids["b2"] == conversation_b
    assert [previous_query(r.answer) for r in replies] == ["", "", "a1", "b1", "a2"]


def test_a_conversation_key_with_the_full_history_continues_too(client, emulator, user):
    chat = Chat(client, user)
    headers = {"X-Conversation-Key": f"webui-{user}"}
    first = chat.say("hello", extra_headers=headers)
    second = chat.say("again", extra_headers=headers)
    assert second.conversation_id == first.conversation_id
    assert emulator.journal(user)[-1]["query"] == "again"


@pytest.mark.parametrize(
    ("task", "headers"),
    [
        # A task the bridge does not answer itself (titles, tags… are: tests/dialects).
        ("### Task:\nWrite an image prompt for the chat.", {}),
        ("Suggest three follow-up questions.", {"X-Bridge-Task": "follow_up_generation"}),
    ],
    ids=["task-prompt", "task-header"],
)
def test_a_background_task_neither_creates_nor_advances_the_users_conversation(
    client, emulator, user, task, headers
):
    chat = Chat(client, user)
    first = chat.say("what is a cat?")
    background = [*chat.messages, {"role": "user", "content": task}]

    send(client, background, user=user, extra_headers=headers)

    body = emulator.journal(user)[-1]
    assert not body.get("conversation_id")
    assert body["auto_generate_name"] is False
    next_turn = chat.say("and a dog?")
    last = emulator.journal(user)[-1]
    assert last["query"] == "and a dog?"
    assert last["conversation_id"] == first.conversation_id == next_turn.conversation_id
    assert previous_query(next_turn.answer) == "what is a cat?"


def test_history_flatten_carries_the_history_into_a_new_conversation_every_turn(
    client, emulator, user
):
    chat = Chat(client, user, model="echo-flatten")
    replies = [chat.say(text) for text in ("first", "second", "third")]

    sent = emulator.journal(user)
    assert all(not body.get("conversation_id") for body in sent)
    assert sent[0]["query"] == "first"
    assert "User: first" in sent[2]["query"] and "User: second" in sent[2]["query"]
    assert sent[2]["query"].endswith("[New message]\nthird")
    assert len({r.conversation_id for r in replies}) == 3
    assert all(previous_query(r.answer) == "" for r in replies)


def test_history_last_sends_only_the_last_message_in_a_new_conversation(client, emulator, user):
    chat = Chat(client, user, model="echo-last")
    replies = [chat.say(text) for text in ("first", "second", "third")]

    sent = emulator.journal(user)
    assert [body["query"] for body in sent] == ["first", "second", "third"]
    assert all(not body.get("conversation_id") for body in sent)
    assert all(previous_query(r.answer) == "" for r in replies)


def test_the_conversation_header_comes_back_on_plain_http_streams_too(bridge_url, user):
    response = httpx.post(
        f"{bridge_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {BRIDGE_KEY}"},
        json={
            "model": "echo",
            "user": user,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert uuid.UUID(response.headers[CONVERSATION_HEADER])
