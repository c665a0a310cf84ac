"""Wrappers of ``sql/metrics.sql``."""

from __future__ import annotations

from pgstask.db import Conn
from pgstask.queries._execute import Row, rows_of


def metrics_queue(conn: Conn) -> list[Row]:
    """Unfinished tasks per worker and status, with the age of the oldest due pending task."""
    return rows_of(conn, "metrics_queue", {})


def metrics_finished(conn: Conn, *, window_seconds: float) -> list[Row]:
    """Tasks finished in the last ``window_seconds`` per worker and status, with their median, 95th
    percentile and longest durations."""
    return rows_of(conn, "metrics_finished", {"window_seconds": window_seconds})


def metrics_summary(conn: Conn, *, hours: float) -> Row:
    """Tasks created and finished in the last ``hours``: the finished ones counted per outcome,
    their durations and peak memory."""
    return rows_of(conn, "metrics_summary", {"hours": hours})[0]


def metrics_workers(conn: Conn, *, hours: float, identifier: str | None) -> list[Row]:
    """``metrics_summary``'s figures of the finished tasks per worker (every worker, or
    ``identifier``)."""
    return rows_of(conn, "metrics_workers", {"hours": hours, "identifier": identifier})


def metrics_errors(conn: Conn, *, hours: float, limit: int) -> list[Row]:
    """The ``limit`` most frequent messages of tasks that failed in the last ``hours``, with their
    counts."""
    return rows_of(conn, "metrics_errors", {"hours": hours, "limit": limit})


def metrics_unserved(conn: Conn, *, stale_after: float) -> list[Row]:
    """Due pending tasks per worker that no live daemon runs (no daemon has the worker, it is
    inactive, or its daemons' heartbeats are older than ``stale_after`` seconds), with the age of
    the oldest."""
    return rows_of(conn, "metrics_unserved", {"stale_after": stale_after})


def metrics_stuck(conn: Conn, *, seconds: float, limit: int) -> list[Row]:
    """Up to ``limit`` tasks running for longer than ``seconds``, the longest first."""
    return rows_of(conn, "metrics_stuck", {"seconds": seconds, "limit": limit})


def metrics_timeline(conn: Conn, *, hours: float, bucket_seconds: int) -> list[Row]:
    """Tasks finished over the last ``hours`` per bucket ``bucket_seconds`` wide: counts per outcome
    and the average duration (the dashboard's chart)."""
    return rows_of(conn, "metrics_timeline", {"hours": hours, "bucket_seconds": bucket_seconds})
