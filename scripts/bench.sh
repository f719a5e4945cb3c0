#!/usr/bin/env bash
# The benchmark target: the Dify stand-in, the bridge and a direct reader side by side in one
# run, printing ratios (bench/README.md). Arguments go to bench/bench_stream.py, e.g.
#   scripts/bench.sh --baseline c600a10 --dify2openai ../dify2openai --granian
# `scripts/bench.sh held` runs bench/bench_held.py instead (memory per held stream, leavers).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${BRIDGE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q -e ".[test,bench]"

if [ "${1:-}" = "held" ]; then
  shift
  exec "$VENV/bin/python" bench/bench_held.py "$@"
fi
exec "$VENV/bin/python" bench/bench_stream.py "$@"
