"""Health, readiness and the queue's counts."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pgstask import migrate
from pgstask.http import bodies
from pgstask.http.errors import DATABASE_UNREACHABLE
from pgstask.http.metrics import QueueCollector
from pgstask.http.state import state

_log = logging.getLogger(__name__)

#: Uploads above this size are sent in chunks of CHUNK_SIZE (sTask's figures).
SINGLE_UPLOAD_LIMIT = 2 * 1024 * 1024
CHUNK_SIZE = 1024 * 1024


async def healthz(request: Request) -> JSONResponse:
    """The process answers (no database access; no token needed)."""
    return JSONResponse({"status": "ok"})


def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is the one this pgstask needs."""
    client = state(request).client
    try:
        current = migrate.current_revision(client.dsn)
    except Exception as exc:  # any failure means "not ready"; the detail is for the log
        _log.warning("readyz: the database does not answer: %s", exc)
        return JSONResponse(
            {"status": "unavailable", "database": False, "reason": DATABASE_UNREACHABLE}, 503
        )
    head = migrate.head_revision()
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": True,
                "reason": f"schema at {current or 'none'}, needs {head}: run `pgstask migrate`",
            },
            503,
        )
    return JSONResponse({"status": "ready", "database": True, "schema": current})


def stats(request: Request) -> JSONResponse:
    """sTask's ``getStats()`` keys (unwrapped, as sTask answers) plus ``preparing``,
    ``cancelled`` and the pending tasks that wait for a worker."""
    return JSONResponse(state(request).client.stats())


async def clean(request: Request) -> JSONResponse:
    """Delete finished tasks (completed, cancelled, failed) and log records older than
    ``days`` (default 30)."""
    body = await bodies.json_object(request, empty={})
    bodies.only_known(body, ("days",), "field(s)")
    days = bodies.days(body.get("days"), 30.0)
    client = state(request).client

    def run() -> tuple[int, int]:
        return client.clean_old_tasks(days), client.clean_old_logs(days)

    tasks, logs = await run_in_threadpool(run)
    return JSONResponse(
        {
            "success": True,
            "message": f"Cleaned {tasks} tasks",
            "deleted_tasks": tasks,
            "deleted_logs": logs,
        }
    )


async def cache_stats(request: Request) -> JSONResponse:
    """The worker cache's figures in this process (``WorkerCache.stats``)."""
    return JSONResponse({"success": True, "data": state(request).workers.stats()})


async def cache_clear(request: Request) -> JSONResponse:
    """Forget cached workers (one or all) here, and make running daemons reload settings."""
    body = await bodies.json_object(request, empty={})
    bodies.only_known(body, ("identifier",), "field(s)")
    identifier = bodies.optional_text(body.get("identifier"), "identifier")
    app = state(request)
    app.workers.clear(identifier)
    await run_in_threadpool(app.client.reload_workers, identifier)
    message = (
        f"Cache cleared for worker: {identifier}" if identifier else "All worker cache cleared"
    )
    return JSONResponse({"success": True, "message": message})


async def server_limits(request: Request) -> JSONResponse:
    """sTask's upload limits, from this server's settings."""
    http = state(request).http
    return JSONResponse(
        {
            "maxFileSize": http.max_upload,
            "chunkSize": CHUNK_SIZE,
            "singleUploadLimit": min(http.max_upload, SINGLE_UPLOAD_LIMIT),
        }
    )


def metrics(request: Request) -> Response:
    """Prometheus text format (see ``pgstask.http.metrics``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(state(request).client))
    body = generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def routes() -> list[Route]:
    """Health, readiness, counts, metrics, clean-up, the cache and the upload limits."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/stask/stats", stats, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/stask/clean", clean, methods=["POST"]),
        Route("/stask/cache/stats", cache_stats, methods=["GET"]),
        Route("/stask/cache/clear", cache_clear, methods=["POST"]),
        Route("/stask/server-limits", server_limits, methods=["GET"]),
    ]
