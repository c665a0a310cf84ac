"""The daemon's slots: a fixed set of threads that run actions, and the slots of the event loop
that runs async actions, with free-slot accounting of both.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one hung
action would keep a stopped daemon alive forever; these threads are daemonic instead. A slot is
taken when a task is submitted and given back when its action returns, and ``on_free`` is called
then (the producer claims more). Like the daemon's services, ``start()`` starts the threads and
``stop()`` lets them end (both idempotent); a job submitted before ``start()`` waits for it.

A daemon with an ``async def`` action also has ``async_concurrency`` loop slots: the coroutines
of those actions run on one ``ActionLoop`` (``runtime/loop.py``), started and stopped with the
threads. The producer claims at most ``free`` tasks of sync actions and ``free_async`` of async
ones; ``busy`` and ``wait_idle`` count both kinds.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from pgstask.runtime.loop import ActionLoop, CoroutineJob

_log = logging.getLogger(__name__)

Job = Callable[[], None]


class Slots:
    """``concurrency`` threads named ``pgstask-action-N``; the producer claims at most ``free``
    tasks, the run table ``submit``s a job per task."""

    def __init__(
        self,
        concurrency: int,
        *,
        async_concurrency: int = 0,
        on_free: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_free`` is called each time a job returns (it wakes the producer);
        ``async_concurrency`` > 0 makes an event loop with that many slots (``loop``)."""
        self.concurrency = concurrency
        self.async_concurrency = async_concurrency
        #: The event loop of async actions; None without async slots.
        self.loop = ActionLoop() if async_concurrency > 0 else None
        self._busy_async = 0
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
        if self.loop is not None:
            self.loop.start()

    @property
    def free(self) -> int:
        """Threads without a job."""
        with self._lock:
            return self.concurrency - self._busy

    @property
    def free_async(self) -> int:
        """Loop slots without a coroutine (0 without an event loop)."""
        with self._lock:
            return self.async_concurrency - self._busy_async

    @property
    def busy(self) -> int:
        """Slots of either kind with a job (queued or running)."""
        with self._lock:
            return self._busy + self._busy_async

    def submit(self, job: Job) -> None:
        """Take a slot for ``job`` and queue it; ``RuntimeError`` when none is free."""
        with self._lock:
            if self._busy >= self.concurrency:
                raise RuntimeError("no free slot: claim at most `free` tasks")
            self._busy += 1
        self._queue.put(job)

    def submit_async(self, job: CoroutineJob) -> None:
        """Take a loop slot for the coroutine ``job()`` and run it on the event loop;
        ``RuntimeError`` when none is free."""
        with self._lock:
            if self.loop is None or self._busy_async >= self.async_concurrency:
                raise RuntimeError("no free loop slot: claim at most `free_async` tasks")
            self._busy_async += 1
        try:
            self.loop.submit(job, self._async_done)
        except BaseException:
            self._async_done()
            raise

    def _async_done(self) -> None:
        with self._idle:
            self._busy_async -= 1
            self._idle.notify_all()
        self._on_free()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no action runs; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy + self._busy_async == 0, timeout)

    def stop(self) -> None:
        """Let idle threads end; threads still in an action end when it returns (once). Stop
        the event loop (``ActionLoop.stop``)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for _ in self._threads:
            self._queue.put(None)
        if self.loop is not None:
            self.loop.stop()

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
