#!/usr/bin/env bash
# One-command start for dify-openai-bridge: venv + install (only when needed), the bridge,
# and optionally a cloudflared quick tunnel and/or the official Dify docker compose stack.
# Everything started here is stopped again on Ctrl-C / SIGTERM / exit.
# Written for bash >= 3.2 (macOS /bin/bash): no `wait -n`, no associative arrays.
set -euo pipefail

PROG=$(basename "$0")
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<EOF
Usage: $PROG [options] [-- extra 'dify-bridge serve' args]

Start the Dify -> OpenAI bridge (creating/updating its virtualenv when needed).

Options:
  --host HOST      address to listen on (default: \$BRIDGE_HOST or 127.0.0.1)
  --port PORT      port to listen on (default: \$BRIDGE_PORT or 8000)
  --config FILE    bridge YAML config (default: \$BRIDGE_CONFIG)
  --dsl FILE       provision this Dify DSL file into the Dify at DIFY_API_URL first (import,
                   publish, API key; needs DIFY_ADMIN_EMAIL / DIFY_ADMIN_PASSWORD), write the
                   config (--config, else ~/.config/dify-bridge/bridge.yaml) and serve it.
                   Repeatable.
  --model NAME     model name for the --dsl given before it (default: the app's name)
  --tunnel         also start a cloudflared quick tunnel and print what to paste into FastGPT.
                   A public URL is never open: without BRIDGE_API_KEYS, a key is generated
                   (kept in \$BRIDGE_DATA_DIR/tunnel-api-key, mode 0600) and required
  --with-dify      also start the official Dify docker compose stack (needs a Docker engine)
                   and point the bridge at it; with DIFY_ADMIN_EMAIL / DIFY_ADMIN_PASSWORD set
                   (and no --dsl), provision dify-dsl/Cat_LLM.yml into it as model o1
  --keep-dify      with --with-dify: leave the Dify stack running on exit
  --install-only   prepare the virtualenv, then exit
  -h, --help       show this help

Without DIFY_API_URL (and without --with-dify) the bridge runs in demo mode: it serves the
built-in Dify emulator with the apps in dify-dsl/, and model "o1" answers "喵".

Environment (besides the bridge's own, see docker/README.md):
  BRIDGE_VENV              virtualenv to use/create (default: <repo>/.venv)
  BRIDGE_PYTHON            interpreter used to create it (default: first python3.x >= 3.11)
  BRIDGE_SKIP_INSTALL=1    never run pip (pre-provisioned environments)
  BRIDGE_START_TIMEOUT     seconds to wait for /healthz (default 60)
  BRIDGE_TUNNEL_TIMEOUT    seconds to wait for the trycloudflare URL (default 60)
  BRIDGE_STOP_GRACE        seconds between SIGTERM and SIGKILL on shutdown (default 10)
  BRIDGE_CLOUDFLARED       path of a cloudflared binary to use
  BRIDGE_CLOUDFLARED_VERSION  release to download when cloudflared is missing (default latest)
  BRIDGE_DIFY_VERSION      Dify release for --with-dify (default 1.13.2)
  BRIDGE_DIFY_PORT         host port of Dify's nginx for --with-dify (default 80)
  BRIDGE_DATA_DIR          where --tunnel keeps its generated key (default: ./data, next to
                           the default SQLite store)
  DIFY_ADMIN_EMAIL, DIFY_ADMIN_PASSWORD  Dify admin login for --dsl (a fresh Dify is set up
                           with them); DIFY_INIT_PASSWORD if the Dify server has INIT_PASSWORD
EOF
}

log() { printf '[startup] %s\n' "$*" >&2; }
die() { printf '[startup] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- arguments
HOST=${BRIDGE_HOST:-127.0.0.1}
PORT=${BRIDGE_PORT:-8000}
CONFIG=${BRIDGE_CONFIG:-}
TUNNEL=0
WITH_DIFY=0
KEEP_DIFY=0
INSTALL_ONLY=0
EXTRA_ARGS=()
DSL_ARGS=()      # `dify-bridge provision` arguments: the DSL files and their --model names
DSL_COUNT=0

# `provision` pairs each --model with a DSL file by position, so a --model must follow its --dsl.
MODEL_SEEN=0
MODEL_FOR_DSL() {
  MODEL_SEEN=$((MODEL_SEEN + 1))
  [ "$MODEL_SEEN" -le "$DSL_COUNT" ] || die "--model $1 needs a --dsl FILE before it (see --help)"
  [ "$MODEL_SEEN" -eq "$DSL_COUNT" ] ||
    die "--model $1: give each --dsl its --model right after it, or leave the later ones without"
  DSL_ARGS+=(--model "$1")
}

need_value() { if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi; }

while [ "$#" -gt 0 ]; do
  case "$1" in
    --host) need_value "$@"; HOST=$2; shift 2 ;;
    --host=*) HOST=${1#*=}; shift ;;
    --port) need_value "$@"; PORT=$2; shift 2 ;;
    --port=*) PORT=${1#*=}; shift ;;
    --config) need_value "$@"; CONFIG=$2; shift 2 ;;
    --config=*) CONFIG=${1#*=}; shift ;;
    --dsl) need_value "$@"; DSL_ARGS+=("$2"); DSL_COUNT=$((DSL_COUNT + 1)); shift 2 ;;
    --dsl=*) DSL_ARGS+=("${1#*=}"); DSL_COUNT=$((DSL_COUNT + 1)); shift ;;
    --model) need_value "$@"; MODEL_FOR_DSL "$2"; shift 2 ;;
    --model=*) MODEL_FOR_DSL "${1#*=}"; shift ;;
    --tunnel) TUNNEL=1; shift ;;
    --with-dify) WITH_DIFY=1; shift ;;
    --keep-dify) KEEP_DIFY=1; shift ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA_ARGS=("$@"); break ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

