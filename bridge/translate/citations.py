"""Knowledge-base citations (`message_end.metadata.retriever_resources`) as a short list.

OpenAI chat has no field for sources, so when a model opts in (`citations: true`) they are
appended to the answer text. Dify sends one entry per retrieved segment; a document that
gave several segments is listed once, in Dify's `position` order.
"""

from __future__ import annotations

from typing import Any

SOURCES_HEADING = "Sources:"


def sources_list(resources: list[dict[str, Any]] | None) -> str:
    if not resources:
        return ""
    ordered = sorted(
        (r for r in resources if isinstance(r, dict)),
        key=lambda r: r.get("position") if isinstance(r.get("position"), int) else 1 << 30,
    )
    lines: list[str] = []
    seen: set[tuple[str, str]] = set()
    for resource in ordered:
        document = str(resource.get("document_name") or "").strip()
        dataset = str(resource.get("dataset_name") or "").strip()
        if not document and not dataset:
            continue
        key = (dataset, document)
        if key in seen:
            continue
        seen.add(key)
        label = document or dataset
        if document and dataset:
            label = f"{document} ({dataset})"
        lines.append(f"{len(lines) + 1}. {label}")
    if not lines:
        return ""
    return SOURCES_HEADING + "\n" + "\n".join(lines)
