"""What every part of ``AsyncClient`` stands on, as ``_client_base`` is for ``Client``: its
settings, psycopg's async pool (opened on first use, or by ``open``/``async with``; the
embedded PostgreSQL's DSN, started in a thread, when none is configured), ``connection()`` for
one unit of work, and ``get()``, reading a task by id."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Self

from psycopg_pool import AsyncConnectionPool

from pgstask._client_base import _task_id, resolve_dsn
from pgstask.db import AsyncConn, make_async_pool, translate_errors
from pgstask.errors import TaskNotFoundError
from pgstask.queries import aio
from pgstask.settings import Settings
from pgstask.task import Task


class AsyncClientBase:
    """The pool and the connections of an ``AsyncClient`` (see there)."""

    def __init__(
        self, dsn: str | None = None, *, settings: Settings | None = None, max_size: int = 4
    ) -> None:
        self.settings = settings or Settings.from_env()
        if dsn is not None:
            self.settings = self.settings.replace(dsn=dsn)
        self.max_size = max_size
        self._pool: AsyncConnectionPool[AsyncConn] | None = None
        self._opening = asyncio.Lock()

    # --- plumbing ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool now (a web app's lifespan does, so its first request waits for none);
        does nothing if it is open. The embedded PostgreSQL starts here when no DSN is set."""
        await self._get_pool()

    async def _get_pool(self) -> AsyncConnectionPool[AsyncConn]:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                dsn = self.settings.dsn
                if not dsn:  # starting the embedded server blocks: not on the event loop
                    dsn = await asyncio.to_thread(resolve_dsn, self.settings)
                self._pool = await make_async_pool(
                    dsn, max_size=self.max_size, name="pgstask-async-client"
                )
            return self._pool

    async def close(self) -> None:
        """Close the pool, if one was opened; a later call opens a new one."""
        async with self._opening:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(
        self, conn: AsyncConn | None = None, *, autocommit: bool = False
    ) -> AsyncIterator[AsyncConn]:
        """``conn`` itself (the caller's transaction), or a pooled one committed on success;
        ``autocommit`` as ``Client.connection``'s."""
        if conn is not None:
            with translate_errors():
                yield conn
            return
        pool = await self._get_pool()
        with translate_errors():
            async with pool.connection() as pooled:
                if not autocommit:
                    yield pooled
                    return
                await pooled.set_autocommit(True)
                try:
                    yield pooled
                finally:
                    if not pooled.broken:
                        await pooled.set_autocommit(False)

    # --- reading -----------------------------------------------------------------------------

    async def get(self, task: Task | int) -> Task:
        """The task with that id; ``TaskNotFoundError`` if there is none."""
        task_id = _task_id(task)
        async with self.connection() as c:
            found = await aio.task_get(c, id=task_id)
        if found is None:
            raise TaskNotFoundError(task_id)
        return found
