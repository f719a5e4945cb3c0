"""A fake chat model that behaves like the recordings' `fakeai/fake-gpt`, for any provider.

It answers `Echo: <last user text>`, one word per chunk, then an empty chunk (30a). Magic words
in that text: `SLOW` (one chunk per second, 35a), `WAIT15` (a wait before the first chunk, 36a;
its length is configurable so tests stay fast), `FAILLLM` (the model raises, 34*).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

FAIL_MESSAGE = "fake upstream 503: model overloaded"


class ModelError(Exception):
    """InvokeError of the model: `completion_request_error` / 400 in Dify's mapping (34a/34b)."""


@dataclass
class FakeModelTiming:
    slow_interval: float = 1.0
    wait_before_first: float = 15.0


def echo_chunks(text: str) -> list[str]:
    words = ("Echo: " + text).split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


async def stream_answer(text: str, timing: FakeModelTiming) -> AsyncIterator[str]:
    if "FAILLLM" in text:
        raise ModelError(FAIL_MESSAGE)
    if "WAIT15" in text:
        await asyncio.sleep(timing.wait_before_first)
    slow = "SLOW" in text
    for chunk in echo_chunks(text):
        if slow:
            await asyncio.sleep(timing.slow_interval)
        yield chunk
    yield ""


def count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def prompt_tokens(texts: list[str]) -> int:
    """The fake's prompt count: space-separated pieces of every prompt message, history and
    system prompt included (30a 11, 45a 10 with a trailing space, 45c 21 on turn 3)."""
    return sum(len(text.split(" ")) for text in texts if text)


def usage(
    prompt_tokens: int,
    completion_tokens: int,
    latency: float,
    zero: bool = False,
    time_to_first_token: float | None = None,
    time_to_generate: float | None = None,
) -> dict:
    """`metadata.usage` with the fake's prices (30a): decimal strings, 0.001 / 0.002 per token."""
    if zero:  # a chatflow without model usage (01): the latency shows as time to first token
        return blank_usage(0.0, round(latency, 3), 0.0)
    prompt_price = Decimal("0.001") * prompt_tokens / 1000
    completion_price = Decimal("0.002") * completion_tokens / 1000
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001",
        "prompt_price": _price(prompt_price),
        "completion_tokens": completion_tokens,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": _price(completion_price),
        "total_tokens": prompt_tokens + completion_tokens,
        "total_price": _price(prompt_price + completion_price),
        "currency": "USD",
        "latency": latency,
        # chat apps report null (30a); an LLM node in a chatflow reports both (33a)
        "time_to_first_token": time_to_first_token,
        "time_to_generate": time_to_generate,
    }


def stopped_usage(latency: float) -> dict:
    """A stopped chat/completion stream reports no tokens, at the model's prices (35a, 35c)."""
    stopped = usage(0, 0, latency)
    stopped.update(prompt_price="0E-7", completion_price="0E-7", total_price="0E-7")
    return stopped


def blank_usage(
    latency: float, time_to_first_token: float | None = None, time_to_generate: float | None = None
) -> dict:
    """Usage with no tokens; a chat app that never called its model keeps the latency (44a)."""
    zero_price = "0.0"
    return {
        "prompt_tokens": 0,
        "prompt_unit_price": zero_price,
        "prompt_price_unit": zero_price,
        "prompt_price": zero_price,
        "completion_tokens": 0,
        "completion_unit_price": zero_price,
        "completion_price_unit": zero_price,
        "completion_price": zero_price,
        "total_tokens": 0,
        "total_price": zero_price,
        "currency": "USD",
        "latency": latency,
        "time_to_first_token": time_to_first_token,
        "time_to_generate": time_to_generate,
    }


def _price(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def metadata(usage_dict: dict[str, Any]) -> dict[str, Any]:
    return {"annotation_reply": None, "retriever_resources": [], "usage": usage_dict}
