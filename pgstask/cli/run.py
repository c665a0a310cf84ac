"""``pgstask daemon`` and ``pgstask run-once``: the commands that run tasks.

Both use every installed worker: the ``pgstask.workers`` entry points (which include the example
workers ``demo`` and ``report`` shipped with pgstask; deactivate them with ``pgstask workers
deactivate demo`` where they are not wanted) plus the modules of ``PGSTASK_WORKERS``/``--workers``.
There is no ``--examples`` switch: the examples are always installed, and activity is per worker.

Signals: SIGTERM or SIGINT stops gracefully (no new claims; running actions get
``shutdown_grace`` seconds, then their tasks are given back); a second signal stops at once.
The signal handler only queues the signal; a small thread calls ``Daemon.request_stop``, so the
handler never waits for a lock the interrupted main thread may hold. A psycopg error that escapes
the daemon (e.g. its start-up schema check cannot connect) becomes a ``DatabaseError``: exit 3.

``run-once`` takes no global lock: several runs at once (cron every minute while the previous
run still works) share the due tasks through ``FOR UPDATE SKIP LOCKED``, each task once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from psycopg.conninfo import conninfo_to_dict

from pgstask.cli._app import EXIT_FAILED, EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_json, add_runtime, positive_int
from pgstask.cli._output import plural, print_json
from pgstask.db import translate_errors
from pgstask.workers import registry

if TYPE_CHECKING:
    from pgstask.runtime.daemon import Daemon

_log = logging.getLogger("pgstask.cli")


def register(commands: Subparsers) -> None:
    d = commands.add_parser(
        "daemon",
        help="run tasks until SIGTERM/SIGINT",
        description="Claim and run tasks of the installed workers until stopped. Logs to "
        "stderr. SIGTERM/SIGINT stops gracefully (exit 0); a second signal stops at once.",
    )
    add_common(d, top=False)
    add_runtime(d)
    d.set_defaults(handler=cmd_daemon)

    r = commands.add_parser(
        "run-once",
        help="run the tasks that are due now, then exit (for cron)",
        description="Run every due task (or --max-tasks of them), wait for them, print a "
        "summary and exit: 0 if every task it ran completed (or none was due), 1 if any "
        "failed or will be retried. Safe to start while an earlier run still works.",
    )
    add_common(r, top=False)
    add_runtime(r)
    r.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="claim at most N tasks per query (default: the free slots)",
    )
    r.add_argument(
        "--max-tasks", type=positive_int, metavar="N", help="stop claiming after N tasks"
    )
    add_json(r)
    r.set_defaults(handler=cmd_run_once)


def cmd_daemon(ctx: Context) -> int:
    logging.getLogger("pgstask").setLevel(min(logging.getLogger().level, logging.INFO))
    daemon = build_daemon(ctx)
    _log.info(
        "pgstask daemon %s starting: workers %s; concurrency %d; database %s",
        daemon.id,
        ", ".join(daemon.identifiers) or "(none)",
        daemon.concurrency,
        _describe(ctx),
    )
    if not daemon.worker_classes:
        _log.warning("no worker classes found: this daemon will run no task")
    with _stop_on_signals(daemon), translate_errors():
        daemon.run()
    return EXIT_OK


def cmd_run_once(ctx: Context) -> int:
    daemon = build_daemon(ctx)
    with _stop_on_signals(daemon), translate_errors():
        summary = daemon.run_once(batch_size=ctx.args.batch_size, max_tasks=ctx.args.max_tasks)
    outcomes = dict(summary.outcomes)
    if ctx.args.json:
        print_json(
            {
                "processed": summary.total,
                "completed": summary.completed,
                "failed": summary.failed,
                "outcomes": outcomes,
                "ok": summary.ok,
            },
            ctx.out,
        )
    else:
        others = ", ".join(
            f"{n} {kind.replace('_', ' ')}"
            for kind, n in sorted(outcomes.items())
            if kind not in ("completed", "failed") and n
        )
        ctx.out.write(
            f"run-once: processed {plural(summary.total, 'task')}: {summary.completed} completed, "
            f"{summary.failed} failed" + (f", {others}" if others else "") + "\n"
        )
    return EXIT_OK if summary.ok else EXIT_FAILED


def build_daemon(ctx: Context) -> Daemon:
    # Imported here: the daemon pulls in alembic (its schema check), which other commands skip.
    from pgstask.runtime.daemon import Daemon

    workers = registry.discover(ctx.settings.worker_modules)
    return Daemon(ctx.settings, dsn=ctx.ready_dsn(), workers=workers)


def _describe(ctx: Context) -> str:
    """Where the database is, without credentials."""
    if ctx.embedded:
        return f"embedded PostgreSQL in {ctx.settings.data_dir.expanduser().resolve()}"
    try:
        params = conninfo_to_dict(ctx.dsn())
    except Exception:
        return "(unparsable DSN)"
    host = str(params.get("host") or "local socket")
    port = f":{params['port']}" if params.get("port") else ""
    user = f"{params['user']}@" if params.get("user") else ""
    return f"{user}{host}{port}/{params.get('dbname') or '(default)'}"


@contextlib.contextmanager
def _stop_on_signals(daemon: Daemon) -> Iterator[None]:
    """SIGTERM/SIGINT → ``daemon.request_stop()`` (graceful, then immediate) while inside."""
    received: queue.SimpleQueue[int | None] = queue.SimpleQueue()  # put() is signal-safe

    def relay() -> None:
        count = 0
        while (signum := received.get()) is not None:
            count += 1
            name = signal.Signals(signum).name
            if count == 1:
                _log.info(
                    "%s: stopping; running actions get %gs to finish (send it again to stop now)",
                    name,
                    daemon.settings.shutdown_grace,
                )
            else:
                _log.warning("%s again: stopping now; unfinished tasks are given back", name)
            daemon.request_stop()

    thread = threading.Thread(target=relay, name="pgstask-cli-signals", daemon=True)
    thread.start()
    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:
        signal.signal(sig, lambda signum, frame: received.put(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        received.put(None)
        thread.join(5)
