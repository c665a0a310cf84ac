"""The daemon's event loop: one thread, ``pgstask-loop``, on which ``async def`` actions run.

A daemon makes one only when one of its workers has an async action (``Slots`` owns it and
counts its slots, ``PGSTASK_ASYNC_CONCURRENCY``). The run table hands it a coroutine function
per claimed task of an async action (``submit``, thread-safe); the loop runs each as an asyncio
task and calls ``done`` when it ends, however it ends. Nothing else runs on the loop: the
completer, the listener and the supervisor keep their own threads, so an action that blocks the
loop (``time.sleep`` in an ``async def``) delays the other async actions, not the daemon's
timeouts, heartbeats or outcomes.

Life::

    start      a new event loop, run for ever in the thread (once); coroutines submitted
               before the start wait for it
    run        each submitted coroutine is an asyncio task; a stop request of its run
               (``LoopFlag``) cancels that task from another thread with
               ``call_soon_threadsafe``
    stop       (once; after the daemon's drain) the loop stops; tasks still running (actions
               that swallowed their cancellation, whose runs the daemon abandoned) are
               cancelled again and given ``LEFTOVER_WAIT`` seconds, then left, logged; the
               loop is closed (asyncio reports such a coroutine again, "Task was destroyed but
               it is pending!", when it is collected)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

_log = logging.getLogger(__name__)

#: Seconds the coroutines still running at the stop are given after a last cancellation.
LEFTOVER_WAIT = 1.0

#: What ``submit`` takes: makes the coroutine of one run.
CoroutineJob = Callable[[], Coroutine[Any, Any, None]]


class ActionLoop:
    """One asyncio event loop in a thread of its own (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._waiting: list[tuple[CoroutineJob, Callable[[], None]]] = []
        # Submitted, not yet spawned: one wake-up of the loop takes them all (a claim hands
        # over its batch with one write to the loop's self-pipe, not one per task).
        self._inbox: list[tuple[CoroutineJob, Callable[[], None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    def start(self) -> None:
        """Start the loop's thread (once); coroutines submitted before run now."""
        with self._lock:
            if self._loop is not None or self._stopped:
                return
            loop = self._loop = asyncio.new_event_loop()
            waiting, self._waiting = self._waiting, []
            self._thread = threading.Thread(target=self._main, name="pgstask-loop", daemon=True)
        for job, done in waiting:
            loop.call_soon_threadsafe(self._spawn, job, done)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Its thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: CoroutineJob, done: Callable[[], None]) -> None:
        """Run ``job()`` on the loop; ``done()`` is called on the loop when it has ended
        (``RuntimeError`` once the loop has stopped)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the event loop of async actions has stopped")
            loop = self._loop
            if loop is None:
                self._waiting.append((job, done))
                return
            self._inbox.append((job, done))
            if len(self._inbox) > 1:
                return  # the loop is woken already and takes this one too
        loop.call_soon_threadsafe(self._take_inbox)

    def stop(self) -> None:
        """Stop the loop (once); see the module docstring for what still runs."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # already closed
                loop.call_soon_threadsafe(loop.stop)

    def join(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds for the loop's thread to end (after ``stop``)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # --- on the loop -------------------------------------------------------------------------

    def _take_inbox(self) -> None:
        with self._lock:
            inbox, self._inbox = self._inbox, []
        for job, done in inbox:
            self._spawn(job, done)

    def _spawn(self, job: CoroutineJob, done: Callable[[], None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(job())
        except BaseException:
            _log.exception("pgstask: could not start an async action")
            done()
            return
        self._tasks.add(task)

        def ended(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                _log.error("pgstask: an async run failed", exc_info=task.exception())
            done()

        task.add_done_callback(ended)

    def _main(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            self._finish(loop)
        except BaseException:
            _log.exception("pgstask: the event loop of async actions failed")
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def _finish(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what still runs, give it ``LEFTOVER_WAIT`` seconds, then leave it."""
        left = [t for t in self._tasks if not t.done()]
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=LEFTOVER_WAIT))
            stuck = [t for t in left if not t.done()]
            if stuck:
                _log.warning(
                    "%d async action(s) did not stop when cancelled; left behind with the loop "
                    "(their outcomes were written already)",
                    len(stuck),
                )
                return  # an action's to_thread call may still run: do not wait for it
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
