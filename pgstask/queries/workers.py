"""Wrappers of ``sql/workers.sql``."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of


def worker_register_many(
    conn: Conn,
    *,
    active: bool,
    identifiers: Sequence[str],
    classes: Sequence[str],
    scopes: Sequence[str],
    titles: Sequence[str],
    descriptions: Sequence[str],
    icons: Sequence[str],
    actions: Sequence[Jsonb],
    defaults: Sequence[Jsonb],
) -> list[Row]:
    """Register the worker classes a process found: new rows take ``active``, known ones get their
    metadata refreshed (never their activity). Returns ``identifier`` and ``inserted`` of each row
    inserted or changed. ``actions``: one JSON array of action names per worker; ``defaults``:
    one JSON object of the class's flow-control settings per worker."""
    return rows_of(conn, "worker_register_many", params_of(locals()))


def worker_list(conn: Conn, *, active_only: bool = False) -> list[Row]:
    """Every worker's row (or the active ones'), in display order."""
    return rows_of(conn, "worker_list", {"active_only": active_only})


def worker_get(conn: Conn, *, identifier: str) -> Row | None:
    """The row of worker ``identifier``, or None."""
    rows = rows_of(conn, "worker_get", {"identifier": identifier})
    return rows[0] if rows else None


def worker_set_active(conn: Conn, *, identifier: str, active: bool) -> Row | None:
    """Activate or deactivate a worker; its row, or None when there is no such worker."""
    rows = rows_of(conn, "worker_set_active", {"identifier": identifier, "active": active})
    return rows[0] if rows else None


def worker_notify(conn: Conn, *, identifier: str) -> None:
    """Ask running daemons to reload the settings and activity of worker ``identifier`` now (``''``:
    of every worker)."""
    rows_of(conn, "worker_notify", {"identifier": identifier})


def worker_update_settings(conn: Conn, *, identifier: str, settings: Jsonb) -> Row | None:
    """Merge ``settings`` into a worker's (given keys replace stored ones); its row, or None when
    there is no such worker."""
    rows = rows_of(conn, "worker_update_settings", {"identifier": identifier, "settings": settings})
    return rows[0] if rows else None


def worker_delete_many(conn: Conn, *, identifiers: Sequence[str]) -> list[str]:
    """Delete the rows of workers ``identifiers``; returns the identifiers deleted."""
    rows = rows_of(conn, "worker_delete_many", {"identifiers": list(identifiers)})
    return [r["identifier"] for r in rows]


def worker_states(conn: Conn, *, identifiers: Sequence[str]) -> list[Row]:
    """What a daemon reloads of its workers: ``identifier``, ``active``, ``settings``, ``flow``
    (its flow control, None when it has none) and ``notifies`` (a ``notify`` setting, its own
    or its class's) of each of ``identifiers`` that has a row."""
    return rows_of(conn, "worker_states", {"identifiers": list(identifiers)})


def worker_count(conn: Conn) -> Row:
    """How many workers there are (``total``) and how many are ``active``."""
    return rows_of(conn, "worker_count", {})[0]
