"""The contract of every background loop of the daemon.

A service does one unit of work in ``run_once()`` (tests call it directly, without threads) and
``start()`` runs it in a thread named ``pgstask-<name>`` every ``interval`` seconds, or sooner
when ``wake()`` is called. The loop waits on an event, never sleeps; an exception is logged and
the loop goes on after a pause. ``start`` and ``stop`` are idempotent.
"""

from __future__ import annotations

import logging
import threading
from typing import ClassVar

_log = logging.getLogger(__name__)


class Service:
    """Base class of the daemon's loops."""

    name: ClassVar[str] = "service"

    def __init__(self, *, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"{self.name}: interval must be positive, not {interval}")
        self.interval = interval
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> object:
        """Do one unit of work and return a small result."""
        raise NotImplementedError

    def next_delay(self, result: object) -> float:
        """Seconds to wait after a ``run_once`` that returned ``result``."""
        return self.interval

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=f"pgstask-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> None:
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
        return self._stopping.is_set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = self.next_delay(self.run_once())
            except Exception:
                _log.exception("pgstask %s failed; retrying in %.1fs", self.name, self.interval)
                delay = self.interval
            if self._stopping.is_set():
                break
            self._wake.wait(max(0.0, delay))
            self._wake.clear()
