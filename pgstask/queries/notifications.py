"""Wrappers of ``sql/notifications.sql``."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from pgstask.db import Conn
from pgstask.queries._execute import count_of, rows_of


def notification_enqueue(conn: Conn, *, ids: Sequence[int]) -> list[int]:
    """Insert the deliveries of the outcomes just written to tasks ``ids`` (in the caller's
    transaction); the ids of the delivery tasks."""
    return [r["id"] for r in rows_of(conn, "notification_enqueue", {"ids": list(ids)})]


def task_set_notify_many(conn: Conn, *, ids: Sequence[int], notifies: Sequence[Jsonb]) -> int:
    """Set the ``notify`` column of tasks ``ids`` (parallel to ``notifies``); the rows set."""
    return count_of(conn, "task_set_notify_many", {"ids": list(ids), "notifies": list(notifies)})
