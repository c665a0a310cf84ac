"""pgstask benchmark: enqueue rates, drain rate of one daemon, wake-up latency.

    python bench/run.py [--dsn DSN] [--drain N] [--quick]

Without ``--dsn`` (or PGSTASK_BENCH_DSN / PGSTASK_DSN) a throwaway pgserver cluster is started
in a temporary directory and stopped at the end. The script only ever touches its own database,
``pgstask_bench``, which it drops and recreates. Exit code 0 whatever the figures, 1 if the
exactly-once check of a drain fails. bench/README.md says what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

import pgstask
from pgstask import Client, Settings, embedded, migrate

BENCH_DB = "pgstask_bench"
BATCH = 10_000  # create_many batch size
DRAIN_TARGET, BULK_TARGET = 3_000.0, 20_000.0  # tasks/s
WAKE_P50_TARGET, WAKE_P99_TARGET = 10.0, 50.0  # ms
PLAIN_INSERT = (
    "INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts,"
    " started_by, dedupe_key, message) VALUES (%s, %s, %s, %s, now(), %s, %s, %s, %s)"
    " RETURNING id"
)
WAKE_INSERT = (
    "INSERT INTO s_tasks (identifier, action) VALUES ('demo', 'noop')"
    " RETURNING id, extract(epoch FROM clock_timestamp())::float8"
)
NOTES = """\
Other work on the machine skews every figure (see the load averages).
drain rate = tasks / (last finished_at - first started_at), on the database clock; the daemon's
process start is not included. wake latency = started_at - created_at, on the database clock:
created_at is the start of the inserting transaction, so the INSERT itself and its commit are
included; started_at is set at claim, just before the action starts (running the action is not
included). 'after the INSERT ran' starts at the INSERT's clock_timestamp(): commit, NOTIFY and
the daemon's claim."""
LISTENERS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name = 'pgstask-listener'"
)
# The daemon process used when the `pgstask daemon` command is not available.
BOOTSTRAP = """
import signal, sys
from pgstask import Settings
from pgstask.runtime.daemon import Daemon
from pgstask.workers.examples import DemoWorker
s = Settings.from_env()
c = int(sys.argv[1]) if sys.argv[1:] else None
d = Daemon(s, dsn=s.dsn, workers={"demo": DemoWorker}, concurrency=c)
signal.signal(signal.SIGTERM, lambda *_: d.request_stop())
d.run()
"""


@dataclass(slots=True)
class Figure:
    name: str
    value: str
    target: str = ""
    met: bool | None = None


@dataclass(slots=True)
class Bench:
    dsn: str  # the benchmark database
    env: dict[str, str]  # environment of the daemon processes
    log_dir: Path
    daemon_cmd: list[str]
    exactly_once_ok: bool = True

    @property
    def default_concurrency(self) -> int:
        return Settings.from_env(self.env).concurrency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pgstask benchmark (see bench/README.md)")
    parser.add_argument("--dsn", help="PostgreSQL server (default: PGSTASK_BENCH_DSN, PGSTASK_DSN)")
    parser.add_argument("--drain", type=int, help="tasks per drain run (default 20000)")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    args = parser.parse_args(argv)
    q: bool = args.quick
    single, bulk, wake = (1_000, 20_000, 50) if q else (5_000, 100_000, 200)
    drain_n: int = args.drain or (5_000 if q else 20_000)
    candidates = [32] if q else [32, 64]
    server = args.dsn or os.environ.get("PGSTASK_BENCH_DSN") or os.environ.get("PGSTASK_DSN")
    tmp = Path(tempfile.mkdtemp(prefix="pgstask-bench-"))
    pgdata = tmp / "pgdata"
    try:
        if not server:
            print(f"starting a throwaway pgserver cluster in {pgdata}", flush=True)
            server = embedded.start(pgdata)
        dsn = fresh_database(server)
        migrate.upgrade(dsn)
        env = {**os.environ, "PGSTASK_DSN": dsn, "PGSTASK_STORAGE": str(tmp / "storage")}
        bench = Bench(dsn, env, tmp, daemon_command())
        header(bench, server)
        say(f"  sizes       single {single:,}, bulk {bulk:,}, drain {drain_n:,}, wake {wake}\n")
        figures = enqueue_single(bench, single)
        figures.append(enqueue_bulk(bench, bulk))
        figures.extend(drain(bench, drain_n, candidates))
        figures.extend(wake_latency(bench, wake))
        print_table(figures)
        if not bench.exactly_once_ok:
            print("\nEXACTLY-ONCE CHECK FAILED (see the [3] lines above)")
        return 0 if bench.exactly_once_ok else 1
    finally:
        if (pgdata / "postmaster.pid").exists():
            embedded.stop(pgdata)
        shutil.rmtree(tmp, ignore_errors=True)


