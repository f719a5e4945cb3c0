"""`InputMapper.map()` against a stand-in Dify client: one turn in, `MappedInputs` out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge.dify.client import DifyAPIError, DifyTarget, DifyUnreachable
from bridge.errors import BridgeError
from bridge.inputs import InputMapper, MappedInputs
from bridge.routing import ModelRoute
from bridge.settings import ModelConfig, Settings
from tests.inputs.helpers import PNG, chat_request, data_uri, image, user
from tests.support.recordings import load


class StandInDify:
    """Answers `/parameters` from a recording and counts uploads."""

    def __init__(self, parameters: Any) -> None:
        self.parameters_body = parameters
        self.parameter_calls = 0
        self.uploads: list[tuple[str, bytes, str, str]] = []

    async def parameters(self, target: DifyTarget) -> Any:
        self.parameter_calls += 1
        if isinstance(self.parameters_body, Exception):
            raise self.parameters_body
        return self.parameters_body

    async def upload(self, target, filename, content, mime_type, user) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        self.uploads.append((filename, content, mime_type, user))
        return {"id": f"upload-{len(self.uploads)}", "name": filename}


def route(**config: Any) -> ModelRoute:
    return ModelRoute(
        model="m",
        config=ModelConfig(id="m", **config),
        target=DifyTarget("http://dify.test/v1", "app-echochat"),
        managed=False,
    )


async def map_turn(dify: StandInDify, request, mode="advanced-chat", **config) -> MappedInputs:
    mapper = InputMapper(Settings(), dify)  # type: ignore[arg-type]
    return await mapper.map(request, route(**config), mode, "u1")


SYSTEM = {"role": "system", "content": "You are terse."}
DEVELOPER = {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]}


async def test_system_and_developer_text_fills_the_system_input_variable():
    mapped = await map_turn(
        StandInDify(load("14c").json),
        chat_request(SYSTEM, DEVELOPER, user("hi")),
        system_input="system_prompt",
    )
    assert mapped.inputs == {"system_prompt": "You are terse.\n\nAnswer in French."}
    assert mapped.system_prompt is None


async def test_without_system_input_the_text_is_handed_on_as_system_prompt():
    mapped = await map_turn(
        StandInDify(load("30e").json), chat_request(SYSTEM, user("hi")), mode="chat"
    )
    assert mapped.inputs == {}
    assert mapped.system_prompt == "You are terse."


async def test_system_input_the_app_does_not_declare_falls_back_to_system_prompt():
    mapped = await map_turn(
        StandInDify(load("30e").json),
        chat_request(SYSTEM, user("hi")),
        mode="chat",
        system_input="no_such_variable",
    )
    assert "no_such_variable" not in mapped.inputs
    assert mapped.system_prompt == "You are terse."


async def test_explicit_input_beats_the_system_message_and_static_config():
    mapped = await map_turn(
        StandInDify(load("14c").json),
        chat_request(SYSTEM, user("hi"), inputs={"system_prompt": "explicit"}),
        system_input="system_prompt",
        inputs={"system_prompt": "static", "tone": "plain"},
    )
    assert mapped.inputs == {"system_prompt": "explicit", "tone": "plain"}


async def test_unreadable_parameters_skip_validation_instead_of_failing():
    mapped = await map_turn(
        StandInDify(DifyUnreachable("refused")), chat_request(user("hi"), metadata={"input.x": "1"})
    )
    assert mapped.inputs == {"x": "1"}


async def test_missing_input_is_refused_before_anything_is_uploaded():
    dify = StandInDify(load("14c").json)
    with pytest.raises(BridgeError) as caught:
        await map_turn(dify, chat_request(user("look", image(data_uri(PNG, "image/png")))))
    assert caught.value.param == "inputs.system_prompt"
    assert dify.uploads == []


async def test_the_same_image_twice_is_uploaded_once_per_user():
    dify = StandInDify(load("14c").json)
    mapper = InputMapper(Settings(), dify)  # type: ignore[arg-type]
    request = chat_request(
        user("look", image(data_uri(PNG, "image/png"))), inputs={"system_prompt": "x"}
    )
    first = await mapper.map(request, route(), "advanced-chat", "u1")
    again = await mapper.map(request, route(), "advanced-chat", "u1")
    other_user = await mapper.map(request, route(), "advanced-chat", "u2")
    assert (
        first.files
        == again.files
        == [{"type": "image", "transfer_method": "local_file", "upload_file_id": "upload-1"}]
    )
    assert other_user.files[0]["upload_file_id"] == "upload-2"
    assert [u[3] for u in dify.uploads] == ["u1", "u2"]
    assert dify.parameter_calls == 1


async def test_concurrent_turns_with_the_same_new_image_share_one_upload():
    dify = StandInDify(load("14c").json)
    mapper = InputMapper(Settings(), dify)  # type: ignore[arg-type]
    request = chat_request(user(image(data_uri(PNG, "image/png"))), inputs={"system_prompt": "x"})
    results = await asyncio.gather(
        *(mapper.map(request, route(), "advanced-chat", "u1") for _ in range(4))
    )
    assert len(dify.uploads) == 1
    assert {r.files[0]["upload_file_id"] for r in results} == {"upload-1"}


async def test_dify_input_form_error_refreshes_the_cached_parameters():
    dify = StandInDify(load("14c").json)
    mapper = InputMapper(Settings(), dify)  # type: ignore[arg-type]
    request = chat_request(user("hi"), inputs={"system_prompt": "x"})
    await mapper.map(request, route(), "advanced-chat", "u1")
    mapper.note_dify_error(
        route().target, "u1", DifyAPIError(400, "invalid_param", "topic is required in input form")
    )
    await mapper.map(request, route(), "advanced-chat", "u1")
    assert dify.parameter_calls == 2


async def test_upload_refused_by_dify_is_a_400_naming_the_part():
    class RefusingDify(StandInDify):
        async def upload(self, *args: Any) -> dict[str, Any]:
            raise DifyAPIError(413, "file_too_large", "")

    with pytest.raises(BridgeError) as caught:
        await map_turn(
            RefusingDify(load("14c").json),
            chat_request(
                user("x", image(data_uri(PNG, "image/png"))), inputs={"system_prompt": "x"}
            ),
        )
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400,
        "file_too_large",
        "messages[0].content[1]",
    )
