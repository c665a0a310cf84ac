"""The supervisor: every 0.2 s, fencing, worker timeouts, and the memory of actions in threads.

Fencing: when the heartbeat's last successful beat is older than ``fence_after`` (``stale_after``
less a margin, see ``fence_after()``), other daemons may soon rescue this daemon's tasks. The
supervisor then closes the ``Fence`` (the producer claims nothing while it is closed) and asks
every running action to stop (``StopReason.FENCED``; a child process is killed after
``SHUTDOWN_KILL_GRACE``), so that an action does not run on beside its re-run elsewhere. A
stopped action's task is given back, the attempt not counted, if the daemon still holds it when
the database answers (else the outcome is discarded): a fence can also come from a heartbeat
thread starved of CPU. The first successful heartbeat (which registers the daemon again if it was
declared dead) opens the fence and wakes the producer.

Timeouts: at the worker's ``timeout`` the action is asked to stop (it stops at its next
``push_progress``/``check_cancelled``). If it has not stopped ``KILL_GRACE`` seconds later:

- in a thread (``isolation: "thread"``, the default), where Python allows nothing else, its task
  is failed for retry at once and the thread's eventual result is discarded (the thread keeps its
  slot until it returns);
- in a child process (``isolation: "process"``), the runner kills the process and fails the task
  for retry itself (``pgstask.runtime.isolation``); nothing is abandoned.

Memory: each step samples the daemon's resident set size into the ``Gauge`` the runner reads,
and into the ``peak_memory`` of each action that runs in a thread (a child process measures its
own).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from pgstask.memory import Gauge
from pgstask.runtime.heartbeat import Heartbeat
from pgstask.runtime.isolation import KILL_GRACE
from pgstask.runtime.runs import RunTable
from pgstask.runtime.service import Clock, Service
from pgstask.workers.context import Isolation, StopReason

_log = logging.getLogger(__name__)

#: Seconds between two steps of the supervisor.
INTERVAL = 0.2


def fence_after(heartbeat_interval: float, stale_after: float) -> float:
    """Seconds without a successful heartbeat after which a daemon fences itself: ``stale_after``
    less a margin to stop its actions before the earliest rescue (the larger of one heartbeat
    interval and a quarter of the gap between the two settings), never earlier than half-way
    between them. 23.75 s with the defaults (5 s, 30 s)."""
    gap = stale_after - heartbeat_interval
    return max(heartbeat_interval + gap / 2, stale_after - max(heartbeat_interval, gap / 4))


class Fence:
    """Whether this daemon may claim: closed by the supervisor while its heartbeat is too old,
    read by the producer before every claim."""

    def __init__(self, *, after: float) -> None:
        #: Seconds without a successful heartbeat after which the fence closes.
        self.after = after
        self.closed = False
        #: ``clock`` time at which the fence last closed.
        self.closed_at = 0.0

    def closed_for(self, now: float) -> float:
        """Seconds the fence has been closed at ``now``; 0 when it is open."""
        return now - self.closed_at if self.closed else 0.0


class Supervisor(Service):
    """The daemon's watch over its runs (see the module docstring)."""

    name = "supervisor"

    def __init__(
        self,
        *,
        daemon_id: uuid.UUID,
        runs: RunTable,
        heartbeat: Heartbeat,
        fence: Fence,
        gauge: Gauge,
        stale_after: float,
        on_opened: Callable[[], None],
        interval: float = INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        """``on_opened`` is called when the fence opens again (the producer's ``wake``)."""
        super().__init__(interval=interval, clock=clock)
        self.daemon_id = daemon_id
        self.runs = runs
        self.heartbeat = heartbeat
        self.fence = fence
        self.gauge = gauge
        self.stale_after = stale_after
        self._on_opened = on_opened

    def step(self) -> int:
        """One look at the heartbeat and the runs; returns how many runs are under way."""
        now = self.clock()
        self._watch_heartbeat(now)
        active = self.runs.under_way()
        size = self.gauge.sample()
        for a in active:
            if a.run.isolation is Isolation.THREAD:
                a.run.observe_memory(size)
        for a in active:
            if a.deadline is None or now < a.deadline:
                continue
            a.run.cancel(StopReason.TIMEOUT)
            # A child process is killed by its runner thread; a thread cannot be.
            if a.run.isolation is Isolation.THREAD and now >= a.deadline + KILL_GRACE:
                self.runs.abandon(a, timed_out=True)
        return len(active)

    def _watch_heartbeat(self, now: float) -> None:
        """Close the fence while the heartbeat is too old, open it when a beat gets through."""
        heartbeat, fence = self.heartbeat, self.fence
        if not heartbeat.alive:
            return
        silent = now - heartbeat.last_beat
        if silent <= fence.after:
            if fence.closed:
                fence.closed = False
                _log.warning("daemon %s: heartbeat back; claiming again", self.daemon_id)
                self._on_opened()
            return
        if not fence.closed:
            fence.closed, fence.closed_at = True, now
            _log.error(
                "daemon %s: no heartbeat for %.1fs (fence after %.1fs, stale after %.1fs): "
                "stopping its actions and claiming nothing until the database answers",
                self.daemon_id,
                silent,
                fence.after,
                self.stale_after,
            )
        self.runs.stop(StopReason.FENCED)
