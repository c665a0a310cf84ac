"""``python -m pgstask``: the ``pgstask`` command."""

from __future__ import annotations

import sys

from pgstask.cli import main

if __name__ == "__main__":
    sys.exit(main())
