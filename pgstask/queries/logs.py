"""Wrappers of ``sql/logs.sql``."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from pgstask.db import Conn
from pgstask.queries._execute import Row, count_of, params_of, rows_of


def log_insert_many(
    conn: Conn,
    *,
    task_ids: Sequence[int],
    levels: Sequence[str],
    messages: Sequence[str],
    contexts: Sequence[Jsonb],
) -> int:
    """Store log records of tasks, in the order given; returns the number stored (those of deleted
    tasks are skipped)."""
    return count_of(conn, "log_insert_many", params_of(locals()))


def log_list(conn: Conn, *, task_id: int, limit: int | None, errors_only: bool) -> list[Row]:
    """A task's log records, oldest first: all, or the last ``limit``; ``errors_only`` keeps levels
    error and critical."""
    params = {"task_id": task_id, "limit": limit, "errors_only": errors_only}
    return rows_of(conn, "log_list", params)


def log_delete_for_task(conn: Conn, *, task_id: int) -> int:
    """Delete every log record of task ``task_id``; returns how many."""
    return count_of(conn, "log_delete_for_task", {"task_id": task_id})


def log_delete_older_than(conn: Conn, *, days: float, limit: int = 5000) -> int:
    """Retention: delete up to ``limit`` log records older than ``days``; returns how many."""
    return count_of(conn, "log_delete_older_than", {"days": days, "limit": limit})
