"""Wrappers of ``sql/tasks.sql``."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of, tasks_of
from pgstask.sql import query
from pgstask.task import RunKey, Task

# json.dumps with an option set builds a new encoder on every call.
_OUTCOMES = json.JSONEncoder(allow_nan=False)


def task_insert_many(
    conn: Conn,
    *,
    identifiers: Sequence[str],
    actions: Sequence[str],
    metas: Sequence[str],
    priorities: Sequence[str],
    start_ats: Sequence[dt.datetime | None],
    max_attempts: Sequence[int],
    started_by: Sequence[int | None],
    dedupe_keys: Sequence[str | None],
    concurrency_keys: Sequence[str | None],
    trace_context: str | None = None,
) -> list[Task]:
    """Create tasks, one per position of the parallel sequences (``create``, and ``create_many``
    without COPY); an item whose ``dedupe_key`` an unfinished task holds is skipped, so fewer tasks
    may come back. ``metas`` are JSON texts, ``trace_context`` the JSON text of every task's trace
    context (None: none). Sent and read in binary: large batches skip text quoting."""
    return tasks_of(conn, "task_insert_many", params_of(locals()), binary=True)


def task_replace_many(
    conn: Conn,
    *,
    identifiers: Sequence[str],
    actions: Sequence[str],
    metas: Sequence[str],
    priorities: Sequence[str],
    start_ats: Sequence[dt.datetime | None],
    max_attempts: Sequence[int],
    started_by: Sequence[int | None],
    dedupe_keys: Sequence[str | None],
    concurrency_keys: Sequence[str | None],
    trace_context: str | None = None,
) -> list[Task]:
    """``task_insert_many`` that replaces the fields of the pending task holding an item's
    ``dedupe_key`` (returned updated) instead of skipping the item; every item has a key, no two
    the same."""
    return tasks_of(conn, "task_replace_many", params_of(locals()), binary=True)


def task_reserve_ids(conn: Conn, *, n: int) -> tuple[dt.datetime, list[int] | None]:
    """Ids for ``n`` tasks that a COPY will create, in order, and the server's ``now()`` for their
    timestamps; the ids are None when the role may not take values from the id sequence (the caller
    then inserts)."""
    row = rows_of(conn, "task_reserve_ids", {"n": n})[0]
    return row["now"], row["ids"]


class _JsonTextDumper(Dumper):
    """Text that is already JSON, as ``jsonb`` in binary (a version byte, then the text)."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


_COPY_TYPES = (
    *("int8", "text", "text", "jsonb", "text", "timestamptz", "int4", "int8", "text", "text"),
    *("timestamptz", "timestamptz", "jsonb"),
)


def task_copy(conn: Conn, rows: Iterable[Sequence[Any]]) -> None:
    """Create tasks with one binary COPY (``create_many``'s bulk path; the ids from
    ``task_reserve_ids``). ``rows``: the data the COPY reads (not query parameters), in its column
    order; ``meta`` and ``trace_context`` as JSON text."""
    with conn.cursor() as cur:
        cur.adapters.register_dumper(None, _JsonTextDumper)  # this cursor's COPY only
        with cur.copy(query("task_copy")) as copy:
            copy.set_types(list(_COPY_TYPES))
            for row in rows:
                copy.write_row(row)


def task_merge_meta(conn: Conn, *, id: int, patch: Jsonb) -> Task | None:
    """Add the keys of ``patch`` to the options of a task that has not started (an upload attached
    to it); None when it started or does not exist."""
    found = tasks_of(conn, "task_merge_meta", {"id": id, "patch": patch})
    return found[0] if found else None


def task_get(conn: Conn, *, id: int) -> Task | None:
    """The task ``id``, or None."""
    found = tasks_of(conn, "task_get", {"id": id})
    return found[0] if found else None


def task_get_throttled_many(
    conn: Conn, *, dedupe_keys: Sequence[str], throttle: float
) -> list[Task]:
    """For each of ``dedupe_keys`` that a task finished with less than ``throttle`` seconds ago,
    the latest such task."""
    return tasks_of(conn, "task_get_throttled_many", params_of(locals()))


def task_get_latest_by_dedupe_key(conn: Conn, *, dedupe_key: str) -> Task | None:
    """The task that holds ``dedupe_key``, else the one that finished with it last (any age), or
    None."""
    found = tasks_of(conn, "task_get_latest_by_dedupe_key", {"dedupe_key": dedupe_key})
    return found[0] if found else None


