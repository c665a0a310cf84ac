"""``AsyncClient``: ``Client`` for asyncio code, on psycopg's async pool.

Creating tasks (alone, in bulk, as a workflow; in the caller's ``AsyncConnection`` transaction
if given one), reading them, their progress and logs, statistics, cancel and retry, here; the
pool and ``get`` from ``_async_base``, workflows and waiting from ``_async_workflows``, result
files from ``_async_files``, schedules from ``_async_schedules``, presets from
``_async_presets``, workers and daemons from ``_async_workers``, webhooks from
``_async_webhooks``: the split of ``Client`` into its ``_client_*`` modules. What runs worker
code or touches this host's files of other tasks (discovering workers, uploads, ``store_file``,
``fetch_file``, cleaning old tasks and logs, ``process_pending_tasks``, ``execute``) stays
with ``Client``.

Nothing is decided twice. Both clients check their arguments and shape their answers with the
same functions (``_client_rules``, ``task_spec``, ``workflow``, ``_client_notify``, ``logs``,
and the pure functions of the ``_client_*`` modules), send the same named queries
(``queries.aio``: the async twins of the wrappers) and translate errors at the same boundary
(``db.translate_errors``): a bad argument raises the same error with the same message from
either. Only the order of the round trips is written again, with ``await``. One difference:
``create_many`` sends every batch as one INSERT (``Client`` sends 100 tasks or more with
``COPY``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload

from pgstask import _client_notify, _client_rules, logs, progress, task_spec, telemetry, workflow
from pgstask._async_files import AsyncClientFiles
from pgstask._async_presets import AsyncClientPresets
from pgstask._async_schedules import AsyncClientSchedules
from pgstask._async_webhooks import AsyncClientWebhooks
from pgstask._async_workers import AsyncClientWorkers
from pgstask._async_workflows import AsyncClientWorkflows
from pgstask._client_base import _task_id
from pgstask._client_notify import Targets
from pgstask.db import AsyncConn
from pgstask.logs import LogRecord
from pgstask.queries import aio
from pgstask.task import Task
from pgstask.task_spec import TaskSpec

# Aliases: inside AsyncClient, ``list`` names the method.
TaskList = list[Task]
Records = list[LogRecord]


class AsyncClient(
    AsyncClientFiles,
    AsyncClientSchedules,
    AsyncClientPresets,
    AsyncClientWebhooks,
    AsyncClientWorkers,
    AsyncClientWorkflows,
):
    """pgstask's Python API for asyncio code. ``AsyncClient(dsn=None)`` uses ``PGSTASK_DSN`` or
    the embedded database, like ``Client``.

    ``async with AsyncClient(dsn) as client:`` opens its pool and closes it at the end;
    otherwise the pool opens on first use and ``await client.close()`` closes it. One client
    serves one event loop. ``max_size``: the most connections the pool opens (a ``wait`` holds
    one while it waits, a ``read_file`` one chunk's query at a time).
    """

    # --- creating ----------------------------------------------------------------------------

    async def create(
        self,
        identifier: str,
        action: str,
        data: Mapping[str, Any] | None = None,
        *,
        priority: str = task_spec.DEFAULT_PRIORITY,
        start_at: dt.datetime | None = None,
        max_attempts: int = task_spec.DEFAULT_MAX_ATTEMPTS,
        user_id: int | None = None,
        dedupe_key: str | None = None,
        concurrency_key: str | None = None,
        throttle: float | None = None,
        replace: bool = False,
        depends_on: Iterable[Task | int] | None = None,
        on_parent_failure: str | None = None,
        notify: Mapping[str, Any] | None = None,
        conn: AsyncConn | None = None,
    ) -> Task:
        """Enqueue one task: ``Client.create``, its arguments and rules. With ``conn`` (an
        ``AsyncConnection``) the task is created in the caller's transaction: rolled back, it
        never runs."""
        one = _client_rules.one_task(
            identifier,
            action,
            data,
            priority=priority,
            start_at=start_at,
            max_attempts=max_attempts,
            user_id=user_id,
            dedupe_key=dedupe_key,
            concurrency_key=concurrency_key,
            throttle=throttle,
            replace=replace,
            depends_on=depends_on,
            on_parent_failure=on_parent_failure,
            notify=notify,
        )
        if one.flow is not None:
            return (await self._create_linked(one.flow, one.targets, conn))[0]
        assert one.spec is not None
        while True:
            throttled = await self._throttled([one.key], one.window, conn)
            if not throttled:
                created = await self._insert(
                    [one.spec], conn, replace=replace, notifies=one.targets
                )
                if created:
                    return created[0]
            async with self.connection(conn) as c:
                existing = await aio.task_get_by_dedupe_key(c, dedupe_key=one.key)
            if existing is not None or throttled:
                return existing or throttled[one.key]
            # The holder finished between the insert and this read: insert again.

    @overload
    async def create_many(
        self,
        tasks: Iterable[Mapping[str, Any]],
        *,
        conn: AsyncConn | None = None,
        returning: Literal["tasks"] = "tasks",
        throttle: float | None = None,
        replace: bool = False,
    ) -> TaskList: ...

    @overload
    async def create_many(
        self,
        tasks: Iterable[Mapping[str, Any]],
        *,
        conn: AsyncConn | None = None,
        returning: Literal["ids"],
        throttle: float | None = None,
        replace: bool = False,
    ) -> list[int]: ...

    async def create_many(
        self,
        tasks: Iterable[Mapping[str, Any]],
        *,
        conn: AsyncConn | None = None,
        returning: Literal["tasks", "ids"] = "tasks",
        throttle: float | None = None,
        replace: bool = False,
    ) -> TaskList | list[int]:
        """Enqueue many tasks in one transaction: ``Client.create_many``, its items and rules
        (items with dependencies are a workflow), always as one INSERT."""
        many = _client_rules.many_tasks(
            tasks, returning=returning, throttle=throttle, replace=replace
        )
        if many.linked:
            flow, positions = workflow.from_items(many.items)
            linked = await self._create_linked(flow, many.notifies, conn, positions=positions)
            return [t.id for t in linked] if returning == "ids" else linked
        checked = _client_rules.batch(many, throttle=throttle, replace=replace)
        pairs = checked.without(await self._throttled(checked.keys, checked.window, conn))
        if not pairs:
            return []
        created = await self._insert(
            [s for s, _ in pairs],
            conn,
            replace=replace,
            notifies=None if many.notifies is None else [n for _, n in pairs],
        )
        return [t.id for t in created] if returning == "ids" else created

    async def _throttled(
        self, keys: list[str], throttle: float | None, conn: AsyncConn | None
    ) -> dict[str, Task]:
        """``Client._throttled``: the keys a task finished with within ``throttle`` seconds."""
        if throttle is None:
            return {}
        async with self.connection(conn) as c:
            found = await aio.task_get_throttled_many(c, dedupe_keys=keys, throttle=throttle)
        return _client_rules.by_key(found)

    async def _insert(
        self,
        specs: Sequence[TaskSpec],
        conn: AsyncConn | None,
        *,
        replace: bool = False,
        notifies: Sequence[Targets | None] | None = None,
    ) -> TaskList:
        if _client_rules.has_targets(notifies):
            assert notifies is not None
            # As Client._insert: the insert and its targets in one transaction.
            async with self.connection(conn) as c, c.transaction():
                await self._check_webhooks(c, notifies)
                created = await self._insert(specs, c, replace=replace)
                matched = _client_notify.matched(specs, created, notifies)
                return await self._create_targets(created, matched, c)
        insert = aio.task_replace_many if replace else aio.task_insert_many
        async with self.connection(conn, autocommit=True) as c:
            with telemetry.creating(specs) as made:
                created = await insert(c, **task_spec.columns(specs), trace_context=made.carrier)
                made.created(created)
                return created

    # --- reading -----------------------------------------------------------------------------

    async def list(
        self,
        *,
        status: int | str | None = None,
        identifier: str | None = None,
        action: str | None = None,
        priority: str | None = None,
        concurrency_key: str | None = None,
        created_from: dt.datetime | None = None,
        created_to: dt.datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> TaskList:
        """Tasks newest first, filtered: ``Client.list``."""
        filters = _client_rules.list_filters(
            status=status,
            identifier=identifier,
            action=action,
            priority=priority,
            concurrency_key=concurrency_key,
            created_from=created_from,
            created_to=created_to,
            before_id=before_id,
            limit=limit,
        )
        async with self.connection() as c:
            return await aio.task_list(c, **filters)

    async def stats(self) -> dict[str, Any]:
        """Counts per status, workers and tasks waiting for a worker: ``Client.stats``."""
        async with self.connection() as c:
            counts = await aio.task_count_by_status(c)
            workers = await aio.worker_count(c)
            waiting = await aio.task_waiting_for_worker(c)
        return _client_rules.stats_of(counts, workers, waiting)

    async def progress(self, task: Task | int) -> dict[str, Any]:
        """sTask's progress fields of a task: ``Client.progress``."""
        current = await self.get(task)
        async with self.connection() as c:
            row = None if current.is_finished else await aio.progress_get(c, task_id=current.id)
        # A small local JSON file, as Client reads it: not worth a thread hop.
        snapshot = progress.read_snapshot(self.settings.storage, current.id) or {}
        return _client_rules.progress_of(current, row, snapshot)

    async def logs(self, task: Task | int, limit: int | None = None) -> Records:
        """A task's log records, oldest first (the last ``limit`` if given)."""
        return await self._logs(_task_id(task), limit=limit)

    async def error_logs(self, task: Task | int) -> Records:
        """The log records of a task at level ``error`` or ``critical``, oldest first."""
        return await self._logs(_task_id(task), errors_only=True)

    async def _logs(
        self, task_id: int, *, limit: int | None = None, errors_only: bool = False
    ) -> Records:
        logs.check_limit(limit)
        async with self.connection() as c:
            rows = await aio.log_list(c, task_id=task_id, limit=limit, errors_only=errors_only)
        return logs.records_of(rows)

    async def clear_logs(self, task: Task | int) -> int:
        """Delete a task's log records (rows, and its ``{id}.log`` file on this host); returns
        how many rows."""
        task_id = _task_id(task)
        async with self.connection() as c:
            deleted = await aio.log_delete_for_task(c, task_id=task_id)
        logs.remove_file(self.settings.storage, task_id)
        return deleted

    async def log(self, task: Task | int, level: str, message: str, **context: Any) -> None:
        """Add a log record to a task from outside its action."""
        record = LogRecord.make(_task_id(task), level, message, **context)
        async with self.connection() as c:
            await aio.log_insert_many(c, **logs.columns([record]))
        if self.settings.storage is not None:
            logs.append_files(self.settings.storage, [record])

    # --- changing ----------------------------------------------------------------------------

    async def cancel(self, task: Task | int, message: str = "Cancelled by user") -> Task:
        """Cancel a task: ``Client.cancel`` (``TaskStateError`` if it already finished)."""
        task_id = _task_id(task)
        async with self.connection() as c:
            row = await aio.task_cancel(c, id=task_id, message=message)
            found = await aio.task_get(c, id=task_id)
        cancelled = _client_rules.cancelled(task_id, row, found)
        assert row is not None
        await self.log(task_id, "warning", message, **_client_rules.cancel_context(row))
        return cancelled

    async def retry(self, task: Task | int) -> Task:
        """Queue a failed or cancelled task again, with a fresh set of attempts."""
        task_id = _task_id(task)
        async with self.connection() as c:
            found = await aio.task_retry(c, id=task_id)
            if found is not None:
                await aio.task_notify(c)
                return found
            current = await aio.task_get(c, id=task_id)
        raise _client_rules.not_retried(task_id, current)