def fresh_database(server_dsn: str) -> str:
    """Drop and recreate BENCH_DB on the server of ``server_dsn``; return its DSN."""
    on_bench_db = conninfo_to_dict(server_dsn).get("dbname") == BENCH_DB
    admin_dsn = make_conninfo(server_dsn, dbname="postgres") if on_bench_db else server_dsn
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return make_conninfo(server_dsn, dbname=BENCH_DB)


def daemon_command() -> list[str]:
    """`pgstask daemon` if that command works here, else a small Daemon(...).run() process."""
    cli = [sys.executable, "-m", "pgstask", "daemon"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        probe = subprocess.run([*cli, "--help"], capture_output=True, timeout=30)
        if probe.returncode == 0 and b"--concurrency" in probe.stdout:
            return cli
    return [sys.executable, "-c", BOOTSTRAP]


def find_psql() -> str | None:
    """pgserver's psql (it ships one), else the system's."""
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin" / "psql"
        if candidate.exists():
            return str(candidate)
    return shutil.which("psql")


def header(bench: Bench, server_dsn: str) -> None:
    with psycopg.connect(bench.dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    info = {k: "***" if k == "password" else v for k, v in conninfo_to_dict(server_dsn).items()}
    settings = Settings.from_env(bench.env)
    kind = "`pgstask daemon`" if bench.daemon_cmd[-1] == "daemon" else "python -c Daemon.run()"
    lines = [
        "pgstask benchmark",
        f"  machine     {os.cpu_count()} cores, {platform.platform()}",
        f"  load        {os.getloadavg()[0]:.2f} (1-minute load average at start)",
        f"  versions    Python {platform.python_version()}, PostgreSQL {row[0] if row else '?'},",
        f"              pgstask {pgstask.__version__}, psycopg {psycopg.__version__}",
        f"  server      {' '.join(f'{k}={v}' for k, v in info.items())}, database {BENCH_DB}",
        f"  daemon      {kind} subprocess, concurrency {settings.concurrency} (default),",
        f"              poll_interval {settings.poll_interval}s, create_many batch {BATCH:,}",
    ]
    say("\n".join(lines))


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE s_tasks, s_task_logs, s_task_progress, s_task_files CASCADE")


def count(conn: psycopg.Connection[Any], sql: LiteralString) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def say(line: str) -> None:
    print(line, flush=True)


def enqueue_single(bench: Bench, n: int) -> list[Figure]:
    """Client.create per task vs a plain psycopg INSERT + commit per row (200 warm-up each)."""
    reset(bench.dsn)
    start = 0.0
    with psycopg.connect(bench.dsn) as conn:
        for i in range(-200, n):  # the first 200 warm up
            start = time.perf_counter() if i == 0 else start
            args = ("demo", "noop", Jsonb({"n": i}), "normal", 3, None, None, "Task queued")
            conn.execute(PLAIN_INSERT, args)
            conn.commit()
        plain = n / (time.perf_counter() - start)
    reset(bench.dsn)
    with Client(bench.dsn) as client:
        for i in range(-200, n):
            start = time.perf_counter() if i == 0 else start
            client.create("demo", "noop", {"n": i})
        ours = n / (time.perf_counter() - start)
    say(f"[1] single: Client.create {ours:,.0f}/s, plain INSERT+commit {plain:,.0f}/s")
    return [
        Figure("enqueue, single: Client.create", f"{ours:,.0f} tasks/s"),
        Figure("enqueue, single: plain psycopg INSERT+commit", f"{plain:,.0f} tasks/s"),
        Figure("  Client.create / plain INSERT", f"{ours / plain:.2f}x"),
    ]


def enqueue_bulk(bench: Bench, n: int) -> Figure:
    reset(bench.dsn)
    items = [{"identifier": "demo", "action": "noop", "data": {"n": i}} for i in range(n)]
    with Client(bench.dsn) as client:
        client.create_many(items[:100])  # warm-up: pool and types
        start = time.perf_counter()
        for lo in range(0, n, BATCH):
            client.create_many(items[lo : lo + BATCH])
        speed = n / (time.perf_counter() - start)
    say(f"[2] bulk: create_many {speed:,.0f}/s")
    return goal(f"enqueue, bulk: create_many x{BATCH:,}", speed, "tasks/s", BULK_TARGET)


@contextlib.contextmanager
def daemon(bench: Bench, concurrency: int | None, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """A daemon process on the benchmark database, stopped with SIGTERM on exit."""
    log_path = bench.log_dir / f"daemon-{name}.log"
    cmd = list(bench.daemon_cmd)
    if concurrency is not None:
        cmd += ["--concurrency", str(concurrency)] if cmd[-1] == "daemon" else [str(concurrency)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=bench.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM):
            tail = log_path.read_text(errors="replace")[-2000:]
            say(f"  daemon ({name}) exited with {proc.returncode}; its log ends:\n{tail}")


def drain_once(bench: Bench, n: int, concurrency: int | None) -> float | None:
    """Drain ``n`` pre-inserted no-op tasks with one daemon; tasks/s from the first claim to the
    last completion (database clock), or None if the run or its exactly-once check failed."""
    reset(bench.dsn)
    with Client(bench.dsn) as client:
        for lo in range(0, n, BATCH):
            client.create_many([{"identifier": "demo", "action": "noop"}] * min(BATCH, n - lo))
    with psycopg.connect(bench.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE s_tasks")  # the same starting state for every run
        deadline = time.monotonic() + max(120.0, n / 100)
        spawned = time.perf_counter()
        with daemon(bench, concurrency, f"drain-{concurrency or 'default'}") as proc:
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
                if count(conn, "SELECT count(*) FROM s_tasks WHERE status IN (80, 100)") >= n:
                    break
            wall = time.perf_counter() - spawned
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 80 AND attempts = 1),"
            " count(*) FILTER (WHERE status = 100), count(*),"
            " extract(epoch FROM max(finished_at) - min(started_at))::float8,"
            " count(DISTINCT started_at), count(DISTINCT finished_at),"
            " (SELECT count(*) FROM s_task_logs) FROM s_tasks"
        ).fetchone()
    assert row is not None
    once, failed, total, span, claims, flushes, logs = row
    ok = once == n and failed == 0 and total == n
    bench.exactly_once_ok &= ok
    check = "OK" if ok else f"FAILED ({once} completed once, {failed} failed, {total} rows)"
    label = concurrency or f"{bench.default_concurrency} (default)"
    speed = f"{n / span:,.0f}/s in {span:.2f}s" if span else "n/a"
    avg_claim, avg_flush = n / max(claims, 1), n / max(flushes, 1)
    say(f"[3] drain, concurrency {label}: {speed}, first claim → last completion")
    say(f"    ({wall:.2f}s from process spawn); {claims:,} claim transactions of {avg_claim:.1f}")
    say(
        f"    tasks on average, {flushes:,} completion flushes of {avg_flush:.1f}; {logs} log rows;"
    )
    say(f"    exactly-once (all completed, attempts = 1, none failed): {check}")
    return n / span if ok and span else None


def drain(bench: Bench, n: int, candidates: list[int]) -> list[Figure]:
    default = drain_once(bench, n, None)
    speeds = {c: drain_once(bench, n, c) for c in candidates}
    best = max(((s, c) for c, s in speeds.items() if s is not None), default=(None, "-"))
    name = f"drain {n:,} no-ops, 1 daemon, concurrency {bench.default_concurrency} (default)"
    tried = "/".join(map(str, candidates))
    return [
        goal(name, default, "tasks/s", DRAIN_TARGET),
        goal(f"drain, best of concurrency {tried}: {best[1]}", best[0], "tasks/s", DRAIN_TARGET),
    ]


def wake_latency(bench: Bench, n: int) -> list[Figure]:
    """An idle daemon; ``n`` single-row INSERTs ~20 ms apart; started_at - created_at."""
    reset(bench.dsn)
    psql = find_psql()
    inserted: list[tuple[int, float]] = []  # id, clock_timestamp() at the end of the INSERT
    with psycopg.connect(bench.dsn, autocommit=True) as conn, daemon(bench, None, "wake") as proc:
        for _ in range(300):  # wait for its LISTEN connection, then let start-up settle
            if count(conn, LISTENERS) or proc.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        cmd = [psql or "", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", bench.dsn]
        for _ in range(n):
            if psql:
                run = subprocess.run([*cmd, "-c", WAKE_INSERT], capture_output=True, check=True)
                out = run.stdout.decode().split()[0].split("|")
                inserted.append((int(out[0]), float(out[1])))
            else:
                got = conn.execute(WAKE_INSERT).fetchone()
                inserted.append((int(got[0]), float(got[1])) if got else (0, 0.0))
            time.sleep(0.02)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if count(conn, "SELECT count(*) FROM s_tasks WHERE started_at IS NOT NULL") >= n:
                break
            time.sleep(0.05)
        rows = conn.execute(
            "SELECT id, extract(epoch FROM started_at)::float8,"
            " extract(epoch FROM started_at - created_at)::float8 * 1000 FROM s_tasks"
            " WHERE started_at IS NOT NULL"
        ).fetchall()
    started = {r[0]: (r[1], r[2]) for r in rows}
    src = "pgserver's psql" if psql and "pgserver" in psql else psql
    how = f"{src}, one process per INSERT" if psql else "psycopg, autocommit"
    say(f"[4] wake: {len(started)}/{n} tasks started; INSERTs by {how}")
    if len(started) < max(n, 2):
        return [Figure("wake latency", f"FAILED: {len(started)} of {n} started", "", False)]
    total = pct([ms for _, ms in started.values()])
    after = pct([(started[i][0] - end) * 1000 for i, end in inserted])
    return [
        goal("wake latency p50 (created_at → started_at)", total[0], "ms", WAKE_P50_TARGET),
        goal("wake latency p99", total[2], "ms", WAKE_P99_TARGET),
        Figure("wake latency p95 / max", f"{total[1]:.1f} / {total[3]:.1f} ms"),
        Figure("  after the INSERT ran (p50 / p99)", f"{after[0]:.1f} / {after[2]:.1f} ms"),
    ]


def pct(values: list[float]) -> tuple[float, float, float, float]:
    """p50, p95, p99, max."""
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98], max(values)


def goal(name: str, value: float | None, unit: str, target: float) -> Figure:
    """A figure with a target: at least ``target`` tasks/s, or at most ``target`` ms."""
    higher = unit == "tasks/s"
    limit = f"{'>=' if higher else '<='} {target:,.0f} {unit}"
    if value is None:
        return Figure(name, "FAILED", limit, False)
    met = value >= target if higher else value <= target
    return Figure(name, f"{value:,.0f} {unit}" if higher else f"{value:.1f} {unit}", limit, met)


def print_table(figures: list[Figure]) -> None:
    w, vw = max(len(f.name) for f in figures), max(len(f.value) for f in figures)
    print(f"\n{'figure':<{w}}  {'result':>{vw}}  {'target':<17}  verdict\n{'-' * (w + vw + 35)}")
    for f in figures:
        verdict = "" if f.met is None else "MET" if f.met else "NOT MET"
        print(f"{f.name:<{w}}  {f.value:>{vw}}  {f.target:<17}  {verdict}")
    print(f"\n1-minute load average at the end: {os.getloadavg()[0]:.2f}")
    print(NOTES)


if __name__ == "__main__":
    sys.exit(main())
