"""HTTP API performance endpoints: real durations, memory and rates, and the alerts."""

from __future__ import annotations

import pytest

from pgstask import Client, Status
from pgstask.http.config import AlertThresholds
from pgstask.settings import Settings
from tests.daemons import running_daemon, wait_for
from tests.http_support import api


def _run_some(settings: Settings) -> None:
    """3 completed sleep tasks, 1 failed, 1 cancelled, run by a daemon."""
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        ok = [client.create("sample", "sleep", {"seconds": 0.2}) for _ in range(3)]
        bad = client.create("sample", "fail", {"error": "boom"}, max_attempts=1)
        gone = client.create("sample", "sleep", {"seconds": 30})
        with running_daemon(settings):
            wait_for(lambda: client.get(gone).status == Status.RUNNING)
            client.cancel(gone)
            wait_for(lambda: all(client.get(t).is_finished for t in [*ok, bad, gone]))


def test_summary_and_workers_have_real_figures(settings: Settings) -> None:
    _run_some(settings)
    with api(settings) as http:
        data = http.get("/stask/performance/summary", params={"hours": 2}).json()["data"]
        workers = http.get("/stask/performance/workers").json()["data"]
        one = http.get("/stask/performance/workers", params={"identifier": "nobody"}).json()
        assert http.get("/stask/performance/summary", params={"hours": "0"}).status_code == 422
        assert http.get("/stask/performance/summary", params={"hours": "x"}).status_code == 422
        assert http.get("/stask/performance/summary", params={"days": 1}).status_code == 422
    assert data["period"]["hours"] == 2
    tasks = data["tasks"]
    assert (tasks["total"], tasks["completed"], tasks["failed"], tasks["cancelled"]) == (5, 3, 1, 1)
    perf = data["performance"]
    assert perf["success_rate"] == 75.0 and perf["error_rate"] == 25.0  # finished only
    assert 0 < perf["average_duration"] < 30 and perf["total_execution_time"] >= 0.6
    assert perf["average_memory"] > 1024 * 1024 and perf["max_memory"] >= perf["average_memory"]
    assert data["workers"]["sample"]["task_count"] == 5
    assert data["errors"]["common_errors"][0]["count"] == 1
    assert "boom" in data["errors"]["common_errors"][0]["message"]
    sample = workers["sample"]
    assert (sample["completed"], sample["failed"], sample["success_rate"]) == (3, 1, 75.0)
    assert sample["max_duration"] >= 0.2 and sample["memory_usage"] > 0
    assert sample["last_execution"] is not None
    assert one == {"success": True, "data": {}}


def test_timeline_buckets(settings: Settings) -> None:
    _run_some(settings)
    with api(settings) as http:
        data = http.get("/stask/performance/timeline", params={"hours": 1, "bucket": 3600}).json()
        assert http.get("/stask/performance/timeline", params={"bucket": 1}).status_code == 422
    points = data["data"]["points"]
    assert sum(p["completed"] for p in points) == 3 and sum(p["failed"] for p in points) == 1
    assert all(p["average_duration"] >= 0 for p in points)


def _types(alerts: list[dict[str, object]]) -> set[object]:
    return {a["type"] for a in alerts}


def test_sTask_alerts_fire_on_finished_tasks_only(settings: Settings) -> None:
    with api(settings) as http:
        assert http.get("/stask/performance/alerts").json() == {"success": True, "data": []}
    _run_some(settings)
    strict = AlertThresholds(
        min_success_rate=90, min_finished=2, max_average_duration=0.01, max_memory=1
    )
    with api(settings, alerts=strict) as http:
        alerts = http.get("/stask/performance/alerts").json()["data"]
    assert {"low_success_rate", "high_execution_time", "high_memory_usage"} <= _types(alerts)
    low = next(a for a in alerts if a["type"] == "low_success_rate")
    assert (low["value"], low["threshold"], low["severity"]) == (75.0, 90, "warning")


def test_queue_alerts(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        client.create("nobody", "x")
    with api(settings, alerts=AlertThresholds(max_backlog_age=0)) as http:
        alerts = http.get("/stask/performance/alerts").json()["data"]
        assert "no_live_daemon" in _types(alerts) and "growing_backlog" in _types(alerts)
        with running_daemon(settings), Client(settings=settings) as client:
            task = client.create("sample", "sleep", {"seconds": 30})
            wait_for(lambda: client.get(task).status == Status.RUNNING)
            limits = AlertThresholds(stuck_after=0.01)
            with api(settings, alerts=limits) as strict:
                wait_for(
                    lambda: (
                        "stuck_tasks"
                        in _types(strict.get("/stask/performance/alerts").json()["data"])
                    )
                )
                alerts = strict.get("/stask/performance/alerts").json()["data"]
            client.cancel(task)
    unserved = next(a for a in alerts if a["type"] == "waiting_for_worker")
    assert unserved["identifier"] == "nobody" and unserved["severity"] == "critical"
    assert "no_live_daemon" not in _types(alerts)
    stuck = next(a for a in alerts if a["type"] == "stuck_tasks")
    assert stuck["task_ids"] == [task.id]


@pytest.mark.parametrize(
    ("name", "value"),
    [("PGSTASK_ALERT_MIN_SUCCESS_RATE", "120"), ("PGSTASK_ALERT_STUCK_AFTER", "soon")],
)
def test_alert_settings_are_validated(name: str, value: str) -> None:
    from pgstask.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=name):
        AlertThresholds.from_env({name: value})
