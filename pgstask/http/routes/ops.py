"""Health, readiness and the queue's counts."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask import migrate
from pgstask.http.state import state


async def healthz(request: Request) -> JSONResponse:
    """The process answers (no database access; no token needed)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is the one this pgstask needs."""
    client = state(request).client

    def check() -> tuple[int, dict[str, Any]]:
        try:
            current = migrate.current_revision(client.dsn)
        except Exception as exc:  # any failure means "not ready"; the reason is in the body
            return 503, {"status": "unavailable", "database": False, "reason": str(exc)}
        head = migrate.head_revision()
        if current != head:
            return 503, {
                "status": "unavailable",
                "database": True,
                "reason": f"schema at {current or 'none'}, needs {head}: run `pgstask migrate`",
            }
        return 200, {"status": "ready", "database": True, "schema": current}

    code, body = await run_in_threadpool(check)
    return JSONResponse(body, code)


async def stats(request: Request) -> JSONResponse:
    """sTask's ``getStats()`` keys (unwrapped, as sTask answers) plus ``preparing``,
    ``cancelled`` and the pending tasks that wait for a worker."""
    return JSONResponse(await run_in_threadpool(state(request).client.stats))


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/stask/stats", stats, methods=["GET"]),
    ]
