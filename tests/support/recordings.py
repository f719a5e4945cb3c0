"""Parse the raw Dify 1.13.2 recordings in tests/fixtures/recordings (copied from shared/)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

RECORDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "recordings"
DSL_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "dsl"

_BODY_MARK = "# ---- raw response (headers + body) ----\n"
_END_MARK = re.compile(r"\n# ---- end \(curl exit \d+\) ----\n?$")


@dataclass
class Recording:
    name: str
    description: str
    curl: str
    status: int
    headers: dict[str, str]
    body: bytes
    request_json: dict | None = field(default=None)

    @property
    def sse_events(self) -> list[dict]:
        """The JSON `data:` payloads of an SSE body, in order (pings are skipped)."""
        return [
            json.loads(line[len("data: ") :])
            for line in self.body.decode().split("\n")
            if line.startswith("data: ")
        ]

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def load(name: str) -> Recording:
    """Load a recording by file name or its leading id (`"01"`, `"13a"`)."""
    matches = sorted(RECORDINGS.glob(f"{name}*.txt")) if not name.endswith(".txt") else [RECORDINGS / name]
    matches = [m for m in matches if not m.name.endswith(".timing.txt")]
    if len(matches) != 1:
        raise LookupError(f"{name!r} matches {[m.name for m in matches]}")
    text = matches[0].read_text(encoding="utf-8")
    head, _, raw = text.partition(_BODY_MARK)
    raw = _END_MARK.sub("", raw)
    lines = head.splitlines()
    description = lines[0].lstrip("# ")
    curl = next((line[2:] for line in lines if line.startswith("$ curl")), "")
    header_block, _, body = raw.partition("\n\n")
    status_line, *header_lines = header_block.split("\n")
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(": ")
        headers[key.lower()] = value
    request_json = None
    if " -d " in curl:
        args = shlex.split(curl)
        try:
            request_json = json.loads(args[args.index("-d") + 1])
        except (ValueError, IndexError):
            request_json = None
    return Recording(
        name=matches[0].name,
        description=description,
        curl=curl,
        status=int(status_line.split()[1]),
        headers=headers,
        body=body.encode("utf-8"),
        request_json=request_json,
    )


def all_names() -> list[str]:
    return sorted(p.name for p in RECORDINGS.glob("*.txt") if not p.name.endswith(".timing.txt"))
