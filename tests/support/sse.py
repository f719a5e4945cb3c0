"""Parse an OpenAI SSE body the way the openai SDK does (comments dropped, [DONE] ends)."""

from __future__ import annotations

import json


def parse_sse(body: str) -> tuple[list[dict], bool, list[str]]:
    """→ (JSON data payloads, whether `[DONE]` arrived, comment lines)."""
    chunks: list[dict] = []
    comments: list[str] = []
    done = False
    for block in body.replace("\r\n", "\n").split("\n\n"):
        data_lines = []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
            elif line.strip():
                raise AssertionError(f"unexpected SSE line {line!r}")
        if not data_lines:
            continue
        data = "\n".join(data_lines)
        if data.startswith("[DONE]"):
            done = True
            continue
        assert not done, "data after [DONE]"
        chunks.append(json.loads(data))
    return chunks, done, comments


def content_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def reasoning_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c.get("choices"))
