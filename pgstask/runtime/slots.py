"""The daemon's slots: a fixed set of threads that run actions, with free-slot accounting.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one hung
action would keep a stopped daemon alive forever; these threads are daemonic instead. A slot is
taken when a task is submitted and given back when its action returns, and ``on_free`` is called
then (the producer claims more). Like the daemon's services, ``start()`` starts the threads and
``stop()`` lets them end (both idempotent); a job submitted before ``start()`` waits for it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

_log = logging.getLogger(__name__)

Job = Callable[[], None]


class Slots:
    """``concurrency`` threads named ``pgstask-action-N``; the producer claims at most ``free``
    tasks, the run table ``submit``s a job per task."""

    def __init__(self, concurrency: int, *, on_free: Callable[[], None] = lambda: None) -> None:
        """``on_free`` is called each time a job returns (it wakes the producer)."""
        self.concurrency = concurrency
        self._on_free = on_free
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def start(self) -> None:
        """Start the ``concurrency`` threads (once)."""
        with self._lock:
            if self._threads or self._stopped:
                return
            self._threads = [
                threading.Thread(target=self._work, name=f"pgstask-action-{i}", daemon=True)
                for i in range(self.concurrency)
            ]
        for thread in self._threads:
            thread.start()

    @property
    def free(self) -> int:
        """Slots without a job."""
        with self._lock:
            return self.concurrency - self._busy

    @property
    def busy(self) -> int:
        """Slots with a job (queued or running)."""
        with self._lock:
            return self._busy

    def submit(self, job: Job) -> None:
        """Take a slot for ``job`` and queue it; ``RuntimeError`` when none is free."""
        with self._lock:
            if self._busy >= self.concurrency:
                raise RuntimeError("no free slot: claim at most `free` tasks")
            self._busy += 1
        self._queue.put(job)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no action runs; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def stop(self) -> None:
        """Let idle threads end; threads still in an action end when it returns (once)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # the runner catches everything; this is the last resort
                _log.exception("pgstask action thread: unexpected error")
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()
                self._on_free()
