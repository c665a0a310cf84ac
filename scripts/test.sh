#!/usr/bin/env bash
# Everything CI checks, locally: lint, format, types, tests. Arguments go to pytest.
#   bash scripts/test.sh                    # the whole suite
#   bash scripts/test.sh tests/test_schema.py -x
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q -e ".[dev]"

# The dashboard tests drive a real headless Chromium: Debian's package, never a browser
# downloaded by `playwright install`. PGSTASK_CHROMIUM names another binary.
chromium="${PGSTASK_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    if [ -z "${PGSTASK_CHROMIUM:-}" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "scripts/test.sh: installing Debian's chromium for the dashboard tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }
    else
        echo "scripts/test.sh: the dashboard tests need Chromium at $chromium." >&2
        echo "  Install it (Debian/Ubuntu: sudo apt-get install chromium), or set" >&2
        echo "  PGSTASK_CHROMIUM to the path of a Chromium binary, then run this again." >&2
        exit 1
    fi
fi

.venv/bin/ruff check pgstask tests
.venv/bin/ruff format --check pgstask tests
.venv/bin/mypy

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests (exit 5); treating that as a failure" >&2
    exit 1
fi
exit "$status"
