"""``AsyncClient``'s workers and daemons, as ``_client_workers`` is ``Client``'s: listing and
reading the registered workers, activating and deactivating them, their live settings (the
sync client's checks: ``_client_workers.check_settings``), asking daemons to reload them, and
the running daemons. Registering worker classes (discover, rescan, clean orphaned) imports
them, and stays with ``Client``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from pgstask import notify
from pgstask._async_base import AsyncClientBase
from pgstask._client_workers import check_settings, check_webhooks_found
from pgstask.errors import WorkerNotFoundError
from pgstask.queries import aio

Row = dict[str, Any]


class AsyncClientWorkers(AsyncClientBase):
    """The worker and daemon methods of ``AsyncClient``."""

    async def workers(self, *, active_only: bool = False) -> list[Row]:
        """The registered workers, by position: ``Client.workers``."""
        async with self.connection() as c:
            return await aio.worker_list(c, active_only=active_only)

    async def worker(self, identifier: str) -> Row:
        """One registered worker's row: ``Client.worker`` (``WorkerNotFoundError``)."""
        async with self.connection() as c:
            row = await aio.worker_get(c, identifier=identifier)
        if row is None:
            raise WorkerNotFoundError(identifier)
        return row

    async def activate_worker(self, identifier: str) -> Row:
        """Let daemons claim the worker's tasks again: ``Client.activate_worker``."""
        return await self._set_active(identifier, True)

    async def deactivate_worker(self, identifier: str) -> Row:
        """Stop daemons claiming the worker's tasks: ``Client.deactivate_worker``."""
        return await self._set_active(identifier, False)

    async def _set_active(self, identifier: str, active: bool) -> Row:
        async with self.connection() as c:
            row = await aio.worker_set_active(c, identifier=identifier, active=active)
        if row is None:
            raise WorkerNotFoundError(identifier)
        return row

    async def update_worker_settings(self, identifier: str, settings: Mapping[str, Any]) -> Row:
        """Merge ``settings`` into the worker's stored settings: ``Client.update_worker_settings``,
        its checks (``ConfigurationError``) and answer."""
        targets = check_settings(self.settings, identifier, settings)
        async with self.connection() as c:
            names = notify.webhook_names(targets)
            check_webhooks_found(identifier, await aio.webhook_names(c, names=names))
            row = await aio.worker_update_settings(
                c, identifier=identifier, settings=Jsonb(dict(settings))
            )
        if row is None:
            raise WorkerNotFoundError(identifier)
        return row

    async def reload_workers(self, identifier: str | None = None) -> None:
        """Make running daemons reload worker settings and activity now:
        ``Client.reload_workers``."""
        async with self.connection() as c:
            await aio.worker_notify(c, identifier=identifier or "")

    async def daemons(self) -> list[Row]:
        """The daemons' rows, each with ``alive``: ``Client.daemons``."""
        async with self.connection() as c:
            return await aio.daemon_list(c, stale_after=self.settings.stale_after)
