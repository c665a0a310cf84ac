"""pgstask benchmark: enqueue rates, drain rate of one daemon, wake-up latency.

    python bench/run.py [--dsn DSN] [--drain N] [--quick]

Without ``--dsn`` (or PGSTASK_BENCH_DSN / PGSTASK_DSN) a throwaway pgserver cluster is started
in a temporary directory and stopped at the end. The script only ever touches its own database,
``pgstask_bench``, which it drops and recreates. Exit code 0 whatever the figures, 1 if the
exactly-once check of a drain fails. See bench/README.md for what each figure means.
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
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

import pgstask
from pgstask import Client, Settings, embedded, migrate

BENCH_DB = "pgstask_bench"
BULK_BATCH = 10_000
DRAIN_TARGET = 3_000.0  # tasks/s
BULK_TARGET = 20_000.0  # tasks/s
WAKE_P50_TARGET, WAKE_P99_TARGET = 10.0, 50.0  # ms
PLAIN_INSERT = (
    "INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts,"
    " started_by, dedupe_key, message) VALUES (%s, %s, %s, %s, now(), %s, %s, %s, %s)"
    " RETURNING id"
)
WAKE_INSERT = "INSERT INTO s_tasks (identifier, action) VALUES ('demo', 'noop')"

# The daemon process used when the `pgstask daemon` command is not available.
BOOTSTRAP = """
import logging, signal, sys
from pgstask.runtime.daemon import Daemon
from pgstask.settings import Settings
from pgstask.workers.examples import DemoWorker
logging.basicConfig(level=logging.WARNING)
settings = Settings.from_env()
concurrency = int(sys.argv[1]) if len(sys.argv) > 1 else None
daemon = Daemon(settings, dsn=settings.dsn, workers={"demo": DemoWorker}, concurrency=concurrency)
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: daemon.request_stop())
daemon.run()
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
    env: dict[str, str]  # environment of daemon processes
    log_dir: Path
    daemon_cmd: list[str]
    daemon_kind: str
    exactly_once_ok: bool = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn",
        help="server to use (default: PGSTASK_BENCH_DSN, PGSTASK_DSN, "
        "else a throwaway pgserver cluster)",
    )
    parser.add_argument("--drain", type=int, help="tasks per drain run (default 20000)")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    args = parser.parse_args(argv)
    quick: bool = args.quick
    sizes = {
        "single": 1_000 if quick else 5_000,
        "bulk": 20_000 if quick else 100_000,
        "drain": args.drain or (5_000 if quick else 20_000),
        "wake": 50 if quick else 200,
    }
    candidates = [32] if quick else [32, 64]
    server_dsn = args.dsn or os.environ.get("PGSTASK_BENCH_DSN") or os.environ.get("PGSTASK_DSN")
    tmp = Path(tempfile.mkdtemp(prefix="pgstask-bench-"))
    pgdata = tmp / "pgdata"
    try:
        if not server_dsn:
            print(f"starting a throwaway pgserver cluster in {pgdata} …", flush=True)
            server_dsn = embedded.start(pgdata)
        dsn = fresh_database(server_dsn)
        migrate.upgrade(dsn)
        env = {
            **os.environ,
            "PGSTASK_DSN": dsn,
            "PGSTASK_STORAGE": str(tmp / "storage"),
            "PGSTASK_DATA_DIR": str(pgdata),
        }
        daemon_cmd, daemon_kind = daemon_command()
        bench = Bench(dsn, env, tmp, daemon_cmd, daemon_kind)
        header(bench, server_dsn, sizes, candidates)
        figures = enqueue_single(bench, sizes["single"])
        figures.append(enqueue_bulk(bench, sizes["bulk"]))
        figures.extend(drain(bench, sizes["drain"], candidates))
        figures.extend(wake_latency(bench, sizes["wake"]))
        print_table(figures)
        if not bench.exactly_once_ok:
            print("\nEXACTLY-ONCE CHECK FAILED (see above)")
            return 1
        return 0
    finally:
        if (pgdata / "postmaster.pid").exists():
            embedded.stop(pgdata)
        shutil.rmtree(tmp, ignore_errors=True)


# --- setup -------------------------------------------------------------------------------------


def fresh_database(server_dsn: str) -> str:
    """Drop and recreate BENCH_DB on the server of ``server_dsn``; return its DSN."""
    admin_db = conninfo_to_dict(server_dsn).get("dbname")
    admin_dsn = make_conninfo(server_dsn, dbname="postgres") if admin_db == BENCH_DB else server_dsn
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return make_conninfo(server_dsn, dbname=BENCH_DB)


def daemon_command() -> tuple[list[str], str]:
    """`pgstask daemon` if that command works here, else a small in-script daemon process."""
    exe = shutil.which("pgstask", path=str(Path(sys.executable).parent)) or shutil.which("pgstask")
    if exe:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            probe = subprocess.run(
                [exe, "daemon", "--help"], capture_output=True, text=True, timeout=30
            )
            if probe.returncode == 0 and "--concurrency" in probe.stdout:
                return [exe, "daemon"], "`pgstask daemon` subprocess"
    return [sys.executable, "-c", BOOTSTRAP], "subprocess running Daemon(...).run() (no CLI yet)"


