#!/usr/bin/env bash
# Set up (idempotent), load the demo shop into the embedded SQLite store, serve on :8000.
#   OTKLIK_DEMO_CUSTOMERS (default 2000), OTKLIK_HOST (127.0.0.1), OTKLIK_PORT (8000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export OTKLIK_DATABASE_URL="${OTKLIK_DATABASE_URL:-sqlite:///./var/otklik.db}"
.venv/bin/otklik migrate
.venv/bin/otklik demo --customers "${OTKLIK_DEMO_CUSTOMERS:-2000}" --if-empty
exec .venv/bin/otklik serve --host "${OTKLIK_HOST:-127.0.0.1}" --port "${OTKLIK_PORT:-8000}"
