"""Creating tasks and reading them: sTask's run, create, show and progress endpoints."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask import Task
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.state import state
from pgstask.workers.actions import action_key

#: Fields of the run endpoint's envelope form (``{"options": {...}, "priority": ...}``) and of
#: its query string.
CONTROL_FIELDS = ("priority", "start_at", "max_attempts", "dedupe_key")
LOG_LINES = 50


async def run_action(request: Request) -> JSONResponse:
    """Create a task for an active worker: sTask's ``POST /stask/worker/{identifier}/run/{action}``.

    The options are the ``options`` key of the body if it has one (then the body may also carry
    ``priority``, ``start_at``, ``max_attempts`` and ``dedupe_key``), else the whole body. The
    query string may carry the same four fields."""
    identifier = request.path_params["identifier"]
    action = request.path_params["action"]
    control: dict[str, Any] = dict(bodies.query_params(request, CONTROL_FIELDS))
    body = await bodies.json_object(request, empty={})
    if "options" in body:
        bodies.only_known(body, ("options", *CONTROL_FIELDS), "field(s)")
        options = body.pop("options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ApiError(422, "options must be a JSON object")
        control.update(body)
    else:
        options = body
    app = state(request)
    worker = await run_in_threadpool(app.workers.get, identifier)
    if worker is None or not worker["active"]:
        raise ApiError(404, f"Worker not found or inactive: {identifier}", error="Worker not found")
    known = worker["actions"] or []
    if known and action_key(action) not in {action_key(a) for a in known}:
        raise ApiError(
            422,
            f"worker {identifier!r} has no action {action!r} (its actions: {', '.join(known)})",
            error="Unknown action",
        )
    task = await run_in_threadpool(
        app.client.create,
        identifier,
        action,
        options,
        priority=bodies.priority(control.get("priority")),
        start_at=bodies.start_at(control.get("start_at")),
        max_attempts=bodies.whole_number(control.get("max_attempts"), "max_attempts", 3, 1, 1000),
        dedupe_key=bodies.optional_text(control.get("dedupe_key"), "dedupe_key"),
    )
    return JSONResponse(
        {
            "success": True,
            "id": task.id,
            "status": task.status_text,
            "message": "Task created successfully",
        },
        201,
        headers={"Location": f"/stask/task/{task.id}"},
    )


async def create_task(request: Request) -> JSONResponse:
    """sTask's ``POST /stask/task``: a task by identifier, action, data and priority. Like an
    SQL insert, it does not require the worker to exist yet (its task waits, visible in stats)."""
    body = await bodies.json_object(request)
    bodies.only_known(body, ("identifier", "action", "data", *CONTROL_FIELDS), "field(s)")
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise ApiError(422, "data must be a JSON object")
    task = await run_in_threadpool(
        state(request).client.create,
        bodies.text(body.get("identifier"), "identifier"),
        bodies.text(body.get("action"), "action"),
        data,
        priority=bodies.priority(body.get("priority")),
        start_at=bodies.start_at(body.get("start_at")),
        max_attempts=bodies.whole_number(body.get("max_attempts"), "max_attempts", 3, 1, 1000),
        dedupe_key=bodies.optional_text(body.get("dedupe_key"), "dedupe_key"),
    )
    return JSONResponse(
        {"success": True, "task": task.to_dict(), "message": "Task created successfully"},
        201,
        headers={"Location": f"/stask/task/{task.id}"},
    )


async def show_task(request: Request) -> JSONResponse:
    task: Task = await run_in_threadpool(state(request).client.get, bodies.task_id(request))
    return JSONResponse({"success": True, "task": task.to_dict()})


async def task_progress(request: Request) -> JSONResponse:
    """sTask's progress answer, from the database (any host; the unlogged table may be empty),
    with the last 50 log lines."""
    task_id = bodies.task_id(request)
    client = state(request).client

    def read() -> dict[str, Any]:
        current = client.progress(task_id)
        lines = [r.line() for r in client.logs(task_id, limit=LOG_LINES)]
        return {
            "success": True,
            "code": 200,
            "id": current["id"],
            "status": current["status"],
            "progress": current["progress"],
            "processed": current["processed"],
            "total": current["total"],
            "eta": current["eta_text"],
            "eta_seconds": current["eta"],
            "message": current["message"],
            "log_lines": lines,
        }

    return JSONResponse(await run_in_threadpool(read))


def routes() -> list[Route]:
    return [
        Route("/stask/worker/{identifier}/run/{action}", run_action, methods=["POST"]),
        Route("/stask/workers/{identifier}/tasks/{action}", run_action, methods=["POST"]),
        Route("/stask/task", create_task, methods=["POST"]),
        Route("/stask/task/store", create_task, methods=["POST"]),
        Route("/stask/task/{id:int}", show_task, methods=["GET"]),
        Route("/stask/tasks/{id:int}", show_task, methods=["GET"]),
        Route("/stask/task/{id:int}/progress", task_progress, methods=["GET"]),
        Route("/stask/tasks/{id:int}/progress", task_progress, methods=["GET"]),
    ]
