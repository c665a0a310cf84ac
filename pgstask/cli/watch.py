"""Following a task until it ends: ``pgstask tasks watch`` and ``pgstask create --wait``.

The watcher polls ``Client.progress`` (live row while the task runs, durable final state after).
On a terminal it redraws one line with ``\\r``; otherwise (a pipe, a log file) it writes a line
each time the text changes, so a log shows every step. It returns the finished task; the
command's exit status is 0 when it completed and 1 when it failed or was cancelled.

It rides out a restart of PostgreSQL: while the database cannot be reached it says so once and
tries again (every ``interval``, backing off to 5 s); only after ``OUTAGE_LIMIT`` seconds without
an answer does it give up with the database error (exit status 3).
"""

from __future__ import annotations

import shutil
import time
from typing import Any, TextIO

from pgstask.cli._app import EXIT_FAILED, EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, positive_seconds, task_id
from pgstask.client import Client
from pgstask.errors import DatabaseError, SchemaError
from pgstask.progress import format_eta
from pgstask.task import Status, Task

BAR_WIDTH = 24
OUTAGE_LIMIT = 60.0  # seconds without an answer from the database before watching gives up
_FINISHED = frozenset(s.text for s in (Status.COMPLETED, Status.FAILED, Status.CANCELLED))


def register(tasks: Subparsers) -> None:
    """Add the ``watch`` command to the ``tasks`` commands."""
    p = tasks.add_parser(
        "watch",
        help="follow a task's progress until it ends",
        description="Show a task's progress (percentage, processed/total, ETA, message) until "
        "it ends. Exit status: 0 completed, 1 failed or cancelled, 4 no such task.",
    )
    add_common(p, top=False)
    p.add_argument("id", type=task_id, metavar="ID", help="the task id")
    p.add_argument(
        "--interval",
        type=positive_seconds,
        default=0.5,
        metavar="S",
        help="seconds between updates (default 0.5)",
    )
    p.set_defaults(handler=cmd_watch)


def cmd_watch(ctx: Context) -> int:
    """``pgstask tasks watch ID``: draw a task's progress until it ends."""
    task = follow(ctx.client(), ctx.args.id, out=ctx.out, interval=ctx.args.interval)
    return outcome_code(task)


def outcome_code(task: Task) -> int:
    """The exit status a finished task gives ``tasks watch`` and ``create --wait``: 0 if it
    completed, 1 if it failed or was cancelled."""
    return EXIT_OK if task.status == Status.COMPLETED else EXIT_FAILED


def follow(client: Client, task_id: int, *, out: TextIO, interval: float = 0.5) -> Task:
    """Draw the progress of ``task_id`` on ``out`` until the task is finished; return it."""
    tty = out.isatty()
    previous = ""
    down_since: float | None = None
    try:
        while True:
            try:
                state = client.progress(task_id)
            except SchemaError:
                raise
            except DatabaseError as exc:
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    out.write(("\n" if tty else "") + f"database unreachable ({exc}); retrying\n")
                    out.flush()
                    previous = ""
                elif now - down_since > OUTAGE_LIMIT:
                    raise
                time.sleep(min(5.0, max(interval, (now - down_since) / 4)))
                continue
            if down_since is not None:
                down_since = None
                out.write("database reachable again\n")
            line = render(state)
            if tty:
                line = line[: shutil.get_terminal_size().columns - 1]
                out.write("\r" + line.ljust(len(previous)))
            elif line != previous:
                out.write(line + "\n")
            out.flush()
            previous = line
            if state["status"] in _FINISHED:
                break
            time.sleep(interval)
    finally:
        if tty:
            out.write("\n")
            out.flush()
    return _final(client, task_id, interval)


def _final(client: Client, task_id: int, interval: float) -> Task:
    deadline = time.monotonic() + OUTAGE_LIMIT
    while True:
        try:
            return client.get(task_id)
        except SchemaError:
            raise
        except DatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(max(interval, 0.5))


def render(state: dict[str, Any]) -> str:
    """``task 7 running  [#########···]  45%  9/20  ETA 3s  Counted 9 of 20``."""
    percent = state.get("progress")
    if percent is None:
        bar, pct = "?" * BAR_WIDTH, "  ?%"
    else:
        filled = max(0, min(BAR_WIDTH, round(BAR_WIDTH * int(percent) / 100)))
        bar, pct = "#" * filled + "." * (BAR_WIDTH - filled), f"{int(percent):>3}%"
    parts = [f"task {state['id']} {state['status']:<9}", f"[{bar}]", pct]
    processed, total = state.get("processed"), state.get("total")
    if processed is not None or total is not None:
        parts.append(f"{processed if processed is not None else '?'}/{total or '?'}")
    if state["status"] == Status.RUNNING.text:
        parts.append(f"ETA {format_eta(state.get('eta'))}")
    message = " ".join(str(state.get("message") or "").split())
    if message:
        parts.append(message)
    return "  ".join(parts)
