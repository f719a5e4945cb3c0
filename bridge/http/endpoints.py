"""What the bridge serves, and the 404 text for everything else.

A client pointed at the wrong path should learn at once what exists; one calling an OpenAI
endpoint that has no Dify counterpart (embeddings, images…) should learn that it never will,
rather than suspect a typo.
"""

from __future__ import annotations

SERVED = (
    "POST /v1/chat/completions",
    "POST /v1/responses",
    "GET|DELETE /v1/responses/{id}",
    "POST /v1/completions",
    "GET /v1/models",
)

# OpenAI API families a Dify app's Service API has no equivalent for.
_UNSUPPORTED = {
    "embeddings": "embeddings",
    "images": "image generation",
    "moderations": "moderation",
    "audio": "audio (speech, transcription, translation)",
    "files": "the Files API",
    "uploads": "the Uploads API",
    "fine_tuning": "fine-tuning",
    "batches": "batches",
    "assistants": "the Assistants API",
    "threads": "the Assistants API",
    "vector_stores": "vector stores",
    "realtime": "the Realtime API",
}


def not_found(path: str) -> tuple[str, str]:
    """(message, code) for a path no route serves."""
    served = "; ".join(SERVED)
    parts = [p for p in path.strip("/").split("/") if p]
    family = parts[1] if parts[:1] == ["v1"] and len(parts) > 1 else (parts[0] if parts else "")
    what = _UNSUPPORTED.get(family)
    if what is not None:
        return (
            f"{path} is not available: the bridge serves Dify apps, and Dify's Service API has "
            f"no equivalent of OpenAI's {what}. This bridge serves: {served}.",
            "unsupported_endpoint",
        )
    return f"Unknown path {path}. This bridge serves: {served}.", "not_found"
