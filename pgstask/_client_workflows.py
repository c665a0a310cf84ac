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

from pgstask import queries, workflow
from pgstask._client_base import ClientBase, _task_id
from pgstask.db import Conn
from pgstask.errors import DatabaseError, InvalidTaskError, TaskNotFoundError
from pgstask.task import FINISHED, Task
from pgstask.workflow import Workflow

#: The channel the end of an awaited task is announced on (payload: its id).
FINISHED_CHANNEL = "pgstask_finished"
#: The most tasks ``workflow_of`` returns.
MAX_WORKFLOW = 10_000
#: How often a create that met a deadlock with a concurrent completion is tried (the database
#: rolled it back whole, so trying again is safe).
_DEADLOCK_TRIES = 5
#: How soon ``wait`` marks again a task whose row was locked when it marked it (seconds; it
#: doubles at each try, up to ``poll``). Short: the common lock is a daemon's claim or completion
#: of the task, a statement of a millisecond (a wait right after a create meets the claim).
_MARK_AGAIN = 0.002


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
        for attempt in range(_DEADLOCK_TRIES):
            try:
                with self.connection(conn) as c:
                    ids, made = _insert_levels(c, flow)
                    found = {t.id: t for t in queries.task_get_many(c, ids=sorted(set(ids)))}
                break
            except DatabaseError as exc:
                deadlock = isinstance(exc.__cause__, psycopg.errors.DeadlockDetected)
                if conn is not None or not deadlock or attempt == _DEADLOCK_TRIES - 1:
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
        if not tasks:
            raise TaskNotFoundError(task_id)
        return tasks, [(e["task_id"], e["parent_id"]) for e in edges]

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
        ids = [_task_id(t) for t in tasks]
        _check_wait(timeout, poll)
        deadline = None if timeout is None else time.monotonic() + timeout
        ended: dict[int, Task] = {}
        unmarked = list(dict.fromkeys(ids))
        again = _MARK_AGAIN
        with self.connection(autocommit=True) as c:
            c.execute("LISTEN " + FINISHED_CHANNEL)
            try:
                while True:
                    if unmarked:  # before the read: an end after the read is announced
                        queries.task_await(c, ids=unmarked)
                    open_ids = [i for i in dict.fromkeys(ids) if i not in ended]
                    found = {t.id: t for t in queries.task_get_many(c, ids=open_ids)}
                    missing = [i for i in open_ids if i not in found]
                    if missing:
                        raise TaskNotFoundError(missing[0])
                    ended.update((i, t) for i, t in found.items() if t.status in FINISHED)
                    if len(ended) == len(set(ids)):
                        return [ended[i] for i in ids]
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(
                            f"{len(set(ids)) - len(ended)} task(s) did not end within "
                            f"{timeout} s (task {open_ids[0]} is "
                            f"{found[open_ids[0]].status_text})"
                        )
                    wake = poll if left is None else min(poll, left)
                    # A task whose row another transaction held was not marked: its end would
                    # not be announced, so it is marked again soon, then less and less often.
                    unmarked = [i for i in open_ids if i not in ended and not found[i].awaited]
                    if unmarked:
                        wake = min(wake, again)
                        again = min(again * 2, poll)
                    want = {str(i) for i in open_ids}
                    for note in c.notifies(timeout=wake):
                        if note.payload in want:
                            break
            finally:
                if not c.broken:
                    c.execute("UNLISTEN " + FINISHED_CHANNEL)


def _insert_levels(conn: Conn, flow: Workflow) -> tuple[list[int], list[bool]]:
    """Insert the workflow's steps, one statement per level (a step's level is one more than its
    latest parent's in the workflow, so its parents exist when it is inserted); the id of each
    step's task (a skipped step's: the unfinished task holding its dedupe_key), and whether
    each step was inserted (not skipped)."""
    levels: list[int] = []
    for step in flow.steps:
        levels.append(1 + max((levels[p] for p in step.earlier), default=-1))
    ids: list[int | None] = [None] * len(flow.steps)
    made = [False] * len(flow.steps)
    for level in range(max(levels) + 1):
        batch = [i for i, lv in enumerate(levels) if lv == level]
        while batch:
            batch = _insert_batch(conn, flow, batch, ids, made)
    return ([i for i in ids if i is not None] if None not in ids else _unreachable()), made


def _insert_batch(
    conn: Conn, flow: Workflow, batch: list[int], ids: list[int | None], made: list[bool]
) -> list[int]:
    """Insert steps ``batch`` (their parents' ids known); set their ids, and ``made`` for those
    inserted. Returns the steps to insert again: skipped for a dedupe_key whose holder ended
    meanwhile."""
    steps = [flow.steps[i] for i in batch]
    parents = [
        [*s.existing, *(ids[p] for p in s.earlier)] if s.existing or s.earlier else None
        for s in steps
    ]
    rows = queries.task_insert_linked(
        conn,
        identifiers=[s.spec.identifier for s in steps],
        actions=[s.spec.action for s in steps],
        metas=[s.spec.data for s in steps],
        priorities=[s.spec.priority for s in steps],
        start_ats=[s.spec.start_at for s in steps],
        max_attempts=[s.spec.max_attempts for s in steps],
        started_by=[s.spec.user_id for s in steps],
        dedupe_keys=[s.spec.dedupe_key for s in steps],
        concurrency_keys=[s.spec.concurrency_key for s in steps],
        depends_on=[None if p is None else "{" + ",".join(map(str, p)) + "}" for p in parents],
        on_parent_failure=[s.on_parent_failure for s in steps],
    )
    again: list[int] = []
    at = 0
    for i, step in zip(batch, steps, strict=True):
        row = rows[at] if at < len(rows) else None
        if row is not None and row["dedupe_key"] == step.spec.dedupe_key:
            ids[i] = row["id"]
            made[i] = True
            at += 1
            continue
        holder = queries.task_get_by_dedupe_key(conn, dedupe_key=str(step.spec.dedupe_key))
        if holder is None:
            again.append(i)
        else:
            ids[i] = holder.id
    return again


def _unreachable() -> list[int]:
    raise AssertionError("a workflow step was left without a task")


def _check_wait(timeout: Any, poll: Any) -> None:
    for name, value in (("timeout", timeout), ("poll", poll)):
        if value is None and name == "timeout":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise InvalidTaskError(f"{name} must be a number of seconds above 0, not {value!r}")