case "$PORT" in
  ''|*[!0-9]*) die "--port must be a number, got '$PORT'" ;;
esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then die "--port must be 1-65535, got $PORT"; fi

START_TIMEOUT=${BRIDGE_START_TIMEOUT:-60}
TUNNEL_TIMEOUT=${BRIDGE_TUNNEL_TIMEOUT:-60}
STOP_GRACE=${BRIDGE_STOP_GRACE:-10}
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/dify-bridge
VENV=${BRIDGE_VENV:-$REPO_ROOT/.venv}
MODEL=${BRIDGE_MODEL_NAME:-o1}

# Where we (and cloudflared) reach the bridge: a wildcard bind is reachable on loopback.
case "$HOST" in
  0.0.0.0|::|'[::]'|'') LOCAL_HOST=127.0.0.1 ;;
  *:*) LOCAL_HOST="[${HOST#[}"; LOCAL_HOST="${LOCAL_HOST%]}]" ;;  # bare IPv6 needs brackets
  *) LOCAL_HOST=$HOST ;;
esac
LOCAL_URL="http://$LOCAL_HOST:$PORT"

# ---------------------------------------------------------------- process bookkeeping
PIDS=()          # process-group leaders we started, in start order
NAP_PID=''       # the short sleep of the current wait loop
DIFY_DIR=''      # set when we brought the Dify stack up ourselves
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dify-bridge.XXXXXX")
CLEANED=0

group_alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }

