# Shared by scripts/run and scripts/test: make .venv (Python 3.11+) and install a requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
REQS="$1"
STAMP=".venv/.installed-$(basename "$REQS")"
# Reinstall only when a requirements file changed since the last install.
stale=0
[ -f "$STAMP" ] || stale=1
for f in requirements*.txt; do if [ "$f" -nt "$STAMP" ]; then stale=1; fi; done
if [ "$stale" = 1 ]; then
  .venv/bin/python -m pip install --disable-pip-version-check -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install --disable-pip-version-check -q -r "$REQS"
  touch "$STAMP"
fi
