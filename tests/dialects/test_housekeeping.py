"""Chat-UI housekeeping answered by the bridge: valid answers in the requested format, and no
Dify run (the emulator journal stays empty)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from bridge.openai.types import ChatMessage
from bridge.translate.housekeeping import recognise
from tests.dialects import housekeeping_prompts as prompts
from tests.dialects.conftest import app_runs
from tests.integration.conftest import BRIDGE_KEY, make_bridge
from tests.support.servers import serve_in_thread

SOURDOUGH_TITLE = "How do I bake sourdough bread"


def messages(raw: list[dict]) -> list[ChatMessage]:
    return [ChatMessage(role=m["role"], content=m["content"]) for m in raw]


@pytest.mark.parametrize(
    ("raw", "client", "task"),
    [
        (prompts.OPEN_WEBUI["title"], "open-webui", "title"),
        (prompts.OPEN_WEBUI["title_plain"], "open-webui", "title"),
        (prompts.OPEN_WEBUI["tags"], "open-webui", "tags"),
        (prompts.OPEN_WEBUI["follow_ups"], "open-webui", "follow_ups"),
        (prompts.OPEN_WEBUI["queries"], "open-webui", "queries"),
        (prompts.OPEN_WEBUI["autocomplete"], "open-webui", "autocomplete"),
        (prompts.OPEN_WEBUI["emoji"], "open-webui", "emoji"),
        (prompts.LOBECHAT_TITLE, "lobechat", "title"),
        (prompts.LOBECHAT_TITLE_OLD, "lobechat", "title"),
        (prompts.NEXTCHAT_TITLE, "nextchat", "title"),
        (prompts.NEXTCHAT_TITLE_ZH, "nextchat", "title"),
        (prompts.CHERRY_TITLE, "cherry-studio", "title"),
        (prompts.CHERRY_TITLE_OLD, "cherry-studio", "title"),
    ],
)
def test_each_clients_prompts_are_recognised(raw, client, task):
    found = recognise(messages(raw))
    assert found is not None
    assert (found.client, found.task) == (client, task)
    assert found.answer


def test_open_webui_answers_are_the_json_it_parses():
    answers = {name: recognise(messages(raw)).answer for name, raw in prompts.OPEN_WEBUI.items()}
    assert json.loads(answers["title"]) == {"title": SOURDOUGH_TITLE}
    assert answers["title_plain"] == SOURDOUGH_TITLE
    tags = json.loads(answers["tags"])["tags"]
    assert 1 <= len(tags) <= 3 and "Sourdough" in tags
    follow_ups = json.loads(answers["follow_ups"])["follow_ups"]
    assert len(follow_ups) >= 3 and all(q.endswith("?") for q in follow_ups)
    assert json.loads(answers["queries"]) == {"queries": ["How do I bake sourdough bread at home?"]}
    assert json.loads(answers["autocomplete"]) == {"text": ""}
    assert answers["emoji"] == "😊"


def test_titles_are_short_and_plain():
    for raw in (
        prompts.LOBECHAT_TITLE,
        prompts.NEXTCHAT_TITLE,
        prompts.CHERRY_TITLE,
        prompts.CHERRY_TITLE_OLD,
    ):
        assert recognise(messages(raw)).answer == SOURDOUGH_TITLE
    assert recognise(messages(prompts.LOBECHAT_TITLE_OLD)).answer == "怎么在家做酸面包"
    assert recognise(messages(prompts.NEXTCHAT_TITLE_ZH)).answer == "怎么在家做酸面包"


@pytest.mark.parametrize(
    "text",
    [
        "How do I write a good title for my essay?",
        "### Tasks for today: buy bread",  # not Open WebUI's marker
        "Please summarize our conversation",
    ],
)
def test_ordinary_messages_are_not_housekeeping(text):
    assert recognise(messages([{"role": "user", "content": text}])) is None


ALL_CASES = [
    *[(f"open-webui-{name}", raw) for name, raw in prompts.OPEN_WEBUI.items()],
    ("lobechat", prompts.LOBECHAT_TITLE),
    ("nextchat", prompts.NEXTCHAT_TITLE),
    ("cherry-studio", prompts.CHERRY_TITLE),
]


@pytest.mark.parametrize(("name", "raw"), ALL_CASES)
def test_answered_without_running_the_app(client, journal, name, raw):
    completion = client.chat.completions.create(model="o1", messages=raw)
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert app_runs(journal()) == []


def test_streamed_housekeeping_is_a_short_normal_stream(client, journal):
    chunks = list(
        client.chat.completions.create(
            model="o1",
            messages=prompts.OPEN_WEBUI["title"],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == {"title": SOURDOUGH_TITLE}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None
    assert app_runs(journal()) == []


def test_counted_in_metrics(client, bridge_url):
    client.chat.completions.create(model="o1", messages=prompts.NEXTCHAT_TITLE)
    metrics = httpx.get(f"{bridge_url}/metrics", headers={"Authorization": f"Bearer {BRIDGE_KEY}"}).text
    assert (
        'bridge_housekeeping_requests_total{action="local",client="nextchat",task="title"}'
        in metrics
    )


def test_run_and_reject_policies(emulator_url, journal):
    models = [
        {"id": "runs", "app_key": "app-llmchat", "background_tasks": "run"},
        {"id": "refuses", "app_key": "app-llmchat", "background_tasks": "reject"},
    ]
    with serve_in_thread(make_bridge(emulator_url, models=models, aliases={})) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=BRIDGE_KEY, max_retries=0)
        client.chat.completions.create(model="runs", messages=prompts.OPEN_WEBUI["tags"])
        assert len(app_runs(journal())) == 1  # today's behaviour: the app answers it
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="refuses", messages=prompts.OPEN_WEBUI["tags"])
        assert err.value.code == "background_task_rejected"
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="refuses",
                messages=[{"role": "user", "content": "anything"}],
                extra_headers={"X-Bridge-Task": "title_generation"},
            )
        assert len(app_runs(journal())) == 1
        # Ordinary turns still run under `reject`.
        assert (
            client.chat.completions.create(
                model="refuses", messages=[{"role": "user", "content": "hello"}]
            )
            .choices[0]
            .message.content
            == "Echo: hello"
        )
