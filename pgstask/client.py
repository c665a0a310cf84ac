"""``Client``: the sTask facade in Python.

Creating tasks (alone, in bulk, or inside the caller's own psycopg transaction), reading them,
their progress and logs, cancelling and retrying, statistics, cleanup, worker management, and
running due tasks in this process (``process_pending_tasks``, ``execute``).

The facade is thin: each method hands its work to the module that owns it. A task's fields are
checked by ``task_spec``; a bulk enqueue goes through ``_copy``; the pool, ``connection()`` and
``get()`` come from ``_client_base``, the file methods from ``_client_files``, the log methods
from ``_client_logs``, the schedule
methods from ``_client_schedules``, the preset methods from ``_client_presets``, the webhook
methods from ``_client_webhooks`` (a task's ``notify`` targets: ``_client_notify``), the worker
and daemon methods from ``_client_workers``, workflows and waiting from ``_client_workflows``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload

from pgstask import _client_notify, _copy, progress, queries, task_spec
from pgstask._client_base import _task_id
from pgstask._client_files import TaskFiles
from pgstask._client_logs import ClientLogs
from pgstask._client_presets import ClientPresets
from pgstask._client_schedules import ClientSchedules
from pgstask._client_webhooks import ClientWebhooks
from pgstask._client_workers import ClientWorkers
from pgstask._client_workflows import ClientWorkflows
from pgstask.db import Conn
from pgstask.errors import (
    InvalidTaskError,
    TaskNotFoundError,
    TaskStateError,
)
from pgstask.logs import LogRecord
from pgstask.runtime.daemon import Daemon
from pgstask.task import Status, Task
from pgstask.task_spec import TaskSpec
from pgstask.workers import registry
from pgstask.workers.base import BaseWorker
from pgstask.workflow import Workflow

# Aliases: inside Client, ``list`` names the method.
TaskList = list[Task]
Rows = list[dict[str, Any]]
Names = list[str]
Records = list[LogRecord]

#: The fields of a create_many item without dependencies (with ``ref``, ``depends_on`` or
#: ``on_parent_failure`` the items are a workflow: ``create_workflow``).
_PLAIN = task_spec.FIELDS


class Client(
    TaskFiles,
    ClientLogs,
    ClientSchedules,
    ClientPresets,
    ClientWebhooks,
    ClientWorkers,
    ClientWorkflows,
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
        targets = None if notify is None else [_client_notify.targets(notify)]
        if depends_on is not None or on_parent_failure is not None:
            if throttle is not None or replace:
                raise InvalidTaskError(
                    "throttle and replace do not apply to a task with depends_on"
                )
            flow = Workflow()
            flow.add(
                identifier,
                action,
                data,
                depends_on=() if depends_on is None else depends_on,
                on_parent_failure=on_parent_failure,
                priority=priority,
                start_at=start_at,
                max_attempts=max_attempts,
                user_id=user_id,
                dedupe_key=dedupe_key,
                concurrency_key=concurrency_key,
            )
            if targets is None:
                return self.create_workflow(flow, conn=conn)[0]
            with self.connection(conn) as c:
                _client_notify.check_webhooks_exist(c, targets)
                created, made = self._create_workflow(flow, c)
                # A task that holds the dedupe_key keeps its own targets.
                return _client_notify.set_in_order(c, created, targets if made[0] else [None])[0]
        spec = task_spec.check(
            identifier=identifier,
            action=action,
            data=data,
            priority=priority,
            start_at=start_at,
            max_attempts=max_attempts,
            user_id=user_id,
            dedupe_key=dedupe_key,
            concurrency_key=concurrency_key,
        )
        window = task_spec.check_window(dedupe_key, throttle, replace)
        key = str(dedupe_key)
        while True:
            throttled = self._throttled([key], window, conn)
            if not throttled:
                created = self._insert([spec], conn, replace=replace, notifies=targets)
                if created:
                    return created[0]
            with self.connection(conn) as c:
                existing = queries.task_get_by_dedupe_key(c, dedupe_key=key)
            if existing is not None or throttled:
                return existing or throttled[key]
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
        if returning not in ("tasks", "ids"):
            raise InvalidTaskError(f"returning must be 'tasks' or 'ids', not {returning!r}")
        items = tasks if isinstance(tasks, Sequence) else list(tasks)
        items, notifies = _client_notify.split(items)
        if any(isinstance(item, Mapping) and not _PLAIN.issuperset(item) for item in items):
            if throttle is not None or replace:
                raise InvalidTaskError("throttle and replace do not apply to tasks with depends_on")
            if notifies is None:
                created = self.create_workflow(items, conn=conn)
            else:
                with self.connection(conn) as c:
                    _client_notify.check_webhooks_exist(c, notifies)
                    created, made = self._create_workflow(items, c)
                    # A task that holds an item's dedupe_key keeps its own targets.
                    created = _client_notify.set_in_order(
                        c, created, [n if m else None for n, m in zip(notifies, made, strict=True)]
                    )
            return [t.id for t in created] if returning == "ids" else created
        if (
            notifies is None
            and len(items) >= _copy.COPY_FROM
            and all(isinstance(item, Mapping) and item.get("dedupe_key") is None for item in items)
        ):
            # Each item is checked as its row is sent, so the server stores the rows already
            # sent meanwhile; a bad item aborts the COPY and nothing is created.
            built: TaskList | None = [] if returning == "tasks" else None
            with self.connection(conn) as c:
                ids = _copy.copy_tasks(
                    c,
                    task_spec.check_many(items),
                    n=len(items),
                    savepoint=conn is not None,
                    built=built,
                )
            if ids is not None:
                return ids if built is None else built
        specs = list(task_spec.check_many(items))
        window = task_spec.check_window(True, throttle, replace)  # each item's key: below
        if (window is not None or replace) and any(s.dedupe_key is None for s in specs):
            task_spec.check_window(None, throttle, replace)  # raises, naming the rule
        pairs = list(zip(specs, notifies or [None] * len(specs), strict=True))
        if replace:  # one statement cannot update a row twice: the last item of a key wins
            pairs = list({s.dedupe_key: (s, n) for s, n in pairs}.values())
        throttled = self._throttled([str(s.dedupe_key) for s, _ in pairs], window, conn)
        pairs = [(s, n) for s, n in pairs if s.dedupe_key not in throttled]
        if not pairs:
            return []
        specs = [s for s, _ in pairs]
        created = self._insert(
            specs,
            conn,
            replace=replace,
            notifies=None if notifies is None else [n for _, n in pairs],
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
        return {str(t.dedupe_key): t for t in found}

    def _insert(
        self,
        specs: Sequence[TaskSpec],
        conn: Conn | None,
        *,
        replace: bool = False,
        notifies: Sequence[dict[str, Any] | None] | None = None,
    ) -> TaskList:
        if notifies is not None and any(n is not None for n in notifies):
            # Targets: the insert and the targets in one transaction (a daemon must not finish
            # the task in between); the plain insert below stays one autocommit statement.
            with self.connection(conn) as c, c.transaction():
                _client_notify.check_webhooks_exist(c, notifies)
                created = self._insert(specs, c, replace=replace)
                return _client_notify.set_targets(c, specs, created, notifies)
        insert = queries.task_replace_many if replace else queries.task_insert_many
        with self.connection(conn, autocommit=True) as c:
            return insert(
                c,
                identifiers=[s.identifier for s in specs],
                actions=[s.action for s in specs],
                metas=[s.data for s in specs],
                priorities=[s.priority for s in specs],
                start_ats=[s.start_at for s in specs],
                max_attempts=[s.max_attempts for s in specs],
                started_by=[s.user_id for s in specs],
                dedupe_keys=[s.dedupe_key for s in specs],
                concurrency_keys=[s.concurrency_key for s in specs],
            )

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
        code = None
        if status is not None:
            try:
                code = int(Status.parse(status))
            except ValueError as exc:
                raise InvalidTaskError(str(exc)) from None
        if priority is not None:
            task_spec.check_priority(priority)
        if not 1 <= limit <= 1000:
            raise InvalidTaskError(f"limit must be between 1 and 1000, not {limit}")
        with self.connection() as c:
            return queries.task_list(
                c,
                status=code,
                identifier=identifier,
                action=action,
                priority=priority,
                concurrency_key=concurrency_key,
                created_from=created_from,
                created_to=created_to,
                before_id=before_id,
                limit=limit,
            )

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
        out: dict[str, Any] = {s.text: counts.get(int(s), 0) for s in Status}
        out["total"] = sum(counts.values())
        out["total_workers"] = workers["total"]
        out["active_workers"] = workers["active"]
        out["waiting_for_worker"] = {
            r["identifier"]: {
                "count": r["count"],
                "registered": r["registered"],
            }
            for r in waiting
        }
        return out

    def progress(self, task: Task | int) -> dict[str, Any]:
        """sTask's progress fields. Live values come from the progress table; a missing row
        (never reported, or emptied by a crash) gives ``progress: None`` while the task runs;
        a pending or waiting task reports 0, a finished one its durable final state."""
        current = self.get(task)
        with self.connection() as c:
            row = None if current.is_finished else queries.progress_get(c, task_id=current.id)
        snapshot = progress.read_snapshot(self.settings.storage, current.id) or {}
        out: dict[str, Any] = {
            "id": current.id,
            "status": current.status_text,
            "progress": None,
            "processed": snapshot.get("processed"),
            "total": snapshot.get("total"),
            "eta": None,
            "message": current.message or "",
        }
        if current.is_finished or current.status in (Status.PENDING, Status.WAITING):
            out["progress"] = current.progress if current.is_finished else 0
            if current.status == Status.COMPLETED:
                out["progress"], out["eta"] = 100, 0.0
        elif row is not None:
            out.update(
                progress=row["progress"],
                processed=row["processed"],
                total=row["total"],
                eta=row["eta"],
                message=row["message"] or out["message"],
            )
        out["eta_text"] = progress.format_eta(out["eta"])
        return out

    # --- changing ----------------------------------------------------------------------------

    def cancel(self, task: Task | int, message: str = "Cancelled by user") -> Task:
        """Cancel a pending task at once; a running one is told to stop (it stops at its next
        progress report). ``TaskStateError`` if it already finished."""
        task_id = _task_id(task)
        with self.connection() as c:
            row = queries.task_cancel(c, id=task_id, message=message)
            found = queries.task_get(c, id=task_id)
        if found is None:
            raise TaskNotFoundError(task_id)
        if row is None:
            raise TaskStateError(
                f"task {task_id} is already {found.status_text}; nothing to cancel"
            )
        was = Status(row["previous_status"]).text
        self.log(task_id, "warning", message, previous_status=was)
        return found

    def retry(self, task: Task | int) -> Task:
        """Queue a failed or cancelled task again, with a fresh set of attempts."""
        task_id = _task_id(task)
        with self.connection() as c:
            found = queries.task_retry(c, id=task_id)
            if found is not None:
                queries.task_notify(c)
                return found
            current = queries.task_get(c, id=task_id)
        if current is None:
            raise TaskNotFoundError(task_id)
        raise TaskStateError(
            f"task {task_id} is {current.status_text}; "
            "only failed or cancelled tasks can be retried"
        )

    def clean_old_tasks(self, days: float = 30) -> int:
        """Delete finished (completed, cancelled, failed) tasks older than ``days``, with their
        logs; returns how many."""
        _check_days(days)
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
        _check_days(days)
        deleted = 0
        while True:
            with self.connection() as c:
                batch = queries.log_delete_older_than(c, days=days)
            deleted += batch
            if batch == 0:
                break
        progress.collect_garbage(self.settings.storage, force=True, log_max_age=days * 86400)
        return deleted

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


def _check_days(days: float) -> None:
    if isinstance(days, bool) or not isinstance(days, int | float) or math.isnan(days) or days < 0:
        raise InvalidTaskError(f"days must be a number >= 0, not {days!r}")
