"""``create_app``: the Starlette application of pgstask's HTTP API and dashboard."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from pgstask import telemetry
from pgstask.client import Client
from pgstask.errors import ConfigurationError, PgstaskError, WorkerNotFoundError
from pgstask.http import errors, openapi
from pgstask.http.auth import FailedAttempts
from pgstask.http.cache import WorkerCache
from pgstask.http.config import HttpSettings
from pgstask.http.middleware import Access, BodyLimit, HostAccess, TraceContext
from pgstask.http.routes import (
    dashboard,
    files,
    ops,
    performance,
    presets,
    schedules,
    tasks,
    webhooks,
    workers,
    workflows,
)
from pgstask.http.state import AppState, StreamSlots
from pgstask.settings import Settings

_log = logging.getLogger(__name__)


#: Who authenticates the requests: pgstask's tokens (``PGSTASK_API_TOKENS``), or the app this
#: one is mounted in (docs/fastapi.md).
Auth = Literal["tokens", "app"]


def create_app(
    settings: Settings | None = None,
    http: HttpSettings | None = None,
    *,
    client: Client | None = None,
    auth: Auth = "tokens",
) -> Starlette:
    """The app. ``settings`` and ``http`` default to the ``PGSTASK_*`` environment; ``client``
    (optional) is used instead of one the app makes and closes itself. ``auth``: ``"tokens"``
    checks pgstask's bearer tokens and the dashboard's session cookie; ``"app"`` lets through
    what reaches it, for an app mounted inside another that authenticates (``HostAccess``)."""
    if auth not in ("tokens", "app"):
        raise ConfigurationError(f"auth must be 'tokens' or 'app', not {auth!r}")
    settings = settings or Settings.from_env()
    http = http or HttpSettings.from_env()
    own_client = client is None
    the_client = client or Client(settings=settings)

    def load_worker(identifier: str) -> dict[str, Any] | None:
        try:
            return the_client.worker(identifier)
        except WorkerNotFoundError:
            return None

    app_state = AppState(
        client=the_client,
        http=http,
        workers=WorkerCache(load_worker, ttl=http.worker_cache_ttl),
        failures=FailedAttempts(),
        streams=StreamSlots(total=http.max_streams, per_token=http.max_streams_per_token),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own_client:  # closing the pool waits for its connections: not on the loop
                await run_in_threadpool(the_client.close)

    app = Starlette(
        routes=[
            *ops.routes(),
            *tasks.routes(),
            *workflows.routes(),
            *workers.routes(),
            *schedules.routes(),
            *presets.routes(),
            *webhooks.routes(),
            *files.routes(),
            *performance.routes(),
            *dashboard.routes(),
            *openapi.routes(),
        ],
        middleware=_middleware(http, app_state, auth),
        exception_handlers={
            ClientDisconnect: _client_gone,
            HTTPException: errors.http_exception,
            PgstaskError: errors.pgstask_error,
            Exception: errors.server_error,
        },
        lifespan=lifespan,
    )
    app.state.pgstask = app_state
    return app


def _middleware(http: HttpSettings, app_state: AppState, auth: Auth) -> list[Middleware]:
    """The app's middleware, outermost first (the trace context's only with telemetry on)."""
    return [
        *([Middleware(TraceContext)] if telemetry.active() else []),
        Middleware(errors.JsonAnswers),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(http.allowed_hosts)),
        Middleware(
            BodyLimit,
            limit_for=lambda path: files.upload_limit(path, http.max_upload) or http.max_body,
        ),
        Middleware(
            Access,
            tokens=lambda: http.tokens,
            failures=app_state.failures,
            cookie=http.cookie,
        )
        if auth == "tokens"
        else Middleware(HostAccess),
    ]


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client went away (or was cut off for stalling) before its whole body arrived: not a
    server error, and nobody to answer."""
    errors.client_left(request)  # logs it at info
    return Response(status_code=400)
