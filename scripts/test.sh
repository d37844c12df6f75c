#!/usr/bin/env bash
# Runs the whole test suite against a real Redis.
# Uses $REDIS_URL if set, else redis://127.0.0.1:6379; if nothing answers there, starts a
# throw-away redis-server on a free port (and stops it afterwards), or explains how to
# get one. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv

redis_ping() { # url
  "$VENV/bin/python" - "$1" <<'PY'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
}

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
TMP_REDIS_DIR=""
cleanup() {
  if [ -n "$TMP_REDIS_DIR" ]; then
    redis-cli -p "$TMP_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$TMP_REDIS_DIR"
  fi
}
trap cleanup EXIT

if ! redis_ping "$REDIS_URL"; then
  if command -v redis-server >/dev/null 2>&1; then
    TMP_REDIS_PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    TMP_REDIS_DIR=$(mktemp -d)
    echo "No Redis at $REDIS_URL; starting a throw-away redis-server on port $TMP_REDIS_PORT"
    redis-server --port "$TMP_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$TMP_REDIS_DIR" --daemonize yes --logfile "$TMP_REDIS_DIR/redis.log" >/dev/null
    export REDIS_URL="redis://127.0.0.1:$TMP_REDIS_PORT/0"
    for _ in $(seq 50); do redis_ping "$REDIS_URL" && break; sleep 0.1; done
    redis_ping "$REDIS_URL" || { echo "redis-server did not start; see $TMP_REDIS_DIR/redis.log"; exit 1; }
  else
    echo "The tests need a real Redis 7 and none answers at $REDIS_URL." >&2
    echo "Start one (e.g. 'apt-get install redis-server && redis-server --daemonize yes')," >&2
    echo "or point REDIS_URL at one." >&2
    exit 1
  fi
fi

# Headless Chromium opens /docs in tests/api/test_docs_page.py (skipped, with the reason
# printed, where it is missing and cannot be installed).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium for the /docs page test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "could not install chromium; the /docs browser test will be skipped"
fi

# promtool (Debian package 'prometheus') lints the /metrics exposition and checks the alert
# rules in tests/ops (skipped, with the reason printed, where it cannot be installed).
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing promtool (package prometheus) for the metrics and alert-rule tests"
    export DEBIAN_FRONTEND=noninteractive
    (apt-get install -y -qq --no-install-recommends prometheus \
      || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)) \
      >/dev/null 2>&1 || echo "could not install promtool; the Prometheus lint tests will be skipped"
  else
    echo "promtool not found (needs root and apt-get to install): Prometheus lint tests will be skipped"
  fi
fi

"$VENV/bin/ruff" check .
"$VENV/bin/mypy"  # strict over gateway/ and adapters/ ([tool.mypy] in pyproject.toml)
"$VENV/bin/python" -m pytest -q -rs -p no:cacheprovider "$@"
