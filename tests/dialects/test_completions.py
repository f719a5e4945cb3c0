"""Legacy `POST /v1/completions` with openai-python, and llama-index `OpenAILike`'s defaults."""

from __future__ import annotations

import openai
import pytest

from tests.dialects.conftest import app_runs

MODES = [
    ("o1", "hi", "喵"),
    ("upper", "hello workflow", "HELLO WORKFLOW"),
    ("echo-llm", "hello there", "Echo: hello there"),
    ("completer", "complete me", "complete me"),
]


@pytest.mark.parametrize(("model", "prompt", "expected"), MODES)
def test_non_stream(client, model, prompt, expected):
    completion = client.completions.create(model=model, prompt=prompt)
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    choice = completion.choices[0]
    assert expected in choice.text
    assert choice.finish_reason == "stop"
    assert choice.index == 0
    assert completion.usage is not None


@pytest.mark.parametrize(("model", "prompt", "expected"), MODES)
def test_stream(client, model, prompt, expected):
    chunks = list(
        client.completions.create(
            model=model, prompt=prompt, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert expected in text
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_reasoning_is_left_out_of_the_text(client):
    completion = client.completions.create(model="o1", prompt="hi")
    assert completion.choices[0].text == "喵"  # the flow's steps are not part of a completion


def test_a_list_of_one_prompt_is_the_prompt(client, journal):
    client.completions.create(model="echo-llm", prompt=["only this"])
    assert app_runs(journal())[-1]["json"]["query"] == "only this"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n": 2}, "n"),
        ({"best_of": 3}, "best_of"),
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"suffix": "tail"}, "suffix"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_unsupported_options_are_clear_400s(client, journal, kwargs, param):
    arguments = {"model": "echo-llm", "prompt": "hi", **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(**arguments)
    assert err.value.param == param
    assert err.value.type == "invalid_request_error"
    assert app_runs(journal()) == []


def test_llama_index_openai_like_default_request(client):
    """What llama-index's `OpenAILike` sends by default (`is_chat_model=False`): the legacy
    endpoint, `temperature` 0.1, `max_tokens` unset, `logprobs` absent — and its streaming
    variant. (llama-index itself is not installed: it pins openai<3 and pulls ~50 packages.)"""
    completion = client.completions.create(
        model="echo-llm", prompt="llama says hi", temperature=0.1
    )
    assert completion.choices[0].text == "Echo: llama says hi"
    streamed = "".join(
        chunk.choices[0].text
        for chunk in client.completions.create(
            model="echo-llm", prompt="llama streams", temperature=0.1, stream=True
        )
        if chunk.choices
    )
    assert streamed == "Echo: llama streams"
