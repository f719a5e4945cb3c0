"""One prepared turn: the resolved model, the Dify call and the conversation plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from bridge.conversations.keeper import TurnContext
from bridge.openai.types import ChatCompletionRequest
from bridge.routing import ModelRoute
from bridge.translate.request import (
    CHAT_MODES,
    DifyCall,
    build_call,
)

if TYPE_CHECKING:
    from bridge.engine.balanced import Balanced


class PreparedTurn(msgspec.Struct, kw_only=True):
    route: ModelRoute
    request: ChatCompletionRequest
    mode: str
    call: DifyCall
    user: str
    inputs: dict[str, Any]
    files: list[dict[str, Any]]
    context: TurnContext
    reasoning: bool
    # A model with several upstreams: where this turn runs and where it was tried.
    upstream: Balanced | None = None

    @property
    def continues_stored_conversation(self) -> bool:
        return self.context.plan.reason == "hit"




NO_CALL = DifyCall(mode="", path="", stop_path="", payload={})


def with_call(turn: PreparedTurn, mode: str) -> PreparedTurn:
    """(Re)build the Dify call for `mode` from the turn's plan and inputs."""
    plan = turn.context.plan
    call = build_call(
        mode=mode,
        query=plan.query,
        user=turn.user,
        inputs=turn.inputs,
        query_input=turn.route.config.query_input,
        conversation_id=plan.conversation_id if mode in CHAT_MODES else None,
        files=turn.files,
        auto_generate_name=turn.route.config.auto_generate_name and not turn.context.background,
    )
    return msgspec.structs.replace(turn, mode=mode, call=call)
