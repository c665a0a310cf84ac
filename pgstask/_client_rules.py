"""What the client's methods check and how they shape what they send and answer, without I/O:
one rule each, for ``Client`` and ``AsyncClient`` alike.

A method of either client checks its arguments here, sends what this module built through the
named queries (on a sync or an async connection), and shapes the answer here. So the two
clients refuse the same input with the same ``InvalidTaskError`` and send the same statements;
only the order of their round trips is written twice, once with ``await``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pgstask import _client_notify, _copy, progress, task_spec
from pgstask._client_notify import Targets
from pgstask.errors import InvalidTaskError, TaskNotFoundError, TaskStateError
from pgstask.task import Status, Task
from pgstask.task_spec import TaskSpec
from pgstask.workflow import Workflow

#: The fields of a create_many item without dependencies (with ``ref``, ``depends_on`` or
#: ``on_parent_failure`` the items are a workflow: ``create_workflow``).
_PLAIN = task_spec.FIELDS

Pair = tuple[TaskSpec, Targets | None]


class OneTask(NamedTuple):
    """``create``'s arguments, checked: a one-step ``flow`` when the task has dependencies,
    else a ``spec`` with its de-duplication window; and the task's notify targets. (A named
    tuple, like ``TaskSpec``: one is made per ``create``, and a frozen dataclass costs more.)"""

    spec: TaskSpec | None
    flow: Workflow | None
    window: float | None
    targets: list[Targets | None] | None

    @property
    def key(self) -> str:
        """The dedupe key the create looks its holder up by (``"None"`` without one: no task
        holds that, as the insert skips nothing)."""
        return str(None if self.spec is None else self.spec.dedupe_key)


def one_task(
    identifier: str,
    action: str,
    data: Mapping[str, Any] | None,
    *,
    priority: str,
    start_at: dt.datetime | None,
    max_attempts: int,
    user_id: int | None,
    dedupe_key: str | None,
    concurrency_key: str | None,
    throttle: float | None,
    replace: bool,
    depends_on: Iterable[Task | int] | None,
    on_parent_failure: str | None,
    notify: Mapping[str, Any] | None,
) -> OneTask:
    """``create``'s arguments checked (``InvalidTaskError`` naming the first bad one)."""
    targets = None if notify is None else [_client_notify.targets(notify)]
    fields: dict[str, Any] = {
        "priority": priority,
        "start_at": start_at,
        "max_attempts": max_attempts,
        "user_id": user_id,
        "dedupe_key": dedupe_key,
        "concurrency_key": concurrency_key,
    }
    if depends_on is not None or on_parent_failure is not None:
        if throttle is not None or replace:
            raise InvalidTaskError("throttle and replace do not apply to a task with depends_on")
        flow = Workflow()
        parents = () if depends_on is None else depends_on
        flow.add(
            identifier,
            action,
            data,
            depends_on=parents,
            on_parent_failure=on_parent_failure,
            **fields,
        )
        return OneTask(None, flow, None, targets)
    spec = task_spec.check(identifier=identifier, action=action, data=data, **fields)
    window = task_spec.check_window(dedupe_key, throttle, replace)
    return OneTask(spec, None, window, targets)


@dataclasses.dataclass(frozen=True, slots=True)
class ManyTasks:
    """``create_many``'s items, sorted out: without their ``notify`` key (``notifies``: each
    one's targets, None when no item has the key), and which path they take: a workflow
    (``linked``: an item has ``ref``, ``depends_on`` or ``on_parent_failure``), ``COPY``
    (``copy``: many items without a ``dedupe_key`` or targets), else one INSERT."""

    items: Sequence[Mapping[str, Any]]
    notifies: list[Targets | None] | None
    linked: bool
    copy: bool


def many_tasks(
    tasks: Iterable[Mapping[str, Any]], *, returning: str, throttle: Any, replace: Any
) -> ManyTasks:
    """``create_many``'s arguments sorted out (the items themselves are checked later, by
    ``batch`` or as the COPY sends them)."""
    if returning not in ("tasks", "ids"):
        raise InvalidTaskError(f"returning must be 'tasks' or 'ids', not {returning!r}")
    items = tasks if isinstance(tasks, Sequence) else list(tasks)
    items, notifies = _client_notify.split(items)
    if any(isinstance(item, Mapping) and not _PLAIN.issuperset(item) for item in items):
        if throttle is not None or replace:
            raise InvalidTaskError("throttle and replace do not apply to tasks with depends_on")
        return ManyTasks(items, notifies, True, False)
    copy = (
        notifies is None
        and len(items) >= _copy.COPY_FROM
        and all(isinstance(item, Mapping) and item.get("dedupe_key") is None for item in items)
    )
    return ManyTasks(items, notifies, False, copy)


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """``create_many``'s items for the INSERT path, checked: each spec with its targets, and the
    de-duplication window."""

    pairs: list[Pair]
    window: float | None

    @property
    def keys(self) -> list[str]:
        """The items' dedupe keys, for the throttle's look-up."""
        return [str(s.dedupe_key) for s, _ in self.pairs]

    def without(self, throttled: Mapping[str, Task]) -> list[Pair]:
        """The items whose key no task finished with within the window."""
        return [(s, n) for s, n in self.pairs if s.dedupe_key not in throttled]


