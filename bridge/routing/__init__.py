"""Who is calling and which Dify app serves the model they asked for (bridge.routing.registry)."""

from bridge.routing.registry import (
    EMULATOR_PATH,
    MAX_CREDENTIAL_LENGTH,
    ModelRegistry,
    ModelRoute,
    credential_from_header,
)

__all__ = [
    "EMULATOR_PATH",
    "MAX_CREDENTIAL_LENGTH",
    "ModelRegistry",
    "ModelRoute",
    "credential_from_header",
]
