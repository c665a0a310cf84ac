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
    rows_of(conn, "daemon_register", params_of(locals()))


def daemon_heartbeat(conn: Conn, *, id: uuid.UUID) -> bool:
    return bool(rows_of(conn, "daemon_heartbeat", {"id": id}))


def daemon_deregister(conn: Conn, *, id: uuid.UUID) -> None:
    rows_of(conn, "daemon_deregister", {"id": id})


def daemon_delete_stale(conn: Conn, *, stale_after: float) -> list[Row]:
    return rows_of(conn, "daemon_delete_stale", {"stale_after": stale_after})


def daemon_list(conn: Conn, *, stale_after: float) -> list[Row]:
    return rows_of(conn, "daemon_list", {"stale_after": stale_after})
