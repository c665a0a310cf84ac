"""Wrappers of ``sql/metrics.sql``."""

from __future__ import annotations

from pgstask.db import Conn
from pgstask.queries._execute import Row, rows_of


def metrics_queue(conn: Conn) -> list[Row]:
    return rows_of(conn, "metrics_queue", {})


def metrics_finished(conn: Conn, *, window_seconds: float) -> list[Row]:
    return rows_of(conn, "metrics_finished", {"window_seconds": window_seconds})


def metrics_summary(conn: Conn, *, hours: float) -> Row:
    return rows_of(conn, "metrics_summary", {"hours": hours})[0]


def metrics_workers(conn: Conn, *, hours: float, identifier: str | None) -> list[Row]:
    return rows_of(conn, "metrics_workers", {"hours": hours, "identifier": identifier})


def metrics_errors(conn: Conn, *, hours: float, limit: int) -> list[Row]:
    return rows_of(conn, "metrics_errors", {"hours": hours, "limit": limit})


def metrics_unserved(conn: Conn, *, stale_after: float) -> list[Row]:
    return rows_of(conn, "metrics_unserved", {"stale_after": stale_after})


def metrics_stuck(conn: Conn, *, seconds: float, limit: int) -> list[Row]:
    return rows_of(conn, "metrics_stuck", {"seconds": seconds, "limit": limit})


def metrics_timeline(conn: Conn, *, hours: float, bucket_seconds: int) -> list[Row]:
    return rows_of(conn, "metrics_timeline", {"hours": hours, "bucket_seconds": bucket_seconds})
