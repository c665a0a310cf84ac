"""Wrappers of ``sql/workflows.sql``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of, tasks_of
from pgstask.task import Task


def task_insert_linked(
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
    depends_on: Sequence[str | None],
    on_parent_failure: Sequence[str | None],
    trace_context: str | None = None,
) -> list[Row]:
    """Create tasks that may depend on others (``depends_on``: an array literal per item, or
    None; ``trace_context``: as ``task_insert_many``'s); ``id`` and ``dedupe_key`` of each
    created one, in order (an item whose key an unfinished task holds is skipped)."""
    return rows_of(conn, "task_insert_linked", params_of(locals()))


def task_get_many(conn: Conn, *, ids: Sequence[int]) -> list[Task]:
    """The tasks of ``ids`` that exist, by id."""
    return tasks_of(conn, "task_get_many", params_of(locals()))


def task_parents(conn: Conn, *, id: int) -> list[Task]:
    """The tasks task ``id`` depends on, by id."""
    return tasks_of(conn, "task_parents", {"id": id})


def task_children(conn: Conn, *, id: int) -> list[Task]:
    """The tasks that depend on task ``id``, by id."""
    return tasks_of(conn, "task_children", {"id": id})


def task_workflow_ids(conn: Conn, *, id: int, limit: int) -> list[int]:
    """The ids of the tasks joined to task ``id`` by dependencies (itself included), at most
    ``limit``, lowest first."""
    return [r["id"] for r in rows_of(conn, "task_workflow_ids", {"id": id, "limit": limit})]


def task_edges(conn: Conn, *, ids: Sequence[int]) -> list[Row]:
    """The dependencies among ``ids``: ``task_id``, ``parent_id``, ``done``."""
    return rows_of(conn, "task_edges", params_of(locals()))


def task_await(conn: Conn, *, ids: Sequence[int]) -> None:
    """Make the unfinished tasks of ``ids`` notify ``pgstask_finished`` when they end."""
    rows_of(conn, "task_await", params_of(locals()))
