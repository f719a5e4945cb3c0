"""Inputs and files end to end: the official openai SDK → the bridge → the Dify emulator.

The emulator's journal shows exactly what reached "Dify".
"""

from __future__ import annotations

import base64

import openai
import pytest

from tests.inputs.conftest import Journal, bridge_app
from tests.inputs.helpers import PDF, PNG, WAV, audio, data_uri, file_part, image, user
from tests.support.servers import serve_in_thread

ECHO = "app-echochat"  # EchoChat: required paragraph system_prompt, select tone, images only
DOCS = "app-inputsdocchat"  # InputsDocChat: select style*, number count, text topic ≤ 10
CAT = "app-cat-llm"  # Cat_LLM: file upload off
UPPER = "app-wf-upper"  # WF_Upper: workflow, required text-input query


def client(bridge_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{bridge_url}/v1", api_key=key, max_retries=0)


def ask(bridge_url, key, messages, model="o1", **kwargs):
    return client(bridge_url, key).chat.completions.create(model=model, messages=messages, **kwargs)


def refused(bridge_url, key, messages, **kwargs) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(bridge_url, key, messages, **kwargs)
    assert caught.value.response.headers["x-should-retry"] == "false"
    return caught.value


# ---------------------------------------------------------------- inputs


def test_required_input_missing_is_a_400_and_dify_is_never_called(bridge_url, journal: Journal):
    error = refused(bridge_url, ECHO, [user("hi")])
    assert error.param == "inputs.system_prompt"
    assert error.code == "missing_required_input"
    assert 'extra_body={"inputs"' in error.message
    assert journal.runs() == []


def test_streaming_request_with_a_missing_input_fails_before_the_stream(bridge_url, journal):
    # Dify itself would answer 200, one ping, then stay silent ~300 s (rec. 07b, issue 14).
    error = refused(bridge_url, ECHO, [user("hi")], stream=True)
    assert error.param == "inputs.system_prompt"


def test_inputs_in_extra_body_reach_dify(bridge_url, journal: Journal):
    completion = ask(
        bridge_url,
        ECHO,
        [user("hi")],
        extra_body={"inputs": {"system_prompt": "be kind", "tone": "loud"}},
    )
    assert "(prompt=be kind, tone=loud)" in completion.choices[0].message.content
    (run,) = journal.runs()
    assert run["inputs"] == {"system_prompt": "be kind", "tone": "loud"}


def test_inputs_in_metadata_reach_dify(bridge_url, journal: Journal):
    ask(
        bridge_url,
        ECHO,
        [user("hi")],
        metadata={"input.system_prompt": "via metadata", "input.tone": "plain", "trace": "t1"},
    )
    (run,) = journal.runs()
    assert run["inputs"] == {"system_prompt": "via metadata", "tone": "plain"}


def test_body_inputs_win_over_metadata_and_the_model_config(bridge_url, journal: Journal):
    ask(
        bridge_url,
        ECHO,
        [user("hi")],
        model="echo-static",
        metadata={"input.tone": "loud"},
        extra_body={"inputs": {"system_prompt": "from body"}},
    )
    (run,) = journal.runs()
    assert run["inputs"] == {"system_prompt": "from body", "tone": "loud"}


def test_select_value_outside_the_options_lists_them(bridge_url, journal: Journal):
    error = refused(
        bridge_url,
        ECHO,
        [user("hi")],
        metadata={"input.system_prompt": "x", "input.tone": "whisper"},
    )
    assert error.param == "metadata.input.tone"
    assert '"plain", "loud"' in error.message
    assert journal.runs() == []


def test_number_input_from_metadata_is_sent_as_a_number(bridge_url, journal: Journal):
    completion = ask(
        bridge_url, DOCS, [user("hi")], metadata={"input.style": "short", "input.count": "3"}
    )
    assert "count=3" in completion.choices[0].message.content
    (run,) = journal.runs()
    assert run["inputs"] == {"style": "short", "count": 3}


def test_number_input_that_is_not_a_number_is_a_400(bridge_url, journal: Journal):
    error = refused(
        bridge_url, DOCS, [user("hi")], extra_body={"inputs": {"style": "short", "count": "many"}}
    )
    assert error.param == "inputs.count"


def test_text_over_max_length_is_a_400(bridge_url, journal: Journal):
    error = refused(
        bridge_url,
        DOCS,
        [user("hi")],
        extra_body={"inputs": {"style": "long", "topic": "far too long a topic"}},
    )
    assert error.param == "inputs.topic"
    assert "at most 10" in error.message


def test_workflow_query_variable_is_filled_by_the_message(bridge_url, journal: Journal):
    completion = ask(bridge_url, UPPER, [user("shout this")])
    assert "SHOUT THIS" in completion.choices[0].message.content


def test_system_message_fills_the_configured_input_variable(bridge_url, journal: Journal):
    completion = ask(
        bridge_url,
        ECHO,
        [{"role": "system", "content": "You are a cat."}, user("hi")],
        model="echo-sys",
    )
    assert "prompt=You are a cat." in completion.choices[0].message.content
    (run,) = journal.runs()
    assert run["inputs"]["system_prompt"] == "You are a cat."


def test_ignored_openai_fields_are_accepted(bridge_url, journal: Journal):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    completion = ask(
        bridge_url,
        ECHO,
        [user("hi")],
        extra_body={"inputs": {"system_prompt": "x"}},
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=["\n\n"],
        seed=7,
        tools=tools,
        tool_choice="auto",
        response_format={"type": "json_object"},
    )
    assert completion.choices[0].finish_reason == "stop"
    (run,) = journal.runs()
    assert not {"temperature", "tools", "tool_choice", "response_format", "stop"} & set(run)


# ---------------------------------------------------------------- files


def test_image_url_is_sent_as_remote_url(bridge_url, journal: Journal):
    url = "https://images.example.test/cat.png"
    ask(
        bridge_url,
        ECHO,
        [user("what is this", image(url))],
        extra_body={"inputs": {"system_prompt": "x"}},
    )
    (run,) = journal.runs()
    assert run["files"] == [{"type": "image", "transfer_method": "remote_url", "url": url}]
    assert journal.uploads() == []


def test_image_data_uri_is_uploaded_and_sent_as_local_file(bridge_url, journal: Journal):
    ask(
        bridge_url,
        ECHO,
        [user("what is this", image(data_uri(PNG, "image/png")))],
        extra_body={"inputs": {"system_prompt": "x"}},
    )
    (upload,) = journal.uploads()
    assert upload["file"]["size"] == len(PNG)
    assert upload["file"]["filename"].endswith(".png")
    (run,) = journal.runs()
    (sent,) = run["files"]
    assert (sent["type"], sent["transfer_method"]) == ("image", "local_file")
    assert journal.file_bytes(sent["upload_file_id"]) == PNG


def test_the_same_image_sent_twice_is_uploaded_once(bridge_url, journal: Journal):
    picture = PNG + b"twice"  # bytes no other test uploads
    message = user("again", image(data_uri(picture, "image/png")))
    for _ in range(2):
        ask(bridge_url, ECHO, [message], extra_body={"inputs": {"system_prompt": "x"}})
    assert len(journal.uploads()) == 1
    first, second = journal.runs()
    assert first["files"] == second["files"]


def test_only_the_last_user_messages_files_are_sent(bridge_url, journal: Journal):
    messages = [
        user("first", image("https://images.example.test/old.png")),
        {"role": "assistant", "content": "a picture"},
        user("and this one", image("https://images.example.test/new.png")),
    ]
    ask(bridge_url, ECHO, messages, extra_body={"inputs": {"system_prompt": "x"}})
    (run,) = journal.runs()
    assert [f["url"] for f in run["files"]] == ["https://images.example.test/new.png"]


def test_pdf_file_part_is_uploaded_as_a_document(bridge_url, journal: Journal):
    part = file_part(data_uri(PDF, "application/pdf"), "report.pdf")
    ask(bridge_url, DOCS, [user("summarise", part)], metadata={"input.style": "short"})
    (upload,) = journal.uploads()
    assert upload["file"]["filename"] == "report.pdf"
    (run,) = journal.runs()
    (sent,) = run["files"]
    assert (sent["type"], sent["transfer_method"]) == ("document", "local_file")
    assert journal.file_bytes(sent["upload_file_id"]) == PDF


def test_input_audio_is_uploaded_as_audio(bridge_url, journal: Journal):
    part = audio(base64.b64encode(WAV).decode(), "wav")
    ask(bridge_url, DOCS, [user("listen", part)], metadata={"input.style": "short"})
    (run,) = journal.runs()
    assert run["files"][0]["type"] == "audio"


def test_app_with_uploads_disabled_refuses_files(bridge_url, journal: Journal):
    # Real Dify would answer 200 and silently drop the image (rec. 20a, 21a).
    error = refused(bridge_url, CAT, [user("see", image("https://images.example.test/a.png"))])
    assert error.code == "files_not_accepted"
    assert error.param == "messages[0].content[1]"
    assert journal.runs() == []


def test_unsupported_file_type_for_the_app_is_a_400(bridge_url, journal: Journal):
    pdf = file_part(data_uri(PDF, "application/pdf"), "report.pdf")
    error = refused(
        bridge_url, ECHO, [user("read", pdf)], extra_body={"inputs": {"system_prompt": "x"}}
    )
    assert error.code == "unsupported_file_type"
    zipped = file_part(data_uri(b"PK\x03\x04rest", "application/zip"), "a.zip")
    error = refused(bridge_url, DOCS, [user("open", zipped)], metadata={"input.style": "short"})
    assert error.code == "unsupported_file_type"
    assert journal.uploads() == []
    assert journal.runs() == []


def test_broken_base64_is_a_400(bridge_url, journal: Journal):
    error = refused(
        bridge_url,
        DOCS,
        [user("read", file_part("data:application/pdf;base64,JVBERi0x!!!", "a.pdf"))],
        metadata={"input.style": "short"},
    )
    assert error.code == "invalid_file_data"
    assert error.param == "messages[0].content[1].file.file_data"
    assert journal.uploads() == []


def test_a_file_over_the_apps_size_limit_is_a_400_before_any_upload(emulator_url, journal):
    # 10 MB is EchoChat's image limit (system_parameters); the body limit is raised above it.
    big = PNG + b"\0" * (10 * 1024 * 1024)
    with serve_in_thread(bridge_app(emulator_url, max_body_bytes=32 * 1024 * 1024)) as url:
        error = refused(
            url,
            ECHO,
            [user("big", image(data_uri(big, "image/png")))],
            extra_body={"inputs": {"system_prompt": "x"}},
        )
    assert error.code == "file_too_large"
    assert journal.uploads() == []


def test_body_over_max_body_bytes_is_an_openai_shaped_413(emulator_url, journal):
    big = image(data_uri(PNG + b"\0" * 100_000, "image/png"))
    with (
        serve_in_thread(bridge_app(emulator_url, max_body_bytes=64 * 1024)) as url,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        ask(url, ECHO, [user("big", big)], extra_body={"inputs": {"system_prompt": "x"}})
    error = caught.value
    assert error.status_code == 413
    assert error.code == "request_too_large"
    assert error.type == "invalid_request_error"
    assert error.response.headers["x-should-retry"] == "false"
    assert journal.runs() == []
