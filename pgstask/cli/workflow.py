"""``pgstask tasks workflow ID``: the workflow a task belongs to, its tasks and dependencies.

The tasks are listed lowest id first, which is parents first (a task can only depend on older
tasks), each with its depth (0 for a task without parents in the workflow) and the tasks it
depends on; then each dependency as ``parent -> child``. ``tasks show`` prints a task's own
parents and children with ``related_lines``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_json, task_id
from pgstask.cli._output import cell, plural, print_json, table
from pgstask.task import Task


def register(tasks: Subparsers) -> None:
    """Add the ``workflow`` command to the ``tasks`` commands."""
    p = tasks.add_parser(
        "workflow",
        help="the tasks and dependencies of the workflow a task belongs to",
        description="Show the workflow task ID belongs to: every task joined to it by "
        "dependencies, in either direction, with its status and the tasks it depends on, and "
        "each dependency as PARENT -> CHILD. A task without dependencies is a workflow of one.",
    )
    add_common(p, top=False)
    p.add_argument("id", type=task_id, metavar="ID", help="any task of the workflow")
    add_json(p)
    p.set_defaults(handler=cmd_workflow)


def cmd_workflow(ctx: Context) -> int:
    """``pgstask tasks workflow ID``: the workflow's tasks, then its dependencies."""
    found, edges = ctx.client().workflow_of(ctx.args.id)
    if ctx.args.json:
        print_json(
            {
                "id": ctx.args.id,
                "tasks": [t.to_dict() for t in found],
                "edges": [{"task_id": c, "parent_id": p} for c, p in edges],
            },
            ctx.out,
        )
        return EXIT_OK
    parents: dict[int, list[int]] = {t.id: [] for t in found}
    for child, parent in edges:
        parents[child].append(parent)
    depth: dict[int, int] = {}
    for t in found:  # lowest id first: parents before children
        depth[t.id] = 1 + max((depth[p] for p in parents[t.id] if p in depth), default=-1)
    w = ctx.out
    dependencies = "1 dependency" if len(edges) == 1 else f"{len(edges)} dependencies"
    w.write(f"workflow of task {ctx.args.id}: {plural(len(found), 'task')}, {dependencies}\n\n")
    table(
        ["id", "depth", "worker", "action", "status", "depends on", "message"],
        [
            [
                t.id,
                depth[t.id],
                t.identifier,
                t.action,
                t.status_text + (f" ({t.waiting_for} left)" if t.is_waiting else ""),
                ",".join(map(str, sorted(parents[t.id]))) or None,
                cell(t.message, 40),
            ]
            for t in found
        ],
        w,
        empty="no tasks",
    )
    if edges:
        w.write("\ndependencies (parent -> child)\n")
        for child, parent in sorted(edges, key=lambda e: (e[1], e[0])):
            w.write(f"  {parent} -> {child}\n")
    return EXIT_OK


def related_lines(related: Iterable[Task]) -> list[str]:
    """One line per task: ``4  sample noop  completed``, the ids aligned."""
    listed = list(related)
    width = max((len(str(t.id)) for t in listed), default=0)
    return [f"{str(t.id).rjust(width)}  {t.identifier} {t.action}  {t.status_text}" for t in listed]
