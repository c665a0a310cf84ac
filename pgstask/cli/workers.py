"""``pgstask workers …``: the registered workers and their state.

``discover`` registers every installed worker class (entry points and ``PGSTASK_WORKERS``);
daemons also register their own workers when they start, so running it is optional. Changes of
state and settings reach running daemons without a restart.
"""

from __future__ import annotations

from typing import Any

from pgstask import limits
from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_command, add_common, add_json, json_object
from pgstask.cli._output import print_json, table
from pgstask.workers import registry


def register(commands: Subparsers) -> None:
    """Add the ``workers`` command and its commands to ``commands``."""
    group = commands.add_parser(
        "workers",
        help="list, discover, activate or deactivate workers",
        description="Look at and change the registered workers. "
        "`pgstask workers COMMAND --help` for each command.",
    )
    add_common(group, top=False)
    workers = group.add_subparsers(dest="workers_command", metavar="COMMAND", required=True)

    add_json(add_command(workers, "list", "the registered workers", cmd_list))
    add_json(
        add_command(
            workers,
            "discover",
            "register the installed worker classes that are not registered yet",
            cmd_discover,
        )
    )
    add_json(
        add_command(
            workers,
            "rescan",
            "refresh class path and metadata of the registered workers from their classes",
            cmd_rescan,
        )
    )
    add_json(
        add_command(
            workers,
            "clean",
            "delete registered workers whose class cannot be imported here any more "
            "(their pending tasks stay pending)",
            cmd_clean,
        )
    )
    for name, text, handler in (
        ("activate", "let daemons run this worker's tasks", cmd_activate),
        ("deactivate", "stop daemons from claiming this worker's tasks", cmd_deactivate),
    ):
        p = add_command(workers, name, text + " (exit 4 if it is not registered)", handler)
        p.add_argument("identifier", metavar="IDENT")
        add_json(p)
    p = add_command(
        workers,
        "settings",
        "show a worker's settings (its class defaults with the stored values over them), or "
        "merge a JSON object into the stored ones with --set",
        cmd_settings,
    )
    p.add_argument("identifier", metavar="IDENT")
    p.add_argument(
        "--set", type=json_object, metavar="JSON", help="e.g. '{\"timeout\": 60}' (shallow merge)"
    )


def cmd_list(ctx: Context) -> int:
    """``pgstask workers list``: the registered workers, active or not, and whether their
    class is installed here."""
    rows = ctx.client().workers()
    if ctx.args.json:
        print_json(rows, ctx.out)
        return EXIT_OK
    installed = registry.discover(ctx.settings.worker_modules)
    table(
        ["worker", "active", "here", "scope", "title", "limits", "class"],
        [
            [
                r["identifier"],
                r["active"],
                r["identifier"] in installed,
                r["scope"] or None,
                r["title"] or None,
                limits.describe(r.get("flow")) or None,
                r["class"],
            ]
            for r in rows
        ],
        ctx.out,
        empty="no workers registered (run `pgstask workers discover` or start a daemon)",
    )
    return EXIT_OK


def _names(ctx: Context, names: list[str], done: str, none: str) -> int:
    if ctx.args.json:
        print_json(names, ctx.out)
    elif names:
        ctx.out.write(f"{done}: {', '.join(names)}\n")
    else:
        ctx.out.write(none + "\n")
    return EXIT_OK


def cmd_discover(ctx: Context) -> int:
    """``pgstask workers discover``: register the installed worker classes not registered
    yet."""
    new = ctx.client().discover_workers()
    installed = ", ".join(registry.discover(ctx.settings.worker_modules)) or "none"
    return _names(ctx, new, "registered", f"no new workers (installed: {installed})")


def cmd_rescan(ctx: Context) -> int:
    """``pgstask workers rescan``: refresh the class path and metadata of the registered
    workers from their classes."""
    client = ctx.client()
    changed = client.rescan_workers()
    installed = registry.discover(ctx.settings.worker_modules)
    current = sorted(w["identifier"] for w in client.workers() if w["identifier"] in installed)
    none = (
        f"up to date: {', '.join(current)}" if current else "no registered worker is installed here"
    )
    return _names(ctx, changed, "refreshed", none)


def cmd_clean(ctx: Context) -> int:
    """``pgstask workers clean``: delete the registered workers whose class cannot be
    imported here."""
    removed = ctx.client().clean_orphaned_workers()
    return _names(ctx, removed, "removed orphaned workers", "no orphaned workers")


def _set_active(ctx: Context, active: bool) -> int:
    client = ctx.client()
    ident = ctx.args.identifier
    row = client.activate_worker(ident) if active else client.deactivate_worker(ident)
    if ctx.args.json:
        print_json(row, ctx.out)
    else:
        ctx.out.write(f"worker {ident} {'activated' if active else 'deactivated'}\n")
    return EXIT_OK


def cmd_activate(ctx: Context) -> int:
    """``pgstask workers activate IDENT``: let daemons claim the worker's tasks."""
    return _set_active(ctx, True)


def cmd_deactivate(ctx: Context) -> int:
    """``pgstask workers deactivate IDENT``: stop daemons from claiming the worker's tasks."""
    return _set_active(ctx, False)


def cmd_settings(ctx: Context) -> int:
    """``pgstask workers settings IDENT``: print the worker's settings as JSON (class
    defaults, stored values over them); ``--set`` merges into the stored ones first."""
    client = ctx.client()
    ident = ctx.args.identifier
    if ctx.args.set is not None:
        row = client.update_worker_settings(ident, ctx.args.set)
    else:
        row = client.worker(ident)
    cls = registry.load_class(row["class"])
    # The limits a daemon wrote for the class, for a class not installed here.
    defaults: dict[str, Any] = dict(row.get("defaults") or {})
    defaults.update(cls.settings if cls is not None else {})
    print_json({**defaults, **(row["settings"] or {})}, ctx.out)
    return EXIT_OK
