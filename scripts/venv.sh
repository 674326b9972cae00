# Sourced by scripts/serve and scripts/test: create (once) and sync (when the lock changes) ./.venv.
# Usage: . scripts/venv.sh LOCKFILE
set -euo pipefail
lock="$1"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python 3.11+ is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $("$py" --version)"
  "$py" -m venv .venv
fi
stamp=".venv/.synced-$(basename "$lock")"
want="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "== installing $lock into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$lock"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi
