"""Workers: list, show, activate, deactivate, settings, discover, rescan, clean-orphaned.

sTask's paths are singular (``/stask/worker/activate`` with ``identifier`` in the body); its
older documents used plural ones (``/stask/workers/activate``): both are served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask.errors import ConfigurationError
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.state import AppState, state
from pgstask.workers import registry


def _worker_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
    out["uuid"] = str(row["uuid"])
    out["installed_here"] = registry.load_class(row["class"]) is not None
    return out


def list_workers(request: Request) -> JSONResponse:
    """Registered workers; ``?active_only=true`` for the active ones."""
    params = bodies.query_params(request, ("active_only",))
    active_only = bodies.flag(params.get("active_only"), "active_only")
    rows = state(request).client.workers(active_only=active_only)
    return JSONResponse({"success": True, "workers": [_worker_json(r) for r in rows]})


def show_worker(request: Request) -> JSONResponse:
    """One worker's row, and whether its class imports where the API runs."""
    row = state(request).client.worker(bodies.worker_identifier(request))
    return JSONResponse({"success": True, "worker": _worker_json(row)})


async def _identifier(request: Request) -> str:
    body = await bodies.json_object(request)
    bodies.only_known(body, ("identifier",), "field(s)")
    return bodies.text(body.get("identifier"), "identifier")


async def activate(request: Request) -> JSONResponse:
    """Activate the worker the body names: daemons claim its tasks again."""
    return await _set_active(request, True)


async def deactivate(request: Request) -> JSONResponse:
    """Deactivate the worker the body names: its pending tasks wait unclaimed and
    the run endpoint refuses it."""
    return await _set_active(request, False)


async def _set_active(request: Request, active: bool) -> JSONResponse:
    identifier = await _identifier(request)
    app = state(request)
    method = app.client.activate_worker if active else app.client.deactivate_worker
    worker = await run_in_threadpool(_changed, app, method, identifier)
    word = "activated" if active else "deactivated"
    return JSONResponse({"success": True, "message": f"Worker {word}", "worker": worker})


def _changed(
    app: AppState, change: Callable[..., dict[str, Any]], identifier: str, *args: Any
) -> dict[str, Any]:
    """``change(identifier, *args)`` (a ``Client`` method that changes the worker's row and
    returns it), then the cached row forgotten, and the new one as JSON. A thread's work:
    ``_worker_json`` imports the worker's class."""
    row = change(identifier, *args)
    app.workers.clear(identifier)
    return _worker_json(row)


async def update_settings(request: Request) -> JSONResponse:
    """Merge the body's ``settings`` object into the worker's stored settings; running daemons
    reload them at once."""
    identifier = bodies.worker_identifier(request)
    body = await bodies.json_object(request)
    bodies.only_known(body, ("settings",), "field(s)")
    settings = body.get("settings")
    if not isinstance(settings, dict):
        raise ApiError(422, "settings must be a JSON object")
    app = state(request)
    try:
        worker = await run_in_threadpool(
            _changed, app, app.client.update_worker_settings, identifier, settings
        )
    except ConfigurationError as exc:  # a retry setting no daemon could use
        raise ApiError(422, str(exc), error="Invalid settings") from None
    return JSONResponse({"success": True, "message": "Settings saved", "worker": worker})


def discover(request: Request) -> JSONResponse:
    """Register the worker classes installed where the API runs."""
    app = state(request)
    new = app.client.discover_workers()
    app.workers.clear()
    return JSONResponse(
        {"success": True, "message": f"Discovered {len(new)} new workers", "discovered": new}
    )


def rescan(request: Request) -> JSONResponse:
    """Refresh the class path and metadata of registered workers; answers those that changed."""
    app = state(request)
    changed = app.client.rescan_workers()
    app.workers.clear()
    return JSONResponse(
        {"success": True, "message": f"Refreshed {len(changed)} workers", "updated": changed}
    )


def clean_orphaned(request: Request) -> JSONResponse:
    """Delete workers whose class cannot be imported where the API runs (their pending tasks
    stay pending)."""
    app = state(request)
    removed = app.client.clean_orphaned_workers()
    app.workers.clear()
    return JSONResponse(
        {
            "success": True,
            "message": f"Removed {len(removed)} orphaned workers",
            "deleted": len(removed),
            "identifiers": removed,
        }
    )


def routes() -> list[Route]:
    """The worker endpoints; those named in the body on sTask's singular and plural paths."""
    out = [
        Route("/stask/workers", list_workers, methods=["GET"]),
        Route("/stask/worker/{identifier}", show_worker, methods=["GET"]),
        Route("/stask/worker/{identifier}/settings", update_settings, methods=["POST"]),
    ]
    for base in ("worker", "workers"):
        out += [
            Route(f"/stask/{base}/activate", activate, methods=["POST"]),
            Route(f"/stask/{base}/deactivate", deactivate, methods=["POST"]),
            Route(f"/stask/{base}/discover", discover, methods=["POST"]),
            Route(f"/stask/{base}/rescan", rescan, methods=["POST"]),
            Route(f"/stask/{base}/clean-orphaned", clean_orphaned, methods=["POST"]),
        ]
    return out
