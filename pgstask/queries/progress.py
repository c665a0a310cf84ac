"""Wrappers of ``sql/progress.sql``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pgstask.db import Conn
from pgstask.queries._execute import Row, count_of, params_of, rows_of


def progress_upsert_many(
    conn: Conn,
    *,
    task_ids: Sequence[int],
    statuses: Sequence[int],
    progress: Sequence[int],
    processed: Sequence[int | None],
    totals: Sequence[int | None],
    etas: Sequence[float | None],
    messages: Sequence[str | None],
) -> None:
    """Store the latest progress of running tasks, one row per task replacing the one before."""
    rows_of(conn, "progress_upsert_many", params_of(locals()))


def progress_get(conn: Conn, *, task_id: int) -> Row | None:
    """The live progress row of task ``task_id``, or None (nothing reported yet, or the unlogged
    table was emptied by a crash)."""
    rows = rows_of(conn, "progress_get", {"task_id": task_id})
    return rows[0] if rows else None


def progress_delete_many(
    conn: Conn, *, task_ids: Sequence[int], claims: Sequence[int], daemon_id: uuid.UUID
) -> int:
    """Delete the progress rows of the runs whose outcomes daemon ``daemon_id`` wrote, never that of
    a task another run now holds; returns how many."""
    return count_of(conn, "progress_delete_many", params_of(locals()))


def progress_delete_orphaned(conn: Conn) -> int:
    """Delete the progress rows of tasks that are finished or deleted; returns how many."""
    return count_of(conn, "progress_delete_orphaned", {})
