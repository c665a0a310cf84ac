"""The options of the ``pgstask`` command: value types and the option groups commands share.

A bad value is an argparse error: exit status 2 and a message that names the flag.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pgstask import task_spec
from pgstask.errors import InvalidTaskError
from pgstask.task import Status

if TYPE_CHECKING:
    from pgstask.cli._app import Handler

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# --- value types -------------------------------------------------------------------------------


def whole(text: str) -> int:
    """An argparse type: a whole number, of any sign."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--concurrency``, ``--limit``, …)."""
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def max_attempts(text: str) -> int:
    """A task's ``max_attempts`` (``task_spec``'s rule)."""
    try:
        return task_spec.check_max_attempts(whole(text))
    except InvalidTaskError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("max_attempts ")) from None


def concurrency_key(text: str) -> str:
    """A task's ``concurrency_key`` (``task_spec``'s rule), so that a bad one names the flag."""
    try:
        task_spec.check_concurrency_key(text)
    except InvalidTaskError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("concurrency_key ")) from None
    return text


def task_id(text: str) -> int:
    """An argparse type: a task id, a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a task id is a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a task id is positive, not {value}")
    return value


def task_ids(text: str) -> list[int]:
    """An argparse type: task ids separated by commas (``4,7``), each a task id."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(
            f"task ids are whole numbers separated by commas (e.g. 4,7), not {text!r}"
        )
    return [task_id(part) for part in parts]


def seconds(text: str) -> float:
    """An argparse type: a finite number, 0 or more, of seconds (``--delay``,
    ``--shutdown-grace``) or days (``clean --days``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0, for intervals (``--poll-interval``,
    ``tasks watch --interval``)."""
    value = seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def status(text: str) -> str:
    """An argparse type: a task status by name or code (``failed``, ``100``), as its name."""
    try:
        return Status.parse(text).text
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (``create --data``, ``workers settings --set``);
    any other JSON value is refused."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object ({{…}}), not {type(value).__name__}"
        )
    return value


def timestamp(text: str) -> dt.datetime:
    """ISO 8601; a time without an offset is local time."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2030-01-31T08:00:00+00:00)"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


# --- the common options ------------------------------------------------------------------------


def add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command accepts, before or after its name.

    The top-level parser sets their defaults; subcommand parsers use ``SUPPRESS`` so that an option
    given before the command name is not reset by the subcommand.
    """
    default: Any = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("settings (override PGSTASK_* variables)")
    group.add_argument(
        "--dsn",
        default=default,
        metavar="DSN",
        help="PostgreSQL URI or key=value string (PGSTASK_DSN; unset = embedded PostgreSQL)",
    )
    group.add_argument(
        "--storage",
        default=default,
        type=Path,
        metavar="DIR",
        help="directory of progress snapshots and task log files (PGSTASK_STORAGE)",
    )
    group.add_argument(
        "--data-dir",
        default=default,
        type=Path,
        metavar="DIR",
        help="data directory of the embedded PostgreSQL (PGSTASK_DATA_DIR)",
    )
    group.add_argument(
        "--workers",
        default=default,
        metavar="MOD[,MOD]",
        help="worker modules to import, added to PGSTASK_WORKERS",
    )
    group.add_argument(
        "--debug",
        default=False if top else argparse.SUPPRESS,
        action="store_true",
        help="debug logging, and tracebacks for errors",
    )


def add_runtime(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that run tasks (``daemon``, ``run-once``)."""
    group = parser.add_argument_group("running tasks (override PGSTASK_* variables)")
    group.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="actions run at once (PGSTASK_CONCURRENCY, default 10)",
    )
    group.add_argument(
        "--async-concurrency",
        type=positive_int,
        metavar="N",
        help="async actions run at once on the event loop (PGSTASK_ASYNC_CONCURRENCY, default 100)",
    )
    group.add_argument(
        "--poll-interval",
        type=positive_seconds,
        metavar="S",
        help="seconds between polls without a notification (PGSTASK_POLL_INTERVAL)",
    )
    group.add_argument(
        "--heartbeat-interval",
        type=positive_seconds,
        metavar="S",
        help="seconds between heartbeats (PGSTASK_HEARTBEAT_INTERVAL)",
    )
    group.add_argument(
        "--stale-after",
        type=positive_seconds,
        metavar="S",
        help="a daemon silent this long is dead and its tasks are rescued (PGSTASK_STALE_AFTER)",
    )
    group.add_argument(
        "--shutdown-grace",
        type=seconds,
        metavar="S",
        help="seconds running actions get to finish after SIGTERM (PGSTASK_SHUTDOWN_GRACE)",
    )
    group.add_argument(
        "--poll-only",
        action="store_true",
        default=None,
        help="do not LISTEN, only poll (PgBouncer in transaction mode; PGSTASK_POLL_ONLY)",
    )


def add_command(
    group: Subparsers, name: str, text: str, handler: Handler
) -> argparse.ArgumentParser:
    """A command ``name`` of a command group (``pgstask tasks list``…): ``text`` is its help and,
    capitalised, its description; it takes the common options and runs ``handler``."""
    p = group.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    add_common(p, top=False)
    p.set_defaults(handler=handler)
    return p


def add_json(parser: argparse.ArgumentParser) -> None:
    """The ``--json`` flag of a command that can print JSON instead of text."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
