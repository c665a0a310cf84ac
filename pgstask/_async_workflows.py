"""``AsyncClient``'s workflows and results, as ``_client_workflows`` is ``Client``'s: creating
tasks that depend on others in one transaction, reading a task's parents, children and whole
workflow, and waiting for tasks to end. The levels, the placing of the inserted ids and the
waiting loop's state are ``_client_workflows``' own functions and ``Waiting``; only the awaits
are written here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg

from pgstask import _client_notify, telemetry, workflow
from pgstask._async_base import AsyncClientBase
from pgstask._client_base import _task_id
from pgstask._client_notify import Targets
from pgstask._client_workflows import (
    DEADLOCK_TRIES,
    LISTEN,
    MAX_WORKFLOW,
    UNLISTEN,
    Waiting,
    insert_levels_async,
    specs_of,
    workflow_answer,
)
from pgstask.db import AsyncConn
from pgstask.errors import DatabaseError
from pgstask.queries import aio
from pgstask.task import Task
from pgstask.workflow import Workflow

TaskList = list[Task]


class AsyncClientWorkflows(AsyncClientBase):
    """The workflow and waiting methods of ``AsyncClient``."""

    # --- creating ----------------------------------------------------------------------------

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

    # --- reading -----------------------------------------------------------------------------

    async def parents(self, task: Task | int) -> TaskList:
        """The tasks ``task`` depends on, by id: ``Client.parents``."""
        task_id = _task_id(task)
        async with self.connection() as c:
            return await aio.task_parents(c, id=task_id)

    async def children(self, task: Task | int) -> TaskList:
        """The tasks that depend on ``task``, by id: ``Client.children``."""
        task_id = _task_id(task)
        async with self.connection() as c:
            return await aio.task_children(c, id=task_id)

    async def workflow_of(self, task: Task | int) -> tuple[TaskList, list[tuple[int, int]]]:
        """The workflow ``task`` belongs to and its dependencies as ``(task id, parent id)``:
        ``Client.workflow_of`` (``TaskNotFoundError`` if there is no such task)."""
        task_id = _task_id(task)
        async with self.connection() as c:
            ids = await aio.task_workflow_ids(c, id=task_id, limit=MAX_WORKFLOW)
            tasks = await aio.task_get_many(c, ids=ids)
            edges = await aio.task_edges(c, ids=[t.id for t in tasks])
        return workflow_answer(task_id, tasks, edges)

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
