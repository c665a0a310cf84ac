"""What every route reads from ``request.app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from pgstask.client import Client
from pgstask.http.auth import FailedAttempts
from pgstask.http.cache import WorkerCache
from pgstask.http.config import HttpSettings


@dataclass(slots=True)
class AppState:
    client: Client
    http: HttpSettings
    workers: WorkerCache
    failures: FailedAttempts  # failed sign-ins per client address (bearer, cookie and form)


def state(request: Request) -> AppState:
    found: AppState = request.app.state.pgstask
    return found
