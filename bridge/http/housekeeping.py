"""Chat-UI housekeeping answered in the bridge: the per-model `background_tasks` policy.

`local` (default): a recognised housekeeping prompt (`bridge.translate.housekeeping`) gets an
ordinary `chat.completion` — or a short chunk stream — at once, and Dify is never called.
`run`: today's behaviour, the app answers it. `reject`: a 400, for operators who want chat UIs
configured with a separate task model.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from litestar import Response
from litestar.response import Stream
from prometheus_client import Counter

from bridge.errors import BridgeError
from bridge.openai.types import (
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ResponseMessage,
    Usage,
)
from bridge.routing import ModelRoute
from bridge.translate.housekeeping import recognise
from bridge.translate.openai_out import ChunkEncoder, completion_id
from bridge.translate.stream import ContentDelta, Finished

log = structlog.get_logger("bridge.http.housekeeping")

HOUSEKEEPING_REQUESTS = Counter(
    "bridge_housekeeping_requests_total",
    "Chat-UI housekeeping requests (titles, tags, follow-ups…) by client, task and what the "
    "bridge did: answered locally, ran the app, or rejected.",
    ["client", "task", "action"],
)
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def housekeeping_reply(
    chat: ChatCompletionRequest, route: ModelRoute, *, task_header: str | None
) -> Response | Stream | None:
    """The local answer to a housekeeping request, or None when the app should serve it.
    Raises a 400 under `background_tasks: reject`."""
    # `getattr`: the settings field lands separately (bridge/settings.py is shared); until
    # then every model has the default.
    policy = getattr(route.config, "background_tasks", "local")
    found = recognise(chat.messages)
    if found is None:
        if policy == "reject" and task_header:
            # The UI marked it as a background task (e.g. Open WebUI's `{{TASK}}` header).
            HOUSEKEEPING_REQUESTS.labels("other", "other", "reject").inc()
            raise _rejected()
        return None
    HOUSEKEEPING_REQUESTS.labels(found.client, found.task, policy).inc()
    if policy == "run":
        return None
    if policy == "reject":
        raise _rejected()
    log.info("housekeeping_answered", client=found.client, task=found.task)
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        encoder = ChunkEncoder(chat.model, include_usage=include_usage)
        return Stream(
            _frames(encoder, found.answer),
            media_type="text/event-stream",
            headers=_STREAM_HEADERS,
        )
    return Response(
        ChatCompletion(
            id=completion_id(),
            created=int(time.time()),
            model=chat.model,
            choices=[
                Choice(
                    index=0,
                    message=ResponseMessage(role="assistant", content=found.answer),
                    finish_reason="stop",
                )
            ],
            usage=_NO_USAGE,
        )
    )


_NO_USAGE = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)


async def _frames(encoder: ChunkEncoder, answer: str) -> AsyncIterator[bytes]:
    yield encoder.start()
    for item in (ContentDelta(answer), Finished("stop", _NO_USAGE)):
        for frame in encoder.encode(item):
            yield frame


def _rejected() -> BridgeError:
    return BridgeError(
        400,
        "This model does not answer chat-UI background tasks (title, tags, follow-ups…): "
        "its `background_tasks` setting is `reject`. Configure a separate task model in "
        "your chat UI.",
        code="background_task_rejected",
        retryable=False,
    )
