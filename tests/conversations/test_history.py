"""The template that carries earlier turns inside one Dify query."""

from __future__ import annotations

from bridge.conversations import carries_history, render_history


def test_earlier_turns_come_first_and_the_new_message_last() -> None:
    query = render_history(
        [
            ("system", "You are a cat."),
            ("user", "Hello cat"),
            ("assistant", "喵"),
            ("user", "Second turn"),
        ]
    )

    assert query == (
        "[Conversation so far]\n"
        "System: You are a cat.\n"
        "\n"
        "User: Hello cat\n"
        "\n"
        "Assistant: 喵\n"
        "\n"
        "[New message]\n"
        "Second turn"
    )


def test_a_lone_user_message_is_sent_as_it_is() -> None:
    assert render_history([("user", "Hello cat")]) == "Hello cat"
    assert not carries_history([("user", "Hello cat")])


def test_multi_line_messages_stay_intact() -> None:
    query = render_history([("user", "line one\nline two"), ("assistant", "喵"), ("user", "ok")])

    assert "User: line one\nline two\n\nAssistant: 喵" in query


def test_no_user_message_is_ever_dropped_even_an_empty_one() -> None:
    messages = [("user", "first"), ("user", ""), ("assistant", "喵"), ("user", "third")]

    query = render_history(messages)

    assert query.count("User:") == 2
    assert "User: first" in query
    assert "User: \n" in query
    assert query.endswith("[New message]\nthird")


def test_empty_assistant_turns_are_left_out() -> None:
    query = render_history([("user", "weather?"), ("assistant", ""), ("user", "well?")])

    assert "Assistant" not in query


def test_without_a_final_user_message_the_history_ends_with_the_last_message() -> None:
    query = render_history([("user", "Write a haiku"), ("assistant", "Autumn moon")])

    assert query == "[Conversation so far]\nUser: Write a haiku\n\nAssistant: Autumn moon"
    assert carries_history([("user", "Write a haiku"), ("assistant", "Autumn moon")])


def test_tool_results_are_labelled_as_tool() -> None:
    query = render_history([("user", "weather?"), ("tool", "sunny")])

    assert query.endswith("Tool: sunny")


def test_no_messages_render_as_an_empty_query() -> None:
    assert render_history([]) == ""
