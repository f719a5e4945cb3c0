"""Recognise chat-UI housekeeping prompts and answer them from the conversation itself (pure).

Chat UIs ask the chat model for small things around each user message: a title for the chat,
tags, follow-up suggestions, search queries. Sent to a Dify app, each one is a full run (a RAG
flow runs three extra times per message) and the "title" is whatever the flow answers. The
bridge recognises these prompts by the markers their clients use and answers in the format the
prompt asks for, from the conversation text, without calling Dify.

Markers, learned from each client's source (docs/responses.md lists them):

- **Open WebUI** — one user message starting ``### Task:``; the chat history sits between
  ``<chat_history>`` tags as ``USER: …`` / ``ASSISTANT: …`` lines. The output section names the
  JSON it parses: ``{"title": …}``, ``{"tags": […]}``, ``{"follow_ups": […]}``,
  ``{"queries": […]}``; autocompletion asks for ``{"text": …}`` after ``<text>`` tags. The emoji
  task is a separate prompt ("…the speaker's likely facial expression…") with the message in
  a code fence.
- **LobeChat** — a system prompt as a conversation summarizer that wants a title (older
  versions: a Chinese one), then one user message with ``role: content`` lines; plain title.
- **NextChat** — the history, then a user message asking for a four-to-five-word title (or its
  Chinese version); plain title.
- **Cherry Studio** — a system prompt asking to summarize the conversation into a title
  ("…ignoring instructions…", or the older "within 10 words" one), the conversation in the
  user message (lines or JSON); plain title.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Literal

import msgspec

from bridge.openai.types import ChatMessage

Client = Literal["open-webui", "lobechat", "nextchat", "cherry-studio"]
Task = Literal["title", "tags", "follow_ups", "queries", "autocomplete", "emoji"]


class Housekeeping(msgspec.Struct, frozen=True, kw_only=True):
    client: Client
    task: Task
    answer: str


# ---------------------------------------------------------------- recognition

_OWUI_TASK = re.compile(r"^\s*###\s*Task:", re.IGNORECASE)
_OWUI_EMOJI = re.compile(r"^\s*Your task is to reflect the speaker's likely facial expression")
_JSON_KEY = r'\{\s*"%s"\s*:'
_HISTORY = re.compile(r"<chat_history>(.*?)</chat_history>", re.DOTALL)
_HISTORY_LINE = re.compile(r"^(USER|ASSISTANT|SYSTEM):\s?(.*)$")
_TEXT_TAG = re.compile(r"<text>(.*?)</text>", re.DOTALL)
_FENCED = re.compile(r'(?:```|""")(.*?)(?:```|""")', re.DOTALL)

_LOBE_SYSTEM = ("professional conversation summarizer", "会话总结为")
_NEXTCHAT_TOPIC = ("word title summarizing our conversation", "直接返回这句话的简要主题")
_CHERRY_SYSTEM = (
    "summarize the conversation into a title in",
    "summarize the user's conversation into a title",
)


def recognise(messages: list[ChatMessage]) -> Housekeeping | None:
    """The housekeeping request these messages make, answered; None for a real chat turn."""
    if not messages:
        return None
    last = messages[-1]
    last_text = last.text()
    if last.role == "user" and _OWUI_TASK.match(last_text):
        return _open_webui(last_text)
    if last.role == "user" and _OWUI_EMOJI.match(last_text):
        fenced = _FENCED.search(last_text)
        answer = emoji_for(fenced.group(1) if fenced else last_text)
        return Housekeeping(client="open-webui", task="emoji", answer=answer)
    system = " ".join(m.text() for m in messages if m.role in ("system", "developer")).lower()
    if any(marker in system for marker in _LOBE_SYSTEM) and ("title" in system or "标题" in system):
        turns = conversation_turns(last_text)
        return Housekeeping(client="lobechat", task="title", answer=title_for(turns))
    if any(marker in system for marker in _CHERRY_SYSTEM):
        turns = conversation_turns(last_text)
        return Housekeeping(client="cherry-studio", task="title", answer=title_for(turns))
    if last.role == "user" and any(marker in last_text for marker in _NEXTCHAT_TOPIC):
        turns = [(m.role, m.text()) for m in messages[:-1] if m.role in ("user", "assistant")]
        fallback = "闲聊" if _has_cjk(last_text) else "New Conversation"
        return Housekeeping(
            client="nextchat", task="title", answer=title_for(turns, fallback=fallback)
        )
    return None


def _open_webui(prompt: str) -> Housekeeping | None:
    turns = _owui_history(prompt)
    task_line = prompt.split("\n", 2)[1].lower() if "\n" in prompt else prompt.lower()

    def asks(key: str) -> bool:
        return re.search(_JSON_KEY % key, prompt) is not None

    answer: Any
    if asks("follow_ups") or "follow-up" in task_line:
        task: Task = "follow_ups"
        answer = {"follow_ups": follow_ups_for(turns)}
    elif asks("tags") or " tags" in task_line:
        task, answer = "tags", {"tags": tags_for(turns)}
    elif asks("queries") or "search quer" in task_line:
        task, answer = "queries", {"queries": queries_for(turns)}
    elif "autocompletion" in task_line or _TEXT_TAG.search(prompt):
        # Predicting the user's next words needs a model; the prompt itself allows "unsure".
        task, answer = "autocomplete", {"text": ""}
    elif asks("title") or "title" in task_line:
        title = title_for(turns)
        # Newer templates ask for the bare title instead of JSON.
        return Housekeeping(
            client="open-webui",
            task="title",
            answer=_json({"title": title}) if asks("title") else title,
        )
    else:
        return None  # another task (image prompt, tool choice…): the app answers it
    return Housekeeping(client="open-webui", task=task, answer=_json(answer))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _owui_history(prompt: str) -> list[tuple[str, str]]:
    match = _HISTORY.search(prompt)
    if not match:
        return []
    return _role_lines(match.group(1), _HISTORY_LINE)


_ROLE_LINE = re.compile(r"^(user|assistant|system|human|ai|User|Assistant|System)\s*[:：]\s?(.*)$")


def _role_lines(text: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """`ROLE: text` lines into turns; a line without a role continues the previous turn."""
    turns: list[tuple[str, str]] = []
    for line in text.strip().splitlines():
        match = pattern.match(line)
        if match:
            role = match.group(1).lower()
            turns.append(("user" if role in ("user", "human") else role, match.group(2)))
        elif turns:
            role, previous = turns[-1]
            turns[-1] = (role, previous + "\n" + line)
    return turns


def conversation_turns(text: str) -> list[tuple[str, str]]:
    """A conversation pasted into one message: JSON (`[{role, content|mainText}]`), `role:`
    lines, or plain text (taken as the user's)."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError:
            items = None
        if isinstance(items, list):
            turns = [
                (
                    str(item.get("role", "user")),
                    str(item.get("content") or item.get("mainText") or ""),
                )
                for item in items
                if isinstance(item, dict)
            ]
            if turns:
                return turns
    turns = _role_lines(stripped, _ROLE_LINE)
    return turns or [("user", stripped)]


# ---------------------------------------------------------------- answers

_MARKUP = re.compile(r"```.*?```|`[^`]*`|https?://\S+|[#>*_~\[\]()|]", re.DOTALL)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "tell",
        "give",
        "explain",
        "help",
        "need",
        "want",
        "know",
        "make",
        "using",
        "use",
        "get",
        "just",
        "like",
        "some",
        "more",
        "any",
    ]
)


