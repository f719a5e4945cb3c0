#!/usr/bin/env bash
# Install everything the tests need (venv, Python deps, redis-server, the npm packages)
# and run the linters and the test suite. Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${BRIDGE_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# The editable install is redone only when pyproject.toml (deps, entry points) changed.
STAMP="$VENV/.dify-bridge-test-install"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1) $PWD"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  echo "$WANT" > "$STAMP"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q redis-server >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q redis-server >/dev/null; }
fi

# haproxy balances the three-replica tests (tests/scaling); it lives in /usr/sbin.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  echo "test.sh: installing haproxy (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q haproxy >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q haproxy >/dev/null; }
fi

# Debian's chromium for the console's browser tests (tests/browser, driven by playwright-core;
# no browser build is downloaded).
if [ ! -x /usr/bin/chromium ]; then
  echo "test.sh: installing chromium (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi

# checkov (tests/scaling/test_kubernetes.py) has a large, pinned dependency tree (boto3,
# an old `packaging`…): it gets a venv of its own instead of the project's.
CHECKOV_VENV=".cache/checkov-venv"
if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
  "$PYTHON" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install -q "checkov>=3.2,<4"
fi

# tests/node's packages (openai, the AI SDK v6 and v5), installed again from package-lock.json
# whenever it differs from the copy kept beside them: a node_modules left by an older checkout
# is replaced, not reused.
NODE_STAMP=tests/node/node_modules/.package-lock.stamp
if command -v npm >/dev/null 2>&1 && ! cmp -s tests/node/package-lock.json "$NODE_STAMP"; then
  (cd tests/node && npm ci --silent --no-audit --no-fund >/dev/null)
  cp tests/node/package-lock.json "$NODE_STAMP"
fi
BROWSER_STAMP=tests/browser/node_modules/.package-lock.stamp
if command -v npm >/dev/null 2>&1 && ! cmp -s tests/browser/package-lock.json "$BROWSER_STAMP"; then
  (cd tests/browser && npm ci --silent --no-audit --no-fund >/dev/null)
  cp tests/browser/package-lock.json "$BROWSER_STAMP"
fi

"$VENV/bin/ruff" check .
# The layers of docs/architecture.md (contracts in pyproject.toml).
"$VENV/bin/lint-imports"
# Most tests wait on sockets and processes, not the CPU: four workers on two cores, each test
# file on one worker (its module-scoped servers start once). BRIDGE_TEST_WORKERS=0 runs serially.
WORKERS="${BRIDGE_TEST_WORKERS:-4}"
if [ "$WORKERS" = "0" ]; then
  "$VENV/bin/python" -m pytest "$@"
else
  "$VENV/bin/python" -m pytest -n "$WORKERS" --dist loadfile "$@"
fi
