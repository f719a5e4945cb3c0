"""The shipped entry point in front of Dify stand-ins, each its own process (tests.support.shipped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.shipped import ShippedBridge, shipped_bridge, upstream_process


@pytest.fixture(scope="module")
def scripted_dify() -> Iterator[str]:
    with upstream_process("scripted") as url:
        yield url


@pytest.fixture(scope="module")
def bridge(scripted_dify: str) -> Iterator[ShippedBridge]:
    """`dify-bridge serve` with nothing but DIFY_API_URL set: every default as shipped."""
    with shipped_bridge(scripted_dify) as running:
        yield running


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    with upstream_process("standin") as url:
        yield url


@pytest.fixture(scope="module")
def standin_bridge(standin: str) -> Iterator[ShippedBridge]:
    with shipped_bridge(standin) as running:
        yield running
