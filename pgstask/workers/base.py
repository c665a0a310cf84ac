"""``BaseWorker``: what a worker class extends.

A worker has a unique ``identifier``, metadata (``scope``, ``title``, ``description``, ``icon``),
``settings`` (the class attribute holds the defaults; an instance sees them merged with the JSON
stored in ``s_workers.settings``), and actions: methods ``task_<action>(self, task, options)``.
An action that returns without marking its task finishes it as completed; one that raises is
retried with backoff until ``max_attempts``; ``mark_failed`` fails the task for good. An action
may declare a model for its options with the annotation of ``options`` (a dataclass or a
pydantic model: ``pgstask.workers.options``); it is then given an instance of that model.

Actions are plain ``def`` methods, run in threads, or ``async def`` methods, run on the daemon's
event loop (docs/workers.md, "Async actions"); the helpers (``push_progress``, ``log``,
``mark_*``, ``check_cancelled``) do their work when called and return ``DONE``, which an async
action may ``await``. A class whose action is an async generator or a generator function is
refused when its ``class`` statement runs: its body would never run and its tasks would be
reported completed. Each accepted subclass with an identifier is remembered
(``pgstask.workers.known``), so that ``Client.create`` refuses an action it does not have.

What an action asks of pgstask beyond its own task (enqueue another, store or fetch a file) goes
through ``self.client``, a ``WorkerClient``. Whoever runs the worker hands it one (the daemon,
``run-once`` and its child processes: a ``Client`` of their database); a worker given none makes
one with ``BaseWorker.default_client``, which ``pgstask.client`` sets to ``Client``. The workers
sit below the client and the runtime (docs/architecture.md, "Layers") and import neither.

``on_completed`` and ``on_failed``, when a class defines them, are hooks: the daemon calls them
in a thread of its own after the outcome is stored (docs/workers.md, "Hooks").
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import re
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

from pgstask.db import Conn
from pgstask.errors import ConfigurationError, PgstaskError, UnknownActionError
from pgstask.files import FileInfo
from pgstask.logs import LogRecord
from pgstask.settings import Settings
from pgstask.task import Status, Task
from pgstask.workers import known
from pgstask.workers.actions import action_key, action_methods, action_name, async_methods
from pgstask.workers.context import DONE, Done, Mark, StopReason, TaskRun

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")

#: The methods a worker may define to hear of its tasks' outcomes (docs/workers.md, "Hooks").
HOOKS = ("on_completed", "on_failed")


class WorkerClient(Protocol):
    """What a worker may ask of pgstask beyond its own task: ``Client``'s methods of these names
    (``pgstask.client.Client`` is one, and the only one pgstask makes)."""

    #: The settings the client was made with (the built-in delivery workers read the webhook
    #: and SMTP settings here).
    settings: Settings

    def connection(
        self, conn: Conn | None = ..., *, autocommit: bool = ...
    ) -> AbstractContextManager[Conn]:
        """A pooled connection, committed on success (the built-in delivery workers read the
        webhook and the finished task through it)."""
        ...

    def create(
        self,
        identifier: str,
        action: str,
        data: Mapping[str, Any] | None = None,
        *,
        priority: str = ...,
        start_at: dt.datetime | None = ...,
        max_attempts: int = ...,
        user_id: int | None = ...,
        dedupe_key: str | None = ...,
        concurrency_key: str | None = ...,
        throttle: float | None = ...,
        replace: bool = ...,
        depends_on: Iterable[Task | int] | None = ...,
        on_parent_failure: str | None = ...,
        conn: Conn | None = ...,
    ) -> Task:
        """Enqueue a task (``create_task``: another action of the worker)."""
        ...

    def parents(self, task: Task | int) -> list[Task]:
        """The tasks a task depends on (``BaseWorker.parents``)."""
        ...

    def store_file(
        self,
        task: Task | int,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = ...,
        kind: str = ...,
    ) -> FileInfo:
        """Store a file of a task in the database (``store_result_file``)."""
        ...

    def fetch_file(self, file: FileInfo | int, directory: str | os.PathLike[str]) -> Path:
        """Copy a stored file into ``directory`` (``BaseWorker.fetch_file``)."""
        ...

    def close(self) -> None:
        """Release the client's connections, once whoever made it is done with the worker."""
        ...


class ClientFactory(Protocol):
    """Makes a ``WorkerClient`` of the database at ``dsn`` (``None``: the configured one), e.g. the
    ``Client`` class. The daemon hands it to its child processes: it must pickle (a class or a
    module-level function)."""

    def __call__(
        self, dsn: str | None = None, *, settings: Settings | None = None
    ) -> WorkerClient: ...


