"""sTask's performance endpoints with real figures, and the alerts a queue operator needs.

Durations are ``finished_at - started_at`` of finished tasks; memory is the ``peak_memory``
the runner records per attempt; success and error rates are over completed and failed tasks only
(queued and running tasks, and cancelled ones, are in neither numerator nor denominator). Bodies
keep sTask's ``{"success": true, "data": …}`` wrapper and field names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask import figures
from pgstask.client import Client
from pgstask.http import bodies
from pgstask.http.config import AlertThresholds
from pgstask.http.errors import ApiError
from pgstask.http.state import state
from pgstask.task import Status

MAX_HOURS = 24 * 366


def _hours(request: Request, *extra: str) -> tuple[float, dict[str, str]]:
    params = dict(bodies.query_params(request, ("hours", *extra)))
    raw = params.get("hours")
    if raw in (None, ""):
        return 24.0, params
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= MAX_HOURS:
        raise ApiError(
            422, f"hours must be a number between 0 and {MAX_HOURS}, not {bodies.shown(raw)}"
        )
    return hours, params


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _num(value: Any, digits: int = 3) -> float:
    return round(float(value), digits) if value is not None else 0.0


def _worker(row: dict[str, Any]) -> dict[str, Any]:
    judged = row["completed"] + row["failed"]
    return {
        "identifier": row["identifier"],
        "total_tasks": row["finished"],
        "completed": row["completed"],
        "failed": row["failed"],
        "cancelled": row["cancelled"],
        "success_rate": _rate(row["completed"], judged),
        "error_rate": _rate(row["failed"], judged),
        "average_duration": _num(row["average_duration"]),
        "max_duration": _num(row["max_duration"]),
        "total_execution_time": _num(row["total_execution_time"]),
        "memory_usage": int(row["average_memory"]) if row["average_memory"] is not None else 0,
        "max_memory": int(row["max_memory"] or 0),
        "last_execution": row["last_execution"].isoformat() if row["last_execution"] else None,
    }


def summary_data(client: Client, hours: float) -> dict[str, Any]:
    """sTask's performance summary of the last ``hours``, in its field names: task counts,
    rates, durations, memory, per worker, and the commonest errors."""
    read = figures.summary(client, hours=hours)
    now, row, counts = read.now, read.finished, read.counts
    judged = row["completed"] + row["failed"]
    return {
        "period": {
            "hours": hours,
            "from": (now - dt.timedelta(hours=hours)).isoformat(),
            "to": now.isoformat(),
        },
        "tasks": {
            "total": row["created"],
            "finished": row["finished"],
            "completed": row["completed"],
            "failed": row["failed"],
            "cancelled": row["cancelled"],
            "running": counts.get(Status.RUNNING, 0) + counts.get(Status.PREPARING, 0),
            "queued": counts.get(Status.PENDING, 0),
        },
        "performance": {
            "success_rate": _rate(row["completed"], judged),
            "error_rate": _rate(row["failed"], judged),
            "average_duration": _num(row["average_duration"]),
            "total_execution_time": _num(row["total_execution_time"]),
            "average_memory": int(row["average_memory"] or 0),
            "max_memory": int(row["max_memory"] or 0),
        },
        "workers": {
            w["identifier"]: {
                "identifier": w["identifier"],
                "task_count": w["finished"],
                "success_rate": _rate(w["completed"], w["completed"] + w["failed"]),
            }
            for w in read.workers
        },
        "errors": {
            "total_errors": row["failed"],
            "error_rate": _rate(row["failed"], judged),
            "common_errors": [{"message": e["message"], "count": e["count"]} for e in read.errors],
        },
    }


def summary(request: Request) -> JSONResponse:
    """The performance summary over ``?hours=`` (default 24)."""
    hours, _ = _hours(request)
    data = summary_data(state(request).client, hours)
    return JSONResponse({"success": True, "data": data})


def workers(request: Request) -> JSONResponse:
    """Each worker's figures over ``?hours=``, by identifier; ``?identifier=`` for one."""
    hours, params = _hours(request, "identifier")
    identifier = params.get("identifier") or None
    rows = figures.workers(state(request).client, hours=hours, identifier=identifier)
    return JSONResponse({"success": True, "data": {r["identifier"]: _worker(r) for r in rows}})


def timeline(request: Request) -> JSONResponse:
    """Finished tasks per bucket (``bucket`` seconds, default: a 48th of the window, at least a
    minute) with their average duration: the dashboard's chart."""
    hours, params = _hours(request, "bucket")
    default = max(60, int(hours * 3600 / 48))
    bucket = bodies.whole_number(params.get("bucket"), "bucket", default, 10, 86400)
    rows = figures.timeline(state(request).client, hours=hours, bucket_seconds=bucket)
    points = [
        {
            "time": r["bucket"].isoformat(),
            "completed": r["completed"],
            "failed": r["failed"],
            "cancelled": r["cancelled"],
            "average_duration": _num(r["average_duration"]),
        }
        for r in rows
    ]
    return JSONResponse({"success": True, "data": {"bucket_seconds": bucket, "points": points}})


