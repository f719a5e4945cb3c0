"""Run a Code node's python3 `main(**inputs)` in a separate process with a time limit.

A separate process (not a thread) so a runaway `while True` or `time.sleep` can be killed when the
limit passes or the run is stopped. Errors come back as a traceback text whose frames point at
`sandbox_code.py`, like the sandbox stand-in used for recordings 27a-27d.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

_RUNNER = r"""
import json, linecache, sys, traceback
request = json.loads(sys.stdin.read())
source = request["code"]
linecache.cache["sandbox_code.py"] = (len(source), None, source.splitlines(True), "sandbox_code.py")
namespace = {"__name__": "sandbox_code"}
try:
    exec(compile(source, "sandbox_code.py", "exec"), namespace)
    result = namespace["main"](**request["inputs"])
except BaseException as exc:
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))
    sys.exit(1)
sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str))
"""


class CodeError(Exception):
    """The node failed; `str(exc)` is the error text shown in node_finished.error."""


async def run_python(code: str, inputs: dict[str, Any], time_limit: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-c",
        _RUNNER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    payload = json.dumps({"code": code, "inputs": inputs}, default=str).encode()
    try:
        async with asyncio.timeout(time_limit):
            stdout, stderr = await proc.communicate(payload)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise CodeError(f"Code execution timed out after {time_limit:g} seconds.") from None
    except BaseException:
        # Stopped by the user (task cancelled) or the client went away: never leave it running.
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        raise CodeError(stderr.decode("utf-8", "replace") or f"exit status {proc.returncode}")
    try:
        result = json.loads(stdout.decode("utf-8") or "null")
    except ValueError as exc:
        raise CodeError(f"Code node output is not JSON: {exc}") from None
    if not isinstance(result, dict):
        raise CodeError("Output must be a dict, got " + type(result).__name__)
    return result


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