def find_psql() -> str | None:
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin" / "psql"
        if candidate.exists():
            return str(candidate)
    return shutil.which("psql")


def header(bench: Bench, server_dsn: str, sizes: dict[str, int], candidates: list[int]) -> None:
    with psycopg.connect(bench.dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    info = {k: ("***" if k == "password" else v) for k, v in conninfo_to_dict(server_dsn).items()}
    settings = Settings.from_env(bench.env)
    print("pgstask benchmark")
    print(f"  machine     {os.cpu_count()} cores, {platform.platform()}")
    print(
        f"  versions    Python {platform.python_version()}, PostgreSQL {row[0] if row else '?'}, "
        f"pgstask {pgstask.__version__}, psycopg {psycopg.__version__}"
    )
    print(f"  server      {' '.join(f'{k}={v}' for k, v in info.items())} (database {BENCH_DB})")
    print(
        f"  sizes       single {sizes['single']:,}, bulk {sizes['bulk']:,} "
        f"(batches of {BULK_BATCH:,}), drain {sizes['drain']:,}, wake {sizes['wake']}"
    )
    print(
        f"  daemon      {bench.daemon_kind}; default concurrency {settings.concurrency}, "
        f"tried {', '.join(map(str, candidates))}; poll_interval {settings.poll_interval}s"
    )
    print(flush=True)


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE s_tasks, s_task_logs, s_task_progress")


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} tasks/s"


# --- 1 and 2: enqueue ----------------------------------------------------------------------


def enqueue_single(bench: Bench, n: int) -> list[Figure]:
    """Client.create per task vs a plain psycopg INSERT + commit per row."""
    reset(bench.dsn)
    with psycopg.connect(bench.dsn) as conn:
        for i in range(-200, n):  # the first 200 warm up the connection and prepared statements
            if i == 0:
                start = time.perf_counter()
            conn.execute(
                PLAIN_INSERT,
                ("demo", "noop", Jsonb({"n": i}), "normal", 3, None, None, "Task queued"),
            )
            conn.commit()
        plain = time.perf_counter() - start
    reset(bench.dsn)
    with Client(bench.dsn) as client:
        for i in range(-200, n):
            if i == 0:
                start = time.perf_counter()
            client.create("demo", "noop", {"n": i})
        ours = time.perf_counter() - start
    print(
        f"[1] single: Client.create {n / ours:,.0f}/s, plain INSERT {n / plain:,.0f}/s", flush=True
    )
    return [
        Figure("enqueue, single: Client.create", rate(n, ours)),
        Figure("enqueue, single: plain psycopg INSERT+commit", rate(n, plain)),
        Figure("  pgstask / plain", f"{plain / ours:.2f}x"),
    ]


def enqueue_bulk(bench: Bench, n: int) -> Figure:
    reset(bench.dsn)
    batches = [
        [
            {"identifier": "demo", "action": "noop", "data": {"n": i}}
            for i in range(lo, min(lo + BULK_BATCH, n))
        ]
        for lo in range(0, n, BULK_BATCH)
    ]
    with Client(bench.dsn) as client:
        client.create_many(batches[0][:100])  # warm-up: pool and types
        start = time.perf_counter()
        for batch in batches:
            client.create_many(batch)
        took = time.perf_counter() - start
    print(f"[2] bulk: {n / took:,.0f}/s", flush=True)
    return Figure(
        f"enqueue, bulk: create_many x{BULK_BATCH:,}",
        rate(n, took),
        f">= {BULK_TARGET:,.0f}/s",
        n / took >= BULK_TARGET,
    )


# --- 3: drain ------------------------------------------------------------------------------


@contextlib.contextmanager
def daemon(bench: Bench, concurrency: int | None, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """A daemon process for the benchmark database; stopped with SIGTERM on exit."""
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
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM):
            tail = log_path.read_text(errors="replace")[-2000:]
            print(f"  daemon ({name}) exited with {proc.returncode}; log tail:\n{tail}")


def drain_once(bench: Bench, n: int, concurrency: int | None, name: str) -> float | None:
    """Drain ``n`` pre-inserted no-op tasks with one daemon; tasks/s from first claim to last
    completion (both on the database clock), or None if it did not finish."""
    reset(bench.dsn)
    with Client(bench.dsn) as client:
        for lo in range(0, n, BULK_BATCH):
            client.create_many([{"identifier": "demo", "action": "noop"}] * min(BULK_BATCH, n - lo))
    with psycopg.connect(bench.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE s_tasks")
        deadline = time.monotonic() + max(120.0, n / 100)
        spawned = time.perf_counter()
        with daemon(bench, concurrency, name) as proc:
            done = 0
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 80),"
                    " count(*) FILTER (WHERE status = 100) FROM s_tasks"
                ).fetchone()
                done, failed = row if row else (0, 0)
                if done + failed >= n:
                    break
            wall = time.perf_counter() - spawned
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 80 AND attempts = 1),"
            " count(*) FILTER (WHERE status = 100), count(*),"
            " extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM s_tasks"
        ).fetchone()
    assert row is not None
    once, failed, total, span = row
    ok = once == n and failed == 0 and total == n
    bench.exactly_once_ok &= ok
    verdict = "OK" if ok else f"FAILED: {once} completed once, {failed} failed, {total} rows"
    label = concurrency or f"default ({Settings.from_env(bench.env).concurrency})"
    speed = f"{n / span:,.0f}/s over {span:.2f}s" if span else "n/a"
    print(
        f"[3] drain, concurrency {label}: {speed} (first claim → last completion); "
        f"{wall:.2f}s from process spawn; exactly-once {verdict}",
        flush=True,
    )
    return n / span if ok and span else None


