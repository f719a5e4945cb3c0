"""Which Dify release the emulator plays: one frozen profile per release line.

Every behaviour that differs between Dify 0.15.3 and 1.13.2 is a named field here, decided in ONE
place (`_profile`) from the release it first (or last) appeared in, with the evidence in
`docs/emulator.md` ("Dify versions") and `dify-versions.md`. The rest of the emulator reads the
fields and never compares version numbers itself.

Choosing a profile: `profile_for("1.9.5")` parses MAJOR.MINOR[.PATCH] (a leading `v` and a
`-suffix`/`+suffix` are ignored) and picks the nearest profile at or below that version (1.9.5 →
1.9.2; anything newer than 1.13.2 → 1.13.2). A version below the oldest profile (0.15.3) or a string
that is no version is a ValueError that says so.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

Version = tuple[int, int, int]


class ChatflowEnding(enum.Enum):
    """How a streamed chatflow run ends (dify-versions.md §1.5, §2.7)."""

    # ≤1.12: workflow_finished, then message_replace?/message_end (success), error (failure),
    # message_end (stopped).
    WORKFLOW_FINISHED_FIRST = "workflow_finished_first"
    # 1.13.0: the stream closes at workflow_finished; message_end never reaches the client.
    WORKFLOW_FINISHED_ONLY = "workflow_finished_only"
    # ≥1.13.1: message_end, then workflow_finished; failure/stop end at workflow_finished.
    MESSAGE_END_FIRST = "message_end_first"


class BodyErrorShape(enum.Enum):
    """The 400 body of a request-body validation error (dify-versions.md §1.6, §2.1, §2.5, §2.6)."""

    REQPARSE = "reqparse"  # ≤1.7: {"code":"invalid_param","message":…,"params":<field>}
    RESTX = "restx"  # 1.8–1.10: {"errors":{<field>:…},"message":"Input payload validation failed"}
    PYDANTIC = "pydantic"  # ≥1.11: {"code":"invalid_param","message":<pydantic text>,"status":400}


class MessageFileText(enum.Enum):
    """When chat/completion answer chunks are sent as `message_file` events (§2.6)."""

    NEVER = "never"  # ≤1.11.1
    ANY_FILE = "any_file"  # 1.11.2–1.12.x: any MessageFile row of the message, user uploads too
    ASSISTANT_FILE = "assistant_file"  # ≥1.13.0: only an assistant file (never in a chat app here)


class DeleteConversation(enum.Enum):
    """`DELETE /v1/conversations/{id}` success (§1.1, §2.3, §2.7)."""

    OK_JSON = "200"  # ≤1.3.0: 200 {"result":"success"}
    NO_CONTENT = "204"  # ≥1.3.1: 204 (1.3.1–1.13.0 put a JSON body on it, see docs/emulator.md)


@dataclass(frozen=True)
class DifyProfile:
    version: str  # what X-Version and GET /v1/ report
    chatflow_ending: ChatflowEnding
    # ≥1.13.0: streamed chatflow/workflow runs execute in a Celery worker and are relayed through
    # Redis: a leading `event: ping`, refused starts (unknown conversation, bad inputs) answered by
    # a ping and silence, and a stream with no workflow end (input moderation, 44c) held open.
    graph_streams_in_worker: bool
    # ≤1.10: a new conversation's title is generated before the stream closes (§1.5, §2.1).
    title_blocks_stream_end: bool
    message_file_text: MessageFileText
    info_mode: bool  # /v1/info has `mode` (≥1.4.0)
    info_author_name: bool  # /v1/info has `author_name` (≥1.4.3)
    site_route: bool  # /v1/site exists (≥1.4.0)
    body_error_shape: BodyErrorShape
    not_found_hint: bool  # 404 messages get flask-restx's "did you mean" suffix (≥1.8.0)
    www_authenticate: bool  # 401s carry `WWW-Authenticate: Bearer realm="api"` (≥1.8.0)
    # 0.15.3: an existing conversation's stored inputs are used, the request's are ignored.
    inputs_every_turn: bool
    workflow_pinning: bool  # `workflow_id` in the body and /workflows/{id}/run (≥1.7.2)
    # ≤1.8: node events carry parallel_* ids instead of *_truncated flags (§1.4, §2.5).
    node_parallel_fields: bool
    loop_nodes: bool  # Loop node and loop_* events, `loop_id` on node events (≥1.0.1)
    agent_strategy_field: bool  # node_started.data.agent_strategy (≥1.0.0)
    sequence_number: bool  # workflow_started/finished data.sequence_number (≤1.4.1)
    workflow_started_reason: bool  # workflow_started.data.reason (≥1.13.0)
    metadata_keys_always: bool  # message_end.metadata always has all three keys (≥1.4.2)
    usage_timing_keys: bool  # usage has time_to_first_token / time_to_generate (≥1.10.0)
    replace_reason: bool  # message_replace.reason (≥1.3.1)
    delete_conversation: DeleteConversation
    sse_ascii_json: bool  # SSE data via json.dumps: ", " separators, \uXXXX (≤1.8.0)
    messages_newest_first: bool  # GET /v1/messages newest first (1.0.0 only)
    blocking_charset: bool  # blocking JSON Content-Type has "; charset=utf-8" (≥1.11.1)

    @property
    def is_default(self) -> bool:
        return self.version == DEFAULT_VERSION


def _profile(version: str) -> DifyProfile:
    """The one table of change points; each line names the first release with the new behaviour."""
    v = parse_version(version)
    if v >= (1, 13, 1):
        ending = ChatflowEnding.MESSAGE_END_FIRST  # ad81513b6
    elif v >= (1, 13, 0):
        ending = ChatflowEnding.WORKFLOW_FINISHED_ONLY  # c730fec1e, dify#32856
    else:
        ending = ChatflowEnding.WORKFLOW_FINISHED_FIRST
    if v >= (1, 11, 0):
        shape = BodyErrorShape.PYDANTIC  # 05fe92a54
    elif v >= (1, 8, 0):
        shape = BodyErrorShape.RESTX  # 18dce6644
    else:
        shape = BodyErrorShape.REQPARSE
    if v >= (1, 13, 0):
        message_file = MessageFileText.ASSISTANT_FILE  # 0310f631e
    elif v >= (1, 11, 2):
        message_file = MessageFileText.ANY_FILE  # e6545f272, dify#31888
    else:
        message_file = MessageFileText.NEVER
    return DifyProfile(
        version=version,
        chatflow_ending=ending,
        graph_streams_in_worker=v >= (1, 13, 0),  # a1fc28010
        title_blocks_stream_end=v < (1, 11, 0),  # 102ee7ae1
        message_file_text=message_file,
        info_mode=v >= (1, 4, 0),  # 0b44791ea
        info_author_name=v >= (1, 4, 3),  # 3a628bc67
        site_route=v >= (1, 4, 0),  # ff20b5607
        body_error_shape=shape,
        not_found_hint=v >= (1, 8, 0),  # flask-restx RESTX_ERROR_404_HELP
        www_authenticate=v >= (1, 8, 0),
        inputs_every_turn=v >= (1, 0, 0),  # 423fb2d7b
        workflow_pinning=v >= (1, 7, 2),  # 20f0238aa
        node_parallel_fields=v < (1, 9, 0),  # 85cda47c7
        loop_nodes=v >= (1, 0, 1),  # 2c17bb2c3
        agent_strategy_field=v >= (1, 0, 0),  # 403e2d58b
        sequence_number=v < (1, 4, 2),  # 482e50aae
        workflow_started_reason=v >= (1, 13, 0),
        metadata_keys_always=v >= (1, 4, 2),  # a6ea15e63
        usage_timing_keys=v >= (1, 10, 0),
        replace_reason=v >= (1, 3, 1),  # 5e2b3b34e
        delete_conversation=(
            DeleteConversation.NO_CONTENT if v >= (1, 3, 1) else DeleteConversation.OK_JSON
        ),  # 136995d2a
        sse_ascii_json=v < (1, 8, 1),  # 3d5a4df9d
        messages_newest_first=v == (1, 0, 0),  # 126202648 reverted it in 1.0.1
        blocking_charset=v >= (1, 11, 1),  # 761f8c804
    )


DEFAULT_VERSION = "1.13.2"

# The releases the emulator offers, oldest first. 1.0.0 and 1.13.1 are here so that "nearest at
# or below" never lands on a profile that lacks a change those releases already had.
PROFILE_VERSIONS = (
    "0.15.3",
    "1.0.0",
    "1.0.1",
    "1.3.1",
    "1.4.3",
    "1.7.2",
    "1.9.2",
    "1.11.4",
    "1.12.1",
    "1.13.0",
    "1.13.1",
    "1.13.2",
)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+][0-9A-Za-z.\-+]*)?$")


def parse_version(text: str) -> Version:
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a Dify version: {text!r} (expected MAJOR.MINOR[.PATCH], e.g. 1.9.2)")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


PROFILES: dict[str, DifyProfile] = {name: _profile(name) for name in PROFILE_VERSIONS}
DEFAULT_PROFILE = PROFILES[DEFAULT_VERSION]


def profile_for(version: str) -> DifyProfile:
    """The nearest profile at or below `version` (see the module docstring)."""
    wanted = parse_version(version)
    chosen = None
    for name in PROFILE_VERSIONS:
        if parse_version(name) <= wanted:
            chosen = name
    if chosen is None:
        raise ValueError(
            f"Dify {version} is older than the oldest emulated version {PROFILE_VERSIONS[0]}"
        )
    return PROFILES[chosen]
