"""The ``Client``'s webhooks: listing them, adding or replacing one, removing one. What a valid
webhook is belongs to ``webhooks.py``; docs/notifications.md says how deliveries use them.

A webhook's secret is answered once: by the ``add_webhook`` call that set it (a new webhook, or
one given a secret or ``rotate_secret``). No read returns it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pgstask import queries, webhooks
from pgstask._client_base import ClientBase
from pgstask.errors import InvalidWebhookError, WebhookNotFoundError

Row = dict[str, Any]


class ClientWebhooks(ClientBase):
    """The webhook methods of ``Client``."""

    def webhooks(self) -> list[Row]:
        """Every webhook's row (``s_webhooks`` without its secret), by name: ``name``, ``url``,
        ``events``, ``active``, ``description``, ``created_at``, ``updated_at``."""
        with self.connection() as c:
            return queries.webhook_list(c)

    def webhook(self, name: str) -> Row:
        """One webhook's row, as ``webhooks`` gives it; ``WebhookNotFoundError`` if none."""
        with self.connection() as c:
            row = queries.webhook_get(c, name=_lookup(name))
        if row is None:
            raise WebhookNotFoundError(name)
        return row

    def add_webhook(
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
        """Add webhook ``name`` (POSTs to ``url``, http or https, of the ``events`` it takes:
        ``completed`` and/or ``failed``, both by default), or replace the fields of the one of
        that name. Its row, with ``inserted`` and ``secret``: the secret, made by pgstask when
        none is given, is in the answer only when this call set it (a new webhook, a ``secret``
        given, or ``rotate_secret``); otherwise ``secret`` is None and the stored one is kept.
        ``InvalidWebhookError`` says which field is wrong."""
        fields = upsert_fields(
            name,
            url,
            events=events,
            secret=secret,
            rotate_secret=rotate_secret,
            active=active,
            description=description,
        )
        with self.connection() as c:
            return queries.webhook_upsert(c, **fields)

    def remove_webhook(self, name: str) -> None:
        """Delete webhook ``name``. Deliveries already queued for it fail, saying it no longer
        exists; ``notify`` settings that name it give it no more deliveries."""
        with self.connection() as c:
            if not queries.webhook_delete(c, name=_lookup(name)):
                raise WebhookNotFoundError(name)


def upsert_fields(
    name: str,
    url: str,
    *,
    events: Iterable[str] | None,
    secret: str | None,
    rotate_secret: bool,
    active: bool,
    description: str,
) -> Row:
    """``add_webhook``'s arguments, checked (``InvalidWebhookError``), as the keyword arguments
    of ``queries.webhook_upsert``."""
    if rotate_secret and secret is not None:
        raise InvalidWebhookError("give a secret or rotate_secret, not both")
    given = {
        "url": url,
        "events": events,
        "secret": secret,
        "active": active,
        "description": description,
    }
    hook = webhooks.check(name, given)
    return {
        "name": hook.name,
        "url": hook.url,
        "secret": hook.secret,
        "events": list(hook.events),
        "active": hook.active,
        "description": hook.description,
        "keep_secret": secret is None and not rotate_secret,
    }


def _lookup(name: Any) -> str:
    """``name`` to look up; ``WebhookNotFoundError`` for one no webhook can have."""
    try:
        return webhooks.check_name(name)
    except InvalidWebhookError:
        raise WebhookNotFoundError(name if isinstance(name, str) else repr(name)) from None
