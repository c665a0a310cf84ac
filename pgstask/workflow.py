"""Workflows: tasks that depend on other tasks, built in Python and created in one transaction.

A ``Workflow`` collects tasks (``add``), each of which may depend on tasks added before it (the
``Node`` that ``add`` returned) and on tasks that already exist (their ids or ``Task``s).
``chain`` and ``group`` are short forms: a chain runs its steps one after another; a group's
callback runs once every member has finished, whatever their outcomes, and reads them with
``BaseWorker.parents``. ``Client.create_workflow`` creates a workflow.

A node can only name nodes added before it, so a workflow is acyclic by construction; the
database holds the same rule for any insert (a task depends only on older tasks: revision
0010). ``order`` gives the same guarantee to tasks that name each other by ``ref`` in any order
(``Client.create_many`` items, the HTTP API): it sorts them parents first and refuses a cycle,
naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pgstask import task_spec
from pgstask.errors import InvalidTaskError, shown
from pgstask.task import Task
from pgstask.task_spec import TaskSpec

#: What a parent that failed or was cancelled does to its child (``on_parent_failure``).
PARENT_FAILURE_POLICIES = ("cancel", "run")
#: The most parents one task may have (the bound of ``pgstask_link``, revision 0010).
MAX_PARENTS = 10_000
#: The most tasks one workflow call may create.
MAX_TASKS = 100_000
#: The fields of an item (``from_items``) beside ``Client.create_many``'s.
_WORKFLOW_FIELDS = ("ref", "depends_on", "on_parent_failure")


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """A task of a ``Workflow`` not created yet: what ``Workflow.add`` returns, to name as a
    dependency of tasks added later."""

    workflow_id: int
    index: int


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One task of a workflow: its checked fields, its parents (existing task ids and earlier
    steps' positions) and its ``on_parent_failure``."""

    spec: TaskSpec
    existing: tuple[int, ...]
    earlier: tuple[int, ...]
    on_parent_failure: str | None


Parent = Node | Task | int


