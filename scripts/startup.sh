#!/usr/bin/env bash
# One-command start for dify-openai-bridge: make the virtualenv, install the project into it
# (only when pyproject.toml changed), then hand over to `dify-bridge start`, which starts the
# bridge and optionally a cloudflared quick tunnel and/or the Dify compose stack, and stops
# them all on Ctrl-C / SIGTERM (bridge/launch/, on Linux, macOS and Windows alike).
# Written for bash >= 3.2 (macOS /bin/bash).
set -euo pipefail

PROG=$(basename "$0")
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BRIDGE_VENV:-$REPO_ROOT/.venv}
BRIDGE_BIN="$VENV/bin/dify-bridge"

usage() {
  cat <<EOF
Usage: $PROG [--install-only] [dify-bridge start options] [-- extra 'dify-bridge serve' args]

Prepare the virtualenv (create it, install the project when pyproject.toml changed), then run
'dify-bridge start' with the other options: --host, --port, --config, --dsl FILE [--model NAME],
--tunnel, --with-dify, --keep-dify (all of them are described below).

  --install-only   prepare the virtualenv, then exit
  -h, --help       show this help

Without DIFY_API_URL (and without --with-dify) the bridge runs in demo mode: it serves the
built-in Dify emulator with the apps in dify-dsl/, and model "o1" answers "喵" (its reasoning
shows the Code node's output and its usage is 0: the emulator runs no LLM).

Environment of this script:
  BRIDGE_VENV              virtualenv to use/create (default: <repo>/.venv)
  BRIDGE_PYTHON            interpreter used to create it (default: first python3.x >= 3.11)
  BRIDGE_SKIP_INSTALL=1    never run pip (pre-provisioned environments)
  BRIDGE_CLOUDFLARED_URL   with --tunnel and no cloudflared: download it from this URL (a
                           mirror) instead of its GitHub release; it is still checked against
                           the release's SHA-256 (or BRIDGE_CLOUDFLARED_SHA256)
EOF
}

log() { printf '[startup] %s\n' "$*" >&2; }
die() { printf '[startup] error: %s\n' "$*" >&2; exit 1; }

# Only the options of this wrapper are read here; everything else is `dify-bridge start`'s.
INSTALL_ONLY=0
HELP=0
for arg in "$@"; do
  case "$arg" in
    --) break ;;
    --install-only) INSTALL_ONLY=1 ;;
    -h|--help) HELP=1 ;;
  esac
done
if [ "$HELP" = 1 ]; then
  usage
  if [ -x "$BRIDGE_BIN" ]; then
    printf '\nOptions of dify-bridge start:\n\n'
    "$BRIDGE_BIN" start --help
  else
    printf '\nRun %s once to install the bridge, then see: dify-bridge start --help\n' "$PROG"
  fi
  exit 0
fi
ARGS=()
PASSING=0  # after --: the rest belongs to `serve`, untouched
for arg in "$@"; do
  [ "$arg" = -- ] && PASSING=1
  if [ "$PASSING" = 1 ] || [ "$arg" != --install-only ]; then ARGS+=("$arg"); fi
done

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

find_python() {
  local cand
  for cand in ${BRIDGE_PYTHON:-} python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$cand"
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------- virtualenv
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  [ "${BRIDGE_SKIP_INSTALL:-0}" = 1 ] && die "BRIDGE_SKIP_INSTALL=1 but $VENV has no bin/python"
  BASE_PY=$(find_python) || die "Python >= 3.11 is needed to create $VENV (set BRIDGE_PYTHON=/path/to/python3.11+)"
  log "creating virtualenv $VENV with $BASE_PY"
  "$BASE_PY" -m venv "$VENV" || die "could not create a virtualenv at $VENV"
fi
# Reinstall only when pyproject.toml (deps, entry points) changed: the install is editable,
# so code changes need nothing.
STAMP="$VENV/.dify-bridge-install.sha256"
WANT="$(sha256_of "$REPO_ROOT/pyproject.toml") $REPO_ROOT"
if [ "${BRIDGE_SKIP_INSTALL:-0}" != 1 ]; then
  if [ ! -x "$BRIDGE_BIN" ] || [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    log "installing the project into $VENV (pip install -e .)"
    "$PY" -m pip install --disable-pip-version-check -q -e "$REPO_ROOT" ||
      die "pip install -e $REPO_ROOT failed (see above)"
    printf '%s\n' "$WANT" >"$STAMP"
  fi
fi
if [ "$INSTALL_ONLY" = 1 ]; then
  log "virtualenv ready: $VENV"
  exit 0
fi
[ -x "$BRIDGE_BIN" ] || die "$BRIDGE_BIN not found (was the project installed into $VENV?)"

exec "$BRIDGE_BIN" start ${ARGS[@]+"${ARGS[@]}"}
