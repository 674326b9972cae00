# Sourced by scripts/test: make sure PostgreSQL and Redis answer on loopback, starting them if installed.
# Override the targets with RUNTIME_TEST_PG_URL / RUNTIME_TEST_REDIS_URL. Never skips: fails loudly instead.
set -euo pipefail
export RUNTIME_TEST_PG_URL="${RUNTIME_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
export RUNTIME_TEST_REDIS_URL="${RUNTIME_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"

port_open() { .venv/bin/python - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
}
wait_port() { for _ in $(seq 1 30); do port_open "$1" "$2" && return 0; sleep 0.5; done; return 1; }

if ! port_open 127.0.0.1 6379; then
  if command -v redis-server >/dev/null; then
    echo "== starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_port 127.0.0.1 6379 || { echo "error: redis-server did not come up on 127.0.0.1:6379" >&2; exit 1; }
  else
    echo "error: no Redis on 127.0.0.1:6379 and redis-server is not installed (apt-get install redis-server)" >&2
    exit 1
  fi
fi
if ! port_open 127.0.0.1 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "== starting PostgreSQL on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    wait_port 127.0.0.1 5432 || { echo "error: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
  else
    echo "error: no PostgreSQL on 127.0.0.1:5432 and no cluster to start (apt-get install postgresql;" \
         "the tests need trust auth for user postgres and a database 'test', or set RUNTIME_TEST_PG_URL)" >&2
    exit 1
  fi
fi