class Workflow:
    """Tasks and their dependencies, to create in one transaction (``Client.create_workflow``)."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def __len__(self) -> int:
        return len(self.steps)

    def add(
        self,
        identifier: str,
        action: str,
        data: Mapping[str, Any] | None = None,
        *,
        depends_on: Iterable[Parent] = (),
        on_parent_failure: str | None = None,
        **fields: Any,
    ) -> Node:
        """Add a task (``fields``: ``Client.create``'s ``priority``, ``start_at``,
        ``max_attempts``, ``user_id``, ``dedupe_key``, ``concurrency_key``) that runs once the
        tasks of ``depends_on`` have completed: nodes of this workflow, or existing tasks (ids
        or ``Task``s). ``on_parent_failure``: ``"cancel"`` (the default, unless the worker's
        setting says otherwise) cancels it when a parent fails or is cancelled; ``"run"`` runs
        it anyway once all parents finished."""
        unknown = fields.keys() - task_spec.FIELDS - {"data"}
        if unknown:
            raise InvalidTaskError(f"unknown field(s) {', '.join(sorted(unknown))}")
        spec = task_spec.check(identifier=identifier, action=action, data=data, **fields)
        existing, earlier = self._parents(depends_on)
        step = Step(spec, existing, earlier, check_on_parent_failure(on_parent_failure))
        self.steps.append(step)
        return Node(id(self), len(self.steps) - 1)

    def chain(self, *steps: Mapping[str, Any], depends_on: Iterable[Parent] = ()) -> list[Node]:
        """Add ``steps`` (each a mapping of ``add``'s arguments) so that each runs after the one
        before it has completed; the first after ``depends_on``. Their nodes, in order."""
        nodes: list[Node] = []
        before: list[Parent] = list(depends_on)
        for i, item in enumerate(steps):
            fields = _fields(item, f"step #{i}")
            if "depends_on" in fields:
                raise InvalidTaskError(f"step #{i}: a chain sets depends_on itself")
            nodes.append(self.add(**fields, depends_on=before))
            before = [nodes[-1]]
        return nodes

    def group(
        self,
        members: Iterable[Mapping[str, Any]],
        callback: Mapping[str, Any],
        *,
        depends_on: Iterable[Parent] = (),
    ) -> tuple[list[Node], Node]:
        """Add ``members`` (each a mapping of ``add``'s arguments, all after ``depends_on``) and
        a ``callback`` task that runs once, when every member has finished, whatever its
        outcome (its ``on_parent_failure`` is ``run``): the action reads their outcomes with
        ``BaseWorker.parents``. The members' nodes and the callback's."""
        after = list(depends_on)
        nodes = []
        for i, item in enumerate(members):
            fields = _fields(item, f"member #{i}")
            if "depends_on" in fields:
                raise InvalidTaskError(f"member #{i}: a group sets depends_on itself")
            nodes.append(self.add(**fields, depends_on=after))
        if not nodes:
            raise InvalidTaskError("a group needs at least one member")
        fields = _fields(callback, "callback")
        if "depends_on" in fields or fields.get("on_parent_failure", "run") != "run":
            raise InvalidTaskError("callback: a group sets depends_on and on_parent_failure")
        fields.pop("on_parent_failure", None)
        return nodes, self.add(**fields, depends_on=nodes, on_parent_failure="run")

    def _parents(self, depends_on: Iterable[Parent]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if isinstance(depends_on, str | bytes | Mapping) or not isinstance(depends_on, Iterable):
            raise InvalidTaskError(
                f"depends_on must be a list of tasks or task ids, not {type(depends_on).__name__}"
            )
        existing: dict[int, None] = {}
        earlier: dict[int, None] = {}
        for parent in depends_on:
            if isinstance(parent, Node):
                if parent.workflow_id != id(self) or parent.index >= len(self.steps):
                    raise InvalidTaskError("depends_on names a node of another workflow")
                earlier[parent.index] = None
            else:
                existing[check_task_id(parent)] = None
        if len(existing) + len(earlier) > MAX_PARENTS:
            raise InvalidTaskError(f"a task may depend on at most {MAX_PARENTS} tasks")
        return tuple(existing), tuple(earlier)


def check_task_id(value: Any) -> int:
    """A task named as a dependency: a ``Task`` or a positive whole number."""
    if isinstance(value, Task):
        return value.id
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTaskError(f"depends_on: a task id must be a whole number, not {value!r}")
    if not 0 < value < 2**63:
        raise InvalidTaskError(f"depends_on: {value} is not a task id")
    return value


def check_on_parent_failure(value: Any) -> str | None:
    """``cancel``, ``run`` or None (the worker's setting)."""
    if value is None:
        return None
    if value not in PARENT_FAILURE_POLICIES:
        raise InvalidTaskError(f"on_parent_failure must be 'cancel' or 'run', not {shown(value)}")
    return str(value)


def _fields(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise InvalidTaskError(f"{where}: must be a mapping of Workflow.add's arguments")
    return dict(item)


def from_items(items: Sequence[Mapping[str, Any]]) -> tuple[Workflow, list[int]]:
    """A workflow of ``Client.create_many``/HTTP items that may carry ``ref`` (a name, unique in
    the call) and ``depends_on`` (refs of other items, and ids of existing tasks), in any order;
    and for each item its position in the workflow (which lists parents first). A cycle or an
    unknown ref is an ``InvalidTaskError`` naming the items."""
    if len(items) > MAX_TASKS:
        raise InvalidTaskError(f"a workflow may create at most {MAX_TASKS} tasks at once")
    refs: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidTaskError(f"task #{i}: must be a mapping of create's arguments")
        ref = item.get("ref")
        if ref is None:
            continue
        if not isinstance(ref, str) or not ref.strip() or len(ref) > 255:
            raise InvalidTaskError(
                f"task #{i}: ref must be a non-empty string of at most 255 characters"
            )
        if ref in refs:
            raise InvalidTaskError(f"task #{i}: ref {ref!r} is used by task #{refs[ref]} too")
        refs[ref] = i
    parents: list[list[int | str]] = []
    for i, item in enumerate(items):
        given = item.get("depends_on", ())
        if given is None:
            given = ()
        if isinstance(given, str | bytes | Mapping) or not isinstance(given, Iterable):
            raise InvalidTaskError(
                f"task #{i}: depends_on must be a list of refs and task ids, "
                f"not {type(given).__name__}"
            )
        named: list[int | str] = []
        for parent in given:
            if isinstance(parent, str):
                if parent not in refs:
                    raise InvalidTaskError(
                        f"task #{i}: depends_on names ref {parent!r}, which no task has"
                    )
            else:
                try:
                    parent = check_task_id(parent)
                except InvalidTaskError as exc:
                    raise InvalidTaskError(f"task #{i}: {exc}") from None
            named.append(parent)
        parents.append(named)
    order = _topological(
        [[refs[p] for p in named if isinstance(p, str)] for named in parents], items
    )
    workflow = Workflow()
    nodes: dict[int, Node] = {}
    for i in order:
        item = items[i]
        fields = {
            k: v for k, v in item.items() if k not in ("ref", "depends_on", "on_parent_failure")
        }
        unknown = fields.keys() - task_spec.FIELDS
        if unknown:
            raise InvalidTaskError(
                f"task #{i}: unknown field(s) {', '.join(sorted(map(str, unknown)))}"
            )
        depends: list[Parent] = [nodes[refs[p]] if isinstance(p, str) else p for p in parents[i]]
        try:
            nodes[i] = workflow.add(
                depends_on=depends, on_parent_failure=item.get("on_parent_failure"), **fields
            )
        except InvalidTaskError as exc:
            raise InvalidTaskError(f"task #{i}: {exc}") from None
        except TypeError as exc:  # identifier/action missing
            raise InvalidTaskError(f"task #{i}: {exc}") from None
    return workflow, [nodes[i].index for i in range(len(items))]


def _topological(edges: list[list[int]], items: Sequence[Mapping[str, Any]]) -> list[int]:
    """Positions in an order where each comes after those it depends on (``edges[i]``: the
    positions item i depends on), stable otherwise; a cycle raises, naming its refs."""
    order: list[int] = []
    state = [0] * len(edges)  # 0 new, 1 on the path, 2 placed
    for start in range(len(edges)):
        if state[start]:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, at = stack[-1]
            if at < len(edges[node]):
                stack[-1] = (node, at + 1)
                nxt = edges[node][at]
                if state[nxt] == 1:
                    path = [n for n, _ in stack]
                    cycle = [*path[path.index(nxt) :], nxt]
                    shown = " -> ".join(repr(items[n].get("ref")) for n in cycle)
                    raise InvalidTaskError(f"depends_on forms a cycle: {shown}")
                if state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    return order
