"""bridge.launch.banner: what `dify-bridge start` prints, and that it goes out in one piece."""

from __future__ import annotations

import io
import json
import shlex

from bridge.launch.banner import BannerFacts, banner_lines, curl_line, write
from bridge.launch.keys import ClientKey

CLIENT = ClientKey("sk-secret-key-1234", "o1", "required: generated for the public tunnel")


def _facts(**overrides: object) -> BannerFacts:
    values: dict[str, object] = {
        "local_url": "http://127.0.0.1:8123",
        "bound_host": "0.0.0.0",
        "bridge_pid": 4242,
        "dify_api_url": None,
        "client": CLIENT,
        "tunnel_url": "https://some-words-here.trycloudflare.com",
    }
    values.update(overrides)
    return BannerFacts(**values)  # type: ignore[arg-type]


def test_what_to_paste_into_fastgpt() -> None:
    text = "\n".join(banner_lines(_facts()))
    assert "Bridge listening on http://127.0.0.1:8123 (bound to 0.0.0.0; pid 4242)" in text
    assert "demo mode" in text  # no DIFY_API_URL
    assert "  BaseUrl : https://some-words-here.trycloudflare.com/v1" in text
    assert "  Key     : sk-secret-key-1234   <- required: generated for the public tunnel" in text
    assert "  Model   : o1 " in text
    assert text.rstrip().endswith("Press Ctrl-C to stop.")


def test_without_tunnel_no_fastgpt_block_and_the_dify_url() -> None:
    text = "\n".join(banner_lines(_facts(tunnel_url=None, dify_api_url="http://dify/v1")))
    assert "FastGPT" not in text and "trycloudflare" not in text
    assert "  Dify API : http://dify/v1" in text
    assert "OpenAI base URL: http://127.0.0.1:8123/v1   model: o1   key: sk-secret-key-1234" in text


def test_curl_line_is_a_working_command() -> None:
    words = shlex.split(curl_line("https://x.trycloudflare.com", CLIENT))
    assert words[:3] == ["curl", "-sS", "https://x.trycloudflare.com/v1/chat/completions"]
    assert "Authorization: Bearer sk-secret-key-1234" in words
    body = json.loads(words[words.index("-d") + 1])
    assert body == {"model": "o1", "messages": [{"role": "user", "content": "hello"}]}


class _CountingOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


def test_written_in_one_piece() -> None:
    out = _CountingOut()
    lines = banner_lines(_facts())
    write(lines, out)
    assert (out.writes, out.flushes) == (1, 1)
    assert out.getvalue() == "\n".join(lines) + "\n"
