"""Async client for the Dify Service API: HTTP and SSE only, no OpenAI knowledge."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec


class DifyTarget(msgspec.Struct, frozen=True):
    """One Dify app: where it lives and its key. The key never appears in repr or logs."""

    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"DifyTarget(base_url={self.base_url!r}, api_key=<redacted>)"

    __str__ = __repr__

    @property
    def identity(self) -> str:
        """A stable id for this app (Dify URL + key) that does not reveal the key: the key of
        every per-app cache and of conversation fingerprints."""
        return hashlib.sha256(f"{self.base_url}\0{self.api_key}".encode()).hexdigest()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


class DifyAPIError(Exception):
    """Dify answered with an error. `code` is Dify's error code (`invalid_param` for a body
    that the 1.8-1.10 era sent without one); `message` is Dify's text without flask-restx's
    404 "did you mean" hint; `params`/`errors` name the offending body fields when Dify did."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"Dify {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


class DifyUnreachable(Exception):
    """No connection to Dify (refused, DNS, reset before a response)."""


class DifyTimeout(Exception):
    """Dify accepted the connection but stayed silent longer than the read timeout."""


class DifyBadStream(Exception):
    """Dify answered 200 but the body is not an event stream the bridge can read: an HTML
    page, a body that cannot be decoded (a corrupt gzip), events without separators."""


class AppInfo(msgspec.Struct, kw_only=True):
    name: str = ""
    description: str | None = None
    mode: str | None = None


class _ErrorBody(msgspec.Struct, kw_only=True):
    """Every error body shape Dify has had (dify-versions.md §1.6, §2.1, §2.5, §2.6). A
    request-body validation error is, by era:

    - ≤ 1.7: `{code: "invalid_param", message, params: <field>}`;
    - 1.8 – 1.10: `{message: "Input payload validation failed", errors: {<field>: <text>}}`,
      no `code`;
    - ≥ 1.11: `{code: "invalid_param", message: <pydantic text>, status: 400}`.

    Other errors are `{code, message, status}` on every version."""

    code: str | None = None
    message: str | None = None
    status: int | None = None
    params: str | None = None
    errors: dict[str, Any] | None = None


# flask-restx (Dify ≥ 1.8) appends this to every 404 message; it names Dify's own routes and
# means nothing to a client of the bridge, and it breaks comparisons on the message.
_NOT_FOUND_HINT = re.compile(r"\s*You have requested this URI \[.*$", re.DOTALL)


def _error_from_response(response: httpx.Response, body: bytes) -> DifyAPIError:
    try:
        parsed = msgspec.json.decode(body, type=_ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return DifyAPIError(
            response.status_code, None, f"Dify answered HTTP {response.status_code}"
        )
    message = _NOT_FOUND_HINT.sub("", parsed.message or "").strip()
    fields = {str(k): str(v) for k, v in (parsed.errors or {}).items()}
    code = parsed.code
    if parsed.errors and code is None and response.status_code == 400:
        # 1.8-1.10 dropped the code of body validation errors; every other era says
        # invalid_param for the same refusal, so the rest of the bridge sees one code.
        code = "invalid_param"
        details = "; ".join(f"{k}: {v}" for k, v in fields.items())
        message = f"{message}: {details}" if message and details else message or details
    if parsed.params and parsed.params not in fields:
        fields[parsed.params] = message
    message = message or f"Dify answered HTTP {response.status_code}"
    return DifyAPIError(response.status_code, code, message, fields=fields)


@contextlib.contextmanager
def _translate_transport_errors() -> Any:
    try:
        yield
    except httpx.TimeoutException as exc:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            raise DifyUnreachable("timed out connecting to Dify") from exc
        raise DifyTimeout("Dify did not answer in time") from exc
    except httpx.DecodingError as exc:
        raise DifyBadStream(
            "Dify's response body could not be decoded (its Content-Encoding is corrupt)."
        ) from exc
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise DifyUnreachable(type(exc).__name__) from exc


class DifyStream:
    """One open Dify event stream: its body as it arrives, read by read (parsing is the
    caller's, with `bridge.dify.sse.EventStreamParser`, so it can parse in batches)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        with _translate_transport_errors():
            async for data in self._response.aiter_bytes():
                yield data

    async def aclose(self) -> None:
        """Release the connection (closing it when the body was not read to the end)."""
        await self._response.aclose()


def _check_event_stream(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        return
    kind = content_type.split(";")[0].strip() or "no content type"
    what = "an HTML page" if kind == "text/html" else f"a {kind} body"
    raise DifyBadStream(
        f"Dify answered HTTP {response.status_code} with {what} instead of an event stream "
        "(is the Dify URL the Service API's, ending in /v1, and no proxy page in between?)."
    )


class DifyClient:
    """Calls one or many Dify apps.

    Streams and control calls (stop, /info, /parameters, /messages) use separate clients, so
    separate connection pools: a thousand dying streams still holding their connections must
    never make the stop calls that end them wait for a slot.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        control: httpx.AsyncClient | None = None,
        *,
        control_slots: int = 64,
    ) -> None:
        # One client for every stream: its transport (bridge.dify.stream_transport) keeps no
        # pool to scan, so thousands of held streams cost a new one nothing.
        self._http = http
        self._control = control or self._http
        # Control calls wait here, not in httpcore's queue: its pool scans every queued request
        # against every connection on each change, which a thousand simultaneous stops (every
        # client of a busy bridge leaving at once) turn into seconds of CPU.
        self._control_slots = asyncio.Semaphore(control_slots)

    @contextlib.asynccontextmanager
    async def stream(
        self, target: DifyTarget, path: str, payload: dict[str, Any]
    ) -> AsyncIterator[DifyStream]:
        """POST `payload` in streaming mode; yield the open stream once Dify answered 200.

        A non-2xx answer raises `DifyAPIError` before anything is yielded, so the caller can
        still answer its own client with the right HTTP status.
        """
        http = self._http
        request = http.build_request("POST", target.url(path), json=payload, headers=target.headers)
        with _translate_transport_errors():
            response = await http.send(request, stream=True)
        try:
            if response.status_code >= 300:
                with _translate_transport_errors():
                    body = await response.aread()
                raise _error_from_response(response, body)
            _check_event_stream(response)
            yield DifyStream(response)
        finally:
            await response.aclose()

    async def request_json(
        self,
        target: DifyTarget,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> Any:
        if files:  # uploads can be large: not on the control pool
            return await self._request_json(
                self._http, method, target, path, params, json, files, data
            )
        async with self._control_slots:
            return await self._request_json(
                self._control, method, target, path, params, json, files, data
            )

    async def _request_json(
        self,
        client: httpx.AsyncClient,
        method: str,
        target: DifyTarget,
        path: str,
        params: dict[str, Any] | None,
        json: dict[str, Any] | None,
        files: dict[str, Any] | None,
        data: dict[str, Any] | None,
    ) -> Any:
        with _translate_transport_errors():
            response = await client.request(
                method,
                target.url(path),
                params=params,
                json=json,
                files=files,
                data=data,
                headers=target.headers,
            )
        if response.status_code >= 300:
            raise _error_from_response(response, response.content)
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            raise DifyAPIError(
                response.status_code, None, "Dify answered with invalid JSON"
            ) from exc

    async def info(self, target: DifyTarget) -> AppInfo:
        return msgspec.convert(await self.request_json(target, "GET", "info"), AppInfo)

    async def parameters(self, target: DifyTarget) -> dict[str, Any]:
        return await self.request_json(target, "GET", "parameters")

    async def stop(self, target: DifyTarget, stop_path: str, user: str) -> None:
        await self.request_json(target, "POST", stop_path, json={"user": user})

    async def upload(
        self, target: DifyTarget, filename: str, content: bytes, mime_type: str, user: str
    ) -> dict[str, Any]:
        return await self.request_json(
            target,
            "POST",
            "files/upload",
            files={"file": (filename, content, mime_type)},
            data={"user": user},
        )
