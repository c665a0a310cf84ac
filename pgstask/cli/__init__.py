"""The ``pgstask`` command.

::

    pgstask migrate | daemon | run-once | serve | create | stats | tasks … | workers …
            | schedules … | presets … | webhooks … | clean | logs | tokens | db …

Every command has ``--help``. Settings come from the ``PGSTASK_*`` environment; flags override
them (``--dsn``, ``--storage``, ``--data-dir``, ``--workers`` on every command, before or after
its name; ``--concurrency``, ``--poll-interval``, … on ``daemon`` and ``run-once``). Without a
DSN the embedded PostgreSQL is started (or reused) and migrated; stderr says so when a command
creates, starts or migrates it (``pgstask db status|stop|psql`` manage it).

Exit codes (also in ``pgstask --help``), for cron, systemd and scripts:

====  ==========================================================================================
0     success
1     a task failed or was cancelled (``run-once``, ``tasks watch``, ``create --wait``)
2     usage error: bad flag, ``PGSTASK_*`` variable, JSON, task, schedule, preset or webhook
      field (``ConfigurationError``, ``InvalidTaskError``, ``InvalidScheduleError``,
      ``InvalidPresetError``, ``InvalidWebhookError``, argparse errors)
3     database error: unreachable, refused a statement, schema missing or old (``DatabaseError``)
4     not found: no such task, worker, schedule, preset or webhook (``TaskNotFoundError``,
      ``WorkerNotFoundError``, ``ScheduleNotFoundError``, ``PresetNotFoundError``,
      ``WebhookNotFoundError``)
5     wrong state: e.g. cancelling a finished task (``TaskStateError``)
130   interrupted (Ctrl-C) outside ``daemon``/``run-once``, which stop gracefully instead
====  ==========================================================================================

A ``PgstaskError`` is printed as one line on stderr, ``pgstask: error: …``; ``--debug`` adds the
traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

import psycopg

from pgstask import __version__
from pgstask.cli import (
    admin,
    create,
    db,
    logs,
    presets,
    run,
    schedules,
    serve,
    tasks,
    webhooks,
    workers,
)
from pgstask.cli._app import (
    EXIT_CODES_HELP,
    EXIT_DATABASE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_STATE,
    EXIT_USAGE,
    Context,
    Handler,
)
from pgstask.cli._options import add_common
from pgstask.errors import (
    ConfigurationError,
    DatabaseError,
    InvalidPresetError,
    InvalidScheduleError,
    InvalidTaskError,
    InvalidWebhookError,
    PgstaskError,
    PresetNotFoundError,
    ScheduleNotFoundError,
    TaskNotFoundError,
    TaskStateError,
    UnknownActionError,
    WebhookNotFoundError,
    WorkerNotFoundError,
)

__all__ = ["build_parser", "exit_code", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``pgstask`` parser with every command."""
    parser = argparse.ArgumentParser(
        prog="pgstask",
        description="PostgreSQL-native background tasks: run daemons, enqueue and inspect tasks.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pgstask {__version__}")
    add_common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    admin.register_migrate(commands)
    run.register(commands)
    create.register(commands)
    admin.register_stats(commands)
    tasks.register(commands)
    workers.register(commands)
    schedules.register(commands)
    presets.register(commands)
    webhooks.register(commands)
    admin.register_clean(commands)
    logs.register(commands)
    serve.register(commands)
    db.register(commands)
    return parser


def exit_code(exc: PgstaskError) -> int:
    """The exit status for an error (see the module docstring)."""
    if isinstance(
        exc,
        TaskNotFoundError
        | WorkerNotFoundError
        | ScheduleNotFoundError
        | PresetNotFoundError
        | WebhookNotFoundError,
    ):
        return EXIT_NOT_FOUND
    if isinstance(exc, TaskStateError):
        return EXIT_STATE
    if isinstance(exc, DatabaseError):
        return EXIT_DATABASE
    if isinstance(
        exc,
        ConfigurationError
        | InvalidTaskError
        | InvalidScheduleError
        | InvalidPresetError
        | InvalidWebhookError
        | UnknownActionError,
    ):
        return EXIT_USAGE
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pgstask`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    ctx: Context | None = None
    try:
        ctx = Context(args)
        return handler(ctx)
    except PgstaskError as raised:
        exc = ctx.explain(raised) if ctx is not None else raised
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        message = "; ".join(lines) or type(exc).__name__
        if isinstance(exc.__cause__, psycopg.OperationalError) and ctx and not ctx.embedded:
            message += f" (check {ctx.dsn_source})"
        sys.stderr.write(f"pgstask: error: {message}\n")
        return exit_code(exc)
    except KeyboardInterrupt:
        sys.stderr.write("pgstask: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `pgstask tasks list | head`: the reader left; not an error worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    finally:
        if ctx is not None:
            ctx.close()
