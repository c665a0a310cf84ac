"""``Client``: the sTask facade in Python.

Creating tasks (alone, in bulk, or inside the caller's own psycopg transaction), reading them,
their progress and logs, cancelling and retrying, statistics, cleanup, worker management, and
running due tasks in this process (``process_pending_tasks``, ``execute``).

The facade is thin: each method hands its work to the module that owns it. A task's fields are
checked by ``task_spec``; a bulk enqueue goes through ``_copy``; the pool, ``connection()`` and
``get()`` come from ``_client_base``, the file methods from ``_client_files``, the schedule
methods from ``_client_schedules``, the preset methods from ``_client_presets``, the webhook
methods from ``_client_webhooks`` (a task's ``notify`` targets: ``_client_notify``), the worker
and daemon methods from ``_client_workers``, workflows and waiting from ``_client_workflows``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload

from pgstask import (
    _client_notify,
    _client_rules,
    _copy,
    logs,
    progress,
    queries,
    task_spec,
    telemetry,
)
from pgstask._client_base import _task_id
from pgstask._client_files import TaskFiles
from pgstask._client_presets import ClientPresets
from pgstask._client_schedules import ClientSchedules
from pgstask._client_webhooks import ClientWebhooks
from pgstask._client_workers import ClientWorkers
from pgstask._client_workflows import ClientWorkflows
from pgstask.db import Conn
from pgstask.logs import LogRecord
from pgstask.runtime.daemon import Daemon
from pgstask.task import Task
from pgstask.task_spec import TaskSpec
from pgstask.workers import registry
from pgstask.workers.base import BaseWorker

# Aliases: inside Client, ``list`` names the method.
TaskList = list[Task]
Rows = list[dict[str, Any]]
Names = list[str]
Records = list[LogRecord]


class Client(
    TaskFiles, ClientSchedules, ClientPresets, ClientWebhooks, ClientWorkers, ClientWorkflows
):
    """pgstask's Python API. ``Client(dsn=None)`` uses ``PGSTASK_DSN`` or the embedded database.

    The client opens a small connection pool on first use; ``close()`` it (or use it as a context
    manager) when done.
    """

    # --- creating ----------------------------------------------------------------------------

    def create(
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
        conn: Conn | None = None,
    ) -> Task:
        """Enqueue one task. With ``conn`` it is created in the caller's transaction (rolled
        back = never runs). With ``dedupe_key``, while a task with that key is incomplete the
        existing task is returned instead of a new one; with ``throttle`` (seconds) also while
        one finished less than that long ago; with ``replace``, a pending holder of the key takes
        this create's data, priority, start_at, max_attempts and concurrency key (docs/dedupe.md).
        ``concurrency_key`` groups the task for its worker's per-key limits and fair sharing
        (docs/limits.md). With ``depends_on`` (tasks or ids) the task waits until they have
        completed; ``on_parent_failure`` says what a parent that fails does to it
        (docs/workflows.md). ``notify`` names who is told when it completes or fails, besides
        its worker's ``notify`` setting: ``{"webhooks": [...], "emails": [...], "on": [...]}``
        (docs/notifications.md)."""
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
            if one.targets is None:
                return self.create_workflow(one.flow, conn=conn)[0]
            with self.connection(conn) as c:
                _client_notify.check_webhooks_exist(c, one.targets)
                created, made = self._create_workflow(one.flow, c)
                # A task that holds the dedupe_key keeps its own targets.
                return _client_notify.set_in_order(c, created, one.targets if made[0] else [None])[
                    0
                ]
        assert one.spec is not None
        while True:
            throttled = self._throttled([one.key], one.window, conn)
            if not throttled:
                created = self._insert([one.spec], conn, replace=replace, notifies=one.targets)
                if created:
                    return created[0]
            with self.connection(conn) as c:
                existing = queries.task_get_by_dedupe_key(c, dedupe_key=one.key)
            if existing is not None or throttled:
                return existing or throttled[one.key]
            # The holder finished between the insert and this read: insert again.

    @overload
    def create_many(
        self,
        tasks: Iterable[Mapping[str, Any]],
        *,
        conn: Conn | None = None,
        returning: Literal["tasks"] = "tasks",
        throttle: float | None = None,
        replace: bool = False,
    ) -> TaskList: ...

    @overload
    def create_many(
        self,
        tasks: Iterable[Mapping[str, Any]],
        *,
        conn: Conn | None = None,
        returning: Literal["ids"],
        throttle: float | None = None,
        replace: bool = False,
    ) -> list[int]: ...

    def create_many(
        self,
        tasks: Iterable[Mapping[str, Any]],
        *,
        conn: Conn | None = None,
        returning: Literal["tasks", "ids"] = "tasks",
        throttle: float | None = None,
        replace: bool = False,
    ) -> TaskList | list[int]:
        """Enqueue many tasks in one transaction. Each item has the keyword arguments of
        ``create`` (``identifier``, ``action``, ``data``, ``priority``, …). Items whose
        ``dedupe_key`` is taken are skipped (``throttle``, ``replace``: as for ``create``, for
        every item, each of which then needs a key; with ``replace`` the last of several items
        with one key wins); the created (or replaced) tasks are returned in order, or with
        ``returning="ids"`` only their ids (a bulk load that does not need ``Task`` objects:
        from 100 tasks without a ``dedupe_key``, about half the client's work). An item's
        ``notify`` is as ``create``'s (such a batch is inserted by INSERT, not COPY)."""
        many = _client_rules.many_tasks(
            tasks, returning=returning, throttle=throttle, replace=replace
        )
        if many.linked:
            if many.notifies is None:
                created = self.create_workflow(many.items, conn=conn)
            else:
                with self.connection(conn) as c:
                    _client_notify.check_webhooks_exist(c, many.notifies)
                    created, made = self._create_workflow(many.items, c)
                    # A task that holds an item's dedupe_key keeps its own targets.
                    kept = [n if m else None for n, m in zip(many.notifies, made, strict=True)]
                    created = _client_notify.set_in_order(c, created, kept)
            return [t.id for t in created] if returning == "ids" else created
        if many.copy:
            # Each item is checked as its row is sent, so the server stores the rows already
            # sent meanwhile; a bad item aborts the COPY and nothing is created.
            built: TaskList | None = [] if returning == "tasks" else None
            with self.connection(conn) as c, telemetry.creating(many.items) as seen:
                ids = _copy.copy_tasks(
                    c,
                    task_spec.check_many(many.items),
                    n=len(many.items),
                    savepoint=conn is not None,
                    built=built,
                    trace_context=seen.carrier,
                )
            if ids is not None:
                return ids if built is None else built
        checked = _client_rules.batch(many, throttle=throttle, replace=replace)
        pairs = checked.without(self._throttled(checked.keys, checked.window, conn))
        if not pairs:
            return []
        created = self._insert(
            [s for s, _ in pairs],
            conn,
            replace=replace,
            notifies=None if many.notifies is None else [n for _, n in pairs],
        )
        return [t.id for t in created] if returning == "ids" else created

    def _throttled(
        self, keys: list[str], throttle: float | None, conn: Conn | None
    ) -> dict[str, Task]:
        """The keys a task finished with within ``throttle`` seconds, and that task (none
        without a throttle): a create makes no task for them (docs/dedupe.md)."""
        if throttle is None:
            return {}
        with self.connection(conn) as c:
            found = queries.task_get_throttled_many(c, dedupe_keys=keys, throttle=throttle)
        return _client_rules.by_key(found)

    def _insert(
        self,
        specs: Sequence[TaskSpec],
        conn: Conn | None,
        *,
        replace: bool = False,
        notifies: Sequence[dict[str, Any] | None] | None = None,
    ) -> TaskList:
        if _client_rules.has_targets(notifies):
            assert notifies is not None
            # Targets: the insert and the targets in one transaction (a daemon must not finish
            # the task in between); the plain insert below stays one autocommit statement.
            with self.connection(conn) as c, c.transaction():
                _client_notify.check_webhooks_exist(c, notifies)
                created = self._insert(specs, c, replace=replace)
                return _client_notify.set_targets(c, specs, created, notifies)
        insert = queries.task_replace_many if replace else queries.task_insert_many
        with self.connection(conn, autocommit=True) as c, telemetry.creating(specs) as made:
            created = insert(c, **task_spec.columns(specs), trace_context=made.carrier)
            made.created(created)
            return created

    # --- reading -----------------------------------------------------------------------------

    def list(
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
        """Tasks newest first, filtered (created in ``[created_from, created_to)``); page with
        ``before_id`` = the last id seen."""
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
        with self.connection() as c:
            return queries.task_list(c, **filters)

    def pending_tasks(self, limit: int = 10) -> TaskList:
        """Due pending tasks in the order daemons claim them (priority, start_at, id)."""
        with self.connection() as c:
            return queries.task_pending(c, limit=limit)

    def stats(self) -> dict[str, Any]:
        """Counts per status (sTask's keys plus ``preparing`` and ``cancelled``), workers total
        and active, and pending tasks that wait for a worker no daemon has or that is inactive."""
        with self.connection() as c:
            counts = queries.task_count_by_status(c)
            workers = queries.worker_count(c)
            waiting = queries.task_waiting_for_worker(c)
        return _client_rules.stats_of(counts, workers, waiting)

    def progress(self, task: Task | int) -> dict[str, Any]:
        """sTask's progress fields. Live values come from the progress table; a missing row
        (never reported, or emptied by a crash) gives ``progress: None`` while the task runs;
        a pending or waiting task reports 0, a finished one its durable final state."""
        current = self.get(task)
        with self.connection() as c:
            row = None if current.is_finished else queries.progress_get(c, task_id=current.id)
        snapshot = progress.read_snapshot(self.settings.storage, current.id) or {}
        return _client_rules.progress_of(current, row, snapshot)

    # --- changing ----------------------------------------------------------------------------

    def cancel(self, task: Task | int, message: str = "Cancelled by user") -> Task:
        """Cancel a pending task at once; a running one is told to stop (it stops at its next
        progress report). ``TaskStateError`` if it already finished."""
        task_id = _task_id(task)
        with self.connection() as c:
            row = queries.task_cancel(c, id=task_id, message=message)
            found = queries.task_get(c, id=task_id)
        cancelled = _client_rules.cancelled(task_id, row, found)
        assert row is not None
        self.log(task_id, "warning", message, **_client_rules.cancel_context(row))
        return cancelled

    def retry(self, task: Task | int) -> Task:
        """Queue a failed or cancelled task again, with a fresh set of attempts."""
        task_id = _task_id(task)
        with self.connection() as c:
            found = queries.task_retry(c, id=task_id)
            if found is not None:
                queries.task_notify(c)
                return found
            current = queries.task_get(c, id=task_id)
        raise _client_rules.not_retried(task_id, current)

    def clean_old_tasks(self, days: float = 30) -> int:
        """Delete finished (completed, cancelled, failed) tasks older than ``days``, with their
        logs; returns how many."""
        _client_rules.check_days(days)
        deleted = 0
        while True:
            with self.connection() as c:
                batch = queries.task_delete_finished_before(c, days=days)
            deleted += batch
            if batch == 0:
                return deleted

    def clean_old_logs(self, days: float = 30) -> int:
        """Delete log records older than ``days``, and this host's ``{id}.log`` files not
        written to for that long; returns how many records."""
        _client_rules.check_days(days)
        deleted = 0
        while True:
            with self.connection() as c:
                batch = queries.log_delete_older_than(c, days=days)
            deleted += batch
            if batch == 0:
                break
        progress.collect_garbage(self.settings.storage, force=True, log_max_age=days * 86400)
        return deleted

    # --- logs --------------------------------------------------------------------------------

    def logs(self, task: Task | int, limit: int | None = None) -> Records:
        """A task's log records, oldest first (the last ``limit`` if given)."""
        with self.connection() as c:
            return logs.read(c, _task_id(task), limit=limit)

    def last_logs(self, task: Task | int, n: int = 10) -> Records:
        """The last ``n`` log records of a task, oldest first."""
        return self.logs(task, limit=n)

    def error_logs(self, task: Task | int) -> Records:
        """The log records of a task at level ``error`` or ``critical``, oldest first."""
        with self.connection() as c:
            return logs.read(c, _task_id(task), errors_only=True)

    def clear_logs(self, task: Task | int) -> int:
        """Delete a task's log records (rows and ``{id}.log`` file); returns how many rows."""
        with self.connection() as c:
            return logs.clear(c, self.settings.storage, _task_id(task))

    def log(self, task: Task | int, level: str, message: str, **context: Any) -> None:
        """Add a log record to a task from outside its action."""
        record = LogRecord.make(_task_id(task), level, message, **context)
        with self.connection() as c:
            logs.write(c, self.settings.storage, [record])

    # --- running in this process -------------------------------------------------------------

    def process_pending_tasks(self, batch_size: int = 10) -> int:
        """Run up to ``batch_size`` due tasks in this process; returns how many succeeded."""
        daemon = self._daemon()
        return daemon.run_once(batch_size=batch_size, max_tasks=batch_size).completed

    def execute(self, task: Task | int) -> bool:
        """Run one pending task now in this process, whatever its ``start_at``; True if it
        completed. ``TaskStateError`` if it is not pending, or if a limit of its worker is
        reached (docs/limits.md): a limit holds for ``execute`` too."""
        return self._daemon().execute(_task_id(task)).completed == 1

    def _daemon(self) -> Daemon:
        """A one-slot daemon of this client's database and settings: the client sits above the
        runtime, which is handed ``Client`` to make its workers' clients with."""
        return Daemon(
            self.settings,
            dsn=self.dsn,
            workers=registry.daemon_workers(self.settings),
            make_client=Client,
            concurrency=1,
        )


# A worker given no client (one used outside a daemon) makes one of these; the workers sit below
# the client and do not import it (docs/architecture.md, "Layers").
BaseWorker.default_client = Client
