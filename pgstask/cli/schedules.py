"""``pgstask schedules …``: the cron schedules, their next runs and last tasks.

Schedules declared by workers are written by daemons when they start; ``add`` makes one of the
API's (origin ``api``). ``pause`` and ``resume`` reach running daemons at once (``NOTIFY``); a
resumed schedule starts from its next slot. ``run NAME`` enqueues one task now with the
schedule's fields and leaves its slots alone. ``add NAME --preset PRESET CRON`` adds a schedule
that starts a preset (docs/presets.md). docs/schedules.md says what is guaranteed.
"""

from __future__ import annotations

from typing import Any

from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_command, add_common, add_json, json_object
from pgstask.cli._output import print_json, table
from pgstask.errors import InvalidScheduleError
from pgstask.workers import registry


def register(commands: Subparsers) -> None:
    """Add the ``schedules`` command and its commands to ``commands``."""
    group = commands.add_parser(
        "schedules",
        help="list, add, pause, resume, remove or run cron schedules",
        description="Look at and change the cron schedules. "
        "`pgstask schedules COMMAND --help` for each command.",
    )
    add_common(group, top=False)
    schedules = group.add_subparsers(dest="schedules_command", metavar="COMMAND", required=True)
    add_json(
        add_command(schedules, "list", "every schedule, its next run and its last task", cmd_list)
    )
    p = add_command(
        schedules,
        "add",
        "add a schedule, or replace the one of that name: a task of IDENT's ACTION (or of "
        "preset PRESET) at every slot of CRON",
        cmd_add,
    )
    p.usage = (
        "pgstask schedules add [options] NAME IDENT ACTION CRON\n"
        "       pgstask schedules add [options] NAME --preset PRESET CRON"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "target",
        nargs="+",
        metavar="IDENT ACTION CRON",
        help="the worker, its action and the cron expression ('0 3 * * *', '*/15 * * * * *', "
        "@hourly); with --preset, the expression alone",
    )
    p.add_argument(
        "--preset",
        metavar="PRESET",
        help="start this preset at every slot: its worker and action, --data merged over its "
        "data, its priority and max attempts unless given",
    )
    p.add_argument("--timezone", default="UTC", help="an IANA zone (default UTC)")
    p.add_argument("--data", type=json_object, metavar="JSON", help="the tasks' options")
    p.add_argument(
        "--priority", choices=("high", "normal", "low"), help="default: normal, or the preset's"
    )
    p.add_argument("--max-attempts", type=int, metavar="N", help="default: 3, or the preset's")
    p.add_argument(
        "--misfire",
        choices=("skip", "run_once"),
        default="skip",
        help="what a slot missed while nothing ran becomes (default skip)",
    )
    p.add_argument("--paused", action="store_true", help="add it paused")
    add_json(p)
    for name, text, handler in (
        ("pause", "stop a schedule from firing (exit 4 if there is none)", cmd_pause),
        ("resume", "let a paused schedule fire again, from its next slot", cmd_resume),
        ("remove", "delete a schedule and its runs (its tasks stay)", cmd_remove),
        ("run", "enqueue one task of a schedule now (its slots stay as they are)", cmd_run),
    ):
        p = add_command(schedules, name, text, handler)
        p.add_argument("name", metavar="NAME")
        add_json(p)


def _when(value: Any) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def cmd_list(ctx: Context) -> int:
    """``pgstask schedules list``: every schedule with its expression, state, next run and last
    task."""
    rows = ctx.client().schedules()
    if ctx.args.json:
        print_json(rows, ctx.out)
        return EXIT_OK
    table(
        ["schedule", "worker", "action", "cron", "zone", "state", "next run (UTC)", "last task"],
        [
            [
                r["name"],
                r["identifier"] or r["preset_identifier"],
                _action(r),
                r["cron"],
                r["timezone"],
                _state(r),
                _when(r["next_run_at"]),
                r["last_task_id"],
            ]
            for r in rows
        ],
        ctx.out,
        empty="no schedules (declare them on a worker, or `pgstask schedules add`)",
    )
    return EXIT_OK


def _action(row: dict[str, Any]) -> str:
    """A schedule's action; for one that starts a preset, the preset's, and the preset."""
    if row["preset"] is None:
        return str(row["action"])
    return f"{row['preset_action'] or '?'} (preset {row['preset']})"


def _state(row: dict[str, Any]) -> str:
    if row.get("last_error"):
        return f"disabled: {row['last_error']}"
    state = "active" if row["active"] else "paused"
    if row.get("missing_from_code_at") is not None:
        state += ", no longer in code"
    return state


def cmd_add(ctx: Context) -> int:
    """``pgstask schedules add NAME IDENT ACTION CRON`` (or ``NAME --preset PRESET CRON``): add
    or replace a schedule."""
    a = ctx.args
    if a.preset is not None and len(a.target) != 1:
        raise InvalidScheduleError(
            f"schedule {a.name!r}: with --preset, give NAME and CRON only (the preset gives the "
            "worker and the action)"
        )
    if a.preset is None and len(a.target) != 3:
        raise InvalidScheduleError(
            f"schedule {a.name!r}: give NAME IDENT ACTION CRON, or NAME --preset PRESET CRON"
        )
    identifier, action = (None, None) if a.preset is not None else a.target[:2]
    fields: dict[str, Any] = {
        "action": action,
        "preset": a.preset,
        "cron": a.target[-1],
        "timezone": a.timezone,
        "data": a.data or {},
        "priority": a.priority,
        "max_attempts": a.max_attempts,
        "misfire": a.misfire,
        "active": not a.paused,
    }
    registry.discover(ctx.settings.worker_modules)  # add_schedule checks their actions
    row = ctx.client().add_schedule(a.name, identifier, fields)
    if a.json:
        print_json(row, ctx.out)
    else:
        ctx.out.write(f"schedule {a.name} added ({'paused' if a.paused else 'active'})\n")
    return EXIT_OK


def _done(ctx: Context, row: Any, text: str) -> int:
    if ctx.args.json:
        print_json(row, ctx.out)
    else:
        ctx.out.write(text + "\n")
    return EXIT_OK


def cmd_pause(ctx: Context) -> int:
    """``pgstask schedules pause NAME``: stop the schedule from firing."""
    row = ctx.client().pause_schedule(ctx.args.name)
    return _done(ctx, row, f"schedule {ctx.args.name} paused")


def cmd_resume(ctx: Context) -> int:
    """``pgstask schedules resume NAME``: let it fire again, from its next slot."""
    row = ctx.client().resume_schedule(ctx.args.name)
    return _done(ctx, row, f"schedule {ctx.args.name} resumed")


def cmd_remove(ctx: Context) -> int:
    """``pgstask schedules remove NAME``: delete the schedule and its runs."""
    ctx.client().remove_schedule(ctx.args.name)
    return _done(ctx, {"removed": ctx.args.name}, f"schedule {ctx.args.name} removed")


def cmd_run(ctx: Context) -> int:
    """``pgstask schedules run NAME``: enqueue one task of the schedule now."""
    task = ctx.client().run_schedule(ctx.args.name)
    return _done(ctx, task.to_dict(), f"schedule {ctx.args.name}: task {task.id} queued")
