"""``AsyncClient``: the methods of ``Client`` that asyncio code calls, on psycopg's async pool.

Creating tasks (alone, in bulk, as a workflow; in the caller's ``AsyncConnection`` transaction
if given one), reading them, their progress and logs, statistics, cancel and retry, and
waiting for tasks to end. What a daemon or an administrator does (workers, schedules, presets,
webhooks, files, cleanup, running tasks in this process) stays with ``Client``.

Nothing is decided twice. Both clients check their arguments and shape their answers with the
same functions (``_client_rules``, ``task_spec``, ``workflow``, ``_client_notify``, ``logs``,
and ``_client_workflows``'s levels and ``Waiting``), send the same named queries
(``queries.aio``: the async twins of the wrappers) and translate errors at the same boundary
(``db.translate_errors``): a bad argument raises the same ``InvalidTaskError`` with the same
message from either. Only the order of the round trips is written here again, with ``await``.
One difference: ``create_many`` sends every batch as one INSERT (``Client`` sends 100 tasks or
more with ``COPY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Literal, Self, overload

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgstask import _client_notify, _client_rules, logs, progress, task_spec, telemetry, workflow
from pgstask._client_base import _task_id, resolve_dsn
from pgstask._client_notify import Targets
from pgstask._client_workflows import (
    DEADLOCK_TRIES,
    LISTEN,
    UNLISTEN,
    Waiting,
    insert_levels_async,
    specs_of,
)
from pgstask.db import AsyncConn, make_async_pool, translate_errors
from pgstask.errors import DatabaseError, TaskNotFoundError
from pgstask.logs import LogRecord
from pgstask.queries import aio
from pgstask.settings import Settings
from pgstask.task import Task
from pgstask.task_spec import TaskSpec
from pgstask.workflow import Workflow

# Aliases: inside AsyncClient, ``list`` names the method.
TaskList = list[Task]
Records = list[LogRecord]


class AsyncClient:
    """pgstask's Python API for asyncio code. ``AsyncClient(dsn=None)`` uses ``PGSTASK_DSN`` or
    the embedded database, like ``Client``.

    ``async with AsyncClient(dsn) as client:`` opens its pool and closes it at the end;
    otherwise the pool opens on first use and ``await client.close()`` closes it. One client
    serves one event loop. ``max_size``: the most connections the pool opens (a ``wait`` holds
    one while it waits).
    """

    def __init__(
        self, dsn: str | None = None, *, settings: Settings | None = None, max_size: int = 4
    ) -> None:
        self.settings = settings or Settings.from_env()
        if dsn is not None:
            self.settings = self.settings.replace(dsn=dsn)
        self.max_size = max_size
        self._pool: AsyncConnectionPool[AsyncConn] | None = None
        self._opening = asyncio.Lock()

    # --- plumbing ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool now (a web app's lifespan does, so its first request waits for none);
        does nothing if it is open. The embedded PostgreSQL starts here when no DSN is set."""
        await self._get_pool()

    async def _get_pool(self) -> AsyncConnectionPool[AsyncConn]:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                dsn = self.settings.dsn
                if not dsn:  # starting the embedded server blocks: not on the event loop
                    dsn = await asyncio.to_thread(resolve_dsn, self.settings)
                self._pool = await make_async_pool(
                    dsn, max_size=self.max_size, name="pgstask-async-client"
                )
            return self._pool

    async def close(self) -> None:
        """Close the pool, if one was opened; a later call opens a new one."""
        async with self._opening:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(
        self, conn: AsyncConn | None = None, *, autocommit: bool = False
    ) -> AsyncIterator[AsyncConn]:
        """``conn`` itself (the caller's transaction), or a pooled one committed on success;
        ``autocommit`` as ``Client.connection``'s."""
        if conn is not None:
            with translate_errors():
                yield conn
            return
        pool = await self._get_pool()
        with translate_errors():
            async with pool.connection() as pooled:
                if not autocommit:
                    yield pooled
                    return
                await pooled.set_autocommit(True)
                try:
                    yield pooled
                finally:
                    if not pooled.broken:
                        await pooled.set_autocommit(False)

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

    async def create_workflow(
        self, tasks: Workflow | Sequence[Mapping[str, Any]], *, conn: AsyncConn | None = None
    ) -> TaskList:
        """Create a workflow in one transaction (``conn``: the caller's):
        ``Client.create_workflow``, its arguments, rules and answer."""
        if isinstance(tasks, Workflow):
            return await self._create_linked(tasks, None, conn)
        items = tasks if isinstance(tasks, Sequence) else list(tasks)
        flow, positions = workflow.from_items(items)
        return await self._create_linked(flow, None, conn, positions=positions)

    async def _create_linked(
        self,
        flow: Workflow,
        targets: list[Targets | None] | None,
        conn: AsyncConn | None,
        *,
        positions: list[int] | None = None,
    ) -> TaskList:
        """Create the workflow (and its tasks' notify ``targets``, parallel to ``positions``) in
        one transaction, as ``Client.create_workflow`` does; its tasks in the order of
        ``positions`` (default: of its steps)."""
        if not flow.steps:
            return []
        for attempt in range(DEADLOCK_TRIES):
            try:
                async with self.connection(conn) as c:
                    if targets is not None:
                        await self._check_webhooks(c, targets)
                    with telemetry.creating(specs_of(flow)) as seen:
                        ids, made = await insert_levels_async(c, flow, seen.carrier)
                    found = {t.id: t for t in await aio.task_get_many(c, ids=sorted(set(ids)))}
                    order = positions or range(len(ids))
                    tasks = [found[ids[p]] for p in order]
                    if targets is not None:
                        # A task that holds an item's dedupe_key keeps its own targets.
                        kept = [t if made[p] else None for t, p in zip(targets, order, strict=True)]
                        tasks = await self._create_targets(tasks, kept, c)
                return tasks
            except DatabaseError as exc:
                deadlock = isinstance(exc.__cause__, psycopg.errors.DeadlockDetected)
                if conn is not None or not deadlock or attempt == DEADLOCK_TRIES - 1:
                    raise
        raise AssertionError("unreachable: the last attempt raises")

    async def _create_targets(
        self, tasks: Sequence[Task], notifies: Sequence[Targets | None], conn: AsyncConn | None
    ) -> TaskList:
        out, params = _client_notify.with_targets(tasks, notifies)
        if params is not None:
            async with self.connection(conn) as c:
                await aio.task_set_notify_many(c, **params)
        return out

    async def _check_webhooks(self, conn: AsyncConn, notifies: Sequence[Targets | None]) -> None:
        names = _client_notify.webhooks_named(notifies)
        _client_notify.check_found(await aio.webhook_names(conn, names=names) if names else [])

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

    async def get(self, task: Task | int) -> Task:
        """The task with that id; ``TaskNotFoundError`` if there is none."""
        task_id = _task_id(task)
        async with self.connection() as c:
            found = await aio.task_get(c, id=task_id)
        if found is None:
            raise TaskNotFoundError(task_id)
        return found

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

    # --- waiting -----------------------------------------------------------------------------

    async def wait(
        self, task: Task | int, timeout: float | None = None, *, poll: float = 5.0
    ) -> Task:
        """Wait until ``task`` has ended and return it: ``Client.wait`` (``TimeoutError`` after
        ``timeout`` seconds), without blocking the event loop."""
        return (await self.wait_many([task], timeout, poll=poll))[0]

    async def wait_many(
        self, tasks: Iterable[Task | int], timeout: float | None = None, *, poll: float = 5.0
    ) -> TaskList:
        """``wait`` for several tasks: returns when every one has ended, in the order given.
        It marks them awaited (``task_await``) and listens on ``pgstask_finished`` on a pooled
        connection, reading them again on each notification and every ``poll`` seconds."""
        waiting = Waiting(tasks, timeout, poll)
        async with self.connection(autocommit=True) as c:
            await c.execute(LISTEN)
            try:
                while True:
                    if waiting.to_mark:  # before the read: an end after the read is announced
                        await aio.task_await(c, ids=waiting.to_mark)
                    done = waiting.read(await aio.task_get_many(c, ids=waiting.open_ids()))
                    if done is not None:
                        return done
                    notes = c.notifies(timeout=waiting.next_wait())
                    async with contextlib.aclosing(notes):
                        async for note in notes:
                            if waiting.wakes(note.payload):
                                break
            finally:
                if not c.broken:
                    await c.execute(UNLISTEN)
