"""Scenarios only pgstask runs: the cost of progress reports, several daemons, the claim query
on large tables, a daemon's memory over many tasks, and what the database itself does with
pgstask's table and statements (the ceiling)."""

from __future__ import annotations

import itertools
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procs
import psycopg
import scenarios
from pgstask_side import BATCH, PgstaskSystem
from psycopg import sql
from server import Watch, vacuum

from pgstask import Client, queries
from pgstask.progress import read_snapshot
from pgstask.sql import query


@dataclass(slots=True)
class Progress:
    added: float | None  # seconds the push_progress calls added to the loop (best of the runs)
    loop: list[float] = field(default_factory=list)
    with_progress: list[float] = field(default_factory=list)
    exact: bool = True
    problems: list[str] = field(default_factory=list)


def progress_cost(system: PgstaskSystem, n: int, repeats: int = 2) -> Progress:
    """A daemon runs, one after the other, ``repeats`` times: the loop over ``n`` items alone,
    then with ``push_progress`` per item; each action times its own loop. Each progress task's
    final state must be exact: status 80 and progress 100 in s_tasks, no live progress row left,
    and the snapshot ``{storage}/{id}.json`` with processed = total = n, 100 %, completed."""
    dsn = system.reset()
    result = Progress(None)
    cmd, env = system.worker(scenarios.Setting("default"), None)
    with (
        procs.running([cmd], env, system.log_dir, "pgstask-progress") as running,
        Client(dsn) as client,
        Watch(dsn) as watch,
    ):
        for _ in range(repeats):
            for action in ("loop", "progress"):
                task = client.create("bench", action, {"n": n})
                status = sql.SQL("SELECT status FROM s_tasks WHERE id = {}").format(task.id)

                def ended(query: sql.Composable = status) -> bool:
                    return watch.value(query) in (80, 90, 100)

                procs.wait_for(ended, running, 600)
                got = finished_state(system, task.id, n if action == "progress" else None)
                if got["problem"]:
                    result.exact = False
                    result.problems.append(f"task {task.id} ({action}): {got['problem']}")
                if got["seconds"] is not None:
                    (result.loop if action == "loop" else result.with_progress).append(
                        got["seconds"]
                    )
    result.problems += [f"{p.name}: {text}" for p in running for text in p.problems]
    if result.loop and result.with_progress:
        result.added = min(result.with_progress) - min(result.loop)
    return result


def finished_state(system: PgstaskSystem, task_id: int, n: int | None) -> dict[str, Any]:
    with psycopg.connect(system.dsn) as conn:
        row = conn.execute(
            "SELECT status, progress, result,"
            " (SELECT count(*) FROM s_task_progress WHERE task_id = t.id) FROM s_tasks t"
            " WHERE id = %s",
            (task_id,),
        ).fetchone()
    assert row is not None
    status, progress, res, live_rows = row
    seconds = float(res["seconds"]) if isinstance(res, dict) and "seconds" in res else None
    problems = []
    if status != 80 or progress != 100:
        problems.append(f"s_tasks status {status}, progress {progress} (want 80, 100)")
    if n is not None:
        want = {"processed": n, "total": n, "progress": 100, "status_code": 80}
        snap: dict[str, Any] = {}
        deadline = time.monotonic() + 5  # the final snapshot may land just after the row
        while time.monotonic() < deadline:
            snap = read_snapshot(system.storage, task_id) or {}
            if all(snap.get(k) == v for k, v in want.items()):
                break
            time.sleep(0.05)
        wrong = {k: snap.get(k) for k, v in want.items() if snap.get(k) != v}
        if wrong:
            problems.append(f"snapshot {wrong} (want {want})")
        if live_rows:
            problems.append("its s_task_progress row is still there")
    return {"seconds": seconds, "problem": "; ".join(problems)}


def scale(system: PgstaskSystem, n: int, counts: list[int], cap: float) -> list[scenarios.Drain]:
    """The drain of ``n`` no-ops with 1, 2, 4, … daemons at default settings."""
    default = scenarios.Setting(f"c={system.default_concurrency} (default)")
    return [scenarios.drain(system, n, default, cap=cap, processes=k) for k in counts]


@dataclass(slots=True)
class Claim:
    label: str
    p50: float
    p99: float
    claimed: int


