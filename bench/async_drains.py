"""The ``async`` scenario: ``async def`` actions drained by one worker process of each system.

Two drains per system, each through ``scenarios.drain``, so started, timed (database clock) and
checked for exactly-once as the sync drains are:

- **no-op**: N ``async def`` no-ops (the ``--drain`` size), inserted first, drained by one
  worker process that runs up to ``NOOP_SLOTS`` of them at once: pgstask one daemon of the
  async worker with its default loop slots (``PGSTASK_ASYNC_CONCURRENCY``, 100), procrastinate
  ``concurrency=100``, PgQueuer ``batch_size=100`` (it has no cap on the jobs it runs by
  default; a batch is what one dequeue fetches). The peers' no-ops are async in every scenario.
- **I/O-bound**: ``IO_TASKS`` actions that each await ``asyncio.sleep(SLEEP)``, all inserted
  before the worker starts, drained by one worker process able to run them all at once:
  pgstask ``PGSTASK_ASYNC_CONCURRENCY=1000``, procrastinate ``concurrency=1000``, PgQueuer
  ``batch_size=1000`` (no cap, so one dequeue can fetch them all). Ideal: every action starts
  at once and the drain takes ``SLEEP`` plus the claims and completions. Figures: the rate, the
  time to drain (first start, as the system records it, to the first poll that sees all done;
  polled every ``IO_STEP`` seconds, so known to that much), and, from the ``[start, end]`` that
  each action notes with ``time.time()`` in its worker process, the most that ran at once and
  their own span (first start to last end).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import scenarios
from peer_systems import PeerSystem
from pgstask_side import PgstaskSystem
from report import LABELS, Row

NOOP_SLOTS = 100  # tasks at once in the no-op drain (pgstask's default loop slots)
IO_TASKS = 1_000
IO_SLOTS = 1_000  # tasks at once in the I/O-bound drain: all of them
SLEEP = 0.05  # seconds each I/O-bound action awaits (the workers' own constant)
IO_STEP = 0.01  # seconds between the I/O-bound drain's polls
TARGET = "n/a"


def setting(system: scenarios.System, slots: int | None) -> scenarios.Setting:
    """One worker process of ``system`` running up to ``slots`` async actions at once (None:
    pgstask's default loop slots)."""
    if isinstance(system, PgstaskSystem):
        return system.async_setting(slots)
    size = str(slots or NOOP_SLOTS)
    if system.name == "procrastinate":
        return scenarios.Setting(f"c={size}", ("--concurrency", size))
    return scenarios.Setting(f"batch={size}", ("--batch-size", size))


def run_one(
    system: scenarios.System,
    action: str,
    n: int,
    slots: int | None,
    *,
    cap: float,
    step: float,
    say: Callable[[str], None],
) -> scenarios.Drain | None:
    """One drain of ``n`` ``action`` tasks; None (and a line saying why) when it broke."""
    chosen = setting(system, slots)
    label = LABELS[system.name]
    try:
        got = scenarios.drain(system, n, chosen, cap=cap, action=action, step=step)
    except (RuntimeError, OSError, ValueError, psycopg.Error) as exc:
        say(f"  {label} {action} drain {chosen.label} failed: {exc}")
        return None
    say(got.line(f"{label} {action}", n))
    for problem in got.problems:
        say(f"      {problem}")
    return got


def run(
    ours: PgstaskSystem,
    peers: dict[str, PeerSystem],
    n: int,
    *,
    cap: float,
    na: dict[str, str],
    say: Callable[[str], None],
) -> tuple[list[Row], list[str]]:
    """Both drains for every system, system by system: the table's rows and the failed
    exactly-once checks."""
    noop = Row(f"async drain {n:,} no-ops, 1 process", "tasks/s", notes=dict(na))
    io = Row(f"async I/O drain {IO_TASKS:,} x sleep {SLEEP} s, 1 process", "tasks/s")
    took = Row("  time to drain (first start -> all done)", "s")
    span = Row("  the actions' own span (first start -> last end)", "s")
    once = Row("  most actions running at once", "tasks")
    rows = [noop, io, took, span, once]
    for row in rows:
        row.notes, row.compare, row.target = dict(na), True, TARGET
    failures: list[str] = []
    systems: list[scenarios.System] = [ours, *peers.values()]
    for system in systems:
        name = system.name
        for action, row, size, slots, step in (
            ("async-noop", noop, n, None, 0.02),
            ("async-sleep", io, IO_TASKS, IO_SLOTS, IO_STEP),
        ):
            got = run_one(system, action, size, slots, cap=cap, step=step, say=say)
            # The I/O drain's rows below its rate follow it.
            below = [took, span, once] if row is io else []
            if got is None:
                for each in [row, *below]:
                    each.notes[name] = "n/a (error)"
                continue
            if not got.check.ok:
                failures.append(
                    f"{LABELS[name]} {action} drain {got.setting.label}: {got.check.text}"
                )
            row.values[name] = got.rate
            row.notes[name] = f"({got.setting.label.split()[0]})" if got.rate else "FAILED"
            if not got.rate:
                for each in below:
                    each.notes[name] = "FAILED"
            elif below:
                took.values[name], span.values[name] = got.span, got.action_span
                once.values[name] = got.at_once
    return rows, failures
