"""Tasks: sTask's run, create, show and progress endpoints; lists, cancel, retry, logs and the
live progress stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pgstask import Task
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.paths import rooted
from pgstask.http.state import AppState, state
from pgstask.task import FINISHED
from pgstask.workers.actions import action_key

#: Fields of the run endpoint's envelope form (``{"options": {...}, "priority": ...}``) and of
#: its query string.
CONTROL_FIELDS = (
    "priority",
    "start_at",
    "max_attempts",
    "dedupe_key",
    "concurrency_key",
    "throttle",
    "replace",
    "depends_on",
    "on_parent_failure",
)
LOG_LINES = 50
#: The query parameters of a task's log records.
LOG_FILTERS = ("limit", "errors_only")


async def run_action(request: Request) -> JSONResponse:
    """Create a task for an active worker: sTask's ``POST /stask/worker/{identifier}/run/{action}``.

    The options are the ``options`` key of the body if it has one (then the body may also carry
    ``priority``, ``start_at``, ``max_attempts``, ``dedupe_key``, ``concurrency_key``,
    ``throttle``, ``replace``, ``depends_on``, ``on_parent_failure`` and ``notify``), else the
    whole body. The query string may carry the same fields but ``notify`` (``depends_on=4,7``)."""
    identifier = bodies.worker_identifier(request)
    action = request.path_params["action"]
    control: dict[str, Any] = dict(bodies.query_params(request, CONTROL_FIELDS))
    if "depends_on" in control:
        control["depends_on"] = bodies.id_list_text(control["depends_on"], "depends_on")
    fields = _control(control)  # checked even where the body's fields replace them
    body = await bodies.json_object(request, empty={})
    notify = None
    if "options" in body:
        bodies.only_known(body, ("options", *CONTROL_FIELDS, "notify"), "field(s)")
        options = body.pop("options")
        notify = body.pop("notify", None)
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ApiError(422, "options must be a JSON object")
        fields = _control({**control, **body})
    else:
        options = body
    fields["notify"] = notify
    task = await run_in_threadpool(_create_for, state(request), identifier, action, options, fields)
    return JSONResponse(
        {
            "success": True,
            "id": task.id,
            "status": task.status_text,
            "message": "Task created successfully",
        },
        201,
        headers={"Location": rooted(request.scope, f"/stask/task/{task.id}")},
    )


def _create_for(
    app: AppState, identifier: str, action: str, options: dict[str, Any], fields: dict[str, Any]
) -> Task:
    """The task of ``run_action``, once its worker is known to be active and to have the action
    (a thread's work: the worker may be read from the database)."""
    worker = app.workers.get(identifier)
    if worker is None or not worker["active"]:
        raise ApiError(404, f"Worker not found or inactive: {identifier}", error="Worker not found")
    known = worker["actions"] or []
    if known and action_key(action) not in {action_key(a) for a in known}:
        raise ApiError(
            422,
            f"worker {identifier!r} has no action {bodies.shown(action)} (its actions: "
            f"{', '.join(known)})",
            error="Unknown action",
        )
    return app.client.create(identifier, action, options, **fields)


def _control(values: dict[str, Any]) -> dict[str, Any]:
    """The checked ``CONTROL_FIELDS`` of a body or query string, as ``Client.create`` takes
    them."""
    return {
        "priority": bodies.priority(values.get("priority")),
        "start_at": bodies.start_at(values.get("start_at")),
        "max_attempts": bodies.max_attempts(values.get("max_attempts")),
        "dedupe_key": bodies.optional_text(values.get("dedupe_key"), "dedupe_key"),
        "concurrency_key": bodies.optional_text(values.get("concurrency_key"), "concurrency_key"),
        "throttle": bodies.throttle(values.get("throttle")),
        "replace": bodies.flag(values.get("replace"), "replace"),
        "depends_on": bodies.depends_on(values.get("depends_on")),
        "on_parent_failure": bodies.on_parent_failure(values.get("on_parent_failure")),
    }


async def create_task(request: Request) -> JSONResponse:
    """sTask's ``POST /stask/task``: a task by identifier, action, data and priority (and the
    other ``CONTROL_FIELDS``: with ``depends_on`` it waits for those tasks). Like an SQL insert,
    it does not require the worker to exist yet (its task waits, visible in stats)."""
    body = await bodies.json_object(request)
    bodies.only_known(body, ("identifier", "action", "data", *CONTROL_FIELDS, "notify"), "field(s)")
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise ApiError(422, "data must be a JSON object")
    task = await run_in_threadpool(
        state(request).client.create,
        bodies.text(body.get("identifier"), "identifier"),
        bodies.text(body.get("action"), "action"),
        data,
        **_control(body),
        notify=body.get("notify"),
    )
    return JSONResponse(
        {"success": True, "task": task.to_dict(), "message": "Task created successfully"},
        201,
        headers={"Location": rooted(request.scope, f"/stask/task/{task.id}")},
    )


def show_task(request: Request) -> JSONResponse:
    """The task, every column, and the tasks it depends on and that depend on it
    (``parents``, ``children``: id, worker, action and status of each)."""
    client = state(request).client
    task: Task = client.get(bodies.task_id(request))
    parents = client.parents(task) if task.depends_on else []
    children = client.children(task) if task.has_children else []
    return JSONResponse(
        {
            "success": True,
            "task": task.to_dict(),
            "parents": [t.brief() for t in parents],
            "children": [t.brief() for t in children],
        }
    )


def task_progress(request: Request) -> JSONResponse:
    """sTask's progress answer, from the database (any host; the unlogged table may be empty),
    with the last 50 log lines."""
    task_id = bodies.task_id(request)
    client = state(request).client
    current = client.progress(task_id)
    lines = [r.line() for r in client.logs(task_id, limit=LOG_LINES)]
    return JSONResponse(
        {
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
    )


FINISHED_TEXTS = frozenset(s.text for s in FINISHED)
STREAM_INTERVAL = 0.5
STREAM_KEEPALIVE = 15.0


async def progress_stream(request: Request) -> Response:
    """Server-Sent Events: a ``progress`` event (the progress endpoint's JSON) whenever it
    changes, a comment every 15 s to keep proxies from closing the stream, and a final ``end``
    event when the task has finished; then the stream closes. A stream whose task's progress
    has not changed for ``stream_idle`` seconds ends with an ``idle`` event instead (the client
    reconnects if it still wants to follow). At most ``max_streams`` streams are open at once,
    ``max_streams_per_token`` per token: beyond that, 429."""
    task_id = bodies.task_id(request)
    app = state(request)
    client = app.client
    token = request.scope["state"]["token"].name
    refused = app.streams.take(token)
    if refused is not None:
        raise ApiError(429, f"{refused}; close one or poll /stask/task/{task_id}/progress")
    try:
        first = await run_in_threadpool(client.progress, task_id)  # 404 before the stream
    except BaseException:
        app.streams.give_back(token)
        raise
    idle_after = app.http.stream_idle
    loop = asyncio.get_running_loop()

    async def events() -> AsyncIterator[str]:
        current: dict[str, Any] | None = first
        sent: dict[str, Any] | None = None
        quiet = 0.0
        changed_at = loop.time()
        while True:
            if current is None:
                current = await run_in_threadpool(client.progress, task_id)
            if current != sent:
                yield f"event: progress\ndata: {json.dumps(current)}\n\n"
                sent, quiet, changed_at = current, 0.0, loop.time()
            if current["status"] in FINISHED_TEXTS:
                end = {"id": task_id, "status": current["status"]}
                yield f"event: end\ndata: {json.dumps(end)}\n\n"
                return
            if loop.time() - changed_at >= idle_after:
                idle = {
                    "id": task_id,
                    "status": current["status"],
                    "reason": f"no change of progress for {idle_after:g} s; reconnect to "
                    "follow the task further",
                }
                yield f"event: idle\ndata: {json.dumps(idle)}\n\n"
                return
            current = None
            await asyncio.sleep(STREAM_INTERVAL)
            quiet += STREAM_INTERVAL
            if quiet >= STREAM_KEEPALIVE:
                yield ": keep-alive\n\n"
                quiet = 0.0

    return _Stream(
        events(),
        release=lambda: app.streams.give_back(token),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _Stream(StreamingResponse):
    """A streaming response that gives its stream slot back however it ends (finished, client
    gone, server stopping)."""

    def __init__(self, content: AsyncIterator[str], *, release: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


LIST_FILTERS = (
    "status",
    "identifier",
    "action",
    "priority",
    "concurrency_key",
    "created_from",
    "created_to",
    "before_id",
    "limit",
)


def list_tasks(request: Request) -> JSONResponse:
    """Tasks newest first, filtered; the next page is ``?before_id=<next_before_id>``."""
    params = bodies.query_params(request, LIST_FILTERS)
    status = bodies.status(params["status"]) if params.get("status") else None
    limit = bodies.whole_number(params.get("limit"), "limit", 50, 1, 1000)
    tasks = state(request).client.list(
        status=status,
        identifier=bodies.filter_text(params.get("identifier"), "identifier"),
        action=bodies.filter_text(params.get("action"), "action"),
        priority=bodies.priority(params["priority"]) if params.get("priority") else None,
        concurrency_key=bodies.filter_text(params.get("concurrency_key"), "concurrency_key"),
        created_from=bodies.start_at(params.get("created_from"), "created_from"),
        created_to=bodies.start_at(params.get("created_to"), "created_to"),
        before_id=bodies.whole_number(params.get("before_id"), "before_id", 0, 1, bodies.MAX_ID)
        or None,
        limit=limit,
    )
    return JSONResponse(
        {
            "success": True,
            "tasks": [t.to_dict() for t in tasks],
            "count": len(tasks),
            "next_before_id": tasks[-1].id if len(tasks) == limit else None,
        }
    )


def cancel_task(request: Request) -> JSONResponse:
    """Cancel a task (a running one is told to stop); 409 when it has finished already."""
    task = state(request).client.cancel(bodies.task_id(request))
    return JSONResponse({"success": True, "message": "Task cancelled", "task": task.to_dict()})


def retry_task(request: Request) -> JSONResponse:
    """Queue a failed or cancelled task again with a fresh set of attempts; 409 otherwise."""
    task = state(request).client.retry(bodies.task_id(request))
    return JSONResponse({"success": True, "message": "Task queued again", "task": task.to_dict()})


def task_logs(request: Request) -> JSONResponse:
    """``?limit=N`` for the last N records, ``?errors_only=true`` for errors only."""
    task_id = bodies.task_id(request)
    params = bodies.query_params(request, LOG_FILTERS)
    limit = bodies.whole_number(params.get("limit"), "limit", 0, 1, 100_000) or None
    errors_only = bodies.flag(params.get("errors_only"), "errors_only")
    client = state(request).client
    client.get(task_id)  # 404 for a task that does not exist
    found = client.error_logs(task_id) if errors_only else client.logs(task_id, limit)
    if errors_only and limit is not None:
        found = found[-limit:]
    records = [r.to_dict() for r in found]
    return JSONResponse({"success": True, "logs": records, "count": len(records)})


def download_logs(request: Request) -> Response:
    """All of a task's records as a text file, in the ``{id}.log`` line format."""
    task_id = bodies.task_id(request)
    client = state(request).client
    client.get(task_id)
    return PlainTextResponse(
        "".join(r.line() + "\n" for r in client.logs(task_id)),
        headers={"Content-Disposition": f'attachment; filename="task-{task_id}.log"'},
    )


def clear_logs(request: Request) -> JSONResponse:
    """Delete a task's log records, answering how many went."""
    task_id = bodies.task_id(request)
    client = state(request).client
    client.get(task_id)
    deleted = client.clear_logs(task_id)
    return JSONResponse(
        {"success": True, "message": "Logs cleared successfully", "deleted": deleted}
    )


def routes() -> list[Route]:
    """The task endpoints, on sTask's singular and plural paths."""
    return [
        Route("/stask/worker/{identifier}/run/{action}", run_action, methods=["POST"]),
        Route("/stask/workers/{identifier}/tasks/{action}", run_action, methods=["POST"]),
        Route("/stask/task", create_task, methods=["POST"]),
        Route("/stask/task/store", create_task, methods=["POST"]),
        Route("/stask/task/{id:id}", show_task, methods=["GET"]),
        Route("/stask/tasks/{id:id}", show_task, methods=["GET"]),
        Route("/stask/task/{id:id}/progress", task_progress, methods=["GET"]),
        Route("/stask/tasks/{id:id}/progress", task_progress, methods=["GET"]),
        Route("/stask/tasks", list_tasks, methods=["GET"]),
        Route("/stask/task/{id:id}/stream", progress_stream, methods=["GET"]),
        Route("/stask/tasks/{id:id}/stream", progress_stream, methods=["GET"]),
        *(
            Route(f"/stask/{base}/{{id:id}}{suffix}", handler, methods=[method])
            for base in ("task", "tasks")
            for suffix, handler, method in (
                ("/cancel", cancel_task, "POST"),
                ("/retry", retry_task, "POST"),
                ("/logs", task_logs, "GET"),
                ("/logs", clear_logs, "DELETE"),
                ("/logs/download", download_logs, "GET"),
            )
        ),
    ]
