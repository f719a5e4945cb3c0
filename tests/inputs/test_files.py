"""Content parts → decoded, named, classified files; and the app's rules for them. No network."""

from __future__ import annotations

import base64

import pytest

from bridge.errors import BridgeError
from bridge.inputs.datauri import DataError, decode_base64, decode_file_data, parse_data_uri
from bridge.inputs.file_policy import admit_files
from bridge.inputs.files import InlineFile, RemoteFile, turn_files
from bridge.inputs.filetypes import classify
from bridge.inputs.parameters import MB
from tests.inputs.helpers import (
    PDF,
    PNG,
    WAV,
    audio,
    chat_request,
    data_uri,
    file_part,
    image,
    recorded_parameters,
    user,
)

# ---------------------------------------------------------------- data URIs and base64


def test_base64_data_uri_decodes_with_its_media_type():
    decoded = parse_data_uri(data_uri(PNG, "image/png"))
    assert decoded.content == PNG
    assert decoded.mime_type == "image/png"


def test_percent_encoded_data_uri_decodes():
    assert parse_data_uri("data:text/plain;charset=utf-8,hello%20world").content == b"hello world"


def test_wrapped_lines_and_missing_padding_are_forgiven():
    text = base64.b64encode(PDF).decode().rstrip("=")
    wrapped = "\n".join(text[i : i + 20] for i in range(0, len(text), 20))
    assert decode_base64(wrapped) == PDF


def test_url_safe_base64_is_accepted():
    raw = bytes(range(250, 256)) * 3
    assert decode_base64(base64.urlsafe_b64encode(raw).decode()) == raw


@pytest.mark.parametrize("broken", ["not base64!!", "abcde", "", "YW=Jj", "data:image/png;base64"])
def test_broken_data_is_an_error_never_garbage(broken):
    with pytest.raises(DataError):
        decode_file_data(broken)


def test_file_data_may_be_bare_base64():
    decoded = decode_file_data(base64.b64encode(PDF).decode())
    assert (decoded.content, decoded.mime_type) == (PDF, None)


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("extension", "mime", "expected"),
    [
        ("png", None, "image"),
        ("pdf", "application/octet-stream", "document"),  # the extension decides
        ("docx", None, "document"),
        ("mp3", None, "audio"),
        ("mov", None, "video"),
        ("", "image/heic", "image"),
        ("", "text/x-log", "document"),
        ("bin", "application/pdf", "document"),  # an unknown extension defers to the MIME type
        ("zip", "application/zip", "custom"),
        ("", None, "custom"),
    ],
)
def test_dify_file_type_by_extension_then_mime(extension, mime, expected):
    assert classify(extension, mime) == expected


# ---------------------------------------------------------------- parts of the last user message


def test_only_the_last_user_messages_files_are_taken():
    request = chat_request(
        user("first", image("https://img.test/old.png")),
        {"role": "assistant", "content": "ok"},
        user("second", image("https://img.test/new.png")),
    )
    (found,) = turn_files(request)
    assert found == RemoteFile(
        url="https://img.test/new.png", type="image", param="messages[2].content[1]"
    )


def test_image_data_uri_becomes_a_named_inline_image():
    (found,) = turn_files(chat_request(user(image(data_uri(PNG, "image/png")))))
    assert isinstance(found, InlineFile)
    assert (found.type, found.mime_type, found.extension) == ("image", "image/png", "png")
    assert found.filename.startswith("image-") and found.filename.endswith(".png")
    assert found.content == PNG


def test_pdf_file_part_keeps_its_filename():
    part = file_part(data_uri(PDF, "application/pdf"), "reports/Q3 report.PDF")
    (found,) = turn_files(chat_request(user("summarise", part)))
    assert (found.filename, found.type, found.mime_type) == (
        "Q3 report.PDF",  # Dify refuses names with / or \
        "document",
        "application/pdf",
    )


