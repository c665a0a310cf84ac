"""Wrappers of ``sql/daemons.sql``."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of
from pgstask.sql import query
from pgstask.task import RunKey


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


def daemon_lost_tasks(
    conn: Conn, *, id: uuid.UUID, ids: Sequence[int], claims: Sequence[int]
) -> list[RunKey]:
    """Of the runs ``ids``/``claims``, those daemon ``id`` no longer holds."""
    rows = rows_of(conn, "daemon_lost_tasks", params_of(locals()))
    return [(r["id"], r["claims"]) for r in rows]


def daemon_deregister(conn: Conn, *, id: uuid.UUID) -> None:
    rows_of(conn, "daemon_deregister", {"id": id})


def daemon_delete_stale(conn: Conn, *, stale_after: float) -> list[Row]:
    return rows_of(conn, "daemon_delete_stale", {"stale_after": stale_after})


def daemon_list(conn: Conn, *, stale_after: float) -> list[Row]:
    return rows_of(conn, "daemon_list", {"stale_after": stale_after})


def daemon_try_lock(conn: Conn, *, key: int) -> bool:
    return bool(rows_of(conn, "daemon_try_lock", {"key": key})[0]["locked"])


def daemon_listen(conn: Conn) -> None:
    conn.execute(query("daemon_listen"))


def daemon_now(conn: Conn) -> dt.datetime:
    return rows_of(conn, "daemon_now", {})[0]["now"]  # type: ignore[no-any-return]
