"""The async worker of the benchmark's ``async`` scenario (PGSTASK_WORKERS=bench_async_worker).

A worker of its own, ``bench_async``, not more actions of ``bench``: a worker with both ``def``
and ``async def`` actions takes, at a claim, only as many of its tasks as the smaller of the
free threads and the free loop slots (docs/workers.md, "Async actions"), and a daemon with an
async action starts an event loop; either would change the sync scenarios' figures. Only the
async drains' daemons load this module.

- ``noop`` does nothing but note its task's id.
- ``sleep`` awaits ``asyncio.sleep(SLEEP)`` and notes its task's id and the ``time.time()`` of
  its start and end, from which the harness reads how many ran at once.

When the daemon exits, one JSON line on stdout reports them (``invocations``, ``distinct``,
``intervals``: ``[start, end]`` of each ``sleep``), the same report the peers' workers give.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import sys
import time
from typing import Any

from pgstask import BaseWorker, Task

SLEEP = 0.05  # seconds each ``sleep`` action awaits

_invoked: list[int] = []
_intervals: list[tuple[float, float]] = []


class AsyncBenchWorker(BaseWorker):
    identifier = "bench_async"
    scope = "bench"
    title = "Benchmark (async)"
    description = "Async actions of bench/run.py: no-op, and an I/O wait of 50 ms."

    async def task_noop(self, task: Task, options: dict[str, Any]) -> None:
        _invoked.append(task.id)

    async def task_sleep(self, task: Task, options: dict[str, Any]) -> None:
        started = time.time()
        await asyncio.sleep(SLEEP)
        _intervals.append((started, time.time()))
        _invoked.append(task.id)


@atexit.register
def _report() -> None:
    report = {
        "invocations": len(_invoked),
        "distinct": len(set(_invoked)),
        "intervals": _intervals,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
