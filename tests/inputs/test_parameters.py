"""`/parameters` bodies as Dify 1.13.2 sends them (rec. 14a, 14b, 14c, 30e), typed."""

from __future__ import annotations

import asyncio

import pytest

from bridge.dify.client import DifyAPIError, DifyTarget, DifyUnreachable
from bridge.inputs.parameters import MB, ParametersCache, parse_parameters
from tests.inputs.helpers import recorded_parameters
from tests.support.recordings import load


def test_chatflow_with_uploads_off_accepts_no_files():
    params = recorded_parameters("14a")
    assert params.form == []
    assert params.file_upload.accepts_files is False


def test_workflow_form_has_its_required_query_with_max_length():
    (field,) = recorded_parameters("14b").form
    assert (field.kind, field.variable, field.required, field.max_length) == (
        "text-input",
        "query",
        True,
        256,
    )


def test_echochat_form_and_image_uploads_without_an_image_block():
    params = recorded_parameters("14c")
    system_prompt, tone = params.form
    assert (system_prompt.kind, system_prompt.required, system_prompt.max_length) == (
        "paragraph",
        True,
        4000,
    )
    assert (tone.kind, tone.required, tone.options) == ("select", False, ["plain", "loud"])
    upload = params.file_upload
    assert upload.accepts_files is True
    assert upload.file_types == ["image"]
    assert upload.extensions == {"png", "jpg", "jpeg", "gif", "webp"}
    assert upload.transfer_methods == ["local_file", "remote_url"]
    assert upload.max_files == 3


def test_chat_app_form_comes_with_size_limits_in_megabytes():
    params = recorded_parameters("30e")
    assert params.form[0].variable == "topic"
    assert params.form[0].max_length == 100
    assert params.limits.max_bytes("image") == 10 * MB
    assert params.limits.max_bytes("document") == 15 * MB
    assert params.limits.max_bytes("audio") == 50 * MB


def test_old_dify_image_block_alone_decides():
    params = parse_parameters(
        {
            "user_input_form": [{"text-input": {"variable": "city", "required": "true"}}],
            "file_upload": {
                "image": {"enabled": True, "number_limits": 2, "transfer_methods": ["remote_url"]}
            },
        }
    )
    assert params.form[0].required is True
    assert params.file_upload.accepts_files is True
    assert params.file_upload.file_types == ["image"]
    assert params.file_upload.transfer_methods == ["remote_url"]
    assert params.file_upload.max_files == 2
    assert params.limits.max_bytes("image") == 10 * MB  # Dify's default when not sent


class FakeDify:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    async def parameters(self, target):
        self.calls += 1
        await asyncio.sleep(0.01)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


TARGET = DifyTarget("http://dify.test/v1", "app-x")


async def test_cache_shares_one_fetch_between_concurrent_requests():
    dify = FakeDify([load("14c").json])
    cache = ParametersCache(dify, ttl=300)
    results = await asyncio.gather(*(cache.get(TARGET) for _ in range(5)))
    assert dify.calls == 1
    assert all(r is results[0] for r in results)


async def test_cache_expires_after_ttl_and_invalidate_forces_a_refetch():
    dify = FakeDify([load("14c").json])
    cache = ParametersCache(dify, ttl=0)
    await cache.get(TARGET)
    await cache.get(TARGET)
    assert dify.calls == 2
    cache = ParametersCache(dify, ttl=300)
    await cache.get(TARGET)
    cache.invalidate(TARGET)
    await cache.get(TARGET)
    assert dify.calls == 4


@pytest.mark.parametrize(
    "failure",
    [
        DifyAPIError(404, "not_found", "no such route"),
        DifyUnreachable("refused"),
        ["not", "a", "dict"],
    ],
)
async def test_unreadable_parameters_give_none_not_an_error(failure):
    cache = ParametersCache(FakeDify([failure]), ttl=300)
    assert await cache.get(TARGET) is None


def test_hand_edited_form_fields_are_read_loosely():
    params = parse_parameters(
        {
            "user_input_form": [
                {"text-input": {"variable": "a", "max_length": "", "required": "false"}},
                {"text-input": {"variable": "b", "max_length": "48", "options": None}},
                {"select": {"variable": "c", "options": [1, 2]}},
                {"odd": "not a dict"},
            ]
        }
    )
    assert [(f.variable, f.required, f.max_length, f.options) for f in params.form] == [
        ("a", False, None, []),
        ("b", False, 48, []),
        ("c", False, None, ["1", "2"]),
    ]


async def test_an_unexpected_failure_while_fetching_still_gives_none():
    cache = ParametersCache(FakeDify([RuntimeError("boom")]), ttl=300)
    assert await cache.get(TARGET) is None
