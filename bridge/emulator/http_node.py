"""The HTTP Request node as Dify 1.13.2 runs it (recordings 43a, 46a; issue 10 item 10).

- A `json` body template is rendered raw (variables pasted in unescaped), then repaired with
  `json_repair.repair_json` and parsed with `json.loads(..., strict=False)`, and the object is
  sent as the request's JSON. So quotes, backslashes, newlines and emoji in a query all reach the
  server, and a literal backslash-n in the query arrives as a newline, as on a real Dify.
- `process_data.request` is Dify's own rendering of the request (request line, Host, the node's
  headers plus the body type's Content-Type, Content-Length of the logged body), not the headers
  the HTTP client adds.
- A response that is a file (binary content type, attachment) becomes a tool file: `body` is
  "" and `files` holds the File object (46a).
- A non-2xx answer is an ordinary output; only an unreachable server fails the node.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx
from json_repair import repair_json

from .tool_files import ToolFile, file_value, new_tool_file

_CONTENT_TYPES = {
    "json": "application/json",
    "x-www-form-urlencoded": "application/x-www-form-urlencoded",
    "form-data": "multipart/form-data",
    "raw-text": "text/plain",
}
_TEXTUAL_APPLICATION_TYPES = (
    "json",
    "xml",
    "javascript",
    "x-www-form-urlencoded",
    "yaml",
    "graphql",
)
_TEXT_MARKERS = (b"{", b"[", b"<", b"function", b"var ", b"const ", b"let ")


class HttpNodeError(Exception):
    """The node fails with this text (Dify's HttpRequestNodeError family)."""

    def __init__(self, message: str, process_data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.process_data = process_data or {}


@dataclass
class PreparedRequest:
    method: str
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    content: str | None = None
    form: dict[str, str] | None = None
    body_type: str = "none"
    raw_body_template: str = ""

    def to_log(self) -> str:
        """`process_data.request` (43a: `POST /query HTTP/1.1\\r\\nHost: …\\r\\n…`)."""
        parsed = urlparse(self.url)
        path = parsed.path or "/"
        if self.params:
            path += "?" + urlencode(self.params)
        elif parsed.query:
            path += "?" + parsed.query
        lines = [f"{self.method.upper()} {path} HTTP/1.1", f"Host: {parsed.netloc}"]
        lines += [f"{k}: {v}" for k, v in self.request_headers().items()]
        body = ""
        if self.content:
            body = self.content
        elif self.form and self.body_type == "x-www-form-urlencoded":
            body = urlencode(self.form)
        elif self.json_body:
            body = json.dumps(self.json_body)
        elif self.body_type == "raw-text":
            body = self.raw_body_template
        if body:
            lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        default = _CONTENT_TYPES.get(self.body_type)
        if default and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = default
        return headers


def prepare(data: dict[str, Any], render: Callable[[str], str]) -> PreparedRequest:
    """Build the request from the node's DSL `data`; `render` substitutes `{{#…#}}` raw."""
    method = str(data.get("method") or "get")
    url = render(str(data.get("url") or ""))
    if not url:
        raise HttpNodeError("url is required")
    if not url.startswith(("http://", "https://")):
        raise HttpNodeError("url should start with http:// or https://")
    request = PreparedRequest(method=method, url=url)
    for line in render(str(data.get("headers") or "")).splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            request.headers[key.strip()] = value.strip()
    for line in str(data.get("params") or "").splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip():
            request.params.append((render(key.strip()), render(value.strip())))
    body = data.get("body") or {}
    body_type = str(body.get("type") or "none")
    request.body_type = body_type
    items = body.get("data") or []
    if isinstance(items, str):  # an old DSL keeps the body as one string
        items = [{"key": "", "type": "text", "value": items}]
    if body_type in ("json", "raw-text"):
        if len(items) != 1:
            raise HttpNodeError(f"{body_type} body type should have exactly one item")
        template = str(items[0].get("value") or "")
        request.raw_body_template = template
        rendered = render(template)
        if body_type == "raw-text":
            request.content = rendered
        else:
            request.json_body = parse_json_body(rendered)
    elif body_type == "x-www-form-urlencoded":
        request.form = {
            render(str(i.get("key") or "")): render(str(i.get("value") or "")) for i in items
        }
    elif body_type == "none":
        request.content = ""
    return request


def parse_json_body(rendered: str) -> Any:
    """Dify's json body: repair whatever the raw substitution produced, then parse leniently."""
    try:
        return json.loads(repair_json(rendered), strict=False)
    except json.JSONDecodeError:
        raise HttpNodeError(f"Failed to parse JSON: {rendered}") from None


async def send(
    request: PreparedRequest,
    time_limit: float,
    keep_file: Callable[[ToolFile], None],
    base_url: str,
) -> dict[str, Any]:
    """Send it; return the node's outputs (status_code, body, headers, files)."""
    try:
        async with httpx.AsyncClient(timeout=time_limit, follow_redirects=True) as client:
            response = await client.request(
                request.method.upper(),
                request.url,
                params=request.params or None,
                headers=request.request_headers(),
                json=request.json_body if request.body_type == "json" else None,
                content=request.content or None,
                data=request.form,
            )
    except httpx.HTTPError as exc:
        raise HttpNodeError(
            f"Reached maximum retries (0) for URL {request.url}: {exc}",
            {"request": request.to_log()},
        ) from None
    files = []
    if is_file_response(response):
        mime = _file_mime(request.url, response)
        tool_file = new_tool_file(response.content, mime)
        keep_file(tool_file)
        files.append(file_value(base_url, tool_file))
    return {
        "status_code": response.status_code,
        "body": "" if files else response.text,
        "headers": dict(response.headers),
        "files": files,
    }


def _disposition(response: httpx.Response) -> Message | None:
    header = response.headers.get("content-disposition", "")
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    return message


def is_file_response(response: httpx.Response) -> bool:
    """Dify's `Response.is_file`: attachment / filename, else judged by type and content."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    disposition = _disposition(response)
    if disposition is not None and (
        disposition.get_content_disposition() == "attachment"
        or disposition.get_filename() is not None
    ):
        return True
    if content_type.startswith("text/") and "csv" not in content_type:
        return False
    if content_type.startswith("application/"):
        if any(t in content_type for t in _TEXTUAL_APPLICATION_TYPES):
            return False
        sample = response.content[:1024]
        try:
            sample.decode("utf-8")
        except UnicodeDecodeError:
            return True
        if any(marker in sample for marker in _TEXT_MARKERS):
            return False
    main = content_type.split("/", 1)[0]
    return main in ("image", "audio", "video") or (
        content_type.startswith("application/") and content_type != "application/"
    )


def _file_mime(url: str, response: httpx.Response) -> str:
    disposition = _disposition(response)
    if disposition is not None and disposition.get_filename():
        guessed = mimetypes.guess_type(disposition.get_filename() or "")[0]
        if guessed:
            return guessed
    name = url.split("?")[0].rsplit("/", 1)[-1]
    return (
        response.headers.get("content-type")
        or mimetypes.guess_type(name)[0]
        or "application/octet-stream"
    )
