"""``pgstask create IDENTIFIER ACTION``: enqueue one task, optionally wait for its outcome.

The task's data is a JSON object given inline (``--data``) or from a file (``--data-file``, ``-``
for stdin); anything else is rejected before a row is written. ``--delay`` counts from the
database clock, like every schedule in pgstask; ``--start-at`` without a UTC offset is local time.

``--depends-on 4,7`` makes the task wait (status waiting) until those tasks have finished; a
task that does not exist is refused (exit 2) and nothing is written.

The installed workers (entry points, ``PGSTASK_WORKERS``, ``--workers``) are imported first, so
an action that an installed worker does not have is refused (exit 2) before a row is written.
A worker that is not installed here is accepted: a daemon on another host may have it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from pgstask import queries
from pgstask.cli import watch
from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import (
    Subparsers,
    add_common,
    add_json,
    concurrency_key,
    json_object,
    max_attempts,
    positive_int,
    positive_seconds,
    seconds,
    task_ids,
    timestamp,
)
from pgstask.cli._output import print_json
from pgstask.errors import InvalidTaskError
from pgstask.task import PRIORITIES
from pgstask.task_spec import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from pgstask.workers import registry
from pgstask.workflow import PARENT_FAILURE_POLICIES


def register(commands: Subparsers) -> None:
    """Add the ``create`` command to ``commands``."""
    p = commands.add_parser(
        "create",
        help="enqueue a task",
        description="Enqueue one task for worker IDENTIFIER's ACTION and print its id. With "
        "--wait, follow it (progress on stderr) and exit 0 if it completed, 1 if it failed or "
        "was cancelled.",
    )
    add_common(p, top=False)
    p.add_argument("identifier", metavar="IDENTIFIER", help="the worker's identifier")
    p.add_argument("action", metavar="ACTION", help="the action (e.g. sync_stock or sync-stock)")
    data = p.add_mutually_exclusive_group()
    data.add_argument(
        "--data", type=json_object, metavar="JSON", help="the action's options, a JSON object"
    )
    data.add_argument(
        "--data-file", type=Path, metavar="PATH", help="read the JSON object from PATH ('-': stdin)"
    )
    p.add_argument(
        "--priority",
        choices=PRIORITIES,
        default=DEFAULT_PRIORITY,
        help=f"default: {DEFAULT_PRIORITY}",
    )
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
    p.add_argument(
        "--max-attempts",
        type=max_attempts,
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help=f"runs before the task fails for good (default {DEFAULT_MAX_ATTEMPTS})",
    )
    _add_keys(p)
    _add_followers(p)
    p.add_argument("--user-id", type=positive_int, metavar="N", help="who started it")
    p.add_argument("--wait", action="store_true", help="wait until the task finishes")
    add_json(p)
    p.set_defaults(handler=cmd_create)


def _add_keys(p: argparse.ArgumentParser) -> None:
    """The flags of the keys a task is grouped by: de-duplication and concurrency."""
    p.add_argument(
        "--dedupe-key",
        metavar="KEY",
        help="while a task with KEY is incomplete, return it instead of creating another",
    )
    p.add_argument(
        "--concurrency-key",
        type=concurrency_key,
        metavar="KEY",
        help="group the task by KEY for its worker's per-key limits and fair sharing",
    )
    p.add_argument(
        "--throttle",
        type=positive_seconds,
        metavar="SECONDS",
        help="with --dedupe-key: while a task with KEY finished less than SECONDS ago, return "
        "it instead of creating another",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="with --dedupe-key: a pending task with KEY takes this task's data, priority, "
        "start time, attempts and concurrency key (debounce)",
    )


def _add_followers(p: argparse.ArgumentParser) -> None:
    """The flags of what comes before and after a task: its parents, who is told of its end."""
    p.add_argument(
        "--depends-on",
        type=task_ids,
        metavar="ID[,ID]",
        help="wait (status waiting) until these tasks have finished (docs/workflows.md)",
    )
    p.add_argument(
        "--on-parent-failure",
        choices=PARENT_FAILURE_POLICIES,
        help="with --depends-on: when a parent fails or is cancelled, cancel this task "
        "(default, unless the worker's setting says run) or run it anyway",
    )
    p.add_argument(
        "--notify",
        type=json_object,
        metavar="JSON",
        help='who to tell when it completes or fails, e.g. \'{"webhooks": ["ops"], "emails": '
        '["me@example.com"], "on": ["failed"]}\' (docs/notifications.md)',
    )


def cmd_create(ctx: Context) -> int:
    """``pgstask create``: enqueue one task and print its id; with ``--wait``, follow it to
    its outcome."""
    args = ctx.args
    data = args.data if args.data_file is None else _read_data_file(args.data_file)
    registry.discover(ctx.settings.worker_modules)  # Client.create checks their actions
    client = ctx.client()
    start_at: dt.datetime | None = args.start_at
    if args.delay is not None:
        with client.connection() as conn:
            start_at = queries.server_now(conn) + dt.timedelta(seconds=args.delay)
    task = client.create(
        args.identifier,
        args.action,
        data,
        priority=args.priority,
        start_at=start_at,
        max_attempts=args.max_attempts,
        user_id=args.user_id,
        dedupe_key=args.dedupe_key,
        concurrency_key=args.concurrency_key,
        throttle=args.throttle,
        notify=args.notify,
        replace=args.replace,
        depends_on=args.depends_on,
        on_parent_failure=args.on_parent_failure,
    )
    _note_worker(ctx, args.identifier)
    if args.json and not args.wait:
        print_json(task.to_dict(), ctx.out)
    elif not args.json:
        ctx.out.write(f"{task.id}\n")
        ctx.out.flush()
    if not args.wait:
        return EXIT_OK
    final = watch.follow(client, task.id, out=ctx.err)
    if args.json:
        print_json(final.to_dict(), ctx.out)
    return watch.outcome_code(final)


def _read_data_file(path: Path) -> dict[str, Any]:
    name = "stdin" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidTaskError(f"--data-file: cannot read {name}: {exc}") from None
    try:
        return json_object(text)
    except argparse.ArgumentTypeError as exc:
        raise InvalidTaskError(f"--data-file {name}: {exc}") from None


def _note_worker(ctx: Context, identifier: str) -> None:
    """Say so when the task cannot run yet: its worker is unknown or inactive."""
    found = {w["identifier"]: w["active"] for w in ctx.client().workers()}
    if identifier not in found:
        ctx.note(
            f"no worker {identifier!r} is registered yet; the task waits until a daemon that "
            "has it starts (see `pgstask stats`)"
        )
    elif not found[identifier]:
        ctx.note(
            f"worker {identifier!r} is inactive; the task waits until "
            f"`pgstask workers activate {identifier}`"
        )