class BaseWorker:
    """Base class of every worker. Subclasses set ``identifier`` and define ``task_*`` methods."""

    identifier: ClassVar[str] = ""
    scope: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    icon: ClassVar[str] = ""
    #: Defaults, merged under ``s_workers.settings``. ``timeout`` (seconds) bounds each action;
    #: ``isolation`` ("thread", the default, or "process") says where actions run.
    settings: Mapping[str, Any] = {}
    #: Cron schedules of this worker's actions, by name: ``{"nightly": {"action": "export",
    #: "cron": "0 3 * * *", "timezone": "Europe/Kyiv"}}`` (fields: ``pgstask.schedules``). A
    #: daemon running the worker writes them to ``s_schedules`` at its start.
    schedules: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: Makes the client of a worker given none (one used outside a daemon) from the ``PGSTASK_*``
    #: environment: ``Client``, set by ``pgstask.client`` (which ``import pgstask`` imports).
    default_client: ClassVar[ClientFactory | None] = None

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        client: WorkerClient | None = None,
        storage: Path | None = None,
    ) -> None:
        self.settings = {**type(self).settings, **(settings or {})}
        self._client = client
        self._storage = storage
        self._runs: dict[int, TaskRun] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.check_actions()
        known.remember(cls, cls.identifier)

    # --- class-level description -------------------------------------------------------------

    @classmethod
    def check_actions(cls) -> None:
        """Refuse action methods the runner cannot run (``ConfigurationError``): async
        generator and generator functions, whose body would never run: the task would be
        completed without running. ``async def`` actions run on the daemon's event loop."""
        for name in sorted(action_methods(cls).values()):
            method = getattr(cls, name)
            if inspect.isasyncgenfunction(method):
                why = "is an async generator function (`async def` with `yield`)"
            elif inspect.isgeneratorfunction(method):
                why = "is a generator function (it contains `yield`); its body would never run"
            else:
                continue
            raise ConfigurationError(
                f"worker {cls.identifier or '(no identifier)'!r} "
                f"({cls.__module__}.{cls.__qualname__}): action method {name} {why}. Define it "
                "with a plain `def` (it may call asyncio.run(...) for async code)"
            )

    @classmethod
    def async_actions(cls) -> list[str]:
        """The actions of this worker that are ``async def`` (canonical spelling)."""
        return sorted(action_name(m) for m in async_methods(cls))

    @classmethod
    def is_async_action(cls, action: str) -> bool:
        """The method of ``action`` is ``async def`` (False for an unknown action)."""
        method = action_methods(cls).get(action_key(action)) if isinstance(action, str) else None
        return method in async_methods(cls)

    @classmethod
    def check_identifier(cls) -> str:
        """The identifier, validated (URL-safe, 1-255 characters)."""
        ident = cls.identifier
        if not isinstance(ident, str) or not _IDENTIFIER.match(ident):
            raise ConfigurationError(
                f"worker {cls.__module__}.{cls.__qualname__} needs an identifier of letters, "
                f"digits, '_', '.', ':' or '-' (1-255 characters), not {ident!r}"
            )
        return ident

    @classmethod
    def display_title(cls) -> str:
        """The worker's ``title``, or its identifier when it has none."""
        return cls.title or cls.identifier.replace("_", " ").replace("-", " ").title()

    @classmethod
    def actions(cls) -> list[str]:
        """The action names this worker answers to (canonical spelling)."""
        return sorted(action_name(m) for m in action_methods(cls).values())

    @classmethod
    def resolve_action(cls, action: str) -> str:
        """The method name for ``action``; ``UnknownActionError`` if there is none."""
        method = action_methods(cls).get(action_key(action)) if isinstance(action, str) else None
        if method is None:
            known = ", ".join(cls.actions()) or "none"
            raise UnknownActionError(
                f"worker {cls.identifier!r} has no action {action!r} (its actions: {known})"
            )
        return method

    # --- helpers for actions -----------------------------------------------------------------

    def _run_of(self, task: Task | int) -> TaskRun:
        """The ``TaskRun`` of ``task`` in this worker; ``PgstaskError`` outside a run."""
        task_id = task if isinstance(task, int) else task.id
        run = self._runs.get(task_id)
        if run is None:
            raise PgstaskError(
                f"task {task_id} is not running in this worker; progress, marks and logs are "
                "available to an action while a daemon (or run-once) runs it"
            )
        return run

    def push_progress(
        self,
        task: Task,
        progress: float | None = None,
        processed: int | None = None,
        total: int | None = None,
        eta: float | None = None,
        message: str | None = None,
    ) -> Done:
        """Report progress. Fields not given keep their earlier values; with ``processed`` and
        ``total`` the percentage and the ETA (seconds) are derived when not given. Raises
        ``TaskStopped`` (``asyncio.CancelledError`` in an async action) if the action was asked
        to stop meanwhile (cancelled, timed out, …). An async action awaits it."""
        run = self._run_of(task)
        run.check()
        run.tracker.push(
            progress=progress, processed=processed, total=total, eta=eta, message=message
        )
        return DONE

    def mark_preparing(self, task: Task, message: str | None = None) -> Done:
        """Status 30 (preparing) for the action's own set-up phase, as sTask's built-in workers
        do; ``mark_running`` when the real work starts. One write each, and only when called
        (at once: in an async action it holds the event loop for one statement)."""
        self._set_phase(task, Status.PREPARING, message)
        return DONE

    def mark_running(self, task: Task, message: str | None = None) -> Done:
        """Status 50 (running) again after ``mark_preparing``."""
        self._set_phase(task, Status.RUNNING, message)
        return DONE

    def _set_phase(self, task: Task, status: Status, message: str | None) -> None:
        run = self._run_of(task)
        run.check()
        if not run.set_status(int(status)):
            run.cancel(StopReason.LOST)  # cancelled or rescued meanwhile: stop here
            run.check()
        run.tracker.state.status = int(status)
        run.tracker.push(message=message)
        run.tracker.flush()

    def check_cancelled(self, task: Task) -> Done:
        """Raise ``TaskStopped`` (``asyncio.CancelledError`` in an async action) if the action
        was asked to stop, for any reason (for loops that report no progress). sTask's name,
        kept: it checks more than cancellation."""
        self._run_of(task).check()
        return DONE

    def mark_finished(self, task: Task, result: Any = None, message: str | None = None) -> Done:
        """Finish the task as completed with ``result`` (any JSON value, e.g. a file path)."""
        run = self._run_of(task)
        run.mark, run.result, run.message = Mark.FINISHED, result, message
        return DONE

    def mark_failed(self, task: Task, message: str) -> Done:
        """Fail the task for good (no retry), with ``message``."""
        run = self._run_of(task)
        run.mark, run.message = Mark.FAILED, str(message)
        return DONE

    def log(self, task: Task, level: str, message: str, **context: Any) -> Done:
        """Add a log record to the task (level: debug, info, warning, error, critical): in its
        ``{id}.log`` file at once, its row with the daemon's next completer pass."""
        run = self._run_of(task)
        run.emit_log(LogRecord.make(run.task.id, level, message, **context))
        return DONE

    # --- hooks -------------------------------------------------------------------------------

    def on_completed(self, task: Task, result: Any) -> None:
        """Called in the daemon after a task of this worker completed and that was stored:
        ``task`` as stored (status 80), ``result`` its result. Define it in a worker to use it;
        an exception is logged and changes nothing (docs/workers.md, "Hooks")."""

    def on_failed(self, task: Task, error: str) -> None:
        """Called in the daemon after a task of this worker failed for good and that was
        stored (not for a failed attempt that is retried): ``task`` as stored (status 100),
        ``error`` its failure message (the traceback, if any, is ``task.last_error``)."""

    @classmethod
    def defined_hooks(cls) -> frozenset[str]:
        """The hooks this class defines (``on_completed``, ``on_failed``): the daemon runs a
        hook thread only for workers with one."""
        return frozenset(
            name for name in HOOKS if getattr(cls, name) is not getattr(BaseWorker, name)
        )

    # --- enqueueing --------------------------------------------------------------------------

    @property
    def storage(self) -> Path:
        """The storage directory of the daemon running this worker (``PGSTASK_STORAGE``): where
        snapshots and log files go, and where actions may write their result files."""
        if self._storage is None:
            self._storage = Settings.from_env().storage
        return self._storage

    @property
    def client(self) -> WorkerClient:
        """The client this worker was given, else one made by ``default_client``."""
        if self._client is None:
            make = BaseWorker.default_client
            if make is None:  # pgstask.client sets it when imported, as `import pgstask` does
                raise PgstaskError("no client for this worker: import pgstask first")
            self._client = make()
        return self._client

    def store_result_file(
        self, task: Task, path: str | os.PathLike[str], filename: str | None = None
    ) -> dict[str, Any]:
        """Store the file at ``path`` as the task's result file, in the database, so that
        ``GET /stask/task/{id}/download`` serves it from any host. Returns ``{"file_id",
        "filename", "size"}``, a good ``result`` for ``mark_finished``."""
        self._run_of(task)
        info = self.client.store_file(task, path, filename=filename)
        return {"file_id": info.id, "filename": info.filename, "size": info.size}

    def parents(self, task: Task) -> list[Task]:
        """The tasks ``task`` depends on (docs/workflows.md), by id, as they are now: each with
        its status, message and ``result``. All have finished by the time the task runs; a
        group's callback finds some failed or cancelled."""
        return self.client.parents(task)

    def parent_results(self, task: Task) -> dict[int, Any]:
        """The ``result`` of each task ``task`` depends on, by task id (None for a parent that
        did not complete)."""
        return {
            p.id: p.result if p.status == Status.COMPLETED else None for p in self.parents(task)
        }

    def fetch_file(self, file_id: int) -> Path:
        """A local copy of a stored file (an upload), in ``storage/uploads``."""
        return self.client.fetch_file(int(file_id), self.storage / "uploads")

    def create_task(
        self, action: str, data: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Task:
        """Enqueue ``action`` of this worker (keyword arguments as for ``Client.create``)."""
        self.resolve_action(action)
        return self.client.create(self.identifier, action, data, **kwargs)
