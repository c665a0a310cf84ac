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

``run-once`` prints a line per task as its action ends (``Report``, called from the action
threads through the daemon's ``on_outcome``), then a summary; ``--quiet`` keeps only the lines of
tasks that did not complete, so cron mails nothing when all went well.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TextIO

from psycopg.conninfo import conninfo_to_dict

from pgstask import telemetry
from pgstask.cli._app import EXIT_FAILED, EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_json, add_runtime, positive_int
from pgstask.cli._output import OUTCOME_WORDS, cell, describe_outcomes, plural, print_json
from pgstask.client import Client
from pgstask.db import translate_errors
from pgstask.runtime.daemon import Daemon
from pgstask.runtime.runner import Outcome, OutcomeKind
from pgstask.workers import registry

_log = logging.getLogger("pgstask.cli")


def register(commands: Subparsers) -> None:
    """Add the ``daemon`` and ``run-once`` commands to ``commands``."""
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
    r.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the tasks that did not complete (no line per completed task, no summary)",
    )
    add_json(r)
    r.set_defaults(handler=cmd_run_once)


def cmd_daemon(ctx: Context) -> int:
    """``pgstask daemon``: claim and run the installed workers' tasks until SIGTERM/SIGINT."""
    logging.getLogger("pgstask").setLevel(min(logging.getLogger().level, logging.INFO))
    daemon = build_daemon(ctx)
    _log.info(
        "pgstask daemon %s starting: workers %s; concurrency %d%s; database %s",
        daemon.id,
        ", ".join(daemon.identifiers) or "(none)",
        daemon.concurrency,
        f" (and {daemon.async_concurrency} async)" if daemon.async_concurrency else "",
        _describe(ctx),
    )
    if not daemon.worker_classes:
        _log.warning("no worker classes found: this daemon will run no task")
    with _stop_on_signals(daemon), translate_errors():
        daemon.run()
    return EXIT_OK


def cmd_run_once(ctx: Context) -> int:
    """``pgstask run-once``: run the tasks due now, then exit; 0 only if every task it ran
    completed."""
    report = Report(ctx.out, quiet=ctx.args.quiet, silent=ctx.args.json)
    daemon = build_daemon(ctx, report=report)
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
    elif not ctx.args.quiet:
        ctx.out.write(
            f"run-once: processed {plural(summary.total, 'task')}: "
            f"{describe_outcomes(outcomes, retried=report.retried)}\n"
        )
    return EXIT_OK if summary.ok else EXIT_FAILED


class Report:
    """One line per task that ``run-once`` ran, as its action ends::

        task 12 demo.noop: completed
        task 13 demo.fail: failed, will be retried in 2.1s (attempt 1 of 3): Failed: …
        task 14 demo.fail: failed for good (attempt 3 of 3): Failed: RuntimeError: …
        task 17 shop.poll: snoozed for 30s (pending again later)
        task 15 demo.count: given back (pending again)
        task 16 demo.count: dropped (cancelled or taken over while running)

    Called from the action threads; it never raises (an outcome must reach the completer),
    and stops printing when stdout is gone."""

    def __init__(self, out: TextIO, *, quiet: bool = False, silent: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.silent = silent
        self._retrying: set[int] = set()  # tasks whose last run failed and will run again
        self._lock = threading.Lock()

    @property
    def retried(self) -> int:
        """Tasks whose last run here failed and that will be retried (pending again)."""
        return len(self._retrying)

    def __call__(self, outcome: Outcome) -> None:
        try:
            with self._lock:
                if outcome.retry_delay is not None:
                    self._retrying.add(outcome.task.id)
                else:
                    self._retrying.discard(outcome.task.id)
                if self.silent or (
                    self.quiet and (outcome.succeeded or outcome.kind is OutcomeKind.SNOOZED)
                ):
                    return
                self.out.write(self.line(outcome) + "\n")
                self.out.flush()
        except Exception:  # e.g. `run-once | head` left: the tasks still get their outcomes
            _log.debug("run-once: cannot print task lines any more", exc_info=True)
            self.silent = True

    @staticmethod
    def line(outcome: Outcome) -> str:
        """The line of one outcome (examples in the class docstring)."""
        task = outcome.task
        kind = outcome.kind.value
        text = OUTCOME_WORDS.get(kind, kind.replace("_", " "))
        if kind == "failed":
            attempt = f"attempt {task.attempts} of {task.max_attempts}"
            if outcome.retry_delay is not None:
                text = f"failed, will be retried in {outcome.retry_delay:.1f}s ({attempt})"
            else:
                text = f"failed for good ({attempt})"
            text += f": {cell(outcome.message, 300)}"
        elif kind == "snoozed":
            text = f"snoozed for {outcome.snooze_delay or 0:g}s (pending again later)"
            if outcome.message:
                text += f": {cell(outcome.message, 300)}"
        return f"task {task.id} {task.identifier}.{task.action}: {text}"


def build_daemon(ctx: Context, *, report: Callable[[Outcome], None] | None = None) -> Daemon:
    """The daemon of ``daemon`` and ``run-once``; ``report`` is told each outcome as it is
    recorded. Python log records get the trace and span ids of the action they are logged in
    (``telemetry.stamp_log_records``; only with telemetry on)."""
    telemetry.stamp_log_records()
    workers = registry.daemon_workers(ctx.settings)
    dsn = ctx.ready_dsn()
    if report is None:
        return Daemon(ctx.settings, dsn=dsn, workers=workers, make_client=Client)
    tell: Callable[[Outcome], None] = report

    return Daemon(ctx.settings, dsn=dsn, workers=workers, make_client=Client, on_outcome=tell)


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