stop_all() {
  [ "$CLEANED" = 1 ] && return 0
  CLEANED=1
  local i pid waited
  if [ -n "$NAP_PID" ]; then kill "$NAP_PID" 2>/dev/null || true; fi
  # Newest first: the tunnel goes before the bridge it points at.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    waited=0
    while group_alive "$pid" && [ "$waited" -lt $((STOP_GRACE * 10)) ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if group_alive "$pid"; then
      log "pid $pid did not stop within ${STOP_GRACE}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  if [ -n "$DIFY_DIR" ] && [ "$KEEP_DIFY" = 0 ]; then
    log "stopping the Dify stack (use --keep-dify to leave it running)"
    (cd "$DIFY_DIR" && docker compose stop) >&2 || true
  fi
  rm -rf "$RUN_DIR"
}

on_signal() {
  log "$1 received, stopping"
  trap - INT TERM
  stop_all
  [ "$1" = INT ] && exit 130
  exit 143
}
trap 'stop_all' EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

# Start "$@" in the background in its own process group, so one `kill -- -PGID` also reaches
# its children (uvicorn workers/reloader, a wrapper script's children). Job control is on only
# while forking: that is what creates the group, and leaving it off keeps bash from printing
# job notices ("[1] Terminated") on shutdown.
start_bg() {
  set -m
  "$@" &
  LAST_PID=$!
  set +m
  PIDS+=("$LAST_PID")
}

# Sleep in a way that lets a trapped signal interrupt us at once (a foreground `sleep` would not).
nap() {
  sleep "$1" &
  NAP_PID=$!
  wait "$NAP_PID" 2>/dev/null || true
  kill "$NAP_PID" 2>/dev/null || true
  NAP_PID=''
}

# ---------------------------------------------------------------- helpers
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# download URL DEST: curl, wget or python, whichever exists. Fails (non-zero) quietly.
download() {
  local tmp="$2.part"
  rm -f "$tmp"
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 --connect-timeout 15 -o "$tmp" "$1" || { rm -f "$tmp"; return 1; }
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 15 -O "$tmp" "$1" || { rm -f "$tmp"; return 1; }
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$1" "$tmp" <<'PY' || { rm -f "$tmp"; return 1; }
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=30) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)
PY
  else
    return 1
  fi
  mv "$tmp" "$2"
}

