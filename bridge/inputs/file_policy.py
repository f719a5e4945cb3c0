"""Does the app take these files? Checked before any upload, because Dify will not say: an app
with file upload off answers 200 and drops `files` without a trace (rec. 20a, 20b, 21a).

The type rule is Dify 1.x's own (`_is_file_valid_with_config`): a file's type must be one of
`allowed_file_types`, except that a `custom` file is judged by `allowed_file_extensions` instead.
So a file of a type the app does not list is still sent — as `custom` — when its extension is
listed.
"""

from __future__ import annotations

import msgspec

from bridge.errors import BridgeError, bad_request
from bridge.inputs.files import InlineFile, RemoteFile, TurnFile
from bridge.inputs.parameters import MB, AppParameters, SystemParameters


def _size_error(file: InlineFile, limit: int) -> BridgeError:
    return bad_request(
        f"The {file.type} file {file.filename!r} is {len(file.content) / MB:.1f} MB; this "
        f"Dify app accepts {file.type} files up to {limit / MB:g} MB.",
        param=file.param,
        code="file_too_large",
    )


def _describe(file: TurnFile) -> str:
    if isinstance(file, RemoteFile):
        return f"the image at {file.url}"
    return f"{file.filename!r} ({file.mime_type})"


def check_sizes(files: list[TurnFile], limits: SystemParameters) -> None:
    for file in files:
        if isinstance(file, InlineFile) and len(file.content) > limits.max_bytes(file.type):
            raise _size_error(file, limits.max_bytes(file.type))


def admit_files(
    files: list[TurnFile], parameters: AppParameters | None, *, mode: str
) -> list[TurnFile]:
    """The files as Dify should receive them (type possibly `custom`), or a 400.

    Without parameters (an old Dify, `/parameters` down) only Dify's default size limits are
    checked; Dify's own checks then decide the rest.
    """
    if not files:
        return files
    check_sizes(files, parameters.limits if parameters else SystemParameters())
    if parameters is None:
        return files
    upload = parameters.file_upload
    if not upload.accepts_files:
        raise bad_request(
            "This Dify app does not accept files: its file upload feature is off, and Dify "
            "would silently ignore them. Enable file upload (and vision, for images) in the "
            "app, or send text only.",
            param=files[0].param,
            code="files_not_accepted",
        )
    limit = upload.max_files
    if mode == "workflow":
        cap = parameters.limits.workflow_file_upload_limit
        limit = min(limit, cap) if limit else cap
    if limit and len(files) > limit:
        raise bad_request(
            f"This Dify app accepts at most {limit} file(s) per message; got {len(files)}.",
            param=files[limit].param,
            code="too_many_files",
        )
    types, extensions, methods = upload.file_types, upload.extensions, upload.transfer_methods
    return [_admit(file, types, extensions, methods) for file in files]


def _admit(file: TurnFile, types: list[str], extensions: set[str], methods: list[str]) -> TurnFile:
    if types and file.type not in types:
        extension = file.extension if isinstance(file, InlineFile) else ""
        if extension and extension in extensions:
            file = msgspec.structs.replace(file, type="custom")
        else:
            listed = ", ".join(sorted("." + e for e in extensions))
            raise bad_request(
                f"This Dify app accepts {', '.join(types)} files"
                + (f" (or the extensions {listed})" if listed and "custom" in types else "")
                + f"; {_describe(file)} is a {file.type} file.",
                param=file.param,
                code="unsupported_file_type",
            )
    method = "remote_url" if isinstance(file, RemoteFile) else "local_file"
    if methods and method not in methods:
        hint = (
            "send the image as a data: URI instead"
            if method == "remote_url"
            else "send an http(s) URL instead"
        )
        raise bad_request(
            f"This Dify app does not accept files sent as {method}; {hint}.",
            param=file.param,
            code="unsupported_transfer_method",
        )
    return file
