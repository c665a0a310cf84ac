"""``pgstask tasks list | show | cancel | retry | watch | workflow``: looking at and changing
tasks."""

from __future__ import annotations

from typing import Any

from pgstask.cli import watch, workflow
from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import (
    Subparsers,
    add_command,
    add_common,
    add_json,
    positive_int,
    status,
    task_id,
)
from pgstask.cli._output import cell, fields, print_json, table, when
from pgstask.logs import LogRecord
from pgstask.task import PRIORITIES, Task


def register(commands: Subparsers) -> None:
    """Add the ``tasks`` command and its ``list``, ``show``, ``cancel``, ``retry``, ``watch``
    and ``workflow`` to ``commands``."""
    group = commands.add_parser(
        "tasks",
        help="list, show, cancel, retry or watch tasks, or show a workflow",
        description="Look at and change tasks. `pgstask tasks COMMAND --help` for each command.",
    )
    add_common(group, top=False)
    tasks = group.add_subparsers(dest="tasks_command", metavar="COMMAND", required=True)

    p = add_command(tasks, "list", "list tasks, newest first", cmd_list)
    p.add_argument(
        "--status", type=status, metavar="S", help="pending, waiting, running, … or a code"
    )
    p.add_argument("--identifier", metavar="I", help="only tasks of this worker")
    p.add_argument("--action", metavar="A", help="only tasks of this action")
    p.add_argument("--priority", choices=PRIORITIES)
    p.add_argument("--concurrency-key", metavar="KEY", help="only tasks with this concurrency key")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="default 50")
    p.add_argument(
        "--before-id", type=task_id, metavar="ID", help="the next page: tasks older than ID"
    )
    add_json(p)

    p = add_command(
        tasks,
        "show",
        "a task with its parents, children, progress and last 10 log records",
        cmd_show,
    )
    p.add_argument("id", type=task_id, metavar="ID")
    add_json(p)

    p = add_command(
        tasks,
        "cancel",
        "cancel a task (a running action stops at its next progress report; exit 5 if the task "
        "already finished)",
        cmd_cancel,
    )
    p.add_argument("id", type=task_id, metavar="ID")
    add_json(p)

    p = add_command(
        tasks,
        "retry",
        "queue a failed or cancelled task again with fresh attempts (exit 5 otherwise)",
        cmd_retry,
    )
    p.add_argument("id", type=task_id, metavar="ID")
    add_json(p)

    watch.register(tasks)
    workflow.register(tasks)


def cmd_list(ctx: Context) -> int:
    """``pgstask tasks list``: tasks, newest first, filtered, a page at a time."""
    a = ctx.args
    found = ctx.client().list(
        status=a.status,
        identifier=a.identifier,
        action=a.action,
        priority=a.priority,
        concurrency_key=a.concurrency_key,
        before_id=a.before_id,
        limit=a.limit,
    )
    if a.json:
        print_json([t.to_dict() for t in found], ctx.out)
        return EXIT_OK
    table(
        [
            "id",
            "worker",
            "action",
            "status",
            "priority",
            "progress",
            "attempts",
            "created",
            "message",
        ],
        [
            [
                t.id,
                t.identifier,
                t.action,
                t.status_text,
                t.priority,
                f"{t.progress}%",
                f"{t.attempts}/{t.max_attempts}",
                t.created_at,
                cell(t.message, 48),
            ]
            for t in found
        ],
        ctx.out,
        empty="no tasks",
    )
    if len(found) == a.limit:
        ctx.note(f"more tasks may follow: --before-id {found[-1].id}")
    return EXIT_OK


