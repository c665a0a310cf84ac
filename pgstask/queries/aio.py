"""The async twins of the wrappers ``AsyncClient`` uses (``pgstask.async_client``).

Each twin has the name of its wrapper in ``pgstask.queries`` and runs the same named query
(``pgstask/sql``) with the same parameters on an ``AsyncConnection``, read the same way
(``_execute``'s ``*_async`` runners). The twins take the parameters the wrapper takes; a twin of
a batch insert takes them as the columns ``task_spec.columns`` builds for both clients.
``tests/test_async_client.py`` holds every twin to a wrapper of its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from pgstask.db import AsyncConn
from pgstask.queries._execute import (
    Row,
    count_of_async,
    params_of,
    rows_of_async,
    tasks_of_async,
)
from pgstask.task import Task


async def task_insert_many(
    conn: AsyncConn, trace_context: str | None = None, **columns: Sequence[Any]
) -> list[Task]:
    """``queries.task_insert_many``: the tasks created, sent and read in binary."""
    params = {**params_of(columns), "trace_context": trace_context}
    return await tasks_of_async(conn, "task_insert_many", params, binary=True)


async def task_replace_many(
    conn: AsyncConn, trace_context: str | None = None, **columns: Sequence[Any]
) -> list[Task]:
    """``queries.task_replace_many``: the tasks created or replaced."""
    params = {**params_of(columns), "trace_context": trace_context}
    return await tasks_of_async(conn, "task_replace_many", params, binary=True)


async def task_insert_linked(conn: AsyncConn, **columns: Sequence[Any]) -> list[Row]:
    """``queries.task_insert_linked``: ``id`` and ``dedupe_key`` of each task created."""
    return await rows_of_async(conn, "task_insert_linked", params_of(columns))


async def task_get(conn: AsyncConn, *, id: int) -> Task | None:
    """``queries.task_get``: the task ``id``, or None."""
    found = await tasks_of_async(conn, "task_get", {"id": id})
    return found[0] if found else None


async def task_get_many(conn: AsyncConn, *, ids: Sequence[int]) -> list[Task]:
    """``queries.task_get_many``: the tasks of ``ids`` that exist, by id."""
    return await tasks_of_async(conn, "task_get_many", {"ids": list(ids)})


async def task_get_by_dedupe_key(conn: AsyncConn, *, dedupe_key: str) -> Task | None:
    """``queries.task_get_by_dedupe_key``: the unfinished holder of ``dedupe_key``, or None."""
    found = await tasks_of_async(conn, "task_get_by_dedupe_key", {"dedupe_key": dedupe_key})
    return found[0] if found else None


async def task_get_throttled_many(
    conn: AsyncConn, *, dedupe_keys: Sequence[str], throttle: float
) -> list[Task]:
    """``queries.task_get_throttled_many``: the latest task of each key finished within
    ``throttle`` seconds."""
    params = {"dedupe_keys": list(dedupe_keys), "throttle": throttle}
    return await tasks_of_async(conn, "task_get_throttled_many", params)


async def task_list(conn: AsyncConn, **filters: Any) -> list[Task]:
    """``queries.task_list``: a page of tasks, newest first (``filters``: its parameters)."""
    return await tasks_of_async(conn, "task_list", params_of(filters))


async def task_cancel(conn: AsyncConn, *, id: int, message: str) -> Row | None:
    """``queries.task_cancel``: ``id`` and ``previous_status``, or None."""
    rows = await rows_of_async(conn, "task_cancel", {"id": id, "message": message})
    return rows[0] if rows else None


async def task_retry(conn: AsyncConn, *, id: int) -> Task | None:
    """``queries.task_retry``: the task queued again, or None."""
    found = await tasks_of_async(conn, "task_retry", {"id": id})
    return found[0] if found else None


async def task_notify(conn: AsyncConn) -> None:
    """``queries.task_notify``: wake the daemons."""
    await rows_of_async(conn, "task_notify", {})


async def task_await(conn: AsyncConn, *, ids: Sequence[int]) -> None:
    """``queries.task_await``: the unfinished tasks of ``ids`` notify ``pgstask_finished``."""
    await rows_of_async(conn, "task_await", {"ids": list(ids)})


async def task_count_by_status(conn: AsyncConn) -> dict[int, int]:
    """``queries.task_count_by_status``."""
    return {r["status"]: r["count"] for r in await rows_of_async(conn, "task_count_by_status", {})}


async def task_waiting_for_worker(conn: AsyncConn) -> list[Row]:
    """``queries.task_waiting_for_worker``."""
    return await rows_of_async(conn, "task_waiting_for_worker", {})


async def worker_count(conn: AsyncConn) -> Row:
    """``queries.worker_count``: ``total`` and ``active``."""
    return (await rows_of_async(conn, "worker_count", {}))[0]


async def progress_get(conn: AsyncConn, *, task_id: int) -> Row | None:
    """``queries.progress_get``: the live progress row of a task, or None."""
    rows = await rows_of_async(conn, "progress_get", {"task_id": task_id})
    return rows[0] if rows else None


async def log_list(
    conn: AsyncConn, *, task_id: int, limit: int | None, errors_only: bool
) -> list[Row]:
    """``queries.log_list``: a task's log records, oldest first."""
    params = {"task_id": task_id, "limit": limit, "errors_only": errors_only}
    return await rows_of_async(conn, "log_list", params)


async def log_insert_many(conn: AsyncConn, **columns: Sequence[Any]) -> int:
    """``queries.log_insert_many``: the records stored (``logs.columns`` builds them)."""
    return await count_of_async(conn, "log_insert_many", params_of(columns))


async def webhook_names(conn: AsyncConn, *, names: list[str]) -> list[str]:
    """``queries.webhook_names``: of ``names``, those no webhook has."""
    return [r["name"] for r in await rows_of_async(conn, "webhook_names", {"names": names})]


async def task_set_notify_many(
    conn: AsyncConn, *, ids: Sequence[int], notifies: Sequence[Jsonb]
) -> int:
    """``queries.task_set_notify_many``: the rows set."""
    params = {"ids": list(ids), "notifies": list(notifies)}
    return await count_of_async(conn, "task_set_notify_many", params)