def drain(bench: Bench, n: int, candidates: list[int]) -> list[Figure]:
    target = f">= {DRAIN_TARGET:,.0f}/s"
    default = drain_once(bench, n, None, "default")
    best: tuple[float, int] | None = None
    for concurrency in candidates:
        speed = drain_once(bench, n, concurrency, f"c{concurrency}")
        if speed is not None and (best is None or speed > best[0]):
            best = (speed, concurrency)
    conc = Settings.from_env(bench.env).concurrency
    figures = [
        Figure(
            f"drain {n:,} no-ops, 1 daemon, concurrency {conc} (default)",
            f"{default:,.0f} tasks/s" if default else "FAILED",
            target,
            default is not None and default >= DRAIN_TARGET,
        )
    ]
    tried = "/".join(map(str, candidates))
    if best is None:
        figures.append(Figure(f"drain, best of concurrency {tried}", "FAILED", target, False))
    else:
        figures.append(
            Figure(
                f"drain, best of concurrency {tried}: {best[1]}",
                f"{best[0]:,.0f} tasks/s",
                target,
                best[0] >= DRAIN_TARGET,
            )
        )
    return figures


# --- 4: wake latency ---------------------------------------------------------------------


def wait_for_listener(conn: psycopg.Connection[Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'pgstask-listener'"
        ).fetchone()
        if row and row[0]:
            return True
        time.sleep(0.1)
    return False


def wake_latency(bench: Bench, n: int) -> list[Figure]:
    """An idle daemon; ``n`` single-row INSERTs ~20 ms apart; started_at - created_at."""
    reset(bench.dsn)
    psql = find_psql()
    with psycopg.connect(bench.dsn, autocommit=True) as conn, daemon(bench, None, "wake") as proc:
        listening = wait_for_listener(conn, 30.0)
        time.sleep(1.0)  # let the start-up poll and first heartbeat pass: the daemon is idle
        for _ in range(n):
            if psql:
                subprocess.run(
                    [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", bench.dsn, "-c", WAKE_INSERT],
                    check=True,
                    env=bench.env,
                )
            else:
                conn.execute(WAKE_INSERT)
            time.sleep(0.02)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            row = conn.execute("SELECT count(*) FROM s_tasks WHERE status = 80").fetchone()
            if row and row[0] >= n:
                break
            time.sleep(0.05)
        rows = conn.execute(
            "SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 FROM s_tasks"
            " WHERE started_at IS NOT NULL ORDER BY id"
        ).fetchall()
    ms = [r[0] for r in rows]
    how = f"psql ({psql})" if psql else "psycopg autocommit"
    print(
        f"[4] wake: {len(ms)}/{n} started; inserts by {how}; listener seen: {listening}", flush=True
    )
    if len(ms) < max(n, 2):
        return [Figure("wake latency", f"FAILED: {len(ms)} of {n} tasks started", "", False)]
    q = statistics.quantiles(ms, n=100, method="inclusive")
    p50, p95, p99 = q[49], q[94], q[98]
    return [
        Figure(
            "wake latency p50 (created_at → started_at)",
            f"{p50:.1f} ms",
            f"<= {WAKE_P50_TARGET:.0f} ms",
            p50 <= WAKE_P50_TARGET,
        ),
        Figure("wake latency p95", f"{p95:.1f} ms"),
        Figure(
            "wake latency p99",
            f"{p99:.1f} ms",
            f"<= {WAKE_P99_TARGET:.0f} ms",
            p99 <= WAKE_P99_TARGET,
        ),
        Figure("wake latency max", f"{max(ms):.1f} ms"),
    ]


# --- output --------------------------------------------------------------------------------


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    value_width = max(len(f.value) for f in figures)
    print()
    print(f"{'figure':<{width}}  {'result':>{value_width}}  {'target':<12}  verdict")
    print("-" * (width + value_width + 27))
    for f in figures:
        verdict = "" if f.met is None else ("MET" if f.met else "NOT MET")
        print(f"{f.name:<{width}}  {f.value:>{value_width}}  {f.target:<12}  {verdict}")
    print()
    print("Notes: drain rate = tasks / (last finished_at - first started_at), database clock;")
    print("wake latency = started_at - created_at, database clock. created_at is the inserting")
    print("transaction's start, so the insert's own commit is included; started_at is set at")
    print("claim, just before the action starts (it does not include running the action).")


if __name__ == "__main__":
    sys.exit(main())
