"""Reading ``s_tasks`` rows into ``Task`` objects, so that one bad row never poisons the rest.

PostgreSQL stores values Python cannot hold: a ``timestamptz`` of ``infinity``, a BC date or
year 10000, ``meta`` nested thousands of levels deep (``RecursionError``) or holding an integer of
thousands of digits (``ValueError``). Revision 0005 refuses them on insert, but rows stored
before it, or written by an ``UPDATE`` that bypasses the statement trigger, can still hold them.
psycopg raises while it decodes such a row, and a plain ``fetchall`` would lose the whole result:
for a claim, tasks committed as running that nobody runs.

``fetch_tasks`` reads the whole result at once (the common case costs nothing more); when that
raises, it reads row by row and decodes each unreadable row column by column into an
``UnreadableTask``: what could not be read is replaced (a timestamp clamped to ``datetime.min``
or ``max``, ``meta``/``result`` as ``{"unreadable": …}``) and ``problem`` says what.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncCursor, Cursor
from psycopg.pq import Format
from psycopg.rows import RowMaker

from pgstask.task import TASK_COLUMNS, Task, UnreadableTask

#: What decoding a value PostgreSQL stored but Python cannot hold raises.
UNREADABLE = (psycopg.DataError, ValueError, RecursionError, OverflowError)

_MIN = dt.datetime.min.replace(tzinfo=dt.UTC)
_MAX = dt.datetime.max.replace(tzinfo=dt.UTC)


def task_row(cursor: Cursor[Any] | AsyncCursor[Any]) -> RowMaker[Task]:
    """A row factory: a ``Task`` per row."""
    result = cursor.pgresult
    if result is None:
        return _task_maker(())
    # The column names straight from the result (``cursor.description`` builds an object per
    # column on every call: a large part of a single-row statement's cost).
    return _task_maker(tuple(result.fname(i) or b"" for i in range(result.nfields)))


@functools.lru_cache(maxsize=64)
def _task_maker(fields: tuple[bytes, ...]) -> RowMaker[Task]:
    names = [f.decode() for f in fields]
    if set(TASK_COLUMNS) <= set(names):  # every column (``RETURNING *``): positional, fast
        pick = operator.itemgetter(*(names.index(n) for n in TASK_COLUMNS))
        return lambda values: Task(*pick(values))
    keep = [(i, n) for i, n in enumerate(names) if n in TASK_COLUMNS]

    def make(values: Sequence[Any]) -> Task:
        return Task(**{n: values[i] for i, n in keep})

    return make


def fetch_tasks(cur: Cursor[Task]) -> list[Task]:
    """Every row of ``cur``'s result (made by ``task_row``); unreadable ones as
    ``UnreadableTask``."""
    try:
        return cur.fetchall()
    except UNREADABLE:
        return read_rows(cur)  # the position is unchanged: read row by row


async def fetch_tasks_async(cur: AsyncCursor[Task]) -> list[Task]:
    """``fetch_tasks`` for an async cursor (the result is already here: no I/O is awaited)."""
    try:
        return await cur.fetchall()
    except UNREADABLE:
        return read_rows(cur)


def read_rows(cur: Cursor[Any] | AsyncCursor[Any]) -> list[Task]:
    """The rows of ``cur``'s result from its position on, each decoded column by column: a
    ``Task``, or an ``UnreadableTask`` for a row with a value Python cannot hold."""
    result = cur.pgresult
    assert result is not None
    return [_read_row(cur, row) for row in range(cur.rownumber or 0, result.ntuples)]


def _read_row(cur: Cursor[Any] | AsyncCursor[Any], row: int) -> Task:
    result = cur.pgresult
    assert result is not None
    values: dict[str, Any] = {}
    problems: list[str] = []
    for col in range(result.nfields):
        name = (result.fname(col) or b"").decode()
        if name not in TASK_COLUMNS:
            continue
        raw = result.get_value(row, col)
        values[name] = None
        if raw is None:
            continue
        fmt = Format(result.fformat(col))
        loader = cur.adapters.get_loader(result.ftype(col), fmt)
        try:
            if loader is None:  # no loader for the type: psycopg gives the text as it is
                values[name] = bytes(raw).decode()
            else:
                values[name] = loader(result.ftype(col), cur).load(raw)
        except UNREADABLE as exc:
            problems.append(f"{name} {_why(exc)}")
            values[name] = _stand_in(name, bytes(raw), fmt, exc)
    if not problems:
        try:
            return Task(**values)
        except UNREADABLE:
            problems.append("the row cannot be read")
    return UnreadableTask(**{**dict.fromkeys(TASK_COLUMNS), **values}, problem="; ".join(problems))


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "is nested too deeply to read"
    if isinstance(exc, ValueError) and "digits" in str(exc):
        return "holds an integer too large to read"
    if isinstance(exc, psycopg.DataError):
        return f"is out of Python's range ({str(exc).strip()})"
    return f"cannot be read ({type(exc).__name__})"


def _stand_in(name: str, raw: bytes, fmt: Format, exc: BaseException) -> Any:
    if name in ("meta", "result"):
        return {"unreadable": f"{name} {_why(exc)}"}
    if name.endswith("_at"):
        if fmt is Format.BINARY:
            negative = int.from_bytes(raw[:8], "big", signed=True) < 0
        else:
            negative = raw.startswith(b"-") or raw.endswith(b" BC")
        return _MIN if negative else _MAX
    return None