def claim_latency(system: PgstaskSystem, label: str, pending: int, future: int) -> Claim:
    """``task_claim`` with limit 10, in a transaction rolled back, 300 times (20 more first to
    warm up); the table built server-side with INSERT … SELECT generate_series, then VACUUM
    ANALYZE. ``future`` tasks start in a day; ``pending`` tasks are due now."""
    dsn = system.reset()
    with psycopg.connect(dsn, autocommit=True) as conn:
        _register_bench_worker(conn)
        conn.execute("SET pgstask.notify = off")
        conn.execute(
            "INSERT INTO s_tasks (identifier, action, start_at) SELECT 'bench', 'noop',"
            " now() + interval '1 day' + g * interval '1 ms' FROM generate_series(1, %s) g",
            (future,),
        )
        conn.execute(
            "INSERT INTO s_tasks (identifier, action)"
            " SELECT 'bench', 'noop' FROM generate_series(1, %s)",
            (pending,),
        )
        conn.execute("VACUUM ANALYZE s_tasks")
        times: list[float] = []
        counts: list[int] = []
        for i in range(320):
            with conn.transaction(force_rollback=True):
                start = time.perf_counter()
                got = queries.task_claim(
                    conn, daemon_id=uuid.uuid4(), identifiers=["bench"], limit=10
                )
                elapsed = (time.perf_counter() - start) * 1000
            if i >= 20:
                times.append(elapsed)
                counts.append(len(got))
    q = statistics.quantiles(times, n=100, method="inclusive")
    return Claim(label, q[49], q[98], min(counts))


@dataclass(slots=True)
class Memory:
    after_small_kb: int | None
    after_large_kb: int | None
    peak_kb: int | None
    check: scenarios.Check
    problems: list[str] = field(default_factory=list)

    def readings(self) -> tuple[int | None, int | None, int | None]:
        """kB: RSS after the small count, after the large count, peak."""
        return self.after_small_kb, self.after_large_kb, self.peak_kb


def memory_growth(system: PgstaskSystem, small: int, large: int) -> Memory:
    """One daemon: its RSS after ``small`` no-op tasks, then after ``large`` in all (the rest
    enqueued while it runs); each reading 1 s after the last task completed."""
    dsn = system.reset()
    done = "SELECT count(*) FROM s_tasks WHERE status IN (80, 90, 100)"
    cmd, env = system.worker(scenarios.Setting("default"), None)
    with (
        procs.running([cmd], env, system.log_dir, "pgstask-memory") as running,
        Watch(dsn) as watch,
    ):
        daemon = running[0]
        system.fill(small)
        procs.wait_for(lambda: watch.value(done) >= small, running, 300)
        time.sleep(1.0)
        after_small = daemon.status_kb("VmRSS")
        with Client(dsn) as client:
            for lo in range(small, large, BATCH):
                size = min(BATCH, large - lo)
                client.create_many([{"identifier": "bench", "action": "noop"}] * size)
        finished = procs.wait_for(lambda: watch.value(done) >= large, running, 600)
        time.sleep(1.0)
        after_large, peak = daemon.status_kb("VmRSS"), daemon.status_kb("VmHWM")
    report = daemon.report or {}
    check = system.check(
        large, int(report.get("invocations", 0)), int(report.get("distinct", 0)), finished
    )
    problems = [f"{daemon.name}: {text}" for text in daemon.problems]
    return Memory(after_small, after_large, peak, check, problems)


@dataclass(slots=True)
class Ceiling:
    """What PostgreSQL itself does with pgstask's table and statements, with no client work per
    task: the bound that no change on the client side can pass."""

    copy_rate: float  # rows/s: COPY of ready-made rows into s_tasks
    drain_rates: dict[int, float]  # batch size -> tasks/s: claim + completion, back to back
    server_us: dict[int, float | None]  # batch size -> backend CPU per task (µs), if readable
    problems: list[str] = field(default_factory=list)


# The claim as the daemon sends it, returning only what the completion needs.
_CLAIM = query("task_claim").replace("RETURNING t.*;", "RETURNING t.id, t.attempts;")


