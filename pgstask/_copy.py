"""The bulk enqueue path: ``create_many`` through one binary ``COPY``.

From ``COPY_FROM`` tasks, none with a ``dedupe_key`` (COPY cannot skip a conflict), the ids are
reserved first (``nextval`` over ``generate_series``, with the server's ``now()``), then the rows
are sent with one COPY, each item checked as its row is sent, so the server stores the rows
already sent meanwhile. A bad item aborts the COPY and nothing of the batch is created.

``Task`` objects are built from what was sent, each ``meta`` as reading it back from ``jsonb``
would give it (its number and key-order rules), so no ``RETURNING`` is needed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
from collections.abc import Iterable, Iterator
from typing import Any

from pgstask import queries
from pgstask.db import Conn
from pgstask.task import QUEUED_MESSAGE, Status, Task
from pgstask.task_spec import TaskSpec

# create_many batches from this size on, when no task has a dedupe_key, go through COPY: the
# INSERT's RETURNING of every column, and reading it back, cost more than the insert itself.
COPY_FROM = 100


def copy_tasks(
    conn: Conn,
    specs: Iterable[TaskSpec],
    *,
    n: int,
    savepoint: bool,
    built: list[Task] | None,
    trace_context: str | None = None,
) -> list[int] | None:
    """``n`` tasks (``specs`` is read as the rows are sent): ids reserved, then one COPY, in
    ``conn``'s transaction (the COPY in a ``savepoint`` of it, so that a bad item leaves a
    caller's transaction usable). Returns the ids, or None (nothing done) when the role may not
    take ids from the sequence. With ``built``, each task is also built from what was sent, its
    id and the server's now() (sent for the columns whose default is now()). ``trace_context``:
    every task's (JSON text; None: none)."""
    stored = None if trace_context is None else json.loads(trace_context)

    def rows(now: dt.datetime, ids: list[int]) -> Iterator[tuple[Any, ...]]:
        for task_id, s in zip(ids, specs, strict=True):
            start_at = s.start_at.astimezone(now.tzinfo) if s.start_at else now
            if built is not None:
                built.append(_new_task(task_id, s, start_at, now, stored))
            yield (
                *(task_id, s.identifier, s.action, s.data, s.priority, start_at),
                *(s.max_attempts, s.user_id, s.concurrency_key, QUEUED_MESSAGE, now, now),
                trace_context,
            )

    now, ids = queries.task_reserve_ids(conn, n=n)  # (begins the caller's transaction)
    if ids is None:
        return None
    with conn.transaction() if savepoint else contextlib.nullcontext():
        queries.task_copy(conn, rows(now, ids))
    return ids


def _new_task(
    task_id: int, spec: TaskSpec, start_at: dt.datetime, now: dt.datetime, trace_context: Any
) -> Task:
    """The row a COPY of ``spec`` stores, ``now`` being its transaction's now()."""
    return Task(
        id=task_id,
        identifier=spec.identifier,
        action=spec.action,
        status=int(Status.PENDING),
        message=QUEUED_MESSAGE,
        started_by=spec.user_id,
        meta=as_jsonb_returns(spec.data),
        result=None,
        start_at=start_at,
        started_at=None,
        finished_at=None,
        attempts=0,
        max_attempts=spec.max_attempts,
        claims=0,
        snoozes=0,
        priority=spec.priority,
        progress=0,
        daemon_id=None,
        last_error=None,
        dedupe_key=None,
        peak_memory=None,
        created_at=now,
        updated_at=now,
        concurrency_key=spec.concurrency_key,
        trace_context=trace_context,
    )


def as_jsonb_returns(text: str) -> Any:
    """JSON ``text`` as reading it back from a ``jsonb`` column gives it: jsonb stores numbers
    as ``numeric``, so one without a fractional part (``1e+23``) comes back as an integer, and
    orders an object's keys shorter first, then bytewise."""
    return json.loads(text, parse_float=_jsonb_number, object_pairs_hook=_jsonb_object)


def _jsonb_number(text: str) -> int | float:
    number = decimal.Decimal(text)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(number)
    return float(text) or 0.0  # numeric has no -0


def _jsonb_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(sorted(pairs, key=lambda pair: (len(pair[0].encode()), pair[0].encode())))
