"""What every route reads from ``request.app.state``."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from starlette.requests import Request

from pgstask.client import Client
from pgstask.http.auth import FailedAttempts
from pgstask.http.cache import WorkerCache
from pgstask.http.config import HttpSettings


class StreamSlots:
    """The progress streams open at once: at most ``total``, and ``per_token`` per token."""

    def __init__(self, *, total: int, per_token: int) -> None:
        self.total, self.per_token = total, per_token
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    def take(self, token: str) -> str | None:
        """Open one for ``token``: None, or why not."""
        with self._lock:
            if self._open.total() >= self.total:
                return f"{self.total} progress streams are open, the most this server allows"
            if self._open[token] >= self.per_token:
                return f"this token has {self.per_token} progress streams open, the most allowed"
            self._open[token] += 1
            return None

    def give_back(self, token: str) -> None:
        """Close one of ``token``'s streams (the one ``take`` opened)."""
        with self._lock:
            self._open[token] -= 1
            if self._open[token] <= 0:
                del self._open[token]

    def count(self) -> int:
        """The streams open now, of all tokens."""
        with self._lock:
            return self._open.total()


@dataclass(slots=True)
class AppState:
    """What the routes share, made once per app by ``create_app``: the client, the settings, the
    worker cache, the failed-token counts and the stream slots."""

    client: Client
    http: HttpSettings
    workers: WorkerCache
    failures: FailedAttempts  # failed sign-ins per client address (bearer, cookie and form)
    streams: StreamSlots  # progress streams open at once


def state(request: Request) -> AppState:
    """The ``AppState`` of the app that ``request`` came to."""
    found: AppState = request.app.state.pgstask
    return found
