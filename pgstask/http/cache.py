"""The worker-resolution cache: identifier → its ``s_workers`` row, for a few seconds.

Each request that needs a worker (run an action, upload a file) resolves it here; ``stats`` are
the real counts of this app since it started or was cleared, which ``/stask/cache/stats`` reports.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(slots=True)
class _Entry:
    row: Row | None  # None: no such worker (cached too, briefly)
    expires: float
    size: int


class WorkerCache:
    """Worker rows by identifier, each kept ``ttl`` seconds after ``load`` read it; an unknown
    identifier is kept too, so a stream of bad requests does not reach the database. Thread-safe:
    the routes that use it run in Starlette's thread pool."""

    def __init__(
        self,
        load: Callable[[str], Row | None],
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self.hits = self.misses = self.evictions = 0

    def get(self, identifier: str) -> Row | None:
        """The worker's row (None when there is no such worker), from the cache while it is
        fresh, else loaded; counts the hit or miss."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(identifier)
            if entry is not None and entry.expires > now:
                self.hits += 1
                return entry.row
            if entry is not None:
                del self._entries[identifier]
                self.evictions += 1
            self.misses += 1
        row = self._load(identifier)
        size = len(json.dumps(row, default=str)) if row is not None else 0
        with self._lock:
            self._entries[identifier] = _Entry(row, now + self.ttl, size)
        return row

    def clear(self, identifier: str | None = None) -> int:
        """Forget one worker or all; returns how many entries were dropped."""
        with self._lock:
            if identifier is None:
                dropped = len(self._entries)
                self._entries.clear()
            else:
                dropped = 1 if self._entries.pop(identifier, None) is not None else 0
            self.evictions += dropped
            return dropped

    def stats(self) -> dict[str, Any]:
        """sTask's cache figures (``/stask/cache/stats``): hits, misses, evictions, size."""
        with self._lock:
            lookups = self.hits + self.misses
            return {
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "hit_rate": round(100.0 * self.hits / lookups, 2) if lookups else 0.0,
                "cache_size": len(self._entries),
                "memory_usage": sum(e.size for e in self._entries.values()),
                "ttl_seconds": self.ttl,
            }
