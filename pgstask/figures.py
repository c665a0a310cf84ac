"""The queue's figures, read from the database: what the HTTP API's performance, alerts and
``/metrics`` answers, and its upload quotas, are computed from.

This is the read model beside ``Client``: ``Client`` reads and changes tasks, workers, logs and
files one at a time (what a Python caller and the CLI do); this module reads aggregates over
``s_tasks``, ``s_daemons`` and ``s_task_files`` (the ``metrics_*`` queries of ``sql/metrics.sql``).
Between them they are the only way the routes of ``pgstask.http`` reach the database: a route
never imports ``queries`` or ``db`` nor opens a connection (``tests/test_http_layers.py``).

Each function reads on one pooled connection of the client, in one transaction, and returns the
rows as the queries give them; shaping them into an answer is the caller's business. All of them
block: call them from a thread (a plain ``def`` route), never from the event loop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pgstask import files, queries
from pgstask.client import Client

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Summary:
    """The performance summary over the last ``hours``."""

    now: dt.datetime  # the database's clock
    finished: Row  # ``metrics_summary``: counts, durations and memory of the window
    counts: dict[int, int]  # tasks per status now, finished or not
    workers: list[Row]  # ``metrics_workers`` of every worker
    errors: list[Row]  # the most common failure messages


def summary(client: Client, *, hours: float, errors: int = 5) -> Summary:
    """The performance summary over the last ``hours``, with the ``errors`` most common failure
    messages."""
    with client.connection() as conn:
        return Summary(
            now=queries.server_now(conn),
            finished=queries.metrics_summary(conn, hours=hours),
            counts=queries.task_count_by_status(conn),
            workers=queries.metrics_workers(conn, hours=hours, identifier=None),
            errors=queries.metrics_errors(conn, hours=hours, limit=errors),
        )


def workers(client: Client, *, hours: float, identifier: str | None = None) -> list[Row]:
    """Per worker (or only ``identifier``'s): the tasks finished in the last ``hours``."""
    with client.connection() as conn:
        return queries.metrics_workers(conn, hours=hours, identifier=identifier)


def timeline(client: Client, *, hours: float, bucket_seconds: int) -> list[Row]:
    """Tasks finished in the last ``hours``, per bucket of ``bucket_seconds``."""
    with client.connection() as conn:
        return queries.metrics_timeline(conn, hours=hours, bucket_seconds=bucket_seconds)


@dataclass(frozen=True, slots=True)
class Health:
    """What the alerts are judged on."""

    last_hour: Row  # ``metrics_summary`` of the last hour
    unserved: list[Row]  # due tasks per worker that no live daemon runs
    daemons: list[Row]  # with ``alive`` by the client's ``stale_after``
    queue: list[Row]  # ``metrics_queue``: incomplete tasks per worker and status
    stuck: list[Row]  # tasks running for longer than ``stuck_after``


def health(client: Client, *, stuck_after: float, stuck_limit: int = 20) -> Health:
    """What the alerts are judged on: the last hour, workers no live daemon serves, the daemons, the
    queue, and up to ``stuck_limit`` tasks running for longer than ``stuck_after`` seconds."""
    stale_after = client.settings.stale_after
    with client.connection() as conn:
        return Health(
            last_hour=queries.metrics_summary(conn, hours=1),
            unserved=queries.metrics_unserved(conn, stale_after=stale_after),
            daemons=queries.daemon_list(conn, stale_after=stale_after),
            queue=queries.metrics_queue(conn),
            stuck=queries.metrics_stuck(conn, seconds=stuck_after, limit=stuck_limit),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The queue now and over the last ``window_seconds``: Prometheus's figures."""

    queue: list[Row]  # ``metrics_queue``
    finished: list[Row]  # ``metrics_finished``: counts and duration quantiles of the window
    daemons: list[Row]


def snapshot(client: Client, *, window_seconds: float) -> Snapshot:
    """The queue, the tasks finished in the last ``window_seconds`` and the daemons: what each
    Prometheus scrape reports."""
    with client.connection() as conn:
        return Snapshot(
            queue=queries.metrics_queue(conn),
            finished=queries.metrics_finished(conn, window_seconds=window_seconds),
            daemons=queries.daemon_list(conn, stale_after=client.settings.stale_after),
        )


def file_usage(
    client: Client, *, identifier: str | None = None, session_id: str | None = None
) -> files.Usage:
    """The stored files' bytes and the unfinished chunked uploads (``files.usage``), which the
    upload quotas compare with their limits."""
    with client.connection() as conn:
        return files.usage(conn, identifier=identifier, session_id=session_id)
