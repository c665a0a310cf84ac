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


# --- workflows ---------------------------------------------------------------------------------


async def task_parents(conn: AsyncConn, *, id: int) -> list[Task]:
    """``queries.task_parents``: the tasks task ``id`` depends on, by id."""
    return await tasks_of_async(conn, "task_parents", {"id": id})


async def task_children(conn: AsyncConn, *, id: int) -> list[Task]:
    """``queries.task_children``: the tasks that depend on task ``id``, by id."""
    return await tasks_of_async(conn, "task_children", {"id": id})


async def task_workflow_ids(conn: AsyncConn, *, id: int, limit: int) -> list[int]:
    """``queries.task_workflow_ids``: the ids joined to task ``id``, lowest first."""
    rows = await rows_of_async(conn, "task_workflow_ids", {"id": id, "limit": limit})
    return [r["id"] for r in rows]


async def task_edges(conn: AsyncConn, *, ids: Sequence[int]) -> list[Row]:
    """``queries.task_edges``: the dependencies among ``ids``."""
    return await rows_of_async(conn, "task_edges", {"ids": list(ids)})


# --- logs and files ----------------------------------------------------------------------------


async def log_delete_for_task(conn: AsyncConn, *, task_id: int) -> int:
    """``queries.log_delete_for_task``: how many records were deleted."""
    return await count_of_async(conn, "log_delete_for_task", {"task_id": task_id})


async def file_latest(conn: AsyncConn, *, task_id: int, kind: str) -> Row | None:
    """``queries.file_latest``: the newest complete file of ``kind`` of a task, or None."""
    rows = await rows_of_async(conn, "file_latest", {"task_id": task_id, "kind": kind})
    return rows[0] if rows else None


async def file_get(conn: AsyncConn, *, id: int) -> Row | None:
    """``queries.file_get``: the file row ``id``, or None."""
    rows = await rows_of_async(conn, "file_get", {"id": id})
    return rows[0] if rows else None


async def file_chunk(conn: AsyncConn, *, file_id: int, seq: int) -> bytes | None:
    """``queries.file_chunk``: the bytes of chunk ``seq`` of a file, or None."""
    rows = await rows_of_async(conn, "file_chunk", {"file_id": file_id, "seq": seq})
    return bytes(rows[0]["data"]) if rows else None


# --- presets -----------------------------------------------------------------------------------


async def preset_list(conn: AsyncConn) -> list[Row]:
    """``queries.preset_list``: every preset, by name."""
    return await rows_of_async(conn, "preset_list", {})


async def preset_get(conn: AsyncConn, *, name: str) -> Row | None:
    """``queries.preset_get``: the row of preset ``name``, or None."""
    rows = await rows_of_async(conn, "preset_get", {"name": name})
    return rows[0] if rows else None


async def preset_upsert(conn: AsyncConn, **fields: Any) -> Row:
    """``queries.preset_upsert``: its row, with ``inserted`` (``fields``: ``Preset.row()``)."""
    params = {**params_of(fields), "data": Jsonb(fields["data"])}
    return (await rows_of_async(conn, "preset_upsert", params))[0]


async def preset_delete(conn: AsyncConn, *, name: str) -> list[str] | None:
    """``queries.preset_delete``: the schedules that still name it, or None (no such preset)."""
    rows = await rows_of_async(conn, "preset_delete", {"name": name})
    return list(rows[0]["schedules"]) if rows else None


async def preset_enqueue(conn: AsyncConn, **start: Any) -> Task | None:
    """``queries.preset_enqueue``: the task, or None (``start``: ``name`` and a ``Start``)."""
    found = await tasks_of_async(conn, "preset_enqueue", params_of(start))
    return found[0] if found else None


# --- schedules ---------------------------------------------------------------------------------


async def schedule_list(conn: AsyncConn) -> list[Row]:
    """``queries.schedule_list``: every schedule, by name."""
    return await rows_of_async(conn, "schedule_list", {})


