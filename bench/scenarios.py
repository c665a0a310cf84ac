"""The scenarios every system runs the same way: drain and wake latency.

A ``System`` (pgstask, procrastinate, PgQueuer) says how to fill its queue, which worker process
to start with which setting, and how to read its own tables; the procedures here are shared, so
each system is started, watched, timed and checked in exactly the same way.

- **Drain**: ``n`` no-op tasks inserted first (through the system's own bulk API), then
  ``VACUUM ANALYZE``, then the worker process(es) started. The rate is completed tasks /
  (all-done - first start), on the database clock: the first start is what the system records
  in its own tables when it claims a task; all-done is ``clock_timestamp()`` of the first poll
  (every 20 ms, one connection) that counts every task in a final state, i.e. after the last
  completion committed. (Timestamps written with a completion are ``now()``, the start of the
  completing transaction, which can be much earlier than its commit; they are printed too.)
  Start-up of the process is excluded. A drain still running after ``cap`` seconds is stopped
  gracefully and rated on what had completed by then; every drain is checked for exactly-once
  (each task ran once, none lost). A drain of the limits scenario also reads, in the same poll,
  how many tasks are running at that moment, in all and of the busiest key (``sample``). The
  tasks are ``action`` tasks (``ACTIONS``): the no-op of the sync scenarios, or the async no-op
  or 50 ms sleep of the ``async`` scenario; a worker that reports the ``[start, end]`` of its
  actions (``intervals``, the sleep) gives how many ran at once and their own span.
- **Wake latency**: an idle worker; ``n`` single-task inserts by plain SQL on one connection, one
  transaction each, ~20 ms apart; the inserter notes ``time.time()`` right after COMMIT returns,
  the action notes ``time.time()`` as the first thing it does (in a file), and the latency is the
  difference (same machine clock).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString, Protocol

import procs
import psycopg
from server import Watch, vacuum

WAKE_INTERVAL = 0.02  # seconds between two wake inserts
# What a drain's tasks do: "noop", pgstask's ``def`` no-op (the peers' no-ops are async already);
# "async-noop", an ``async def`` no-op; "async-sleep", an ``async def`` that awaits
# ``asyncio.sleep(0.05)``. Each system maps them onto its own tasks.
ACTIONS = ("noop", "async-noop", "async-sleep")


@dataclass(frozen=True, slots=True)
class Setting:
    """A worker setting to try: its label in the table (``c=10``), its command-line options and,
    for pgstask, the worker settings written to ``s_workers`` before its daemons start
    (``limits``: the flow-control settings of docs/limits.md; a peer takes its limits as
    command-line options) and the environment variables that differ from the harness's own
    (``env``: ``PGSTASK_WORKERS``, ``PGSTASK_ASYNC_CONCURRENCY`` for the async drains)."""

    label: str
    args: tuple[str, ...] = ()
    limits: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Check:
    ok: bool
    completed: int
    text: str


class System(Protocol):
    name: str
    log_dir: Path
    # Count of the tasks not yet in a final state. Polled every 20 ms during a drain, so it reads
    # only the unfinished tasks (a count of the finished ones grows, and takes CPU from the
    # system being measured, as the drain goes on).
    left_sql: LiteralString
    times_sql: LiteralString  # epochs of the first start and the last completion it recorded
    # Tasks running now, in all and of the key with the most (a concurrency key, procrastinate's
    # lock; 0 without keys): two integers, read with left_sql in the polls of a sampled drain.
    running_sql: LiteralString

    wake_sql: LiteralString  # one wake task, with %(seq)s

    def reset(self) -> str: ...  # an empty queue; returns the database's DSN

    # keys: the tasks of a key are enqueued together, in order: task i gets key i * keys // n.
    # action: one of ACTIONS.
    def fill(self, n: int, *, keys: int = 0, action: str = "noop") -> None: ...

    def worker(
        self, setting: Setting, wake_file: Path | None
    ) -> tuple[list[str], dict[str, str]]: ...

    def check(self, n: int, invocations: int, distinct: int, finished: bool) -> Check: ...


@dataclass(slots=True)
class Drain:
    setting: Setting
    processes: int
    rate: float | None  # completed / span; None when the check failed
    completed: int  # by the last poll
    span: float | None  # first start -> all done (or the last poll of a capped drain)
    recorded: float | None  # first start -> the last completion's own timestamp
    wall: float  # process spawn -> all done
    peak_rss_kb: int | None  # the largest VmHWM of the worker processes, read before stopping
    check: Check
    problems: list[str] = field(default_factory=list)
    most_running: int | None = None  # sampled drains: the most tasks running in one poll
    most_of_key: int | None = None  # ... and the most of one key
    # Workers that report their actions' [start, end] (the async sleep): the most that ran at
    # once, and the first start -> the last end, on the machine clock.
    at_once: int | None = None
    action_span: float | None = None

    def line(self, system: str, n: int) -> str:
        procs_text = f", {self.processes} processes" if self.processes > 1 else ""
        speed = f"{self.rate:,.0f}/s" if self.rate else "n/a"
        span = f"{self.span:.2f}s" if self.span else "-"
        recorded = f"{self.recorded:.2f}s" if self.recorded else "-"
        rss = f", peak RSS {self.peak_rss_kb / 1024:.1f} MB" if self.peak_rss_kb else ""
        done = "" if self.completed >= n else f" (capped: {self.completed:,} of {n:,})"
        seen = ""
        if self.most_running is not None:
            seen = f"; polls saw at most {self.most_running} running, {self.most_of_key} of a key"
        if self.at_once is not None and self.action_span is not None:
            seen += (
                f"; at most {self.at_once:,} ran at once, actions' own span {self.action_span:.3f}s"
            )
        return (
            f"    {system} drain {self.setting.label}{procs_text}: {speed}{done}; span {span}"
            f" (its own timestamps: {recorded}), wall {self.wall:.1f}s{rss}{seen}\n"
            f"      exactly-once: {self.check.text}"
        )


def drain(
    system: System,
    n: int,
    setting: Setting,
    *,
    cap: float,
    processes: int = 1,
    keys: int = 0,
    sample: bool = False,
    action: str = "noop",
    step: float = 0.02,
) -> Drain:
    """``n`` tasks of ``action`` (over ``keys`` keys) drained by ``processes`` worker
    processes, polled every ``step`` seconds; with ``sample``, each poll also reads how many
    tasks run at that moment (``running_sql``)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown drain action {action!r}; known: {', '.join(ACTIONS)}")
    dsn = system.reset()
    system.fill(n, keys=keys, action=action)
    vacuum(dsn)
    cmd, env = system.worker(setting, None)
    kind = "drain" if action == "noop" else action
    name = f"{system.name}-{kind}-{setting.label.split()[0]}-x{processes}".replace("=", "")
    seen = (0, 0.0)  # count of finished tasks, database clock at that poll
    most = (0, 0)  # sampled: the most tasks running in one poll, in all and of one key

    with Watch(dsn) as watch:

        def all_done() -> bool:
            nonlocal seen, most
            if sample:
                left, at, running, of_key = watch.sample(system.left_sql, system.running_sql)
                most = (max(most[0], running), max(most[1], of_key))
            else:
                left, at = watch.count_at(system.left_sql)
            seen = (n - left, at)
            return left == 0

        with procs.running([cmd] * processes, env, system.log_dir, name) as running:
            start = time.perf_counter()
            finished = procs.wait_for(all_done, running, cap, step=step)
            wall = time.perf_counter() - start
            peaks = [p.status_kb("VmHWM") or 0 for p in running]
        first, last = watch.row(system.times_sql)
    reports = [p.report or {} for p in running]
    invocations = sum(int(r.get("invocations", 0)) for r in reports)
    distinct = sum(int(r.get("distinct", 0)) for r in reports)
    check = system.check(n, invocations, distinct, finished)
    problems = [f"{p.name}: {text}" for p in running for text in p.problems]
    if any(not r for r in reports):
        check = Check(False, check.completed, f"{check.text}; a worker sent no report")
    span = seen[1] - first if first is not None and seen[0] else None
    recorded = last - first if first is not None and last is not None else None
    rate = seen[0] / span if check.ok and span else None
    result = Drain(
        setting, processes, rate, seen[0], span, recorded, wall, max(peaks), check, problems
    )
    if sample:
        result.most_running, result.most_of_key = most
    intervals = [(float(a), float(b)) for r in reports for a, b in r.get("intervals", [])]
    if intervals:
        result.at_once = most_at_once(intervals)
        result.action_span = max(b for _, b in intervals) - min(a for a, _ in intervals)
    return result


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most ``[start, end]`` intervals that overlap at one moment (an end at the moment of
    another's start does not overlap it)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    most = now = 0
    for _, change in events:  # at equal times the end (-1) sorts first
        now += change
        most = max(most, now)
    return most


@dataclass(slots=True)
class Wake:
    latencies_ms: list[float]
    sent: int
    problems: list[str] = field(default_factory=list)


def wake(system: System, n: int, setting: Setting) -> Wake:
    dsn = system.reset()
    wake_file = system.log_dir / f"wake-{system.name}.txt"
    wake_file.unlink(missing_ok=True)
    wake_file.touch()
    commits: dict[int, float] = {}
    cmd, env = system.worker(setting, wake_file)
    with (
        procs.running([cmd], env, system.log_dir, f"{system.name}-wake") as running,
        psycopg.connect(dsn) as conn,
    ):
        # A first task proves the worker is up; then let its start-up settle.
        conn.execute(system.wake_sql, {"seq": -1})
        conn.commit()
        procs.wait_for(lambda: -1 in started_at(wake_file), running, 120)
        time.sleep(1.0)
        for seq in range(n):
            conn.execute(system.wake_sql, {"seq": seq})
            conn.commit()
            commits[seq] = time.time()
            time.sleep(WAKE_INTERVAL)
        procs.wait_for(lambda: len(started_at(wake_file)) > n, running, 30)
    starts = started_at(wake_file)
    latencies = [(starts[s] - t) * 1000 for s, t in commits.items() if s in starts]
    return Wake(latencies, n, [f"{p.name}: {text}" for p in running for text in p.problems])


def started_at(path: Path) -> dict[int, float]:
    """``seq -> time.time()`` as the wake actions wrote them."""
    found: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                found[int(parts[0])] = float(parts[1])
    return found
