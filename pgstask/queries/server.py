"""Wrappers of ``sql/server.sql``."""

from __future__ import annotations

import datetime as dt

from pgstask.db import Conn
from pgstask.queries._execute import rows_of
from pgstask.sql import query


def server_end_idle_transactions(conn: Conn, *, seconds: float) -> None:
    """Have the server end this session's transactions that stay idle longer than ``seconds``
    (at least a millisecond), releasing their locks: the daemon's own connections, so that one
    that hangs mid-transaction holds nothing past ``stale_after``. Session-level: in a
    transaction, it lasts once that commits."""
    rows_of(conn, "server_end_idle_transactions", {"seconds": seconds})


def server_now(conn: Conn) -> dt.datetime:
    """The database's clock, which every schedule is judged by; also the listener's liveness
    probe."""
    return rows_of(conn, "server_now", {})[0]["now"]  # type: ignore[no-any-return]


def lock_try_acquire(conn: Conn, *, key: int) -> bool:
    """Take the transaction-scoped advisory lock ``key`` if it is free: one rescue or cleanup pass
    at a time across all daemons. False when another transaction holds it."""
    return bool(rows_of(conn, "lock_try_acquire", {"key": key})[0]["locked"])


def channel_listen(conn: Conn) -> None:
    """LISTEN on pgstask's channels (new tasks, cancellations, worker changes): the listener's
    connection."""
    conn.execute(query("channel_listen"))
