"""``pgstask logs ID``: a task's log records (all, the last N, errors only), or delete them."""

from __future__ import annotations

from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_json, positive_int, task_id
from pgstask.cli._output import plural, print_json
from pgstask.cli.tasks import log_line


def register(commands: Subparsers) -> None:
    """Add the ``logs`` command to ``commands``."""
    p = commands.add_parser(
        "logs",
        help="a task's log records",
        description="Print a task's log records, oldest first (tracebacks indented below their "
        "record). Exit 4 if there is no such task.",
    )
    add_common(p, top=False)
    p.add_argument("id", type=task_id, metavar="ID", help="the task id")
    p.add_argument("--last", type=positive_int, metavar="N", help="only the last N records")
    p.add_argument("--errors", action="store_true", help="only error and critical records")
    p.add_argument(
        "--clear", action="store_true", help="delete the task's records (and its log file)"
    )
    add_json(p)
    p.set_defaults(handler=cmd_logs)


def cmd_logs(ctx: Context) -> int:
    """``pgstask logs ID``: print a task's log records (all, the last N, errors only), or
    delete them."""
    a = ctx.args
    client = ctx.client()
    task = client.get(a.id)  # TaskNotFoundError → exit 4
    if a.clear:
        deleted = client.clear_logs(task)
        if a.json:
            print_json({"task_id": task.id, "deleted": deleted}, ctx.out)
        else:
            ctx.out.write(f"deleted {plural(deleted, 'log record')} of task {task.id}\n")
        return EXIT_OK
    if a.errors:
        records = client.error_logs(task)
        if a.last is not None:
            records = records[-a.last :]
    else:
        records = client.logs(task, limit=a.last)
    if a.json:
        print_json([r.to_dict() for r in records], ctx.out)
    elif not records:
        ctx.err.write(f"pgstask: task {task.id} has no log records\n")
    else:
        for record in records:
            ctx.out.write(log_line(record) + "\n")
    return EXIT_OK