def cmd_show(ctx: Context) -> int:
    """``pgstask tasks show ID``: a task's fields, the tasks it depends on and that depend on
    it, progress, last error and last 10 log records."""
    client = ctx.client()
    task = client.get(ctx.args.id)
    parents = client.parents(task) if task.depends_on else []
    children = client.children(task) if task.has_children else []
    progress = client.progress(task)
    records = client.last_logs(task, 10)
    if ctx.args.json:
        print_json(
            {
                "task": task.to_dict(),
                "parents": [t.brief() for t in parents],
                "children": [t.brief() for t in children],
                "progress": progress,
                "logs": [r.to_dict() for r in records],
            },
            ctx.out,
        )
        return EXIT_OK
    w = ctx.out
    fields(_task_fields(task), w)
    if task.is_waiting:
        w.write(f"\nwaiting for {task.waiting_for} of {len(parents)} parent(s) to finish\n")
    for title, related in (("parents", parents), ("children", children)):
        if related:
            w.write(f"\n{title} ({len(related)})\n")
            for line in workflow.related_lines(related):
                w.write(f"  {line}\n")
    w.write("\nprogress\n")
    done = progress["processed"], progress["total"]
    fields(
        [
            (
                "  progress",
                "unknown" if progress["progress"] is None else f"{progress['progress']}%",
            ),
            ("  processed", None if done == (None, None) else f"{done[0]}/{done[1]}"),
            ("  eta", progress["eta_text"]),
            ("  message", progress["message"] or None),
        ],
        w,
    )
    if task.last_error:
        w.write("\nlast error\n")
        for line in task.last_error.rstrip().splitlines():
            w.write(f"  {line}\n")
    w.write(f"\nlast {len(records)} log record(s)\n" if records else "\nno log records\n")
    for record in records:
        w.write(f"  {log_line(record)}\n")
    return EXIT_OK


def _task_fields(t: Task) -> list[tuple[str, Any]]:
    return [
        ("id", t.id),
        ("worker", t.identifier),
        ("action", t.action),
        ("status", f"{t.status_text} ({t.status})"),
        ("priority", t.priority),
        ("attempts", f"{t.attempts} of {t.max_attempts}"),
        ("message", t.message),
        ("created", t.created_at),
        ("start at", t.start_at),
        ("started", t.started_at),
        ("finished", t.finished_at),
        ("duration", None if t.duration is None else f"{t.duration:.2f}s"),
        ("daemon", t.daemon_id),
        ("started by", t.started_by),
        ("dedupe key", t.dedupe_key),
        ("concurrency key", t.concurrency_key),
        *(
            [
                ("depends on", ",".join(map(str, t.depends_on))),
                ("on parent failure", t.on_parent_failure or "its worker's setting, else cancel"),
            ]
            if t.depends_on
            else []
        ),
        ("data", t.meta),
        ("result", cell(t.result, 200) if t.result is not None else None),
    ]


def log_line(record: LogRecord) -> str:
    """``2030-01-31 08:00:00 ERROR   Failed: … {"attempt": 1}`` (a traceback on later lines)."""
    context = dict(record.context)
    trace = context.pop("traceback", None)
    text = f"{when(record.created_at)} {record.level.upper():<8} {record.message}"
    if context:
        text += " " + cell(context)
    if isinstance(trace, str) and trace.strip():
        text += "\n" + "\n".join(f"    {line}" for line in trace.rstrip().splitlines())
    return text


def cmd_cancel(ctx: Context) -> int:
    """``pgstask tasks cancel ID``: cancel a pending or running task (exit 5 if it has
    finished)."""
    client = ctx.client()
    before = client.get(ctx.args.id)
    task = client.cancel(before)
    if ctx.args.json:
        print_json(task.to_dict(), ctx.out)
    elif before.is_running:
        ctx.out.write(
            f"task {task.id} cancelled; its action stops at its next progress report or check\n"
        )
    else:
        ctx.out.write(f"task {task.id} cancelled\n")
    return EXIT_OK


def cmd_retry(ctx: Context) -> int:
    """``pgstask tasks retry ID``: queue a failed or cancelled task again, with fresh
    attempts."""
    task = ctx.client().retry(ctx.args.id)
    if ctx.args.json:
        print_json(task.to_dict(), ctx.out)
    else:
        ctx.out.write(
            f"task {task.id} queued again ({task.status_text}, {task.max_attempts} attempts)\n"
        )
    return EXIT_OK
