"""Demo mode end to end: an OpenAI client → the bridge → its built-in emulator → the LightRAG_o1
sample → a stand-in LightRAG (issue 10 item 10).

FastGPT sends system prompts and knowledge-base quotes, so realistic messages carry quotes,
newlines and backslashes; each must reach LightRAG as a real Dify 1.13.2 would send it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge import create_app, load_settings
from tests.emulator.test_http_json_body import (
    HOSTILE,
    SAMPLE,
    dify_json_body,
    lightrag_stand_in,
    sample_dir,
)
from tests.support.servers import serve_in_thread

MODEL = "LightRAG_o1"


def demo_bridge(dsl_dir: Path) -> Any:
    """The bridge with no Dify configured: demo mode serves the emulator on `dsl_dir`."""
    for other in SAMPLE.parent.glob("*.yml"):
        if not (dsl_dir / other.name).exists():
            shutil.copy(other, dsl_dir / other.name)
    env = {"BRIDGE_EMULATOR_DSL_DIR": str(dsl_dir), "BRIDGE_STORE": "memory://"}
    settings = load_settings(env=env)
    assert settings.demo_mode
    return create_app(settings)


@pytest.fixture(scope="module")
def lightrag() -> Iterator[tuple[str, list[Any]]]:
    with lightrag_stand_in() as served:
        yield served


@pytest.fixture(scope="module")
def bridge_url(lightrag, tmp_path_factory) -> Iterator[str]:
    dsl_dir = sample_dir(tmp_path_factory.mktemp("demo-dsl"), lightrag[0])
    with serve_in_thread(demo_bridge(dsl_dir)) as url:
        yield url


def _chat(base: str, messages: list[dict[str, Any]], stream: bool = False) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": "Bearer sk-demo"},
        json={"model": MODEL, "messages": messages, "stream": stream},
        timeout=60,
    )


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_message_is_answered_by_lightrag(
    bridge_url: str, lightrag: tuple[str, list[Any]], case: str
) -> None:
    received = lightrag[1]
    before = len(received)
    response = _chat(bridge_url, [{"role": "user", "content": HOSTILE[case]}])
    assert response.status_code == 200, response.text
    (sent,) = received[before:]
    # the bridge itself normalises CRLF line ends in messages; the rest is the emulator's doing
    assert sent == dify_json_body(HOSTILE[case].replace("\r\n", "\n"))
    content = response.json()["choices"][0]["message"]["content"]
    assert content == f"answer #{len(received)}"
    assert response.json()["choices"][0]["finish_reason"] == "stop"


def test_the_plain_cases_reach_lightrag_verbatim(
    bridge_url: str, lightrag: tuple[str, list[Any]]
) -> None:
    for text in ('say "hi"', "two\nlines", "emoji 🐱 中文"):
        response = _chat(bridge_url, [{"role": "user", "content": text}], stream=True)
        assert response.status_code == 200
        assert "answer #" in response.text
        assert lightrag[1][-1]["query"].endswith(text)


def test_a_lightrag_error_is_an_error_for_the_client(tmp_path: Path) -> None:
    with (
        lightrag_stand_in(status=422) as (url, _),
        serve_in_thread(demo_bridge(sample_dir(tmp_path, url))) as base,
    ):
        blocking = _chat(base, [{"role": "user", "content": 'a "quoted" question'}])
        streamed = _chat(base, [{"role": "user", "content": "another"}], stream=True)
    assert blocking.status_code >= 400
    error = blocking.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert "invalid JSON" not in blocking.text or "LightRAG answered HTTP 422" in blocking.text
    assert '"finish_reason":"stop"' not in streamed.text.replace(" ", "")
    assert '"error"' in streamed.text
