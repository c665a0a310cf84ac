"""The contract of every background loop of the daemon.

A service does one unit of work in ``step()`` (tests call it directly, without threads) and
``start()`` runs it in a thread named ``pgstask-<name>`` every ``interval`` seconds, or sooner
when ``wake()`` is called (or its ``wakeup`` event is set by another part). The loop waits on an
event, never sleeps; an exception is logged and the loop goes on after a pause. ``start`` and
``stop`` are idempotent. Every service reads time from its ``clock`` (``time.monotonic`` unless
a test gives another), never from ``time`` directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

_log = logging.getLogger(__name__)

#: Seconds from an arbitrary origin, never going back: ``time.monotonic`` or a test's clock.
Clock = Callable[[], float]


class Service:
    """Base class of the daemon's loops."""

    name: ClassVar[str] = "service"

    def __init__(
        self,
        *,
        interval: float,
        clock: Clock = time.monotonic,
        wakeup: threading.Event | None = None,
    ) -> None:
        """``wakeup``: the event that ends the wait between two steps early, when the parts
        that wake this service are built before it (the producer's); a new one otherwise."""
        if interval <= 0:
            raise ValueError(f"{self.name}: interval must be positive, not {interval}")
        self.interval = interval
        self.clock = clock
        self._stopping = threading.Event()
        self._wake = wakeup if wakeup is not None else threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> object:
        """Do one unit of work and return a small result."""
        raise NotImplementedError

    def next_delay(self, result: object) -> float:
        """Seconds to wait after a ``step`` that returned ``result``."""
        return self.interval

    def start(self) -> None:
        """Run ``step`` in the service's thread until ``stop``."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=f"pgstask-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run the next step now instead of after the pause."""
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> None:
        """End the loop and wait up to ``timeout`` seconds for the thread (not when called from
        the thread itself)."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Its thread is still running (``stop`` waits for it only so long)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """``stop`` was called: a long step should return."""
        return self._stopping.is_set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = self.next_delay(self.step())
            except Exception:
                _log.exception("pgstask %s failed; retrying in %.1fs", self.name, self.interval)
                delay = self.interval
            if self._stopping.is_set():
                break
            self._wake.wait(max(0.0, delay))
            self._wake.clear()
