"""pgstask as a system of the benchmark: its enqueue figures, and its queue for the shared
drain and wake scenarios (bench/scenarios.py).

Its daemons are real ``pgstask daemon`` processes (a small ``Daemon(...).run()`` process where
that command does not work) that load the benchmark's worker, ``bench`` (bench/workers/), with
PGSTASK_WORKERS; they get PGSTASK_DSN and a temporary PGSTASK_STORAGE. Other ``PGSTASK_*``
variables of the caller's environment apply to them, and the header shows the result. The
daemons of the async drains load the async worker, ``bench_async``, instead (a setting's
``env``), and need the ``pgstask daemon`` command.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb
from scenarios import Check, Setting
from server import Server

from pgstask import Client, Settings, migrate

BATCH = 10_000  # create_many batch size
# A drain's action (scenarios.ACTIONS) as a task of the bench workers: (identifier, action).
TASKS = {
    "noop": ("bench", "noop"),
    "async-noop": ("bench_async", "noop"),
    "async-sleep": ("bench_async", "sleep"),
}
ASYNC_WORKERS = "bench_async_worker"  # PGSTASK_WORKERS of the async drains' daemons
WARM_UP = 200
WORKERS_DIR = Path(__file__).resolve().parent / "workers"
PLAIN_INSERT = (
    "INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts,"
    " started_by, dedupe_key, message) VALUES (%s, %s, %s, %s, now(), %s, %s, %s, %s)"
    " RETURNING id"
)
# The daemon process used when the `pgstask daemon` command is not available.
BOOTSTRAP = """
import signal, sys
from pgstask import Client, Settings
from pgstask.runtime.daemon import Daemon
from bench_worker import BenchWorker
s = Settings.from_env()
c = int(sys.argv[1]) if sys.argv[1:] else None
d = Daemon(s, dsn=s.dsn, workers={"bench": BenchWorker}, make_client=Client, concurrency=c)
signal.signal(signal.SIGTERM, lambda *_: d.request_stop())
d.run()
"""


class PgstaskSystem:
    name = "pgstask"
    left_sql = "SELECT count(*) FROM s_tasks WHERE status IN (10, 30, 50)"
    times_sql = (
        "SELECT extract(epoch FROM min(started_at))::float8,"
        " extract(epoch FROM max(finished_at))::float8 FROM s_tasks"
    )
    # Running as the limits count it: preparing or running (s_tasks_running_key_idx per key).
    running_sql = (
        "SELECT coalesce(sum(n), 0), coalesce(max(n) FILTER (WHERE k IS NOT NULL), 0)"
        " FROM (SELECT concurrency_key AS k, count(*) AS n FROM s_tasks"
        " WHERE status IN (30, 50) GROUP BY concurrency_key) AS g"
    )
    wake_sql = (
        "INSERT INTO s_tasks (identifier, action, meta)"
        " VALUES ('bench', 'wake', jsonb_build_object('seq', %(seq)s::int))"
    )

    def __init__(self, server: Server, log_dir: Path) -> None:
        self.server, self.log_dir = server, log_dir
        self.dsn = server.database()
        migrate.upgrade(self.dsn)
        path = os.pathsep.join(filter(None, [str(WORKERS_DIR), os.environ.get("PYTHONPATH")]))
        self.env = {
            **os.environ,
            "PGSTASK_DSN": self.dsn,
            "PGSTASK_STORAGE": str(log_dir / "storage"),
            "PGSTASK_WORKERS": "bench_worker",
            "PYTHONPATH": path,
        }
        self.storage = log_dir / "storage"
        self.daemon_cmd = daemon_command()
        settings = Settings.from_env(self.env)
        self.default_concurrency = settings.concurrency
        self.default_async_concurrency = settings.async_concurrency

    @property
    def daemon_kind(self) -> str:
        return "`pgstask daemon`" if self.daemon_cmd[-1] == "daemon" else "python -c Daemon.run()"

    def settings(self, candidates: list[int]) -> tuple[Setting, list[Setting]]:
        default = Setting(f"c={self.default_concurrency} (default)")
        return default, [Setting(f"c={c}", ("--concurrency", str(c))) for c in candidates]

    def async_setting(self, slots: int | None = None) -> Setting:
        """One daemon of the async worker with ``slots`` loop slots (None: the settings')."""
        env = {"PGSTASK_WORKERS": ASYNC_WORKERS}
        if slots is None:
            return Setting(f"async={self.default_async_concurrency} (default)", env=env)
        env["PGSTASK_ASYNC_CONCURRENCY"] = str(slots)
        return Setting(f"async={slots}", env=env)

    def reset(self) -> str:
        """An empty queue, and the bench worker without limits (a limits drain sets them)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE s_tasks, s_task_logs, s_task_progress, s_task_files, s_task_starts,"
                " s_flow_cursors CASCADE"
            )
            conn.execute("UPDATE s_workers SET settings = '{}' WHERE settings <> '{}'")
        return self.dsn

    def enqueue_single(self, n: int) -> tuple[float, float]:
        """Client.create per task, and a plain psycopg INSERT + commit per row (tasks/s)."""
        self.reset()
        start = 0.0
        with psycopg.connect(self.dsn) as conn:
            for i in range(-WARM_UP, n):
                start = time.perf_counter() if i == 0 else start
                args = ("bench", "noop", Jsonb({"n": i}), "normal", 3, None, None, "Task queued")
                conn.execute(PLAIN_INSERT, args)
                conn.commit()
            plain = n / (time.perf_counter() - start)
        self.reset()
        with Client(self.dsn) as client:
            for i in range(-WARM_UP, n):
                start = time.perf_counter() if i == 0 else start
                client.create("bench", "noop", {"n": i})
            ours = n / (time.perf_counter() - start)
        return ours, plain

    def enqueue_bulk(self, n: int) -> tuple[float, float]:
        """create_many returning ids (as the peers' bulk calls do), then returning Task objects
        (tasks/s each, on an emptied table)."""
        items = [{"identifier": "bench", "action": "noop", "data": {"n": i}} for i in range(n)]
        rates = []
        for returning in ("ids", "tasks"):
            self.reset()
            with Client(self.dsn) as client:
                client.create_many(items[:100], returning=returning)  # warm-up: pool and types
                start = time.perf_counter()
                for lo in range(0, n, BATCH):
                    client.create_many(items[lo : lo + BATCH], returning=returning)
                rates.append(n / (time.perf_counter() - start))
        return rates[0], rates[1]

    def fill(self, n: int, *, keys: int = 0, action: str = "noop") -> None:
        """``n`` tasks of ``action`` (``TASKS``) through ``create_many``; with ``keys`` (no-ops
        only), by a plain SQL INSERT (as other systems enqueue), in ``keys`` runs of tasks of one
        concurrency key (``k<i * keys // n>`` for task i)."""
        if keys and action != "noop":
            raise ValueError(f"tasks with keys are no-ops, not {action!r}")
        identifier, name = TASKS[action]
        if keys:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO s_tasks (identifier, action, meta, concurrency_key)"
                    " SELECT 'bench', 'noop', jsonb_build_object('n', g),"
                    " 'k' || lpad((g::bigint * %(keys)s / %(n)s)::text, 4, '0')"
                    " FROM generate_series(0, %(n)s - 1) AS g ORDER BY g",
                    {"n": n, "keys": keys},
                )
            return
        with Client(self.dsn) as client:
            for lo in range(0, n, BATCH):
                size = min(BATCH, n - lo)
                client.create_many([{"identifier": identifier, "action": name}] * size)

    def worker(self, setting: Setting, wake_file: Path | None) -> tuple[list[str], dict[str, str]]:
        """The daemon's command and environment for ``setting``; its ``limits`` are written to
        the bench worker's ``s_workers.settings`` first, as an administrator would (no limit
        when empty), so the daemons start with them."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO s_workers (identifier, class, settings)"
                " VALUES ('bench', 'bench_worker:BenchWorker', %(settings)s)"
                " ON CONFLICT (identifier) DO UPDATE SET settings = excluded.settings",
                {"settings": Jsonb(setting.limits)},
            )
        env = {**self.env, **setting.env}
        if setting.env and self.daemon_cmd[-1] != "daemon":
            raise ValueError("settings with their own environment need the `pgstask daemon` CLI")
        if wake_file is not None:
            env["PGSTASK_BENCH_WAKE_FILE"] = str(wake_file)
        cmd = list(self.daemon_cmd)
        if setting.args:
            cmd += list(setting.args) if cmd[-1] == "daemon" else [setting.args[-1]]
        return cmd, env

    def check(self, n: int, invocations: int, distinct: int, finished: bool) -> Check:
        """All completed exactly once (status 80, attempts 1), none failed, none lost."""
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 80 AND attempts = 1),"
                " count(*) FILTER (WHERE status = 80), count(*) FILTER (WHERE status = 100),"
                " count(*) FILTER (WHERE status = 10), count(*) FROM s_tasks"
            ).fetchone()
        assert row is not None
        once, completed, failed, pending, total = row
        ok = (
            once == completed
            and failed == 0
            and total == n
            and completed + pending == n
            and invocations == distinct == completed
            and (completed == n or not finished)
        )
        text = (
            f"{completed:,} completed ({once:,} with attempts = 1), {failed} failed,"
            f" {pending:,} still pending, {total:,} rows; action ran {invocations:,} times"
            f" for {distinct:,} tasks"
        )
        return Check(ok, completed, ("OK: " if ok else "FAILED: ") + text)


def daemon_command() -> list[str]:
    """`pgstask daemon` if that command works here, else a small Daemon(...).run() process."""
    cli = [sys.executable, "-m", "pgstask", "daemon"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        probe = subprocess.run([*cli, "--help"], capture_output=True, timeout=30)
        if probe.returncode == 0 and b"--concurrency" in probe.stdout:
            return cli
    return [sys.executable, "-c", BOOTSTRAP]
