"""``GET /metrics``: Prometheus figures of the queue, read from the database at each scrape.

Every API process reports the same database-wide figures (no per-process counters that would
reset or double up across hosts): queue depth per worker and status, the age of the oldest due
pending task, throughput and durations over the last five minutes, live daemons and their
slots. Each scrape costs three small queries served by the partial indexes
(``pgstask.figures.snapshot``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pgstask import figures
from pgstask.client import Client
from pgstask.task import status_text

WINDOW_SECONDS = 300.0


class QueueCollector(Collector):
    """The Prometheus collector of ``GET /metrics``: the queue's figures, read from the
    database through ``client`` at each scrape."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        """One scrape: queue depth and age, recent throughput and durations, live daemons and
        their slots."""
        read = figures.snapshot(self.client, window_seconds=WINDOW_SECONDS)
        yield from _queue(read.queue)
        yield from _finished(read.finished)
        alive = [d for d in read.daemons if d["alive"]]
        up = GaugeMetricFamily("pgstask_daemons_alive", "Daemons whose heartbeat is fresh")
        up.add_metric([], len(alive))
        yield up
        slots = GaugeMetricFamily("pgstask_daemon_slots", "Action slots of the live daemons")
        slots.add_metric([], sum(d["concurrency"] for d in alive))
        yield slots


def _queue(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "pgstask_tasks", "Incomplete tasks per worker and status", labels=["identifier", "status"]
    )
    oldest = GaugeMetricFamily(
        "pgstask_oldest_due_pending_seconds",
        "Age of the oldest pending task that is due, per worker",
        labels=["identifier"],
    )
    for row in rows:
        depth.add_metric([row["identifier"], status_text(row["status"])], row["count"])
        if row["oldest_due_seconds"] is not None:
            oldest.add_metric([row["identifier"]], float(row["oldest_due_seconds"]))
    yield depth
    yield oldest


def _finished(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    count = GaugeMetricFamily(
        "pgstask_tasks_finished_5m",
        "Tasks finished in the last 5 minutes, per worker and final status",
        labels=["identifier", "status"],
    )
    duration = GaugeMetricFamily(
        "pgstask_task_duration_seconds_5m",
        "Durations (started to finished) of the tasks finished in the last 5 minutes",
        labels=["identifier", "status", "quantile"],
    )
    for row in rows:
        labels = [row["identifier"], status_text(row["status"])]
        count.add_metric(labels, row["count"])
        for quantile, key in (
            ("0.5", "p50_seconds"),
            ("0.95", "p95_seconds"),
            ("1", "max_seconds"),
        ):
            if row[key] is not None:
                duration.add_metric([*labels, quantile], float(row[key]))
    yield count
    yield duration
