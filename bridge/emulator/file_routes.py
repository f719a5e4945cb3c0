"""Files on the Service API: `POST /v1/files/upload` (what a run may take as `files`), and
`GET /files/tools/<id><ext>`: the files runs produced, behind Dify's signed-URL query (46a)."""

from __future__ import annotations

import mimetypes

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from .errors import DifyError
from .handlers import app_of, base_url, emulator_of, json_response
from .service import Emulator
from .store import UploadedFile, new_id, now
from .tool_files import signature_ok


@post("/v1/files/upload", status_code=201)
async def upload_file(request: Request) -> Response:
    emulator = emulator_of(request)
    app_of(request)
    form = await request.form()
    upload = form.get("file")
    user = str(form.get("user") or "DEFAULT-USER")
    entry = request.scope.get("state", {}).get("journal_entry")
    if isinstance(upload, UploadFile):
        content = await upload.read()
        if entry is not None:
            entry["form"] = {
                "user": user,
                "file": {"filename": upload.filename, "size": len(content)},
            }
    else:
        if entry is not None:
            entry["form"] = {k: v for k, v in form.items() if isinstance(v, str)}
        raise DifyError("no_file_uploaded", "Please upload your file.", 400)  # 19b
    name = upload.filename or "file"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    mime = upload.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    stored = UploadedFile(
        id=new_id(),
        name=name,
        size=len(content),
        extension=extension,
        mime_type=mime,
        user=emulator.end_user_id(app_of(request), user),
        created_at=now(),
        content=content,
    )
    emulator.store.files[stored.id] = stored
    return json_response(stored.to_api(base_url(request)), 201)


@get("/files/tools/{name:str}")
async def tool_file(request: Request, name: FromPath[str]) -> Response:
    emulator: Emulator = request.app.state.emulator
    file_id = name.split(".", 1)[0]
    query = request.query_params
    stored = emulator.store.tool_files.get(file_id)
    signed = signature_ok(
        file_id,
        str(query.get("timestamp") or ""),
        str(query.get("nonce") or ""),
        str(query.get("sign") or ""),
    )
    if not signed:
        raise DifyError("forbidden", "Invalid request.", 403)
    if stored is None:
        raise DifyError("not_found", "File not found.", 404)
    return Response(content=stored.content, media_type=stored.mime_type)
