"""Wrappers of ``sql/daemons.sql``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of


def daemon_register(
    conn: Conn,
    *,
    id: uuid.UUID,
    hostname: str,
    pid: int,
    concurrency: int,
    identifiers: Sequence[str],
    version: str,
) -> None:
    """Add daemon ``id``'s row, or refresh its heartbeat when it registers again after it was
    declared dead."""
    rows_of(conn, "daemon_register", params_of(locals()))


def daemon_heartbeat(conn: Conn, *, id: uuid.UUID) -> bool:
    """Record a heartbeat of daemon ``id``; False when its row is gone (it was declared dead) and it
    must register again."""
    return bool(rows_of(conn, "daemon_heartbeat", {"id": id}))


def daemon_deregister(conn: Conn, *, id: uuid.UUID) -> None:
    """Remove daemon ``id``'s row as it stops."""
    rows_of(conn, "daemon_deregister", {"id": id})


def daemon_delete_stale(conn: Conn, *, stale_after: float) -> list[Row]:
    """Remove the rows of daemons whose heartbeat is older than ``stale_after`` seconds; returns
    their ``id``, ``hostname`` and ``pid``."""
    return rows_of(conn, "daemon_delete_stale", {"stale_after": stale_after})


def daemon_list(conn: Conn, *, stale_after: float) -> list[Row]:
    """Every daemon's row, oldest first, with ``alive``: a heartbeat fresher than ``stale_after``
    seconds."""
    return rows_of(conn, "daemon_list", {"stale_after": stale_after})