def task_get_by_dedupe_key(conn: Conn, *, dedupe_key: str) -> Task | None:
    """The unfinished task that holds ``dedupe_key`` (the one a create with that key gives back), or
    None."""
    found = tasks_of(conn, "task_get_by_dedupe_key", {"dedupe_key": dedupe_key})
    return found[0] if found else None


def task_claim(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    identifiers: Sequence[str],
    limit: int,
    age: float | None = None,
) -> list[Task]:
    """Claim up to ``limit`` due tasks of the active workers without flow control among
    ``identifiers`` for daemon ``daemon_id``, highest priority first (with ``age``, tasks due for
    longer than ``age`` seconds first): each is running, its attempt counted, a new run."""
    return tasks_of(conn, "task_claim", params_of(locals()))


def task_claim_limited(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    identifiers: Sequence[str],
    limit: int,
    age: float | None = None,
) -> list[Task]:
    """``task_claim`` for the active workers with flow control among ``identifiers``: at most
    what their limits allow now, whatever other daemons claim at the same moment."""
    return tasks_of(conn, "task_claim_limited", params_of(locals()))


def task_next_start_at(conn: Conn, *, identifiers: Sequence[str]) -> float | None:
    """How long the producer may wait for a due task: seconds until the earliest pending task of
    ``identifiers`` becomes due (0 if due now; ``inf`` for a ``start_at`` of infinity); None when
    nothing is pending."""
    rows = rows_of(conn, "task_next_start_at", {"identifiers": list(identifiers)})
    return float(rows[0]["delay"]) if rows else None


def task_complete_many(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    outcomes: Sequence[tuple[int, int, str | None, Any, int | None]],
) -> list[RunKey]:
    """Mark runs completed, each a compare-and-set on its run. ``outcomes``: (id, claims, message,
    result, peak_memory) each, ``result`` a plain JSON-serialisable value; sent as the query's one
    JSON parameter. Returns the runs written."""
    batch = _OUTCOMES.encode(list(outcomes))
    rows = rows_of(conn, "task_complete_many", {"daemon_id": daemon_id, "outcomes": batch})
    return [(r["id"], r["claims"]) for r in rows]


def task_fail_many(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    ids: Sequence[int],
    claims: Sequence[int],
    messages: Sequence[str],
    errors: Sequence[str | None],
    retry_delays: Sequence[float | None],
    peak_memory: Sequence[int | None],
) -> list[Row]:
    """Write failed runs of daemon ``daemon_id``: each pending again after its ``retry_delays``
    entry, or failed for good when that is None or no attempts are left. Returns ``id``, ``claims``
    and ``status`` of the runs written."""
    return rows_of(conn, "task_fail_many", params_of(locals()))


def task_give_back_many(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    ids: Sequence[int],
    claims: Sequence[int],
    messages: Sequence[str | None],
) -> list[RunKey]:
    """Give runs of daemon ``daemon_id`` back as pending, the attempt not counted (shutdown, fence);
    a None message is the shutdown's. Returns the runs given back."""
    rows = rows_of(conn, "task_give_back_many", params_of(locals()))
    return [(r["id"], r["claims"]) for r in rows]


def task_snooze_many(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    ids: Sequence[int],
    claims: Sequence[int],
    delays: Sequence[float],
    messages: Sequence[str | None],
) -> list[RunKey]:
    """Put runs of daemon ``daemon_id`` whose action snoozed back to pending, each runnable its
    ``delays`` entry of seconds from now, the attempt not counted and ``snoozes`` + 1; a
    ``messages`` entry is added to the task's message. Returns the runs written."""
    rows = rows_of(conn, "task_snooze_many", params_of(locals()))
    return [(r["id"], r["claims"]) for r in rows]


def task_give_back_unknown(
    conn: Conn, *, daemon_id: uuid.UUID, ids: Sequence[int], claims: Sequence[int]
) -> list[RunKey]:
    """Give back what ``daemon_id`` holds other than the runs it knows (``ids``/``claims``);
    returns those."""
    params = {"daemon_id": daemon_id, "ids": list(ids), "claims": list(claims)}
    return [(r["id"], r["claims"]) for r in rows_of(conn, "task_give_back_unknown", params)]


