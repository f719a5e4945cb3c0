"""Where the bridge spends its CPU on the streaming workload: py-spy samples the bridge
process (this revision, or `--baseline REV`) while bench_stream's workload runs, and the top
frames by inclusive and self time are printed as Markdown tables.

    .venv/bin/python bench/profile_stream.py [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.bench_stream import baseline_checkout, run_round


def summarize(raw: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r"\s*\((?:.*/)?([^/]+?):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    rows = ["| inclusive | self | frame |", "|---:|---:|---|"]
    for frame, samples in inclusive.most_common(top * 3):
        if frame.startswith(("_run", "run (", "main (", "<module>", "Command", "Context")):
            continue
        rows.append(f"| {samples / total:.0%} | {own[frame] / total:.0%} | `{frame}` |")
        if len(rows) >= top + 2:
            break
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="git revision to profile instead of this one")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    workload = argparse.Namespace(requests=24, chunks=2000, concurrency=8)
    with contextlib.ExitStack() as stack:
        source = procs.ROOT
        if args.baseline:
            source = stack.enter_context(baseline_checkout(args.baseline))
        dify = stack.enter_context(procs.standin())
        url, pid = stack.enter_context(procs.bridge(dify, source=source))
        asyncio.run(
            run_round("bridge", url, argparse.Namespace(**{**vars(workload), "requests": 4}))
        )
        raw = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "profile.txt"
        sampler = subprocess.Popen(
            [
                spy,
                "record",
                "-r",
                "200",
                "-p",
                str(pid),
                "-f",
                "raw",
                "-o",
                str(raw),
                "-d",
                str(args.seconds),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while sampler.poll() is None:
            asyncio.run(run_round("bridge", url, workload))
        print(summarize(raw, args.top))


if __name__ == "__main__":
    main()
