"""The ``Client``'s workflows and results: creating tasks that depend on others (one task, a
list of items with refs, or a ``Workflow``) in one transaction; reading a task's parents,
children and whole workflow; and waiting for tasks to end (``wait``, ``wait_many``).

The rules of dependencies are the database's (revision 0010): this module puts the parents
first and sends them; the insert trigger links them. Waiting marks the tasks ``awaited`` (their
end then sends ``NOTIFY pgstask_finished``, in the transaction that ends them) and listens, with
a poll as the fallback for a notification lost with a connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg

from pgstask import queries, task_spec, telemetry, workflow
from pgstask._client_base import ClientBase, _task_id
from pgstask.db import AsyncConn, Conn
from pgstask.errors import DatabaseError, InvalidTaskError, TaskNotFoundError
from pgstask.queries import aio
from pgstask.task import FINISHED, Task
from pgstask.workflow import Workflow

#: The channel the end of an awaited task is announced on (payload: its id).
FINISHED_CHANNEL = "pgstask_finished"
LISTEN = "LISTEN " + FINISHED_CHANNEL
UNLISTEN = "UNLISTEN " + FINISHED_CHANNEL
#: The most tasks ``workflow_of`` returns.
MAX_WORKFLOW = 10_000
#: How often a create that met a deadlock with a concurrent completion is tried (the database
#: rolled it back whole, so trying again is safe).
DEADLOCK_TRIES = 5
#: How soon ``wait`` marks again a task whose row was locked when it marked it (seconds; it
#: doubles at each try, up to ``poll``). Short: the common lock is a daemon's claim or completion
#: of the task, a statement of a millisecond (a wait right after a create meets the claim).
MARK_AGAIN = 0.002


class ClientWorkflows(ClientBase):
    """The workflow and waiting methods of ``Client``."""

    # --- creating ----------------------------------------------------------------------------

    def create_workflow(
        self, tasks: Workflow | Sequence[Mapping[str, Any]], *, conn: Conn | None = None
    ) -> list[Task]:
        """Create a workflow in one transaction (``conn``: the caller's): a ``Workflow``, or a
        list of ``create_many`` items that may carry ``ref`` (a name unique in the list),
        ``depends_on`` (refs of other items and ids of existing tasks, in any order) and
        ``on_parent_failure``. The created tasks, read after the insert (so a task with
        unfinished parents is ``waiting``), in the order of the workflow's ``add`` calls or of
        the items. An item whose ``dedupe_key`` an unfinished task holds is not created: that
        task stands in for it, in the result and as the parent of the items that name it.
        ``InvalidTaskError``: a cycle, a ref no item has, a missing parent (naming it)."""
        return self._create_workflow(tasks, conn)[0]

    def _create_workflow(
        self, tasks: Workflow | Sequence[Mapping[str, Any]], conn: Conn | None
    ) -> tuple[list[Task], list[bool]]:
        """``create_workflow``'s tasks, and for each whether this call created it (False: the
        unfinished task that holds its ``dedupe_key`` stands in for it)."""
        if isinstance(tasks, Workflow):
            flow, positions = tasks, list(range(len(tasks)))
        else:
            items = tasks if isinstance(tasks, Sequence) else list(tasks)
            flow, positions = workflow.from_items(items)
        if not flow.steps:
            return [], []
        for attempt in range(DEADLOCK_TRIES):
            try:
                with self.connection(conn) as c, telemetry.creating(specs_of(flow)) as seen:
                    ids, made = _insert_levels(c, flow, seen.carrier)
                    found = {t.id: t for t in queries.task_get_many(c, ids=sorted(set(ids)))}
                break
            except DatabaseError as exc:
                deadlock = isinstance(exc.__cause__, psycopg.errors.DeadlockDetected)
                if conn is not None or not deadlock or attempt == DEADLOCK_TRIES - 1:
                    raise
        return [found[ids[p]] for p in positions], [made[p] for p in positions]

    # --- reading -----------------------------------------------------------------------------

    def parents(self, task: Task | int) -> list[Task]:
        """The tasks ``task`` depends on, by id (with their status, message and result)."""
        task_id = _task_id(task)
        with self.connection() as c:
            return queries.task_parents(c, id=task_id)

    def children(self, task: Task | int) -> list[Task]:
        """The tasks that depend on ``task``, by id."""
        task_id = _task_id(task)
        with self.connection() as c:
            return queries.task_children(c, id=task_id)

    def workflow_of(self, task: Task | int) -> tuple[list[Task], list[tuple[int, int]]]:
        """The workflow ``task`` belongs to: every task joined to it by dependencies, in either
        direction (itself included; at most ``MAX_WORKFLOW``, lowest ids first), and the
        dependencies among them as ``(task id, parent id)``. ``TaskNotFoundError`` if there is
        no such task."""
        task_id = _task_id(task)
        with self.connection() as c:
            ids = queries.task_workflow_ids(c, id=task_id, limit=MAX_WORKFLOW)
            tasks = queries.task_get_many(c, ids=ids)
            edges = queries.task_edges(c, ids=[t.id for t in tasks])
        return workflow_answer(task_id, tasks, edges)

    # --- waiting -----------------------------------------------------------------------------

    def wait(self, task: Task | int, timeout: float | None = None, *, poll: float = 5.0) -> Task:
        """Block until ``task`` has ended (completed, cancelled or failed) and return it, with
        its status, message and result. Woken by a notification sent in the transaction that
        ends it, and reads the task again every ``poll`` seconds in case one is lost.
        ``TimeoutError`` after ``timeout`` seconds (None: no limit); ``TaskNotFoundError`` if
        there is no such task."""
        return self.wait_many([task], timeout, poll=poll)[0]

    def wait_many(
        self, tasks: Iterable[Task | int], timeout: float | None = None, *, poll: float = 5.0
    ) -> list[Task]:
        """``wait`` for several tasks: returns when every one has ended, in the order given."""
        waiting = Waiting(tasks, timeout, poll)
        with self.connection(autocommit=True) as c:
            c.execute(LISTEN)
            try:
                while True:
                    if waiting.to_mark:  # before the read: an end after the read is announced
                        queries.task_await(c, ids=waiting.to_mark)
                    done = waiting.read(queries.task_get_many(c, ids=waiting.open_ids()))
                    if done is not None:
                        return done
                    for note in c.notifies(timeout=waiting.next_wait()):
                        if waiting.wakes(note.payload):
                            break
            finally:
                if not c.broken:
                    c.execute(UNLISTEN)


class Waiting:
    """One ``wait_many`` of ``Client`` or ``AsyncClient``, without its I/O: the tasks waited
    for, those that have ended, and how long to listen before reading the others again.

    The caller listens on ``FINISHED_CHANNEL``, then, until ``read`` returns the tasks: marks
    ``to_mark`` awaited (``task_await``), reads the ``open_ids``, hands them to ``read``, and
    listens for up to ``next_wait()`` seconds for a notification that ``wakes`` it. A task whose
    row another transaction held when it was marked (``task_await`` skips locked rows: a wait
    must neither wait for a caller's open transaction nor deadlock with a completion) is not
    marked, so its end would not be announced: it stays in ``to_mark``, and ``next_wait`` is
    ``MARK_AGAIN`` at first, doubling up to ``poll``.
    """

    def __init__(self, tasks: Iterable[Task | int], timeout: float | None, poll: float) -> None:
        """``InvalidTaskError`` for a bad id, ``timeout`` or ``poll``."""
        self.ids = [_task_id(t) for t in tasks]
        _check_wait(timeout, poll)
        self.timeout, self.poll = timeout, poll
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.ended: dict[int, Task] = {}
        self.found: dict[int, Task] = {}
        self.to_mark = list(dict.fromkeys(self.ids))
        self.again = MARK_AGAIN

    def open_ids(self) -> list[int]:
        """The tasks not seen ended yet, once each, in the order given."""
        return [i for i in dict.fromkeys(self.ids) if i not in self.ended]

    def read(self, tasks: Iterable[Task]) -> list[Task] | None:
        """Take the open tasks just read: every task waited for, in the order given, once all
        have ended, else None. ``TaskNotFoundError`` for one that does not exist."""
        open_ids = self.open_ids()
        self.found = {t.id: t for t in tasks}
        missing = [i for i in open_ids if i not in self.found]
        if missing:
            raise TaskNotFoundError(missing[0])
        self.ended.update((i, t) for i, t in self.found.items() if t.status in FINISHED)
        if len(self.ended) == len(set(self.ids)):
            return [self.ended[i] for i in self.ids]
        self.to_mark = [i for i in open_ids if i not in self.ended and not self.found[i].awaited]
        return None

    def next_wait(self) -> float:
        """Seconds to listen before reading again; ``TimeoutError`` once the timeout is over."""
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left <= 0:
            open_ids = self.open_ids()
            raise TimeoutError(
                f"{len(open_ids)} task(s) did not end within {self.timeout} s (task "
                f"{open_ids[0]} is {self.found[open_ids[0]].status_text})"
            )
        wake = self.poll if left is None else min(self.poll, left)
        if self.to_mark:
            wake, self.again = min(wake, self.again), min(self.again * 2, self.poll)
        return wake

    def wakes(self, payload: str) -> bool:
        """Whether a notification with ``payload`` names a task still waited for."""
        return payload in {str(i) for i in self.open_ids()}


def specs_of(flow: Workflow) -> list[task_spec.TaskSpec]:
    """The tasks of the workflow's steps (what its ``create`` span is told)."""
    return [s.spec for s in flow.steps]


def _insert_levels(
    conn: Conn, flow: Workflow, trace_context: str | None
) -> tuple[list[int], list[bool]]:
    """Insert the workflow's steps, one statement per level (``levels_of``), each task with
    ``trace_context``; the id of each step's task (a skipped step's: the unfinished task holding
    its dedupe_key), and whether each step was inserted (not skipped)."""
    ids: list[int | None] = [None] * len(flow.steps)
    made = [False] * len(flow.steps)
    for batch in levels_of(flow):
        while batch:
            columns = linked_columns(flow, batch, ids, trace_context)
            rows = queries.task_insert_linked(conn, **columns)
            again: list[int] = []
            skipped = place(flow, batch, rows, ids, made)
            for i in skipped:
                holder = queries.task_get_by_dedupe_key(conn, dedupe_key=holder_key(flow, i))
                if holder is None:
                    again.append(i)
                else:
                    ids[i] = holder.id
            batch = again
    return placed(ids), made


def workflow_answer(
    task_id: int, tasks: list[Task], edges: Iterable[Mapping[str, Any]]
) -> tuple[list[Task], list[tuple[int, int]]]:
    """``workflow_of``'s answer from the tasks and the ``task_edges`` rows read;
    ``TaskNotFoundError`` when no task was found."""
    if not tasks:
        raise TaskNotFoundError(task_id)
    return tasks, [(e["task_id"], e["parent_id"]) for e in edges]


def levels_of(flow: Workflow) -> list[list[int]]:
    """The workflow's steps by level, lowest first: a step's level is one more than its latest
    parent's in the workflow, so its parents exist when it is inserted."""
    levels: list[int] = []
    for step in flow.steps:
        levels.append(1 + max((levels[p] for p in step.earlier), default=-1))
    return [[i for i, lv in enumerate(levels) if lv == level] for level in range(max(levels) + 1)]


async def insert_levels_async(
    conn: AsyncConn, flow: Workflow, trace_context: str | None
) -> tuple[list[int], list[bool]]:
    """``_insert_levels`` on an async connection (``AsyncClient``'s)."""
    ids: list[int | None] = [None] * len(flow.steps)
    made = [False] * len(flow.steps)
    for batch in levels_of(flow):
        while batch:
            columns = linked_columns(flow, batch, ids, trace_context)
            rows = await aio.task_insert_linked(conn, **columns)
            again: list[int] = []
            skipped = place(flow, batch, rows, ids, made)
            for i in skipped:
                holder = await aio.task_get_by_dedupe_key(conn, dedupe_key=holder_key(flow, i))
                if holder is None:
                    again.append(i)
                else:
                    ids[i] = holder.id
            batch = again
    return placed(ids), made


def linked_columns(
    flow: Workflow, batch: list[int], ids: list[int | None], trace_context: str | None = None
) -> dict[str, Any]:
    """The parameters of ``task_insert_linked`` for steps ``batch`` (their parents' ids known),
    each task with ``trace_context``."""
    steps = [flow.steps[i] for i in batch]
    parents = [
        [*s.existing, *(ids[p] for p in s.earlier)] if s.existing or s.earlier else None
        for s in steps
    ]
    return {
        **task_spec.columns([s.spec for s in steps]),
        "depends_on": [None if p is None else "{" + ",".join(map(str, p)) + "}" for p in parents],
        "on_parent_failure": [s.on_parent_failure for s in steps],
        "trace_context": trace_context,
    }


def place(
    flow: Workflow,
    batch: list[int],
    rows: Sequence[Mapping[str, Any]],
    ids: list[int | None],
    made: list[bool],
) -> list[int]:
    """Set the ids of the steps of ``batch`` that ``task_insert_linked`` created (``rows``, in
    order), and mark them ``made``; the steps it skipped for their dedupe_key, whose holder the
    caller looks up (``holder_key``) and inserts again if it ended meanwhile."""
    skipped: list[int] = []
    at = 0
    for i in batch:
        row = rows[at] if at < len(rows) else None
        if row is not None and row["dedupe_key"] == flow.steps[i].spec.dedupe_key:
            ids[i], made[i] = row["id"], True
            at += 1
        else:
            skipped.append(i)
    return skipped


def holder_key(flow: Workflow, step: int) -> str:
    """The dedupe key a skipped step is looked up by."""
    return str(flow.steps[step].spec.dedupe_key)


def placed(ids: list[int | None]) -> list[int]:
    """Every step's task id, once all are set."""
    return [i for i in ids if i is not None] if None not in ids else _unreachable()


def _unreachable() -> list[int]:
    raise AssertionError("a workflow step was left without a task")


def _check_wait(timeout: Any, poll: Any) -> None:
    """``timeout`` (None: no limit) and ``poll``: numbers of seconds above 0."""
    checked = [("poll", poll)] if timeout is None else [("timeout", timeout), ("poll", poll)]
    for name, value in checked:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise InvalidTaskError(f"{name} must be a number of seconds above 0, not {value!r}")
