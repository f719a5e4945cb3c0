"""The stream engine: one OpenAI request → Dify runs → output items delivered to the client.

- `service` prepares a turn (mode, inputs, conversation plan) and opens the Dify stream;
- `run` reads one Dify run in its own task (deadlines, recovery, stopping Dify);
- `delivery` relays a run's output to the client as SSE frames or one aggregated body;
- `report` tells the edge what the response did (first token, usage, error code).
"""

from bridge.engine.delivery import complete, event_stream, padded_completion
from bridge.engine.run import DifyRun
from bridge.engine.service import ChatService
from bridge.engine.turn import PreparedTurn

__all__ = [
    "ChatService",
    "DifyRun",
    "PreparedTurn",
    "complete",
    "event_stream",
    "padded_completion",
]
