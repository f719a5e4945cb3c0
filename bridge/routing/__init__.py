"""Who is calling and which Dify app serves the model they asked for (bridge.routing.registry)."""

from bridge.routing.registry import (
    EMULATOR_PATH,
    MAX_CREDENTIAL_LENGTH,
    MAX_MODEL_LENGTH,
    ModelRegistry,
    ModelRoute,
    check_model_name,
    credential_from_header,
    valid_model_name,
)

__all__ = [
    "EMULATOR_PATH",
    "MAX_CREDENTIAL_LENGTH",
    "MAX_MODEL_LENGTH",
    "ModelRegistry",
    "ModelRoute",
    "check_model_name",
    "credential_from_header",
    "valid_model_name",
]
