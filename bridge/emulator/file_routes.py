"""`GET /files/tools/<id><ext>`: the files runs produced, behind Dify's signed-URL query (46a)."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.params import FromPath

from .errors import DifyError
from .service import Emulator
from .tool_files import signature_ok


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