async def schedule_get(conn: AsyncConn, *, name: str) -> Row | None:
    """``queries.schedule_get``: the row of schedule ``name``, or None."""
    rows = await rows_of_async(conn, "schedule_get", {"name": name})
    return rows[0] if rows else None


async def schedule_upsert(conn: AsyncConn, **fields: Any) -> Row | None:
    """``queries.schedule_upsert``: None when nothing changed (``fields``: ``Schedule.row()``)."""
    params = {**params_of(fields), "data": Jsonb(fields["data"])}
    rows = await rows_of_async(conn, "schedule_upsert", params)
    return rows[0] if rows else None


async def schedule_set_active(conn: AsyncConn, *, name: str, active: bool) -> Row | None:
    """``queries.schedule_set_active``: its row, or None."""
    rows = await rows_of_async(conn, "schedule_set_active", {"name": name, "active": active})
    return rows[0] if rows else None


async def schedule_run_now(conn: AsyncConn, *, name: str) -> Task | None:
    """``queries.schedule_run_now``: the task enqueued, or None."""
    found = await tasks_of_async(conn, "schedule_run_now", {"name": name})
    return found[0] if found else None


async def schedule_delete(conn: AsyncConn, *, name: str) -> bool:
    """``queries.schedule_delete``: whether there was one."""
    return bool(await rows_of_async(conn, "schedule_delete", {"name": name}))


# --- workers and daemons -----------------------------------------------------------------------


async def worker_list(conn: AsyncConn, *, active_only: bool = False) -> list[Row]:
    """``queries.worker_list``: every worker's row (or the active ones'), in display order."""
    return await rows_of_async(conn, "worker_list", {"active_only": active_only})


async def worker_get(conn: AsyncConn, *, identifier: str) -> Row | None:
    """``queries.worker_get``: the row of worker ``identifier``, or None."""
    rows = await rows_of_async(conn, "worker_get", {"identifier": identifier})
    return rows[0] if rows else None


async def worker_set_active(conn: AsyncConn, *, identifier: str, active: bool) -> Row | None:
    """``queries.worker_set_active``: its row, or None."""
    params = {"identifier": identifier, "active": active}
    rows = await rows_of_async(conn, "worker_set_active", params)
    return rows[0] if rows else None


async def worker_update_settings(
    conn: AsyncConn, *, identifier: str, settings: Jsonb
) -> Row | None:
    """``queries.worker_update_settings``: its row, or None."""
    params = {"identifier": identifier, "settings": settings}
    rows = await rows_of_async(conn, "worker_update_settings", params)
    return rows[0] if rows else None


async def worker_notify(conn: AsyncConn, *, identifier: str) -> None:
    """``queries.worker_notify``: running daemons reload worker ``identifier`` (``''``: all)."""
    await rows_of_async(conn, "worker_notify", {"identifier": identifier})


async def daemon_list(conn: AsyncConn, *, stale_after: float) -> list[Row]:
    """``queries.daemon_list``: every daemon's row, oldest first, with ``alive``."""
    return await rows_of_async(conn, "daemon_list", {"stale_after": stale_after})


# --- webhooks ----------------------------------------------------------------------------------


async def webhook_list(conn: AsyncConn) -> list[Row]:
    """``queries.webhook_list``: every webhook's row without its secret, by name."""
    return await rows_of_async(conn, "webhook_list", {})


async def webhook_get(conn: AsyncConn, *, name: str) -> Row | None:
    """``queries.webhook_get``: webhook ``name``'s row without its secret, or None."""
    rows = await rows_of_async(conn, "webhook_get", {"name": name})
    return rows[0] if rows else None


async def webhook_upsert(conn: AsyncConn, **fields: Any) -> Row:
    """``queries.webhook_upsert``: its row, with ``inserted`` and ``secret`` when set."""
    return (await rows_of_async(conn, "webhook_upsert", params_of(fields)))[0]


async def webhook_delete(conn: AsyncConn, *, name: str) -> bool:
    """``queries.webhook_delete``: whether there was one."""
    return bool(await rows_of_async(conn, "webhook_delete", {"name": name}))
