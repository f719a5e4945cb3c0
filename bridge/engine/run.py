"""One Dify run, read by its own task (the upstream side of the stream engine).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import msgspec
import structlog

from bridge.dify import events as ev
from bridge.dify.client import (
    DifyBadStream,
    DifyStream,
    DifyTimeout,
    DifyUnreachable,
)
from bridge.dify.sse import EventStreamParser, MalformedStream, parsed_before
from bridge.engine.modes import FLOW_MODES
from bridge.errors import BridgeError
from bridge.translate.files import public_base
from bridge.translate.stream import (
    Failed,
    Finished,
    OutputItem,
    StreamTranslator,
    stream_interrupted,
)

if TYPE_CHECKING:
    from bridge.engine.service import ChatService
    from bridge.engine.turn import PreparedTurn

log = structlog.get_logger("bridge.engine")

# Bytes a reader may hold for a consumer that is not taking them (a client reading slowly):
# past this the reader waits, so a stalled client bounds memory instead of buffering Dify.
MAX_PENDING_BYTES = 1024 * 1024


class DifyRun:
    """One Dify run, read by its own task.

    The reader only moves bytes: each network read is appended to `_raw` and wakes the
    consumer (bridge.engine) through `ready`. The consumer's `take()` parses and translates
    everything that accumulated since its last call in one go, so what Dify sent while the
    client was being written to becomes one batch: per event there is the socket read and a
    JSON decode, and the per-text work (think tags, links, frames, sends) is per batch.

    Until the first real event the reader parses what it reads itself: it must know when the
    run started (first-event deadline, header wait) and the task id a stop call needs. The
    reader owns the deadlines: the first-event deadline of a flow (with recovery of a lost
    conversation) and, through httpx's read timeout, every later silence.
    """

    def __init__(
        self,
        service: ChatService,
        turn: PreparedTurn,
        stream: DifyStream,
        exit_stack: contextlib.AsyncExitStack,
    ) -> None:
        self.service = service
        self.ready = asyncio.Event()
        self._closed = False
        self._client_left = False
        self._hold = False
        # Workflow runs have no message_replace; holding their text would only delay it.
        self._hold_lookup: asyncio.Task[bool | None] | None = None
        if turn.route.config.moderation == "hold" and turn.mode != "workflow":
            self._hold_lookup = asyncio.create_task(service.moderates_output(turn.route.target))
        self._attach(turn, stream, exit_stack)
        self._reader = asyncio.create_task(self._read())

    def _attach(
        self, turn: PreparedTurn, stream: DifyStream, exit_stack: contextlib.AsyncExitStack
    ) -> None:
        self.turn = turn
        config = turn.route.config
        self.translator = StreamTranslator(
            turn.mode,
            output_variable=config.output,
            reasoning=turn.reasoning,
            # `off` means no reasoning channel at all: the app's own thinking is dropped too.
            thinking=config.reasoning != "off",
            hold_content=self._hold,
            citations=config.citations,
            files_base=public_base(
                self.service.settings.dify_public_url, turn.route.target.base_url
            ),
        )
        self._stream = stream
        self._exit_stack = exit_stack
        self._parser = EventStreamParser()
        self._events: list[ev.StreamItem] = []  # parsed by the reader before the start
        self._raw: list[bytes] = []  # read since, not parsed yet
        self._raw_size = 0
        self._room = asyncio.Event()
        self._room.set()
        # Kept across a rerun of a lost conversation: whoever waits for the start waits for
        # the new run's.
        if not hasattr(self, "_started"):
            self._started = asyncio.Event()
        self.ended = False  # the reader is done: nothing more will be read
        self._end: Failed | None = None  # why the reader stopped, if not at Dify's EOF
        self._end_taken = False
        self._gave_up: str | None = None  # why the bridge stopped reading, if it did
        self.task_id: str | None = None
        self.first_conversation_id: str | None = None

    # -- the consumer's side --------------------------------------------------------------

    async def take(self) -> list[OutputItem]:
        """Everything read since the last call, as output items (and room for the reader)."""
        events, self._events = self._events, []
        data = b"".join(self._raw) if self._raw else b""
        self._raw.clear()
        self._raw_size = 0
        self._room.set()
        translator = self.translator
        if translator.done:
            self._end_taken = self.ended
            return []
        bad: Exception | None = None
        items: list[OutputItem] = []
        try:
            if data:
                try:
                    events.extend(self._parser.feed(data))
                except (MalformedStream, msgspec.DecodeError, msgspec.ValidationError) as exc:
                    bad = exc
                    events.extend(parsed_before(exc))  # what came before it still counts
            if events:
                items = translator.feed_all(events)
            if bad is not None and not translator.done:
                raise bad
            if self.ended and not translator.done:
                self._end_taken = True
                items.extend(self._ending())
        except (MalformedStream, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("dify_bad_event", error=str(exc)[:200])
            items.append(self._fail(transport_failure(exc)))
        except Exception as exc:  # never a silent death: the client gets an error
            log.exception("dify_translation_failed", error_type=type(exc).__name__)
            items = [self._fail(_internal_failure())]
        for item in items:
            if type(item) is Finished:
                # Remember before the client sees the end: its next turn may follow at once.
                await self.service.keeper.remember(
                    self.turn.context, translator.answer, self.conversation_id
                )
        return items

    def _ending(self) -> list[OutputItem]:
        if self._end is not None:
            self.translator.done = True
            return [self._end]
        self._parser.close()
        return self.translator.finish()

    def _fail(self, error: BridgeError) -> Failed:
        self._gave_up = error.code
        self.translator.done = True
        self._end_taken = self.ended
        return Failed(error)

    @property
    def exhausted(self) -> bool:
        """Nothing more will come out of `take()`. The answer is over at its terminal event
        (`take()` hands that out in the batch that ends the translation), not when Dify closes
        the socket: a real Dify may hold it open for minutes after (rec. 44c, a title being
        generated on Dify ≤ 1.10)."""
        return self.translator.done or (self.ended and self._end_taken and not self._raw)

    async def wait_started(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), seconds)

    @property
    def started(self) -> bool:
        """Dify sent its first real event (or the stream already ended)."""
        return self._started.is_set()

    @property
    def conversation_id(self) -> str | None:
        return (
            self.translator.conversation_id
            or self.first_conversation_id
            or self.turn.call.conversation_id
        )

    # -- the reader -----------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            await self._decide_hold()
            while True:
                try:
                    await self._read_stream()
                    return
                except TimeoutError:  # the first-event deadline, never a later silence
                    if self.turn.continues_stored_conversation and await self._recover():
                        continue
                    self._end = Failed(self._first_event_timeout())
                    return
        except (DifyTimeout, DifyUnreachable, DifyBadStream) as exc:
            self._end = Failed(transport_failure(exc, started=self._started.is_set()))
        except (MalformedStream, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("dify_bad_event", error=str(exc)[:200])
            self._end = Failed(transport_failure(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never a silent death: the client gets an error
            log.exception("dify_reader_failed", error_type=type(exc).__name__)
            self._end = Failed(_internal_failure())
        finally:
            self.ended = True
            self._started.set()
            self.ready.set()

    async def _read_stream(self) -> None:
        async with asyncio.timeout_at(self._deadline()) as first_event:
            chunks = self._stream.chunks()
            async for data in chunks:
                try:
                    events = self._parser.feed(data)
                except Exception as exc:
                    # The events before the bad one still count: the run may have started,
                    # and its task id is what stops it.
                    self._note_start(parsed_before(exc))
                    raise
                self._events.extend(events)
                if self._note_start(events):
                    first_event.reschedule(None)
                    self.ready.set()
                    break
            async for data in chunks:
                self._raw.append(data)
                self._raw_size += len(data)
                self.ready.set()
                if self._raw_size > MAX_PENDING_BYTES:
                    self._room.clear()
                    await self._room.wait()

    def _note_start(self, events: list[ev.StreamItem]) -> bool:
        for event in events:
            if isinstance(event, ev.Ping):
                continue
            if isinstance(event, ev.UnknownEvent):
                log.debug("dify_unknown_event", dify_event=event.event)
                continue
            self.task_id = event.task_id
            self.first_conversation_id = event.conversation_id
            self._started.set()
            return True
        return False

    def _first_event_seconds(self) -> float:
        seconds = self.service.settings.first_event_timeout
        if self.turn.call.conversation_id:
            # An unknown conversation makes Dify ping once and then hang (rec. 13a): a
            # continued conversation gets a shorter deadline so recovery is quick.
            seconds = min(seconds, self.service.settings.conversation_check_timeout)
        return seconds

    def _deadline(self) -> float | None:
        # Chatflow/workflow streams send `workflow_started` at once when healthy; these modes
        # can also hang silently after one ping (unknown conversation, rec. 13a).
        if self.turn.mode not in FLOW_MODES:
            return None
        return asyncio.get_running_loop().time() + self._first_event_seconds()

    async def _decide_hold(self) -> None:
        if self._hold_lookup is None:
            return
        lookup, self._hold_lookup = self._hold_lookup, None
        try:
            enabled = await lookup
        except Exception:  # advisory only: a failed lookup means "unknown", and hold is kept
            enabled = None
        self._hold = enabled is not False
        self.translator.hold_content = self._hold

    # -- a conversation Dify lost ---------------------------------------------------------

    async def _recover(self) -> bool:
        """The stored conversation no longer exists at Dify: drop the mapping and run the turn
        again as a new conversation carrying the history (issue 3). The client has seen
        nothing but keepalives so far."""
        try:
            await self._reopen_as_new()
        except BridgeError:
            return False
        return True

    async def _reopen_as_new(self) -> None:
        lost = self.turn.call.conversation_id
        log.warning("dify_conversation_lost", conversation_id=lost)
        await self._close_upstream()
        if lost:
            await self.service.keeper.forget(lost)
        stream, stack, turn = await self.service.open_stream(self.service.replan_as_new(self.turn))
        self._attach(turn, stream, stack)

    def _first_event_timeout(self) -> BridgeError:
        return BridgeError(
            504,
            f"Dify accepted the request but did not start the run within "
            f"{self._first_event_seconds():g}s"
            + (" (the conversation may not exist)" if self.turn.call.conversation_id else "")
            + ".",
            code="dify_first_event_timeout",
            type="server_error",
            retryable=False,
        )

    # -- the end --------------------------------------------------------------------------

    async def aclose(self, *, client_left: bool = False) -> None:
        """Release the upstream; if the run is still going, tell Dify to stop it.

        A client that left before Dify's first event left no task id to stop: the reader
        goes on until that event arrives (within the first-event deadline), then the run is
        stopped like any other."""
        if self._closed:
            return
        self._closed = True
        self._client_left = client_left
        if self._hold_lookup is not None:
            self._hold_lookup.cancel()
        if client_left and not self.ended and self.task_id is None:
            self._room.set()
            await self.wait_started(self.service.settings.first_event_timeout)
        # A cleanup slot: a thousand clients leaving at once are closed a few at a time, so
        # requests arriving meanwhile are not queued behind all of that work on the loop.
        async with self.service.cleanup_slots:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            await self._close_upstream()

    async def _close_upstream(self) -> None:
        # The connection goes back (closed) before the stop call: a stop never waits for a
        # slot that the dying stream itself still holds.
        with contextlib.suppress(Exception):
            await self._exit_stack.aclose()
        if self.task_id and not self.translator.run_over:
            # The run is still going at Dify: the client left, or the bridge gave up on the
            # stream (timeout, unreadable event, internal error, shutdown). Nobody will read
            # it, so it must not go on spending tokens.
            await self.service.stop_task(self.turn, self.task_id, reason=self._stop_reason())

    def _stop_reason(self) -> str:
        if self._client_left:
            return "client_left"
        if self._end is not None:
            return self._end.error.code or "bridge_gave_up"
        return self._gave_up or "bridge_gave_up"


def transport_failure(exc: Exception, *, started: bool = False) -> BridgeError:
    if isinstance(exc, DifyTimeout):
        return BridgeError(
            504,
            "Dify stopped sending data (read timeout).",
            code="dify_timeout",
            type="server_error",
        )
    if isinstance(exc, DifyUnreachable) and started:
        # A reset after the run started is the same failure as a clean early close.
        return stream_interrupted()
    if isinstance(exc, DifyUnreachable):
        return BridgeError(
            502, "The connection to Dify was lost.", code="dify_unreachable", type="server_error"
        )
    if isinstance(exc, DifyBadStream):
        return BridgeError(
            502, str(exc), code="dify_bad_stream", type="server_error", retryable=False
        )
    if isinstance(exc, MalformedStream):
        return BridgeError(
            502,
            f"Dify's event stream could not be parsed: {exc}.",
            code="dify_bad_stream",
            type="server_error",
            retryable=False,
        )
    return BridgeError(
        502,
        "Dify sent an event the bridge could not read.",
        code="dify_bad_event",
        type="server_error",
        retryable=False,
    )


def _internal_failure() -> BridgeError:
    return BridgeError(
        500,
        "The bridge failed while reading Dify's answer; see its log for the request id.",
        code="internal_error",
        type="server_error",
        retryable=False,
    )


