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
