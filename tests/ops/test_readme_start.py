"""README.md's "Two commands" section tells a new user what they will see (issue 17)."""

from __future__ import annotations

import re

from .helpers import REPO


def _section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return " ".join(match.group(1).split())  # line breaks of the prose do not matter


def test_demo_section_explains_code_reasoning_and_zero_usage() -> None:
    section = _section("Two commands")
    assert '"reasoning_content": "Code…"' in section
    assert "0 tokens" in section
    assert "Code node" in section  # …and why: the app's only step, no LLM


def test_start_up_description_names_the_launcher_and_its_variables() -> None:
    section = _section("Two commands")
    assert "dify-bridge start" in section
    assert "BRIDGE_CLOUDFLARED_URL" in section
    assert "SHA-256" in section
