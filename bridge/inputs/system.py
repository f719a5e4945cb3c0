"""System and developer messages: Dify has no such role, so their text must go somewhere.

With a model's `system_input: <variable>` it fills that Dify input; otherwise it travels in
`MappedInputs.system_prompt` and the conversation layer puts it into the query. It is never
dropped silently.
"""

from __future__ import annotations

from bridge.openai.types import ChatMessage

SYSTEM_ROLES = frozenset({"system", "developer"})


def system_text(messages: list[ChatMessage]) -> str | None:
    """The text of every system/developer message, in order, joined by a blank line."""
    texts = [m.text().strip() for m in messages if m.role in SYSTEM_ROLES]
    joined = "\n\n".join(t for t in texts if t)
    return joined or None
