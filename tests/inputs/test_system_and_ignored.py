"""System/developer text extraction and the ignored-fields log line."""

from __future__ import annotations

import logging

import pytest
import structlog
from structlog.testing import capture_logs

from bridge.inputs import InputMapper
from bridge.inputs.ignored import ignored_fields
from bridge.inputs.system import system_text
from bridge.settings import Settings
from tests.inputs.helpers import chat_request, user
from tests.inputs.test_mapper import StandInDify, route
from tests.support.recordings import load


def test_system_text_joins_system_and_developer_messages_in_order():
    request = chat_request(
        {"role": "system", "content": "one"},
        user("hi"),
        {"role": "developer", "content": [{"type": "text", "text": "two"}]},
        {"role": "system", "content": "   "},
        user("again"),
    )
    assert system_text(request.messages) == "one\n\ntwo"


def test_no_system_message_means_no_system_text():
    assert system_text(chat_request(user("hi")).messages) is None


def test_ignored_fields_lists_only_what_the_client_set():
    request = chat_request(
        user("hi"), temperature=0, tools=[{"type": "function"}], response_format={"type": "text"}
    )
    assert ignored_fields(request) == ["temperature", "tools", "response_format"]
    assert ignored_fields(chat_request(user("hi"))) == []


@pytest.fixture
def debug_logging():
    # Other tests build the app, which configures logging at info level.
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("debug_logging")
async def test_one_debug_line_names_the_ignored_fields():
    mapper = InputMapper(Settings(), StandInDify(load("30e").json))  # type: ignore[arg-type]
    with capture_logs() as logs:
        await mapper.map(chat_request(user("hi"), seed=1, top_p=0.5), route(), "chat", "u")
    (line,) = [entry for entry in logs if entry["event"] == "openai_fields_ignored"]
    assert line["log_level"] == "debug"
    assert line["fields"] == ["top_p", "seed"]
