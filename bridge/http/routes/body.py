"""What the OpenAI routes share around their handlers: decoding a JSON body into its wire type
with OpenAI-shaped 400s, and the conversation header on the response."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from bridge.engine import DifyRun
from bridge.errors import bad_request

T = TypeVar("T")
CONVERSATION_HEADER = "X-Dify-Conversation-Id"


def decode_body(body: bytes, decoder: msgspec.json.Decoder[T], kind: str) -> T:
    """`kind` names the request in messages ("a chat completion request")."""
    if not body.strip():
        raise bad_request(f"The request body is empty; expected a JSON {kind.removeprefix('a ')}.")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        # msgspec says "<problem> - at `$.path`"; with no path the body itself is wrong
        # (`[1,2,3]`, `"hi"`): then there is no field to name, and `param` stays null.
        text = str(exc)
        message, sep, where = text.rpartition(" - at ")
        if not sep:
            message, where = text, ""
        path = where.strip("`").removeprefix("$").removeprefix(".")
        missing = message.removeprefix("Object missing required field `")
        if missing != message and missing.endswith("`"):
            # Name the missing field itself, not the object that lacks it.
            path = f"{path}.{missing[:-1]}" if path else missing[:-1]
        if not path:
            raise bad_request(
                f"Invalid request: the body must be a JSON object ({kind}); "
                f"{message[:1].lower()}{message[1:]}."
            ) from None
        raise bad_request(f"Invalid request: {message}", param=path) from None
    except msgspec.DecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. "
            "(HINT: This likely means you aren't using your HTTP library correctly.)"
        ) from None


def conversation_headers(run: DifyRun, base: dict[str, str]) -> dict[str, str]:
    """`base` plus the Dify conversation the answer comes from, when known."""
    headers = dict(base)
    if run.conversation_id:
        headers[CONVERSATION_HEADER] = run.conversation_id
    return headers
