"""The named SQL queries of pgstask, loaded once from the ``*.sql`` files beside this module.

A file holds blocks that start with ``-- name: <entity>_<verb>``; the block's text up to the next
name is the query (comments included, so they show up in ``pg_stat_statements``).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import LiteralString

_NAME = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_NAME_LINE = re.compile(r"^--[ \t]*name[ \t]*:.*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split one file's text into ``{name: query}``.

    A duplicate name, a query without SQL and a malformed ``-- name:`` line (which would
    otherwise be swallowed into the query before it) are errors.
    """
    for line in _NAME_LINE.finditer(text):
        if not _NAME.fullmatch(line.group(0)):
            raise ValueError(f"malformed query name line {line.group(0)!r}")
    queries: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        name = match.group(1)
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        body = text[match.end() : end].strip()
        if not any(ln.strip() and not ln.lstrip().startswith("--") for ln in body.splitlines()):
            raise ValueError(f"query {name!r} is empty")
        queries[name] = body
    return queries


@functools.cache
def queries() -> dict[str, str]:
    """Every named query of every ``*.sql`` file in this package."""
    found: dict[str, str] = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, body in parse(entry.read_text(encoding="utf-8")).items():
            if name in found:
                raise ValueError(f"query {name!r} is defined in two files")
            found[name] = body
    return found


def query(name: str) -> LiteralString:
    """The text of one named query (the files are trusted, static SQL)."""
    return queries()[name]  # mypy checks LiteralString as plain str, so no cast
