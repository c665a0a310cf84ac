"""Wrappers of ``sql/server.sql``."""

from __future__ import annotations

import datetime as dt

from pgstask.db import Conn
from pgstask.queries._execute import rows_of
from pgstask.sql import query


def server_now(conn: Conn) -> dt.datetime:
    return rows_of(conn, "server_now", {})[0]["now"]  # type: ignore[no-any-return]


def lock_try_acquire(conn: Conn, *, key: int) -> bool:
    return bool(rows_of(conn, "lock_try_acquire", {"key": key})[0]["locked"])


def channel_listen(conn: Conn) -> None:
    conn.execute(query("channel_listen"))
