"""pgstask inside an existing ASGI application (Starlette, FastAPI): its HTTP API and dashboard
mounted under a prefix, its pools opened and closed by the host's lifespan, and an
``AsyncClient`` for the host's own request handlers (docs/fastapi.md).

``mount(app, "/tasks")`` does all three: it mounts the API (``create_app``) at ``/tasks`` (its
paths then start with ``/tasks/stask/``, the dashboard is ``/tasks/stask/``), wraps the host's
lifespan so that the pools open before the first request and close at shutdown, and keeps the
``Mounted`` on ``app.state`` where ``client_of(request)`` (and ``pgstask.contrib.fastapi``'s
dependency) find its ``AsyncClient``. A host that builds its lifespan itself makes a
``Mounted``, enters ``Mounted.lifespan`` inside its own and mounts ``Mounted.app``.

Starlette runs only the lifespan of the outermost app, never a mounted one's: so the API is
given a ``Client`` that the ``Mounted`` owns, and the host's lifespan opens and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from pgstask.async_client import AsyncClient
from pgstask.client import Client
from pgstask.errors import ConfigurationError
from pgstask.http.app import Auth, create_app
from pgstask.http.config import HttpSettings
from pgstask.settings import Settings

#: The attribute of the host's ``app.state`` that holds the ``Mounted``.
STATE = "pgstask_mounted"


class Mounted:
    """pgstask's API and dashboard as an app to mount (``app``), the ``Client`` its routes use
    (``client``, a sync pool served from Starlette's thread pool), the ``AsyncClient`` of the
    host's handlers (``async_client``) and the ``lifespan`` that opens and closes both pools.

    ``dsn`` and ``settings`` as for ``Client``; ``http`` (default: the ``PGSTASK_API_*``
    environment) as for ``create_app``; ``auth``: ``"tokens"`` (pgstask's bearer tokens and
    sign-in page) or ``"app"`` (the host authenticates the mount's path itself).
    """

    def __init__(
        self,
        *,
        dsn: str | None = None,
        settings: Settings | None = None,
        http: HttpSettings | None = None,
        auth: Auth = "tokens",
    ) -> None:
        settings = settings or Settings.from_env()
        if dsn is not None:
            settings = settings.replace(dsn=dsn)
        self.settings = settings
        self.client = Client(settings=settings)
        self.async_client = AsyncClient(settings=settings)
        self.app = create_app(settings, http, client=self.client, auth=auth)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Open both pools (an unreachable database fails the start), and close them at the end:
        ``FastAPI(lifespan=mounted.lifespan)``, or ``async with mounted.lifespan():`` inside the
        host's own lifespan."""
        # Opening and closing the sync pool waits on connections: not on the event loop.
        await asyncio.to_thread(self.client.open)
        try:
            await self.async_client.open()
            yield
        finally:
            try:
                await self.async_client.close()
            finally:
                await asyncio.to_thread(self.client.close)

    def mount(self, app: Starlette, path: str, *, wrap_lifespan: bool = True) -> None:
        """Mount the API at ``path`` of ``app`` and keep this ``Mounted`` on ``app.state`` for
        ``client_of``; with ``wrap_lifespan``, ``app``'s lifespan runs inside ``lifespan``
        (without: ``app``'s own lifespan enters ``lifespan`` itself)."""
        if not path.startswith("/") or path.endswith("/"):
            raise ConfigurationError(f"mount a path like '/tasks', not {path!r}")
        app.mount(path, self.app, name="pgstask")
        setattr(app.state, STATE, self)
        if not wrap_lifespan:
            return
        router = app.router
        host_lifespan = router.lifespan_context

        @contextlib.asynccontextmanager
        async def both(outer: Any) -> AsyncIterator[Any]:
            async with self.lifespan(outer), host_lifespan(outer) as state:
                yield state

        router.lifespan_context = both


def mount(
    app: Starlette,
    path: str = "/tasks",
    *,
    dsn: str | None = None,
    settings: Settings | None = None,
    http: HttpSettings | None = None,
    auth: Auth = "tokens",
) -> Mounted:
    """Mount pgstask's API and dashboard at ``path`` of ``app`` (a Starlette or FastAPI app),
    its pools opened and closed by ``app``'s lifespan; the ``Mounted`` (its arguments: see
    there)."""
    mounted = Mounted(dsn=dsn, settings=settings, http=http, auth=auth)
    mounted.mount(app, path)
    return mounted


def client_of(conn: HTTPConnection) -> AsyncClient:
    """The ``AsyncClient`` of the pgstask mounted on the app that ``conn`` (a request or a
    websocket) came to; ``ConfigurationError`` if none is."""
    mounted = getattr(conn.app.state, STATE, None)
    if not isinstance(mounted, Mounted):
        raise ConfigurationError(
            "no pgstask is mounted on this app: call pgstask.contrib.asgi.mount(app, path)"
        )
    return mounted.async_client