# http_status URL -> prints the HTTP status (000 when nothing answers). Uses the venv's python
# (always there once the venv exists) so curl is not a requirement.
http_status() {
  "$PY" - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

port_in_use() {
  "$PY" - "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1].strip("[]"), int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=1):
        sys.exit(0)  # something answers: in use
except OSError:
    sys.exit(1)
PY
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

# ---------------------------------------------------------------- fail-fast checks
# --with-dify with admin credentials: the acceptance path of issue 12, Cat_LLM as model o1.
if [ "$WITH_DIFY" = 1 ] && [ "$DSL_COUNT" = 0 ] &&
   [ -n "${DIFY_ADMIN_EMAIL:-}" ] && [ -n "${DIFY_ADMIN_PASSWORD:-}" ]; then
  DSL_ARGS=("$REPO_ROOT/dify-dsl/Cat_LLM.yml" --model o1)
  DSL_COUNT=1
fi
if [ "$DSL_COUNT" -gt 0 ]; then
  [ -n "${DIFY_API_URL:-}" ] || [ "$WITH_DIFY" = 1 ] ||
    die "--dsl needs a Dify to provision into: set DIFY_API_URL (e.g. http://127.0.0.1/v1) or use --with-dify"
  [ -n "${DIFY_ADMIN_EMAIL:-}" ] && [ -n "${DIFY_ADMIN_PASSWORD:-}" ] ||
    die "--dsl needs the Dify admin login: set DIFY_ADMIN_EMAIL and DIFY_ADMIN_PASSWORD"
  i=0
  while [ "$i" -lt "${#DSL_ARGS[@]}" ]; do
    if [ "${DSL_ARGS[i]}" = --model ]; then i=$((i + 2)); continue; fi
    [ -f "${DSL_ARGS[i]}" ] || die "--dsl ${DSL_ARGS[i]}: no such file"
    i=$((i + 1))
  done
  # The written config holds keys: keep it out of the working tree unless asked otherwise.
  CONFIG=${CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/dify-bridge/bridge.yaml}
fi

if [ "$WITH_DIFY" = 1 ]; then
  command -v docker >/dev/null 2>&1 ||
    die "--with-dify needs Docker, but 'docker' is not installed; point DIFY_API_URL at an existing Dify instead"
  docker info >/dev/null 2>&1 ||
    die "--with-dify needs a running Docker engine, but 'docker info' got no answer from one; start Docker or set DIFY_API_URL to an existing Dify"
  docker compose version >/dev/null 2>&1 ||
    die "--with-dify needs the 'docker compose' plugin, which is not installed"
fi

CLOUDFLARED=''
resolve_cloudflared() {
  if [ -n "${BRIDGE_CLOUDFLARED:-}" ]; then
    [ -x "$BRIDGE_CLOUDFLARED" ] || die "BRIDGE_CLOUDFLARED=$BRIDGE_CLOUDFLARED is not an executable"
    CLOUDFLARED=$BRIDGE_CLOUDFLARED; return
  fi
  if command -v cloudflared >/dev/null 2>&1; then
    CLOUDFLARED=$(command -v cloudflared); return
  fi
  local os arch asset version url bin
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) die "no cloudflared on PATH and no release binary for $(uname -s); install it: https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/" ;;
  esac
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    armv7l|armv6l|arm) arch=arm ;;
    i386|i686) arch=386 ;;
    *) die "no cloudflared on PATH and no release binary for $(uname -m); install it: https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/" ;;
  esac
  asset="cloudflared-$os-$arch"
  [ "$os" = darwin ] && asset="$asset.tgz"
  version=${BRIDGE_CLOUDFLARED_VERSION:-latest}
  bin="$CACHE_DIR/cloudflared-$version-$os-$arch"
  if [ -x "$bin" ] && [ "$version" != latest ]; then CLOUDFLARED=$bin; return; fi
  # "latest" is re-used from the cache for a day, then refreshed.
  if [ -x "$bin" ] && [ -z "$(find "$bin" -mtime +0 2>/dev/null)" ]; then CLOUDFLARED=$bin; return; fi
  if [ "$version" = latest ]; then
    url="https://github.com/cloudflare/cloudflared/releases/latest/download/$asset"
  else
    url="https://github.com/cloudflare/cloudflared/releases/download/$version/$asset"
  fi
  url=${BRIDGE_CLOUDFLARED_URL:-$url}
  mkdir -p "$CACHE_DIR"
  log "cloudflared not on PATH; downloading $url"
  if ! download "$url" "$CACHE_DIR/$asset"; then
    if [ -x "$bin" ]; then
      log "download failed; using the cached $bin"
      CLOUDFLARED=$bin; return
    fi
    die "cannot download cloudflared from $url (no network?). Install cloudflared and put it on PATH (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/), or set BRIDGE_CLOUDFLARED=/path/to/cloudflared, then retry"
  fi
  if [ "$os" = darwin ]; then
    tar -xzf "$CACHE_DIR/$asset" -C "$CACHE_DIR" cloudflared && mv "$CACHE_DIR/cloudflared" "$bin"
    rm -f "$CACHE_DIR/$asset"
  else
    mv "$CACHE_DIR/$asset" "$bin"
  fi
  chmod +x "$bin"
  "$bin" --version >/dev/null 2>&1 || die "downloaded $bin does not run on this machine"
  CLOUDFLARED=$bin
}
[ "$TUNNEL" = 1 ] && resolve_cloudflared

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
  if [ ! -x "$VENV/bin/dify-bridge" ] || [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
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
BRIDGE_BIN="$VENV/bin/dify-bridge"
[ -x "$BRIDGE_BIN" ] || die "$BRIDGE_BIN not found (was the project installed into $VENV?)"

# ---------------------------------------------------------------- Dify (docker compose)
if [ "$WITH_DIFY" = 1 ]; then
  DIFY_VERSION=${BRIDGE_DIFY_VERSION:-1.13.2}
  DIFY_PORT=${BRIDGE_DIFY_PORT:-80}
  dir="$CACHE_DIR/dify-$DIFY_VERSION/docker"
  if [ ! -f "$dir/docker-compose.yaml" ]; then
    url="https://codeload.github.com/langgenius/dify/tar.gz/refs/tags/$DIFY_VERSION"
    log "fetching Dify $DIFY_VERSION's docker/ folder from $url"
    mkdir -p "$CACHE_DIR/dify-$DIFY_VERSION"
    download "$url" "$CACHE_DIR/dify-$DIFY_VERSION.tar.gz" ||
      die "cannot download Dify $DIFY_VERSION from $url (no network?)"
    tar -xzf "$CACHE_DIR/dify-$DIFY_VERSION.tar.gz" -C "$CACHE_DIR/dify-$DIFY_VERSION" \
      --strip-components=1 "dify-$DIFY_VERSION/docker" ||
      die "the Dify archive has no docker/ folder"
    rm -f "$CACHE_DIR/dify-$DIFY_VERSION.tar.gz"
  fi
  [ -f "$dir/.env" ] || cp "$dir/.env.example" "$dir/.env"
  export EXPOSE_NGINX_PORT=$DIFY_PORT
  if [ -n "$(cd "$dir" && docker compose ps -q --status running 2>/dev/null)" ]; then
    log "Dify stack in $dir is already running; leaving it running on exit"
  else
    log "starting Dify $DIFY_VERSION (docker compose up -d in $dir)"
    (cd "$dir" && docker compose up -d) >&2 || die "docker compose up failed in $dir"
    DIFY_DIR=$dir
  fi
  export DIFY_API_URL="http://127.0.0.1:$DIFY_PORT/v1"
fi

# ---------------------------------------------------------------- bridge
if port_in_use "$LOCAL_HOST" "$PORT"; then
  die "port $PORT on $LOCAL_HOST is already in use; pick another with --port"
fi

if [ "$WITH_DIFY" = 1 ]; then
  # Dify's nginx answers 502 while the API boots; any answer below 500 from /v1 means it is up.
  log "waiting for Dify at $DIFY_API_URL (up to ${BRIDGE_DIFY_TIMEOUT:-300}s)"
  deadline=$((SECONDS + ${BRIDGE_DIFY_TIMEOUT:-300}))
  until code=$(http_status "$DIFY_API_URL/parameters") && [ "$code" != 000 ] && [ "$code" -lt 500 ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "Dify did not answer at $DIFY_API_URL in time (docker compose logs in $dir)"
    nap 2
  done
fi

PROVISIONED=0
if [ "$DSL_COUNT" -gt 0 ]; then
  log "provisioning into the Dify at $DIFY_API_URL; config: $CONFIG"
  # The key table goes to our stdout like the rest of the banner; nothing secret is in it.
  "$BRIDGE_BIN" provision ${DSL_ARGS[@]+"${DSL_ARGS[@]}"} --dify-url "$DIFY_API_URL" \
    --write-config "$CONFIG" || die "provisioning failed (see the message above); nothing was started"
  PROVISIONED=1
fi

# A quick tunnel publishes the bridge to the whole internet: models served with the server's
# own Dify key must then need a bridge key. Without BRIDGE_API_KEYS one is generated once and
# kept (0600) so FastGPT's saved key keeps working across restarts. Passthrough-only set-ups
# need nothing: there the client's own Dify app key is the secret.
GENERATED_KEY=0
if [ "$TUNNEL" = 1 ]; then
  NEEDS_KEY=$("$PY" - "$CONFIG" <<'PY' 2>/dev/null || echo unknown
import sys
from bridge.settings import load_settings
s = load_settings(sys.argv[1] or None)
managed = s.demo_mode or bool(s.dify_api_key) or any(m.app_key for m in s.models)
print("yes" if managed and not s.api_keys else "no")
PY
)
  if [ "$NEEDS_KEY" = unknown ]; then
    # The settings could not be read here (the bridge will say why); judge by the env alone.
    NEEDS_KEY=no
    if [ -z "${BRIDGE_API_KEYS:-}" ] && { [ -z "${DIFY_API_URL:-}" ] || [ -n "${DIFY_API_KEY:-}" ] || [ -n "$CONFIG" ]; }; then
      NEEDS_KEY=yes
    fi
  fi
  if [ "$NEEDS_KEY" = yes ]; then
    DATA_DIR=${BRIDGE_DATA_DIR:-$PWD/data}
    KEY_FILE="$DATA_DIR/tunnel-api-key"
    (umask 077 && mkdir -p "$DATA_DIR") || die "cannot create $DATA_DIR for the tunnel's API key (set BRIDGE_DATA_DIR)"
    TUNNEL_KEY=$(tr -d '[:space:]' <"$KEY_FILE" 2>/dev/null || true)
    case "$TUNNEL_KEY" in
      sk-??????????????????????*) ;;  # a key we made before: keep it
      *)
        TUNNEL_KEY=$("$PY" -c 'import secrets; print("sk-" + secrets.token_urlsafe(32))') ||
          die "could not generate an API key for the tunnel"
        (umask 077 && printf '%s\n' "$TUNNEL_KEY" >"$KEY_FILE") || die "cannot write $KEY_FILE"
        log "generated an API key for the public tunnel: $KEY_FILE"
        ;;
    esac
    chmod 600 "$KEY_FILE" 2>/dev/null || true
    export BRIDGE_API_KEYS=$TUNNEL_KEY
    GENERATED_KEY=1
  fi