def _has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def _first_user_text(turns: list[tuple[str, str]]) -> str:
    return next((text for role, text in turns if role == "user" and text.strip()), "")


def title_for(turns: list[tuple[str, str]], *, fallback: str = "New Chat") -> str:
    """A short title from the user's first words: no markup, no punctuation, ≤ 50 chars."""
    text = _MARKUP.sub(" ", _first_user_text(turns))
    if _has_cjk(text):
        compact = "".join(ch for ch in text if ch.isalnum() or ch == " ").strip()
        title = compact[:12].strip()
    else:
        words = _WORD.findall(text)[:6]
        title = " ".join(words)
        if len(title) > 50:
            title = title[:50].rsplit(" ", 1)[0]
        title = title[:1].upper() + title[1:]
    return title or fallback


def _keywords(turns: list[tuple[str, str]], limit: int) -> list[str]:
    words = [
        word.lower()
        for role, text in turns
        if role == "user"
        for word in _WORD.findall(_MARKUP.sub(" ", text))
        if len(word) > 3 and word.lower() not in _STOPWORDS and not word.isdigit()
    ]
    counts = Counter(words)
    # Most frequent first; ties keep the order the user wrote them in.
    ranked = sorted(dict.fromkeys(words), key=lambda w: -counts[w])
    return [word.capitalize() for word in ranked[:limit]]


def tags_for(turns: list[tuple[str, str]]) -> list[str]:
    return _keywords(turns, 3) or ["General"]


def follow_ups_for(turns: list[tuple[str, str]]) -> list[str]:
    topic = _keywords(turns, 1)
    about = f" about {topic[0].lower()}" if topic else ""
    return [
        f"Can you tell me more{about}?",
        "Can you give me an example?",
        "What should I do next?",
    ]


def queries_for(turns: list[tuple[str, str]]) -> list[str]:
    """The user's latest message is the search query (trimmed): the app does its own retrieval,
    and a UI that searches the web gets a query that says what the user asked."""
    last = next((text for role, text in reversed(turns) if role == "user" and text.strip()), "")
    query = " ".join(_MARKUP.sub(" ", last).split())[:200]
    return [query] if query else []


_EMOJI_HINTS = (
    (("sad", "sorry", "unfortunately", "miss", "cry", "难过", "伤心"), "😢"),
    (("angry", "annoy", "furious", "hate", "生气"), "😠"),
    (("wow", "amazing", "incredible", "surpris", "哇"), "😮"),
    (("thank", "great", "love", "happy", "glad", "awesome", "谢谢", "开心"), "😊"),
    (("?", "？", "wonder", "how", "why"), "🤔"),
)


def emoji_for(message: str) -> str:
    lowered = message.lower()
    for hints, emoji in _EMOJI_HINTS:
        if any(hint in lowered for hint in hints):
            return emoji
    return "🙂"