def batch(many: ManyTasks, *, throttle: Any, replace: Any) -> Batch:
    """The items of ``many`` checked (``InvalidTaskError`` naming the bad item's position);
    with ``replace`` the last item of each key."""
    specs = list(task_spec.check_many(many.items))
    window = task_spec.check_window(True, throttle, replace)  # each item's key: below
    if (window is not None or replace) and any(s.dedupe_key is None for s in specs):
        task_spec.check_window(None, throttle, replace)  # raises, naming the rule
    pairs = list(zip(specs, many.notifies or [None] * len(specs), strict=True))
    if replace:  # one statement cannot update a row twice: the last item of a key wins
        pairs = list({s.dedupe_key: (s, n) for s, n in pairs}.values())
    return Batch(pairs, window)


def has_targets(notifies: Sequence[Targets | None] | None) -> bool:
    """Whether any task of an insert has notify targets (then it runs in a transaction)."""
    return notifies is not None and any(n is not None for n in notifies)


def by_key(found: Iterable[Task]) -> dict[str, Task]:
    """The tasks a throttle look-up found, by their dedupe key."""
    return {str(t.dedupe_key): t for t in found}


def list_filters(
    *,
    status: int | str | None,
    identifier: str | None,
    action: str | None,
    priority: str | None,
    concurrency_key: str | None,
    created_from: dt.datetime | None,
    created_to: dt.datetime | None,
    before_id: int | None,
    limit: int,
) -> dict[str, Any]:
    """``list``'s filters checked, as ``task_list``'s parameters."""
    filters = dict(locals())
    if status is not None:
        try:
            filters["status"] = int(Status.parse(status))
        except ValueError as exc:
            raise InvalidTaskError(str(exc)) from None
    if priority is not None:
        task_spec.check_priority(priority)
    if not 1 <= limit <= 1000:
        raise InvalidTaskError(f"limit must be between 1 and 1000, not {limit}")
    return filters


def stats_of(
    counts: Mapping[int, int], workers: Mapping[str, Any], waiting: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``stats``'s answer from what its three queries read."""
    out: dict[str, Any] = {s.text: counts.get(int(s), 0) for s in Status}
    out["total"] = sum(counts.values())
    out["total_workers"] = workers["total"]
    out["active_workers"] = workers["active"]
    out["waiting_for_worker"] = {
        r["identifier"]: {"count": r["count"], "registered": r["registered"]} for r in waiting
    }
    return out


def progress_of(
    current: Task, row: Mapping[str, Any] | None, snapshot: Mapping[str, Any]
) -> dict[str, Any]:
    """``progress``'s answer: sTask's fields from the task, its live progress row (None: none,
    or not read because it finished) and its snapshot file."""
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


def cancelled(task_id: int, row: Mapping[str, Any] | None, found: Task | None) -> Task:
    """The task ``task_cancel`` (``row``) cancelled, read after it (``found``);
    ``TaskNotFoundError``, or ``TaskStateError`` when it had finished."""
    if found is None:
        raise TaskNotFoundError(task_id)
    if row is None:
        raise TaskStateError(f"task {task_id} is already {found.status_text}; nothing to cancel")
    return found


def cancel_context(row: Mapping[str, Any]) -> dict[str, Any]:
    """The context of the warning a cancel logs on the task: the status it left."""
    return {"previous_status": Status(row["previous_status"]).text}


def not_retried(task_id: int, current: Task | None) -> TaskNotFoundError | TaskStateError:
    """Why ``task_retry`` queued nothing, as the error ``retry`` raises."""
    if current is None:
        return TaskNotFoundError(task_id)
    return TaskStateError(
        f"task {task_id} is {current.status_text}; only failed or cancelled tasks can be retried"
    )


def check_days(days: float) -> None:
    """A retention's ``days``: a number >= 0."""
    if isinstance(days, bool) or not isinstance(days, int | float) or math.isnan(days) or days < 0:
        raise InvalidTaskError(f"days must be a number >= 0, not {days!r}")