def test_bare_base64_file_without_a_name_is_recognised_by_its_bytes():
    (found,) = turn_files(chat_request(user(file_part(base64.b64encode(PDF).decode()))))
    assert (found.type, found.mime_type, found.extension) == ("document", "application/pdf", "pdf")


def test_input_audio_is_an_audio_file_named_by_format():
    (found,) = turn_files(chat_request(user(audio(base64.b64encode(WAV).decode(), "wav"))))
    assert (found.type, found.extension, found.mime_type) == ("audio", "wav", "audio/wav")


@pytest.mark.parametrize(
    ("part", "param"),
    [
        (image("data:image/png;base64,%%%"), "messages[0].content[1].image_url.url"),
        (file_part("@@not-base64@@", "a.pdf"), "messages[0].content[1].file.file_data"),
        (audio("!!"), "messages[0].content[1].input_audio.data"),
        (image("ftp://x.test/a.png"), "messages[0].content[1].image_url.url"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "messages[0].content[1].file.file_id"),
    ],
)
def test_undecodable_parts_are_a_400_naming_the_part(part, param):
    with pytest.raises(BridgeError) as caught:
        turn_files(chat_request(user("look", part)))
    assert (caught.value.status, caught.value.param) == (400, param)


# ---------------------------------------------------------------- the app's file rules


def files_of(*parts):
    return turn_files(chat_request(user("x", *parts)))


def test_app_with_uploads_off_refuses_files_instead_of_dropping_them():
    with pytest.raises(BridgeError) as caught:
        admit_files(
            files_of(image("https://img.test/a.png")),
            recorded_parameters("14a"),
            mode="advanced-chat",
        )
    assert (caught.value.code, caught.value.param) == (
        "files_not_accepted",
        "messages[0].content[1]",
    )


def test_image_only_app_refuses_a_pdf_and_says_what_it_accepts():
    pdf = file_part(data_uri(PDF, "application/pdf"), "a.pdf")
    with pytest.raises(BridgeError) as caught:
        admit_files(files_of(pdf), recorded_parameters("14c"), mode="advanced-chat")
    assert caught.value.code == "unsupported_file_type"
    assert "accepts image files" in caught.value.message


def test_images_within_limits_are_admitted_unchanged():
    files = files_of(image("https://img.test/a.png"), image(data_uri(PNG, "image/png")))
    assert admit_files(files, recorded_parameters("30e"), mode="chat") == files


def test_more_files_than_the_app_allows_is_a_400_at_the_first_extra_one():
    files = files_of(*[image(f"https://img.test/{i}.png") for i in range(4)])
    with pytest.raises(BridgeError) as caught:
        admit_files(files, recorded_parameters("14c"), mode="advanced-chat")
    assert (caught.value.code, caught.value.param) == ("too_many_files", "messages[0].content[4]")


def test_a_file_over_the_size_limit_is_refused_even_without_parameters():
    big = PNG + b"\0" * (10 * MB)
    with pytest.raises(BridgeError) as caught:
        admit_files(files_of(image(data_uri(big, "image/png"))), None, mode="chat")
    assert caught.value.code == "file_too_large"
    assert "10 MB" in caught.value.message


def test_a_listed_extension_admits_an_unlisted_type_as_custom():
    params = recorded_parameters("14c")
    params.file_upload.allowed_file_extensions = [".PDF"]
    (admitted,) = admit_files(
        files_of(file_part(data_uri(PDF, "application/pdf"), "a.pdf")), params, mode="chat"
    )
    assert admitted.type == "custom"


def test_transfer_method_the_app_does_not_allow_is_refused_with_a_hint():
    params = recorded_parameters("14c")
    params.file_upload.allowed_file_upload_methods = ["local_file"]
    with pytest.raises(BridgeError) as caught:
        admit_files(files_of(image("https://img.test/a.png")), params, mode="chat")
    assert caught.value.code == "unsupported_transfer_method"
    assert "data: URI" in caught.value.message
