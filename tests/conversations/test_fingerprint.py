"""Normalisation of OpenAI messages and the fingerprint over them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from bridge.conversations import chat_key, fingerprint, normalise_message, normalise_messages

APP = "app-cat"
USER = "rec-user-1"

# The recorded first exchange with the Cat_LLM chatflow (recording 01).
HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a cat."},
    {"role": "user", "content": "Hello cat"},
    {"role": "assistant", "content": "喵"},
    {"role": "user", "content": "Second turn"},
]

DIFY_THINKING = (
    '<details style="color:gray;background-color: #f8f8f8;padding: 8px;border-radius: 4px;" open>'
    " <summary> Thinking... </summary>\nThe user greets me. Cats say meow.\n</details>"
)
OPEN_WEBUI_REASONING = (
    '<details type="reasoning" done="true" duration="2">\n'
    "<summary>Thought for 2 seconds</summary>\n> The user greets me.\n</details>\n"
)


def with_message(index: int, **changes: Any) -> list[dict[str, Any]]:
    messages = [dict(message) for message in HISTORY]
    messages[index].update(changes)
    return messages


def text_of(message: dict[str, Any]) -> str:
    return normalise_message(message)[1]


# --- normalisation ---------------------------------------------------------------------


def test_surrounding_whitespace_is_ignored() -> None:
    assert text_of({"role": "user", "content": "  \n Hello cat \t\n"}) == "Hello cat"


def test_inner_whitespace_is_kept() -> None:
    assert text_of({"role": "user", "content": "Hello  cat"}) == "Hello  cat"


def test_windows_line_endings_become_newlines() -> None:
    assert text_of({"role": "user", "content": "line one\r\nline two\rthree"}) == (
        "line one\nline two\nthree"
    )


def test_text_parts_are_joined_with_newlines() -> None:
    parts = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "cat"}]

    assert text_of({"role": "user", "content": parts}) == "Hello\ncat"


def test_a_single_text_part_equals_the_plain_string() -> None:
    as_parts = with_message(1, content=[{"type": "text", "text": "Hello cat"}])

    assert fingerprint(APP, USER, as_parts) == fingerprint(APP, USER, HISTORY)


def test_missing_or_null_content_is_empty_text() -> None:
    assert normalise_message({"role": "assistant", "content": None}) == ("assistant", "")
    assert normalise_message({"role": "assistant", "tool_calls": []}) == ("assistant", "")


def test_image_part_becomes_a_stable_marker_without_its_bytes() -> None:
    data_uri = "data:image/png;base64," + "iVBORw0KGgo" * 100
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": data_uri, "detail": "high"}},
        ],
    }

    text = text_of(message)

    assert text.startswith("What is this?\n[image:")
    assert "iVBORw0KGgo" not in text
    assert text == text_of(message)


def test_image_detail_does_not_change_the_marker() -> None:
    def image(detail: str) -> dict[str, Any]:
        part = {
            "type": "image_url",
            "image_url": {"url": "https://x.test/cat.png", "detail": detail},
        }
        return {"role": "user", "content": [part]}

    assert text_of(image("low")) == text_of(image("high"))


def test_image_url_given_as_a_bare_string_matches_the_object_form() -> None:
    url = "https://x.test/cat.png"
    as_object = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
    as_string = {"role": "user", "content": [{"type": "image_url", "image_url": url}]}

    assert text_of(as_object) == text_of(as_string)


def test_different_images_give_different_markers() -> None:
    def image(url: str) -> dict[str, Any]:
        return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}

    assert text_of(image("https://x.test/a.png")) != text_of(image("https://x.test/b.png"))


def test_file_and_audio_parts_become_markers() -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "file", "file": {"file_id": "file-123"}},
            {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        ],
    }

    file_marker, audio_marker = text_of(message).split("\n")

    assert file_marker.startswith("[file:")
    assert audio_marker.startswith("[audio:")


def test_developer_role_counts_as_system() -> None:
    as_developer = with_message(0, role="developer")

    assert fingerprint(APP, USER, as_developer) == fingerprint(APP, USER, HISTORY)


@pytest.mark.parametrize(
    "content",
    [
        "<think>The user greets me.</think>\n\n喵",
        "<thinking>\nThe user greets me.\n</thinking>喵",
        "<THINK>loud thoughts</THINK> 喵",
        f"{DIFY_THINKING}\n喵",
        f"{OPEN_WEBUI_REASONING}喵",
    ],
    ids=["think", "thinking", "upper-case", "dify-details", "open-webui-details"],
)
def test_reasoning_echoed_back_in_assistant_messages_is_removed(content: str) -> None:
    assert text_of({"role": "assistant", "content": content}) == "喵"


def test_unterminated_leading_think_block_is_removed() -> None:
    assert text_of({"role": "assistant", "content": "<think>still thinking when cut"}) == ""


def test_think_block_in_the_middle_is_removed_but_the_answer_around_it_stays() -> None:
    content = "Before.<think>aside</think> After."

    assert text_of({"role": "assistant", "content": content}) == "Before. After."


def test_details_block_that_is_not_reasoning_is_kept() -> None:
    content = "<details><summary>Sources</summary>doc-1</details>\n喵"

    assert text_of({"role": "assistant", "content": content}) == content


def test_user_text_with_think_tags_is_not_rewritten() -> None:
    content = "<think> is a tag; what does it do?"

    assert text_of({"role": "user", "content": content}) == content


def test_reasoning_content_and_name_are_ignored() -> None:
    decorated = with_message(2, reasoning_content="The user greets me.", name="cat")

    assert fingerprint(APP, USER, decorated) == fingerprint(APP, USER, HISTORY)


def test_tool_messages_keep_their_role_and_text() -> None:
    message = {"role": "tool", "tool_call_id": "call_1", "content": '{"weather": "sunny"}'}

    assert normalise_message(message) == ("tool", '{"weather": "sunny"}')


def test_normalise_messages_keeps_order_and_roles() -> None:
    assert normalise_messages(HISTORY) == [
        ("system", "You are a cat."),
        ("user", "Hello cat"),
        ("assistant", "喵"),
        ("user", "Second turn"),
    ]


# --- fingerprint -----------------------------------------------------------------------


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    digest = fingerprint(APP, USER, HISTORY)

    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_fingerprint_is_stable_across_releases() -> None:
    # Fingerprints outlive the process in SQLite and Redis: a change here orphans every
    # stored conversation, so it must come with a new version tag, deliberately.
    assert fingerprint(APP, USER, HISTORY) == (
        "61b6fa8effd385a3ae4567ce5bb73256fdfa102e08f5f6a6807ee85a1d6487bc"
    )


def test_fingerprint_is_sha256_of_the_compact_json_of_the_canonical_form() -> None:
    canonical = ["dify-bridge/v1", APP, USER, [list(pair) for pair in normalise_messages(HISTORY)]]
    encoded = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False).encode()

    assert fingerprint(APP, USER, HISTORY) == hashlib.sha256(encoded).hexdigest()


def test_echoed_reasoning_and_whitespace_give_the_same_fingerprint() -> None:
    echoed = with_message(2, content="<think>The user greets me.</think>\n 喵 \r\n")

    assert fingerprint(APP, USER, echoed) == fingerprint(APP, USER, HISTORY)


@pytest.mark.parametrize("index", [1, 3])
def test_changing_any_user_word_changes_the_fingerprint(index: int) -> None:
    content = HISTORY[index]["content"].replace(HISTORY[index]["content"].split()[0], "Goodbye")

    edited = with_message(index, content=content)

    assert fingerprint(APP, USER, edited) != fingerprint(APP, USER, HISTORY)


def test_changing_the_system_prompt_changes_the_fingerprint() -> None:
    edited = with_message(0, content="You are a dog.")

    assert fingerprint(APP, USER, edited) != fingerprint(APP, USER, HISTORY)


def test_changing_the_assistant_answer_changes_the_fingerprint() -> None:
    edited = with_message(2, content="喵喵")

    assert fingerprint(APP, USER, edited) != fingerprint(APP, USER, HISTORY)


def test_same_text_under_another_role_changes_the_fingerprint() -> None:
    edited = with_message(1, role="assistant")

    assert fingerprint(APP, USER, edited) != fingerprint(APP, USER, HISTORY)


def test_another_user_gets_another_fingerprint() -> None:
    assert fingerprint(APP, "rec-user-2", HISTORY) != fingerprint(APP, USER, HISTORY)


def test_another_app_gets_another_fingerprint() -> None:
    assert fingerprint("app-dog", USER, HISTORY) != fingerprint(APP, USER, HISTORY)


def test_message_boundaries_matter() -> None:
    merged = [{"role": "user", "content": "a\nb"}]
    split = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]

    assert fingerprint(APP, USER, merged) != fingerprint(APP, USER, split)


def test_chat_key_is_scoped_by_app_and_user() -> None:
    key = chat_key(APP, USER, "open-webui-chat-1")

    assert key == chat_key(APP, USER, "open-webui-chat-1")
    assert key != chat_key(APP, "rec-user-2", "open-webui-chat-1")
    assert key != chat_key("app-dog", USER, "open-webui-chat-1")
    assert key != chat_key(APP, USER, "open-webui-chat-2")
