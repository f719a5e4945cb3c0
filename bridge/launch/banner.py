"""The text `dify-bridge start` prints once everything is up: where the bridge listens, what
a client sends, and, with a tunnel, what to paste into FastGPT.

It is built whole and written in one piece (see `write`), after the bridge answered and the
tunnel URL is known, so nothing the children log can land in the middle of it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TextIO

from bridge.launch.keys import ClientKey


@dataclass(frozen=True)
class BannerFacts:
    local_url: str  # http://127.0.0.1:8000
    bound_host: str
    bridge_pid: int
    dify_api_url: str | None  # None: demo mode, the built-in emulator
    client: ClientKey
    tunnel_url: str | None = None


def curl_line(base_url: str, client: ClientKey) -> str:
    body = json.dumps(
        {"model": client.model, "messages": [{"role": "user", "content": "hello"}]},
        ensure_ascii=False,
    )
    return (
        f"curl -sS {base_url}/v1/chat/completions -H 'Authorization: Bearer {client.key}' "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


def banner_lines(facts: BannerFacts) -> list[str]:
    client = facts.client
    lines = [
        "",
        f"Bridge listening on {facts.local_url} (bound to {facts.bound_host}; "
        f"pid {facts.bridge_pid})",
    ]
    if facts.dify_api_url:
        lines.append(f"  Dify API : {facts.dify_api_url}")
    else:
        lines.append(
            "  Dify API : the built-in emulator, in the same process (demo mode: apps from "
            f"dify-dsl/, model {client.model} answers 喵)"
        )
    lines += [
        f"  OpenAI base URL: {facts.local_url}/v1   model: {client.model}   "
        f"key: {client.key} ({client.note})",
        "  Try it:",
        f"    {curl_line(facts.local_url, client)}",
    ]
    if facts.tunnel_url:
        lines += [
            "",
            f"Public tunnel: {facts.tunnel_url} (it can take a few seconds to become reachable)",
            "FastGPT -> Account -> Third-party account -> OpenAI/OneAPI:",
            f"  BaseUrl : {facts.tunnel_url}/v1",
            f"  Key     : {client.key}   <- {client.note}",
            f"  Model   : {client.model} (add it to FastGPT's model list, then pick it in "
            "your app)",
            "  Try it:",
            f"    {curl_line(facts.tunnel_url, client)}",
        ]
    lines += ["", "Press Ctrl-C to stop."]
    return lines


def write(lines: list[str], out: TextIO | None = None) -> None:
    """One write and one flush: a single write() of a few KB to a pipe or terminal is not
    split by the children's lines, which are single writes too."""
    out = out or sys.stdout
    out.write("\n".join(lines) + "\n")
    out.flush()