fi

SERVE_ARGS=(serve --host "$HOST" --port "$PORT")
[ -n "$CONFIG" ] && SERVE_ARGS+=(--config "$CONFIG")
log "starting: $BRIDGE_BIN ${SERVE_ARGS[*]} ${EXTRA_ARGS[*]+${EXTRA_ARGS[*]}}"
start_bg "$BRIDGE_BIN" "${SERVE_ARGS[@]}" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
BRIDGE_PID=$LAST_PID

deadline=$((SECONDS + START_TIMEOUT))
while :; do
  if ! kill -0 "$BRIDGE_PID" 2>/dev/null; then
    rc=0; wait "$BRIDGE_PID" || rc=$?
    die "the bridge exited during start-up (exit code $rc); see its output above"
  fi
  [ "$(http_status "$LOCAL_URL/healthz")" = 200 ] && break
  [ "$SECONDS" -lt "$deadline" ] || die "the bridge did not answer $LOCAL_URL/healthz within ${START_TIMEOUT}s"
  nap 0.3
done

# Which key a client should send, and why. Ask the bridge's own settings loader first (it sees
# the config file and every env var exactly as `serve` does); fall back to the env vars alone.
KEY_INFO=$("$PY" - "$CONFIG" <<'PY' 2>/dev/null || true
import sys
from bridge.settings import load_settings
s = load_settings(sys.argv[1] or None)
if s.api_keys:
    key, note = s.api_keys[0], "the first of BRIDGE_API_KEYS / api_keys"
elif s.demo_mode:
    key, note = "any-text", "demo mode (built-in emulator, no BRIDGE_API_KEYS): any text works"
elif s.dify_api_key or s.models or not s.passthrough:
    key, note = "any-text", ("no BRIDGE_API_KEYS: the configured models are open, any text "
                             "works (set BRIDGE_API_KEYS before sharing a public URL)")
else:
    key, note = "app-YOUR-DIFY-APP-KEY", ("passthrough mode: your Dify app's API key "
                                         "(app-...), forwarded to Dify")
# A config with models (e.g. written by `provision`) serves those, not BRIDGE_MODEL_NAME.
model = s.models[0].id if s.models and not s.dify_api_key else s.model_name
print(key, model, note, sep="\t")
PY
)
if [ "$GENERATED_KEY" = 1 ]; then
  KEY=$TUNNEL_KEY
  KEY_NOTE="required: generated for the public tunnel, kept in $KEY_FILE (set BRIDGE_API_KEYS to choose your own)"
  [ -z "${DIFY_API_URL:-}" ] && KEY_NOTE="demo mode (built-in emulator); $KEY_NOTE"
  if [ -n "$KEY_INFO" ]; then IFS=$'\t' read -r _ MODEL _ <<<"$KEY_INFO"; fi