def ceiling(system: PgstaskSystem, bulk: int, drain: int, batches: tuple[int, ...]) -> Ceiling:
    """Bulk: ``bulk`` rows through ``COPY`` in batches of BATCH, each value already encoded (no
    validation, no ``Task`` objects). Drain: ``drain`` tasks claimed with the daemon's claim
    statement and completed with its completion statement, one after the other on one
    connection, ``batch`` at a time; the backend's CPU time is read from ``/proc`` when the
    server runs on this machine."""
    assert "RETURNING t.id, t.attempts;" in _CLAIM, "task_claim no longer ends as expected"
    dsn = system.reset()
    metas = [f'{{"n": {i}}}' for i in range(bulk)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        for lo in range(0, bulk, BATCH):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy("COPY s_tasks (identifier, action, meta, message) FROM STDIN") as copy,
            ):
                for meta in metas[lo : lo + BATCH]:
                    copy.write_row(("bench", "noop", meta, "Task queued"))
        copy_rate = bulk / (time.perf_counter() - start)
    result = Ceiling(copy_rate, {}, {})
    for batch in batches:
        dsn = system.reset()
        system.fill(drain)
        vacuum(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            _register_bench_worker(conn)
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()
            cpu_before = _cpu_seconds(backend[0] if backend else None)
            daemon_id, done = uuid.uuid4(), 0
            params = {"daemon_id": daemon_id, "identifiers": ["bench"], "limit": batch}
            start = time.perf_counter()
            while rows := conn.execute(_CLAIM, params).fetchall():
                outcomes = [(task_id, attempts, None, None, None) for task_id, attempts in rows]
                written = queries.task_complete_many(conn, daemon_id=daemon_id, outcomes=outcomes)
                done += len(written)
            elapsed = time.perf_counter() - start
            cpu_after = _cpu_seconds(backend[0] if backend else None)
        if done != drain:
            result.problems.append(f"batch {batch}: {done:,} of {drain:,} tasks completed")
        result.drain_rates[batch] = done / elapsed
        used = cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
        result.server_us[batch] = used / done * 1e6 if used is not None and done else None
    return result


def _register_bench_worker(conn: psycopg.Connection[Any]) -> None:
    """The ``bench`` worker, active: what a daemon's registration makes, without a daemon."""
    conn.execute(
        "INSERT INTO s_workers (identifier, class) VALUES ('bench', 'bench_worker:BenchWorker')"
        " ON CONFLICT (identifier) DO UPDATE SET active = true"
    )


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a local process, or None (elsewhere, or not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Results:
    wait_ms: list[float] = field(default_factory=list)  # completion -> wait() returned
    hop_ms: list[float] = field(default_factory=list)  # a parent's end -> its child's start
    callback_ms: float | None = None  # the last member's end -> the group callback's start
    problems: list[str] = field(default_factory=list)


def results(system: PgstaskSystem, waits: int, chain: int, group: int) -> Results:
    """Workflows and waiting, one daemon with the no-op worker:
    - ``waits`` times one after the other: create a task, ``Client.wait`` for it; the latency is
      from its completion (``finished_at``, the database clock, set in the one-statement
      transaction that completes it) to ``wait`` returning (``time.time()``; same host);
    - a chain of ``chain`` tasks: each hop from a parent's ``finished_at`` to its child's
      ``started_at`` (both the database clock): the release, the wake-up and the claim;
    - a group of ``group`` members: from the last member's ``finished_at`` to the callback's
      ``started_at``."""
    from pgstask.workflow import Workflow

    dsn = system.reset()
    got = Results()
    cmd, env = system.worker(scenarios.Setting("default"), None)
    with (
        procs.running([cmd], env, system.log_dir, "pgstask-results") as running,
        Client(dsn) as client,
    ):
        client.wait(client.create("bench", "noop"), timeout=120)  # the daemon is up
        for _ in range(waits):
            task = client.create("bench", "noop")
            done = client.wait(task, timeout=60)
            returned = time.time()
            assert done.finished_at is not None
            got.wait_ms.append((returned - done.finished_at.timestamp()) * 1000)
        flow = Workflow()
        steps = flow.chain(*({"identifier": "bench", "action": "noop"} for _ in range(chain)))
        tasks = client.create_workflow(flow)
        ended = client.wait_many(tasks, timeout=600)
        for parent, child in itertools.pairwise(ended):
            if parent.finished_at is None or child.started_at is None:
                got.problems.append(f"chain: task {child.id} did not run")
                continue
            got.hop_ms.append((child.started_at - parent.finished_at).total_seconds() * 1000)
        assert len(steps) == chain
        flow = Workflow()
        _, callback = flow.group(
            ({"identifier": "bench", "action": "noop"} for _ in range(group)),
            {"identifier": "bench", "action": "noop"},
        )
        created = client.create_workflow(flow)
        final = client.wait(created[callback.index], timeout=600)
        members = client.wait_many(created[: callback.index], timeout=60)
        last = max(m.finished_at for m in members if m.finished_at is not None)
        if final.started_at is not None:
            got.callback_ms = (final.started_at - last).total_seconds() * 1000
    got.problems += [f"{p.name}: {text}" for p in running for text in p.problems]
    return got
