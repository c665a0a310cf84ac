"""``AsyncClient``'s webhooks, as ``_client_webhooks`` is ``Client``'s: listing and reading
them, adding or replacing one (``_client_webhooks.upsert_fields``: the same checks, and the
secret in the answer only when the call set it), removing one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pgstask._async_base import AsyncClientBase
from pgstask._client_webhooks import _lookup, upsert_fields
from pgstask.errors import WebhookNotFoundError
from pgstask.queries import aio

Row = dict[str, Any]


class AsyncClientWebhooks(AsyncClientBase):
    """The webhook methods of ``AsyncClient``."""

    async def webhooks(self) -> list[Row]:
        """Every webhook's row without its secret, by name: ``Client.webhooks``."""
        async with self.connection() as c:
            return await aio.webhook_list(c)

    async def webhook(self, name: str) -> Row:
        """One webhook's row: ``Client.webhook`` (``WebhookNotFoundError`` if none)."""
        async with self.connection() as c:
            row = await aio.webhook_get(c, name=_lookup(name))
        if row is None:
            raise WebhookNotFoundError(name)
        return row

    async def add_webhook(
        self,
        name: str,
        url: str,
        *,
        events: Iterable[str] | None = None,
        secret: str | None = None,
        rotate_secret: bool = False,
        active: bool = True,
        description: str = "",
    ) -> Row:
        """Add webhook ``name`` or replace its fields: ``Client.add_webhook``, its checks and
        answer (``secret`` only when this call set it)."""
        fields = upsert_fields(
            name,
            url,
            events=events,
            secret=secret,
            rotate_secret=rotate_secret,
            active=active,
            description=description,
        )
        async with self.connection() as c:
            return await aio.webhook_upsert(c, **fields)

    async def remove_webhook(self, name: str) -> None:
        """Delete webhook ``name``: ``Client.remove_webhook``."""
        async with self.connection() as c:
            if not await aio.webhook_delete(c, name=_lookup(name)):
                raise WebhookNotFoundError(name)
