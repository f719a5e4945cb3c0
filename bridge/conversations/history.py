"""Carry earlier turns inside one Dify ``query`` when a conversation must start afresh.

Dify's Service API takes a single ``query`` per message, so when the bridge cannot continue a
stored Dify conversation (first sight of this history, an edited or regenerated branch, the
store is down, ``history: flatten``) it renders the history the client sent into the query.
The template is plain text a model reads easily::

    [Conversation so far]
    System: You are a cat.

    User: hi

    Assistant: 喵

    [New message]
    how are you?

- ``[Conversation so far]`` lists every message before the new one, in order, each as
  ``<Role>: <text>`` (``System``, ``User``, ``Assistant``, ``Tool``, ``Function``; any other
  role is capitalised as given), separated by a blank line. Multi-line text stays as it is.
- ``[New message]`` holds the last message when it comes from the user.
- When the last message is not from the user (an assistant prefill, a tool result), there is
  no ``[New message]`` section: the list simply ends with that message.
- When there is nothing before a user message, the result is that message's text alone.

User messages are never dropped, even empty ones; other messages whose text is empty (an
assistant turn that only called tools) are left out because they say nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.conversations.fingerprint import NormalisedMessage

EARLIER_HEADER = "[Conversation so far]"
NEW_MESSAGE_HEADER = "[New message]"


def render_history(messages: Sequence[NormalisedMessage]) -> str:
    """Render normalised messages into one query with the template in the module docstring."""
    turns, new_message = _split(messages)
    if not turns:
        return new_message or ""
    sections = [EARLIER_HEADER + "\n" + "\n\n".join(turns)]
    if new_message is not None:
        sections.append(NEW_MESSAGE_HEADER + "\n" + new_message)
    return "\n\n".join(sections)


def carries_history(messages: Sequence[NormalisedMessage]) -> bool:
    """Whether :func:`render_history` shows anything besides the new message."""
    turns, _ = _split(messages)
    return bool(turns)


def _split(messages: Sequence[NormalisedMessage]) -> tuple[list[str], str | None]:
    """Rendered earlier turns, and the new user message (``None`` if the last is not one)."""
    if not messages:
        return [], None
    *earlier, (last_role, last_text) = messages
    new_message: str | None = last_text
    if last_role != "user":
        earlier, new_message = list(messages), None
    turns = [_render_turn(role, text) for role, text in earlier if text or role == "user"]
    return turns, new_message


def _render_turn(role: str, text: str) -> str:
    label = role.capitalize() if role else "Unknown"
    return f"{label}: {text}"
