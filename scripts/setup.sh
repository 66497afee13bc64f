#!/usr/bin/env bash
# Prepare a Debian 12 machine for developing and testing otklik.
# Idempotent and safe to re-run: every step is skipped when already done.
#
#   - Debian packages (apt-get update only when something is missing):
#       postgresql (tests start their own throwaway cluster), redis-server,
#       nodejs + npm (only when node/npm are not on PATH; node >= 18 needed),
#       chromium (only when /usr/bin/chromium is missing): the browser the web console tests
#       drive through Python playwright's bundled driver with executable_path=/usr/bin/chromium.
#       `playwright install` is never run: it downloads a browser build, which is not allowed.
#   - .venv with `pip install -e '.[test]'` (redone when pyproject.toml changes)
#   - npm deps of the Node SDK tests in tests/sdk/node
#
# Env: OTKLIK_SETUP_FORCE=1 redoes the pip/npm steps; PYTHON picks the interpreter.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
PYTHON="${PYTHON:-python3}"
FORCE="${OTKLIK_SETUP_FORCE:-0}"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

# Run a command with its output kept in a temp file, shown only when it fails.
quiet() {
  local out rc=0
  out="$(mktemp)"
  "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    rm -f "$out"
    die "failed ($rc): $*"
  fi
  rm -f "$out"
}

hash_files() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- system packages
pg_bindir() { { ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true; } | sort -V | tail -1; }

missing=()
PG_BIN="$(pg_bindir)"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ] \
   || ! id -u postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
elif ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
    die "missing Debian packages (${missing[*]}) and not root / no sudo to install them"
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  quiet "${SUDO[@]}" apt-get update
  quiet "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
    --no-install-recommends "${missing[@]}"
  PG_BIN="$(pg_bindir)"
else
  log "system packages present (postgres: ${PG_BIN}, node: $(node --version), redis: $(command -v redis-server), chromium: /usr/bin/chromium)"
fi

[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found after install"
command -v node >/dev/null 2>&1 || die "node not found after install"
[ -x /usr/bin/chromium ] || die "chromium not found at /usr/bin/chromium after install"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 18 ] || die "node >= 18 needed, found $(node --version)"

# ---------------------------------------------------------------- python venv
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python >= 3.11 needed, found $("$PYTHON" --version 2>&1)"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv ($("$PYTHON" --version 2>&1))"
  "$PYTHON" -m venv .venv
fi
PY_STAMP=".venv/.otklik-setup-stamp"
py_want="$(hash_files pyproject.toml)-$(.venv/bin/python --version 2>&1)"
if [ "$FORCE" = 1 ] || [ "$(cat "$PY_STAMP" 2>/dev/null || true)" != "$py_want" ] \
   || ! .venv/bin/python -c 'import otklik, pytest' >/dev/null 2>&1; then
  log "pip install -e '.[test]'"
  quiet .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  quiet .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  printf '%s\n' "$py_want" > "$PY_STAMP"
else
  log "python deps up to date (.venv)"
fi

# ---------------------------------------------------------------- node SDK test deps
NODE_DIR="tests/sdk/node"
if [ -f "$NODE_DIR/package.json" ]; then
  NPM_STAMP="$NODE_DIR/node_modules/.otklik-setup-stamp"
  npm_want="$(hash_files "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json")-$(node --version)"
  if [ "$FORCE" = 1 ] || [ "$(cat "$NPM_STAMP" 2>/dev/null || true)" != "$npm_want" ]; then
    if [ -f "$NODE_DIR/package-lock.json" ]; then
      log "npm ci in $NODE_DIR"
      (cd "$NODE_DIR" && quiet npm ci --no-audit --no-fund)
    else
      log "npm install in $NODE_DIR (no lockfile)"
      (cd "$NODE_DIR" && quiet npm install --no-audit --no-fund)
    fi
    printf '%s\n' "$npm_want" > "$NPM_STAMP"
  else
    log "node deps up to date ($NODE_DIR/node_modules)"
  fi
fi

log "done ($ROOT)"
