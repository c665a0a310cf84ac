"""``pgstask presets …``: named task templates, and starting one.

``add NAME IDENT ACTION`` stores a preset (or replaces the fields of the one of that name);
``start NAME`` enqueues one task of it, ``--data`` merged over the preset's data (a key given
replaces the preset's key whole), its priority and ``max_attempts`` unless given. A bad field
exits 2, an unknown preset 4. docs/presets.md says what is guaranteed.
"""

from __future__ import annotations

import datetime as dt

from pgstask import queries
from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import (
    Subparsers,
    add_command,
    add_common,
    add_json,
    json_object,
    max_attempts,
    positive_int,
    seconds,
    timestamp,
)
from pgstask.cli._output import cell, fields, print_json, table
from pgstask.task import PRIORITIES
from pgstask.task_spec import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from pgstask.workers import registry


def register(commands: Subparsers) -> None:
    """Add the ``presets`` command and its commands to ``commands``."""
    group = commands.add_parser(
        "presets",
        help="list, show, add, remove or start presets (named task templates)",
        description="Look at, change and start the presets: named task templates (a worker's "
        "action with data, priority and max attempts). `pgstask presets COMMAND --help` for "
        "each command.",
    )
    add_common(group, top=False)
    subcommands = group.add_subparsers(dest="presets_command", metavar="COMMAND", required=True)
    add_json(
        add_command(subcommands, "list", "every preset, its worker, action and data", cmd_list)
    )
    for name, text, handler in (
        ("show", "one preset's fields and the schedules that start it (exit 4 if none)", cmd_show),
        ("remove", "delete a preset (the tasks started from it stay)", cmd_remove),
    ):
        p = add_command(subcommands, name, text, handler)
        p.add_argument("name", metavar="NAME")
        add_json(p)
    p = add_command(
        subcommands,
        "add",
        "add a preset, or replace the fields of the one of that name: a task of IDENT's ACTION",
        cmd_add,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("identifier", metavar="IDENT", help="the worker's identifier")
    p.add_argument("action", metavar="ACTION", help="the action (e.g. sync_stock or sync-stock)")
    p.add_argument("--data", type=json_object, metavar="JSON", help="the tasks' options")
    p.add_argument("--priority", choices=PRIORITIES, default=DEFAULT_PRIORITY)
    p.add_argument(
        "--max-attempts",
        type=max_attempts,
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help=f"runs before a task fails for good (default {DEFAULT_MAX_ATTEMPTS})",
    )
    p.add_argument("--description", default="", metavar="TEXT", help="what the preset is for")
    add_json(p)
    _add_start(subcommands)


def _add_start(commands: Subparsers) -> None:
    p = add_command(
        commands,
        "start",
        "enqueue one task of a preset and print its id (exit 4 if there is no such preset)",
        cmd_start,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--data",
        type=json_object,
        metavar="JSON",
        help="options merged over the preset's data (a key given replaces the preset's whole)",
    )
    p.add_argument("--priority", choices=PRIORITIES, help="default: the preset's")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--start-at",
        type=timestamp,
        metavar="ISO8601",
        help="not before this time (without an offset: local time)",
    )
    when.add_argument(
        "--delay", type=seconds, metavar="SECONDS", help="not before SECONDS from now"
    )
    p.add_argument("--max-attempts", type=max_attempts, metavar="N", help="default: the preset's")
    p.add_argument(
        "--dedupe-key",
        metavar="KEY",
        help="while a task with KEY is incomplete, return it instead of creating another",
    )
    p.add_argument("--user-id", type=positive_int, metavar="N", help="who started it")
    add_json(p)


def cmd_list(ctx: Context) -> int:
    """``pgstask presets list``: every preset with its worker, action, priority and data."""
    rows = ctx.client().presets()
    if ctx.args.json:
        print_json(rows, ctx.out)
        return EXIT_OK
    table(
        ["preset", "worker", "action", "priority", "attempts", "data", "schedules"],
        [
            [
                r["name"],
                r["identifier"],
                r["action"],
                r["priority"],
                r["max_attempts"],
                cell(r["data"], 40),
                ", ".join(r["schedules"]) or None,
            ]
            for r in rows
        ],
        ctx.out,
        empty="no presets (`pgstask presets add NAME IDENT ACTION` makes one)",
    )
    return EXIT_OK


def cmd_show(ctx: Context) -> int:
    """``pgstask presets show NAME``: one preset's fields."""
    row = ctx.client().preset(ctx.args.name)
    if ctx.args.json:
        print_json(row, ctx.out)
        return EXIT_OK
    fields(
        [
            ("preset", row["name"]),
            ("worker", row["identifier"]),
            ("action", row["action"]),
            ("data", row["data"]),
            ("priority", row["priority"]),
            ("max attempts", row["max_attempts"]),
            ("description", row["description"] or None),
            ("schedules", ", ".join(row["schedules"]) or None),
            ("updated", row["updated_at"]),
        ],
        ctx.out,
    )
    return EXIT_OK


def cmd_add(ctx: Context) -> int:
    """``pgstask presets add NAME IDENT ACTION``: add or replace a preset."""
    a = ctx.args
    registry.discover(ctx.settings.worker_modules)  # add_preset checks their actions
    row = ctx.client().add_preset(
        a.name,
        a.identifier,
        a.action,
        a.data,
        priority=a.priority,
        max_attempts=a.max_attempts,
        description=a.description,
    )
    if a.json:
        print_json(row, ctx.out)
    else:
        ctx.out.write(f"preset {a.name} {'added' if row['inserted'] else 'replaced'}\n")
    return EXIT_OK


def cmd_remove(ctx: Context) -> int:
    """``pgstask presets remove NAME``: delete the preset; the schedules that start it are
    named on stderr (they stop at their next slot)."""
    name = ctx.args.name
    left = ctx.client().remove_preset(name)
    if left:
        ctx.note(
            f"schedule(s) {', '.join(left)} start preset {name}: each is disabled at its next "
            "slot until it gets a preset again (`pgstask schedules add`) and is resumed"
        )
    if ctx.args.json:
        print_json({"removed": name, "schedules": left}, ctx.out)
    else:
        ctx.out.write(f"preset {name} removed\n")
    return EXIT_OK


def cmd_start(ctx: Context) -> int:
    """``pgstask presets start NAME``: enqueue one task of the preset and print its id."""
    a = ctx.args
    client = ctx.client()
    start_at: dt.datetime | None = a.start_at
    if a.delay is not None:
        with client.connection() as conn:
            start_at = queries.server_now(conn) + dt.timedelta(seconds=a.delay)
    task = client.create_from_preset(
        a.name,
        a.data,
        priority=a.priority,
        start_at=start_at,
        max_attempts=a.max_attempts,
        user_id=a.user_id,
        dedupe_key=a.dedupe_key,
    )
    if a.json:
        print_json(task.to_dict(), ctx.out)
    else:
        ctx.out.write(f"{task.id}\n")
    return EXIT_OK
