from __future__ import annotations

import pytest

from bridge.translate.think import ThinkSplitter


def split(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    content = "".join(t for kind, t in out if kind == "content")
    reasoning = "".join(t for kind, t in out if kind == "reasoning")
    return content, reasoning


@pytest.mark.parametrize(
    "pieces",
    [
        ["<think>plan</think>Answer"],
        ["<th", "ink>pl", "an</th", "ink>", "Answer"],
        ["<", "t", "h", "i", "n", "k", ">", "plan", "<", "/", "think>", "\n\nAnswer"],
    ],
)
def test_think_block_split_anywhere_goes_to_reasoning(pieces):
    assert split(pieces) == ("Answer", "plan")


def test_mid_answer_tags_as_in_recording_47a():
    assert split(["Echo:", " <think>I", " should", " greet</think>", " Hello", " there"]) == (
        "Echo:  Hello there", "I should greet")


def test_details_thinking_block_drops_its_summary():
    text = '<details style="color:gray" open> <summary> Thinking... </summary>deep thought</details>Hi'
    content, reasoning = split([text[:20], text[20:50], text[50:]])
    assert content == "Hi" and reasoning.strip() == "deep thought"


def test_plain_text_with_angle_brackets_is_untouched():
    assert split(["a < b and <b>bold</b>", " <thin"]) == ("a < b and <b>bold</b> <thin", "")


def test_unterminated_think_is_reasoning():
    assert split(["<think>still thinking"]) == ("", "still thinking")
