"""The console's part of every API request: console keys (revocation, allowed models, limits,
token budget) before the route runs, and one ring-buffer entry after it answered.

Placed inside RequestContext (it reads the request's ResponseWatch) and outside the rate
limits (bridge.http.app.Extension), so a console key is known as a grant when they check it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from bridge.console.activity import RequestEntry
from bridge.console.keys import KeyRecord
from bridge.console.quota import insufficient_quota, over_budget
from bridge.engine.report import current_watch
from bridge.errors import BridgeError
from bridge.http.access import ANSWER_PATHS
from bridge.http.limit_counts import Counts
from bridge.http.limits import Admission, Limiter
from bridge.http.routes.body import CONVERSATION_HEADER
from bridge.routing import credential_from_header
from bridge.routing.grants import grant_request, key_sha256
from bridge.settings.limits import Limit, LimitsConfig

if TYPE_CHECKING:
    from bridge.console.state import Console

log = structlog.get_logger("bridge.console")
_API_PREFIXES = ("/v1/", "/chat/", "/completions", "/responses")
_CONVERSATION = CONVERSATION_HEADER.lower().encode()


class KeyLimiter(Limiter):
    """bridge.http.limits' limiter with each console key's own limits, set per request."""

    def __init__(self, counts: Counts) -> None:
        super().__init__(LimitsConfig(), counts)
        self._record: dict[str, KeyRecord] = {}

    def limit_for(self, key: str) -> tuple[Limit, str]:
        record = self._record.get(key)
        if record is None:
            return Limit(), "default"
        limit = Limit(
            concurrent_streams=record.concurrent_streams,
            requests_per_minute=record.requests_per_minute,
        )
        return limit, "console"

    async def admit_record(self, record: KeyRecord) -> Admission | None:
        if record.concurrent_streams is None and record.requests_per_minute is None:
            return None
        self._record[record.key_sha256] = record
        return await self.admit(record.key_sha256)


def _credential(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            try:
                return credential_from_header(value.decode("latin-1"))
            except BridgeError:
                return None  # the route answers it
    return None


async def _send_error(send: Send, error: BridgeError) -> None:
    headers = [(b"content-type", b"application/json")]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": msgspec.json.encode(error.body())})


class ConsoleGate:
    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_API_PREFIXES):
            await self.app(scope, receive, send)
            return
        console = self.console
        answer = scope["method"] == "POST" and scope["path"] in ANSWER_PATHS
        record: KeyRecord | None = None
        credential = _credential(scope) if console.lookups else None
        if credential is not None and console.keys is not None:
            try:
                record = await console.keys.lookup(key_sha256(credential))
            except Exception as exc:  # a store that fails: the key is not known, logged
                log.warning("console_key_lookup_failed", error=str(exc))
            if record is not None and not record.active:
                record = None
        admission: Admission | None = None
        if record is not None:
            if answer and record.budget_tokens is not None:
                used = await console.keys.used(record)  # type: ignore[union-attr]
                if over_budget(used, record.budget_tokens):
                    log.warning("insufficient_quota", key=record.name)
                    await _send_error(send, insufficient_quota(record.budget_period))
                    self._add(scope, record, 429, "insufficient_quota", None)
                    return
            grant_request(record.grant())
            if answer:
                try:
                    admission = await console.limiter.admit_record(record)
                except BridgeError as refusal:
                    await _send_error(send, refusal)
                    return
        if not answer:
            await self.app(scope, receive, send)
            return
        conversation: str | None = None

        async def observed_send(message: Message) -> None:
            nonlocal conversation
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == _CONVERSATION:
                        conversation = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            if admission is not None:
                await admission.release()
            self._add(scope, record, None, None, conversation)

    def _add(
        self,
        scope: Scope,
        record: KeyRecord | None,
        status: int | None,
        error_code: str | None,
        conversation: str | None,
    ) -> None:
        watch = current_watch()
        context = structlog.contextvars.get_contextvars()
        usage = watch.usage
        end = watch.ended or time.perf_counter()
        self.console.requests.add(
            RequestEntry(
                time=time.time(),
                request_id=str(context.get("request_id", "")),
                key_name=record.name if record is not None else None,
                key_sha256=record.key_sha256 if record is not None else None,
                path=scope["path"],
                model=context.get("model"),
                status=status or watch.status,
                stream=watch.stream,
                ttft_ms=watch.ms(watch.first_token),
                duration_ms=watch.ms(end) or 0.0,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                total_tokens=(usage.total_tokens or usage.prompt_tokens + usage.completion_tokens)
                if usage
                else 0,
                conversation_id=conversation,
                error_code=error_code or watch.error_code,
                incomplete=watch.ended is None and status is None,
            )
        )