#: Every kind of alert, in the order ``alerts_data`` reports them.
ALERT_KINDS = (
    "low_success_rate",
    "high_execution_time",
    "high_memory_usage",
    "no_live_daemon",
    "waiting_for_worker",
    "growing_backlog",
    "stuck_tasks",
)


def alerts_data(client: Client, limits: AlertThresholds) -> list[dict[str, Any]]:
    """sTask's three alerts over the last hour, fixed (judged on finished tasks only), plus
    the queue's own: tasks no live daemon serves, no live daemon at all, a growing backlog,
    stuck running tasks."""
    health = figures.health(client, stuck_after=limits.stuck_after)
    return [*_last_hour_alerts(health.last_hour, limits), *_queue_alerts(health, limits)]


def _alert(
    kind: str, severity: str, message: str, value: Any, threshold: Any, **extra: Any
) -> dict[str, Any]:
    """One alert as the API answers it (the ``Alert`` schema)."""
    return {
        "type": kind,
        "severity": severity,
        "message": message,
        "value": value,
        "threshold": threshold,
        **extra,
    }


def _last_hour_alerts(last_hour: figures.Row, limits: AlertThresholds) -> list[dict[str, Any]]:
    """sTask's alerts on the tasks that finished in the last hour: success rate, average
    duration, peak memory."""
    out: list[dict[str, Any]] = []
    judged = last_hour["completed"] + last_hour["failed"]
    rate = _rate(last_hour["completed"], judged)
    if judged >= limits.min_finished and rate < limits.min_success_rate:
        severity = "critical" if rate < limits.min_success_rate / 2 else "warning"
        message = f"Task success rate is below threshold: {rate}% of {judged} finished tasks"
        out.append(_alert("low_success_rate", severity, message, rate, limits.min_success_rate))
    average = _num(last_hour["average_duration"])
    if average > limits.max_average_duration:
        message = f"Average task execution time exceeds threshold: {average}s"
        out.append(
            _alert("high_execution_time", "warning", message, average, limits.max_average_duration)
        )
    peak = int(last_hour["max_memory"] or 0)
    if peak > limits.max_memory:
        message = f"A task's peak memory exceeds threshold: {peak / 1048576:.1f} MiB"
        out.append(_alert("high_memory_usage", "warning", message, peak, limits.max_memory))
    return out


def _queue_alerts(health: figures.Health, limits: AlertThresholds) -> list[dict[str, Any]]:
    """The queue's alerts now: no live daemon for due tasks, workers no live daemon runs, the
    oldest due task waiting too long, tasks running too long."""
    out: list[dict[str, Any]] = []
    queue = health.queue
    alive = [d for d in health.daemons if d["alive"]]
    due = sum(
        r["count"]
        for r in queue
        if r["status"] == Status.PENDING and r["oldest_due_seconds"] is not None
    )
    if not alive and due:
        message = f"No daemon is alive and {due} task(s) are due"
        out.append(_alert("no_live_daemon", "critical", message, len(alive), 1))
    for row in health.unserved if alive else []:
        message = (
            f"{row['count']} due task(s) of worker {row['identifier']!r} wait: no live daemon "
            "runs that worker, or it is inactive"
        )
        out.append(
            _alert(
                "waiting_for_worker",
                "critical",
                message,
                row["count"],
                0,
                identifier=row["identifier"],
            )
        )
    oldest = max(
        (float(r["oldest_due_seconds"]) for r in queue if r["oldest_due_seconds"] is not None),
        default=0.0,
    )
    if oldest > limits.max_backlog_age:
        message = f"The oldest due task has waited {oldest:.0f}s ({due} due)"
        out.append(
            _alert("growing_backlog", "warning", message, round(oldest, 1), limits.max_backlog_age)
        )
    if health.stuck:
        stuck = health.stuck
        message = f"{len(stuck)} task(s) running for more than {limits.stuck_after:.0f}s"
        out.append(
            _alert(
                "stuck_tasks",
                "warning",
                message,
                len(stuck),
                limits.stuck_after,
                task_ids=[r["id"] for r in stuck],
            )
        )
    return out


def alerts(request: Request) -> JSONResponse:
    """The alerts now, judged against the server's ``PGSTASK_ALERT_*`` thresholds."""
    bodies.query_params(request, ())
    app = state(request)
    data = alerts_data(app.client, app.http.alerts)
    return JSONResponse({"success": True, "data": data})


def routes() -> list[Route]:
    """Summary, per worker, alerts and timeline."""
    return [
        Route("/stask/performance/summary", summary, methods=["GET"]),
        Route("/stask/performance/workers", workers, methods=["GET"]),
        Route("/stask/performance/alerts", alerts, methods=["GET"]),
        Route("/stask/performance/timeline", timeline, methods=["GET"]),
    ]
