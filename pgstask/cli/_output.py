"""What the CLI prints: aligned tables, ``key: value`` blocks, JSON, and short cell texts.

Human output goes to stdout as plain text (no colours, no external libraries) so it can be piped
and grepped; ``--json`` output is ``json.dumps(…, default=str)`` of the same data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

# Defined beside ``OutcomeKind``; the CLI tells outcomes in these words.
from pgstask.runtime.runner import OUTCOME_WORDS as OUTCOME_WORDS
from pgstask.runtime.runner import describe_outcomes as describe_outcomes

ELLIPSIS = "…"


def print_json(value: Any, out: TextIO) -> None:
    """``value`` as indented JSON; datetimes, UUIDs and paths as strings."""
    out.write(json.dumps(value, default=str, ensure_ascii=False, indent=2) + "\n")


def cell(value: Any, width: int | None = None) -> str:
    """One table cell: ``-`` for None, short times, one line, cut to ``width`` characters."""
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, dt.datetime):
        text = when(value)
    elif isinstance(value, Mapping | list):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    text = " ".join(text.split())
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 0)] + ELLIPSIS
    return text


def when(value: dt.datetime | None) -> str:
    """A timestamp in the local time zone to the second, ``-`` for None."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO, *, empty: str
) -> None:
    """Left-aligned columns separated by two spaces; numbers are right-aligned."""
    texts = [[cell(v) for v in row] for row in rows]
    if not texts:
        out.write(empty + "\n")
        return
    widths = [len(h) for h in headers]
    numeric = [True] * len(headers)
    for row in texts:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
            if text != "-" and not _is_number(text):
                numeric[i] = False

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    out.write(line(list(headers)) + "\n")
    for row in texts:
        out.write(line(row) + "\n")


def fields(pairs: Iterable[tuple[str, Any]], out: TextIO) -> None:
    """A ``key: value`` block with the values aligned."""
    items = [(k, cell(v)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    for key, text in items:
        out.write(f"{(key + ':').ljust(width + 1)} {text}\n")


def plural(count: int, noun: str) -> str:
    """``1 task``, ``3 tasks``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _is_number(text: str) -> bool:
    try:
        float(text.replace("%", ""))
    except ValueError:
        return False
    return True