elif [ -n "$KEY_INFO" ]; then
  IFS=$'\t' read -r KEY MODEL KEY_NOTE <<<"$KEY_INFO"
elif [ -n "${BRIDGE_API_KEYS:-}" ]; then
  KEY=$(printf '%s' "${BRIDGE_API_KEYS%%,*}" | tr -d '[:space:]')
  KEY_NOTE="the first of BRIDGE_API_KEYS"
elif [ -z "${DIFY_API_URL:-}" ]; then
  KEY="any-text"
  KEY_NOTE="demo mode (built-in emulator, no BRIDGE_API_KEYS): any text works"
elif [ -n "${DIFY_API_KEY:-}" ] ||
     [ "$(printf '%s' "${BRIDGE_PASSTHROUGH:-true}" | tr '[:upper:]' '[:lower:]')" = false ]; then
  KEY="any-text"
  KEY_NOTE="no BRIDGE_API_KEYS: the configured models are open, any text works (set BRIDGE_API_KEYS before sharing a public URL)"
else
  KEY="app-YOUR-DIFY-APP-KEY"
  KEY_NOTE="passthrough mode: your Dify app's API key (app-...), forwarded to Dify"
fi

if [ "$PROVISIONED" = 1 ] && [ "${#KEY}" -gt 12 ]; then
  # The generated key stays in the 0600 config; show only enough to recognise it.
  KEY="${KEY:0:3}…${KEY: -4}"
  KEY_NOTE="$KEY_NOTE; the full key is under api_keys in $CONFIG"
