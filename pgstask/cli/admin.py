"""``pgstask migrate``, ``pgstask stats`` and ``pgstask clean``: the database as a whole."""

from __future__ import annotations

from typing import Any

from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_json, seconds
from pgstask.cli._output import fields, plural, print_json, table
from pgstask.db import translate_errors
from pgstask.errors import ConfigurationError, SchemaError
from pgstask.task import Status

# --- migrate -------------------------------------------------------------------------------------


def register_migrate(commands: Subparsers) -> None:
    """Add the ``migrate`` command to ``commands``."""
    p = commands.add_parser(
        "migrate",
        help="create or upgrade the pgstask schema (idempotent)",
        description="Bring the database's pgstask schema to this version's revision. Safe to "
        "run on every deploy and from several hosts at once (an advisory lock serialises runs).",
    )
    add_common(p, top=False)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 3 if the schema is not at this pgstask's revision",
    )
    mode.add_argument(
        "--downgrade",
        metavar="REV",
        help="take the schema back to revision REV ('base' drops every pgstask table)",
    )
    p.set_defaults(handler=cmd_migrate)


def cmd_migrate(ctx: Context) -> int:
    """``pgstask migrate``: bring the schema to this pgstask's revision, check it
    (``--check``) or take it back (``--downgrade``)."""
    # alembic is imported here only: other commands start faster without it.
    from alembic.util import CommandError

    from pgstask import migrate

    dsn = ctx.dsn()
    head = migrate.head_revision()
    with translate_errors():
        before = migrate.current_revision(dsn)
        if ctx.args.check:
            if before != head:
                raise SchemaError(
                    f"the schema is at revision {before or 'none'}, this pgstask needs {head}: "
                    "run `pgstask migrate`"
                )
            ctx.out.write(f"schema at revision {head} (current)\n")
            return EXIT_OK
        try:
            if ctx.args.downgrade:
                migrate.downgrade(dsn, ctx.args.downgrade)
            else:
                migrate.upgrade(dsn)
        except CommandError as exc:
            raise ConfigurationError(f"migration failed: {exc}") from exc
        after = migrate.current_revision(dsn)
    if before == after:
        ctx.out.write(f"schema at revision {after or 'none'} (nothing to do)\n")
    else:
        ctx.out.write(f"schema migrated from revision {before or 'none'} to {after or 'none'}\n")
    return EXIT_OK


# --- stats ---------------------------------------------------------------------------------------


def register_stats(commands: Subparsers) -> None:
    """Add the ``stats`` command to ``commands``."""
    p = commands.add_parser(
        "stats",
        help="task counts, workers, daemons, and tasks waiting for a worker",
        description="Counts of tasks per status, workers (total and active), live daemons, and "
        "pending tasks that wait for a worker that no daemon registered or that is inactive: "
        "those never run until a daemon with that worker starts or the worker is activated.",
    )
    add_common(p, top=False)
    add_json(p)
    p.set_defaults(handler=cmd_stats)


def cmd_stats(ctx: Context) -> int:
    """``pgstask stats``: task counts per status, workers, live daemons, and the pending
    tasks that wait for a worker."""
    client = ctx.client()
    stats = client.stats()
    registered = {w["identifier"]: w["active"] for w in client.workers()}
    waiting = [
        {
            "identifier": ident,
            "count": info["count"],
            "reason": "inactive" if ident in registered else "no worker registered",
        }
        for ident, info in stats["waiting_for_worker"].items()
    ]
    daemons = client.daemons()
    if ctx.args.json:
        out: dict[str, Any] = dict(stats)
        out["waiting_for_worker"] = {
            w["identifier"]: {"count": w["count"], "registered": w["identifier"] in registered}
            for w in waiting
        }
        out["daemons"] = daemons
        out["live_daemons"] = sum(1 for d in daemons if d["alive"])
        print_json(out, ctx.out)
        return EXIT_OK
    w = ctx.out
    w.write("tasks\n")
    table(
        ["status", "count"],
        [[s.text, stats[s.text]] for s in Status] + [["total", stats["total"]]],
        w,
        empty="",
    )
    w.write("\n")
    alive = [d for d in daemons if d["alive"]]
    fields(
        [
            ("workers", f"{stats['active_workers']} active of {stats['total_workers']}"),
            ("daemons", f"{len(alive)} live" + _stale_note(len(daemons) - len(alive))),
        ],
        w,
    )
    if alive:
        w.write("\n")
        table(
            ["daemon", "host", "pid", "slots", "workers", "heartbeat"],
            [
                [
                    str(d["id"])[:8],
                    d["hostname"],
                    d["pid"],
                    d["concurrency"],
                    ",".join(d["identifiers"]),
                    d["heartbeat_at"],
                ]
                for d in alive
            ],
            w,
            empty="",
        )
    w.write("\n")
    if waiting:
        total = sum(x["count"] for x in waiting)
        w.write(
            f"waiting for a worker: {plural(total, 'pending task')} will not run until a "
            "daemon has their worker and it is active\n"
        )
        table(
            ["worker", "pending", "why"],
            [[x["identifier"], x["count"], x["reason"]] for x in waiting],
            w,
            empty="",
        )
    else:
        w.write("waiting for a worker: none\n")
    return EXIT_OK


def _stale_note(stale: int) -> str:
    return f" ({stale} stale, to be removed)" if stale else ""


# --- clean ---------------------------------------------------------------------------------------


def register_clean(commands: Subparsers) -> None:
    """Add the ``clean`` command to ``commands``."""
    p = commands.add_parser(
        "clean",
        help="delete old finished tasks and old log records",
        description="Delete finished (completed, cancelled, failed) tasks older than --days, with "
        "their logs, and log records older than --logs-days. Defaults: "
        "PGSTASK_TASK_RETENTION_DAYS and PGSTASK_LOG_RETENTION_DAYS (30). Daemons also do this "
        "on their own; this command is for databases without a daemon.",
    )
    add_common(p, top=False)
    p.add_argument("--days", type=seconds, metavar="N", help="age of finished tasks to delete")
    p.add_argument("--logs-days", type=seconds, metavar="N", help="age of log records to delete")
    add_json(p)
    p.set_defaults(handler=cmd_clean)


def cmd_clean(ctx: Context) -> int:
    """``pgstask clean``: delete finished tasks and log records older than their retention."""
    s = ctx.settings
    days = ctx.args.days if ctx.args.days is not None else s.task_retention_days
    log_days = ctx.args.logs_days if ctx.args.logs_days is not None else s.log_retention_days
    client = ctx.client()
    tasks = client.clean_old_tasks(days) if days is not None else 0
    records = client.clean_old_logs(log_days) if log_days is not None else 0
    if ctx.args.json:
        print_json({"tasks": tasks, "logs": records}, ctx.out)
        return EXIT_OK
    ctx.out.write(
        f"deleted {plural(tasks, 'finished task')} {_older(days)} and "
        f"{plural(records, 'log record')} {_older(log_days)}\n"
    )
    return EXIT_OK


def _older(days: float | None) -> str:
    if days is None:
        return "(kept: retention is 'never')"
    return f"older than {days:g} day" + ("" if days == 1 else "s")