def task_lost(
    conn: Conn, *, daemon_id: uuid.UUID, ids: Sequence[int], claims: Sequence[int]
) -> list[RunKey]:
    """Of the runs ``ids``/``claims``, those daemon ``daemon_id`` no longer holds (cancelled,
    rescued or replaced by a later run): the heartbeat has them stopped."""
    rows = rows_of(conn, "task_lost", params_of(locals()))
    return [(r["id"], r["claims"]) for r in rows]


def task_set_status(conn: Conn, *, id: int, status: int, claims: int, daemon_id: uuid.UUID) -> bool:
    """A worker's phase change of its run between preparing (30) and running (50); False when the
    run no longer holds the task."""
    params = {"id": id, "status": status, "claims": claims, "daemon_id": daemon_id}
    return bool(rows_of(conn, "task_set_status", params))


def task_rescue(
    conn: Conn, *, stale_after: float, base_delay: float, max_delay: float, limit: int = 1000
) -> list[Row]:
    """Take back up to ``limit`` tasks held by daemons whose heartbeat is older than ``stale_after``
    seconds: pending after a backoff from ``base_delay`` up to ``max_delay``, or failed when no
    attempts are left. Returns ``id``, ``status`` and ``attempts`` of each."""
    return rows_of(conn, "task_rescue", params_of(locals()))


def task_cancel(conn: Conn, *, id: int, message: str) -> Row | None:
    """Cancel a pending, preparing or running task and tell its daemon (``NOTIFY pgstask_cancel``);
    its ``id`` and ``previous_status``, or None when it is finished or does not exist."""
    rows = rows_of(conn, "task_cancel", {"id": id, "message": message})
    return rows[0] if rows else None


def task_retry(conn: Conn, *, id: int) -> Task | None:
    """Queue a failed or cancelled task again with its attempts reset; None for any other task."""
    found = tasks_of(conn, "task_retry", {"id": id})
    return found[0] if found else None


def task_notify(conn: Conn) -> None:
    """Wake the daemons (``NOTIFY pgstask_tasks``) when tasks became pending without an insert:
    retried, given back, rescued."""
    rows_of(conn, "task_notify", {})


def task_list(
    conn: Conn,
    *,
    status: int | None,
    identifier: str | None,
    action: str | None,
    priority: str | None,
    concurrency_key: str | None,
    created_from: dt.datetime | None,
    created_to: dt.datetime | None,
    before_id: int | None,
    limit: int,
) -> list[Task]:
    """A page of tasks, newest first, below ``before_id`` (keyset pagination); a None filter matches
    every task, and the created range is [``created_from``, ``created_to``)."""
    return tasks_of(conn, "task_list", params_of(locals()))


def task_pending(conn: Conn, *, limit: int) -> list[Task]:
    """Up to ``limit`` due pending tasks, in the order daemons claim them."""
    return tasks_of(conn, "task_pending", {"limit": limit})


def task_count_by_status(conn: Conn) -> dict[int, int]:
    """How many tasks there are per status (a status without tasks is absent)."""
    return {r["status"]: r["count"] for r in rows_of(conn, "task_count_by_status", {})}


def task_waiting_for_worker(conn: Conn) -> list[Row]:
    """Pending tasks per worker that no daemon registered or that is inactive: ``identifier``,
    ``registered`` and ``count``."""
    return rows_of(conn, "task_waiting_for_worker", {})


def task_delete_finished_before(conn: Conn, *, days: float, limit: int = 5000) -> int:
    """Retention: delete up to ``limit`` tasks finished more than ``days`` ago; returns how many."""
    return len(rows_of(conn, "task_delete_finished_before", {"days": days, "limit": limit}))


def task_claim_by_id(conn: Conn, *, daemon_id: uuid.UUID, id: int) -> Task | None:
    """Claim the pending task ``id`` for daemon ``daemon_id`` now, whatever its ``start_at``
    (``Client.execute``), within its worker's limits; None when it is not pending or a limit of
    its worker is reached."""
    found = tasks_of(conn, "task_claim_by_id", {"daemon_id": daemon_id, "id": id})
    return found[0] if found else None


def task_starts_delete_before(conn: Conn, *, seconds: float) -> int:
    """Delete up to 10,000 recorded starts older than ``seconds``; returns how many."""
    return len(rows_of(conn, "task_starts_delete_before", {"seconds": seconds}))