fi

curl_line() {
  printf "curl -sS %s/v1/chat/completions -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}'\n" "$1" "$KEY" "$MODEL"
}

echo
echo "Bridge listening on http://$LOCAL_HOST:$PORT (bound to $HOST; pid $BRIDGE_PID)"
if [ -n "${DIFY_API_URL:-}" ]; then
  echo "  Dify API : $DIFY_API_URL"
else
  echo "  Dify API : the built-in emulator, in the same process (demo mode: apps from dify-dsl/, model $MODEL answers 喵)"
fi
echo "  OpenAI base URL: $LOCAL_URL/v1   model: $MODEL   key: $KEY ($KEY_NOTE)"
echo "  Try it:"
echo "    $(curl_line "$LOCAL_URL")"

# ---------------------------------------------------------------- tunnel
if [ "$TUNNEL" = 1 ]; then
  TUNNEL_LOG="$RUN_DIR/cloudflared.log"
  log "starting cloudflared quick tunnel ($CLOUDFLARED) -> $LOCAL_URL"
  start_bg "$CLOUDFLARED" tunnel --no-autoupdate --url "$LOCAL_URL" >"$TUNNEL_LOG" 2>&1
  TUNNEL_PID=$LAST_PID
  TUNNEL_URL=''
  deadline=$((SECONDS + TUNNEL_TIMEOUT))
  while [ -z "$TUNNEL_URL" ]; do
    # api.trycloudflare.com shows up in cloudflared's error lines; it is not our tunnel.
    TUNNEL_URL=$(grep -Eo 'https://[a-z0-9-]+\.trycloudflare\.com' "$TUNNEL_LOG" 2>/dev/null |
      grep -v '^https://api\.' | head -n 1 || true)
    [ -n "$TUNNEL_URL" ] && break
    if ! kill -0 "$TUNNEL_PID" 2>/dev/null; then
      tail -n 20 "$TUNNEL_LOG" >&2 || true
      die "cloudflared exited before printing a trycloudflare.com URL (its last lines are above)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$TUNNEL_LOG" >&2 || true
      die "no trycloudflare.com URL from cloudflared within ${TUNNEL_TIMEOUT}s (BRIDGE_TUNNEL_TIMEOUT); no network to Cloudflare?"
    fi
    nap 0.5
  done
  echo
  echo "Public tunnel: $TUNNEL_URL (it can take a few seconds to become reachable)"
  echo "FastGPT -> Account -> Third-party account -> OpenAI/OneAPI:"
  echo "  BaseUrl : $TUNNEL_URL/v1"
  echo "  Key     : $KEY   <- $KEY_NOTE"
  echo "  Model   : $MODEL (add it to FastGPT's model list, then pick it in your app)"
  echo "  Try it:"
  echo "    $(curl_line "$TUNNEL_URL")"
  log "cloudflared log: $TUNNEL_LOG"
fi

echo
echo "Press Ctrl-C to stop."
# Watch what we started; if any of it dies, stop the rest and report.
while :; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rc=0; wait "$pid" || rc=$?
      if [ "$pid" = "$BRIDGE_PID" ]; then
        die "the bridge (pid $pid) exited with code $rc"
      fi
      die "cloudflared (pid $pid) exited with code $rc; the tunnel is gone"
    fi
  done
  nap 1
done
