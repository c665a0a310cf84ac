"""Wrappers of ``sql/webhooks.sql``."""

from __future__ import annotations

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of


def webhook_upsert(
    conn: Conn,
    *,
    name: str,
    url: str,
    secret: str,
    events: list[str],
    active: bool,
    description: str,
    keep_secret: bool,
) -> Row:
    """Insert webhook ``name`` or replace its fields (its secret kept with ``keep_secret``); its
    row without the secret, with ``inserted``, and ``secret`` when this statement set it."""
    return rows_of(conn, "webhook_upsert", params_of(locals()))[0]


def webhook_get(conn: Conn, *, name: str) -> Row | None:
    """Webhook ``name``'s row without its secret, or None."""
    rows = rows_of(conn, "webhook_get", {"name": name})
    return rows[0] if rows else None


def webhook_list(conn: Conn) -> list[Row]:
    """Every webhook's row without its secret, by name."""
    return rows_of(conn, "webhook_list", {})


def webhook_names(conn: Conn, *, names: list[str]) -> list[str]:
    """Of ``names``, those no webhook has."""
    return [r["name"] for r in rows_of(conn, "webhook_names", {"names": names})]


def webhook_delete(conn: Conn, *, name: str) -> bool:
    """Delete webhook ``name``; whether there was one."""
    return bool(rows_of(conn, "webhook_delete", {"name": name}))


def webhook_get_for_delivery(conn: Conn, *, name: str) -> Row | None:
    """Webhook ``name``'s url, secret, events and activity (for its deliveries), or None."""
    rows = rows_of(conn, "webhook_get_for_delivery", {"name": name})
    return rows[0] if rows else None
