"""The emulator's test hooks: every `/v1/*` call goes into the journal (`GET`/`DELETE
/_emulator/journal`), and uploaded files can be read back (`GET /_emulator/files/<id>`)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from litestar import Request, Response, delete, get
from litestar.params import FromPath

from . import errors
from .handlers import app_of, emulator_of, json_response
from .payload import parse_json_body


async def record_request(request: Request) -> None:
    """before_request hook: every /v1/* call goes into the journal, stop calls included."""
    path = request.url.path
    if "/v1/" not in path:
        return
    emulator = emulator_of(request)
    app_name = None
    with contextlib.suppress(errors.DifyError):
        app_name = app_of(request).name
    entry: dict[str, Any] = {
        "method": request.method,
        "path": path,
        "query": dict(request.query_params),
        "json": None,
        "form": None,
        "time": time.time(),
        "app": app_name,
    }
    if "application/json" in (request.headers.get("content-type") or ""):
        try:
            entry["json"] = parse_json_body("application/json", await request.body())
        except errors.DifyError:
            entry["json"] = None
    request.scope.setdefault("state", {})["journal_entry"] = entry
    emulator.store.journal.append(entry)


@get("/_emulator/journal")
async def get_journal(request: Request) -> Response:
    return json_response(list(emulator_of(request).store.journal))


@delete("/_emulator/journal", status_code=204)
async def clear_journal(request: Request) -> None:
    emulator_of(request).store.journal.clear()


@get("/_emulator/files/{file_id:str}")
async def get_file(request: Request, file_id: FromPath[str]) -> Response:
    stored = emulator_of(request).store.files.get(file_id)
    if stored is None:
        raise errors.DifyError("not_found", "File not found.", 404)
    return Response(content=stored.content, media_type=stored.mime_type)
