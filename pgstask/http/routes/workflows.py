"""Workflows: creating tasks that depend on one another in one transaction
(``POST /stask/workflows``), and reading the workflow a task belongs to
(``GET /stask/task/{id}/workflow``). The rules (refs, cycles, missing parents) are
``Client.create_workflow``'s and the database's; this module reads each item's JSON the way the
create endpoint reads its body, naming the item in every error."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask import workflow
from pgstask._client_workflows import MAX_WORKFLOW
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.state import state

#: The fields of one task of a workflow: a created task's, and its place in the workflow.
ITEM_FIELDS = (
    "identifier",
    "action",
    "data",
    "priority",
    "start_at",
    "max_attempts",
    "dedupe_key",
    "concurrency_key",
    "ref",
    "depends_on",
    "on_parent_failure",
)


async def create_workflow(request: Request) -> JSONResponse:
    """Create the tasks of ``tasks`` in one transaction: each may name a ``ref`` (unique in the
    call) and depend on the refs of other items and the ids of existing tasks, in any order.
    All are created or none: a cycle, a ref that no item has, or a parent that does not exist is
    a 422 naming the item."""
    body = await bodies.json_object(request)
    bodies.only_known(body, ("tasks",), "field(s)")
    given = body.get("tasks")
    if not isinstance(given, list) or not given:
        raise ApiError(422, "tasks must be a non-empty list of task objects")
    if len(given) > workflow.MAX_TASKS:
        raise ApiError(422, f"tasks may list at most {workflow.MAX_TASKS} tasks")
    items = [_item(i, item) for i, item in enumerate(given)]
    created = await run_in_threadpool(state(request).client.create_workflow, items)
    refs = {
        item["ref"]: task.id
        for item, task in zip(items, created, strict=True)
        if item.get("ref") is not None
    }
    return JSONResponse(
        {
            "success": True,
            "message": f"Workflow of {len(created)} tasks created",
            "tasks": [t.to_dict() for t in created],
            "refs": refs,
        },
        201,
    )


def _item(position: int, item: Any) -> dict[str, Any]:
    """One task of a workflow as ``Client.create_workflow`` takes it; a 422 naming its position
    (``task #2: …``, as the client's own errors do)."""
    where = f"task #{position}"
    if not isinstance(item, dict):
        raise ApiError(422, f"{where}: must be a JSON object, not {type(item).__name__}")
    try:
        bodies.only_known(item, ITEM_FIELDS, "field(s)")
        data = item.get("data")
        if data is not None and not isinstance(data, dict):
            raise ApiError(422, "data must be a JSON object")
        out: dict[str, Any] = {
            "identifier": bodies.text(item.get("identifier"), "identifier"),
            "action": bodies.text(item.get("action"), "action"),
            "data": data,
            "priority": bodies.priority(item.get("priority")),
            "start_at": bodies.start_at(item.get("start_at")),
            "max_attempts": bodies.max_attempts(item.get("max_attempts")),
            "dedupe_key": bodies.optional_text(item.get("dedupe_key"), "dedupe_key"),
            "concurrency_key": bodies.optional_text(item.get("concurrency_key"), "concurrency_key"),
            "on_parent_failure": bodies.on_parent_failure(item.get("on_parent_failure")),
        }
    except ApiError as exc:
        raise ApiError(422, f"{where}: {exc.detail}") from None
    # ref and depends_on (refs and ids) are checked with the whole list (workflow.from_items).
    for name in ("ref", "depends_on"):
        if item.get(name) is not None:
            out[name] = item[name]
    return out


def show_workflow(request: Request) -> JSONResponse:
    """The workflow of a task: every task joined to it by dependencies, in either direction
    (itself included, lowest ids first, at most ``MAX_WORKFLOW``), and the dependencies among
    them (``edges``: ``task_id`` depends on ``parent_id``). A task without dependencies is a
    workflow of one."""
    task_id = bodies.task_id(request)
    tasks, edges = state(request).client.workflow_of(task_id)
    return JSONResponse(
        {
            "success": True,
            "id": task_id,
            "tasks": [t.to_dict() for t in tasks],
            "edges": [{"task_id": child, "parent_id": parent} for child, parent in edges],
            "count": len(tasks),
            "truncated": len(tasks) >= MAX_WORKFLOW,
        }
    )


def routes() -> list[Route]:
    """The workflow endpoints (a task's workflow on sTask's singular and plural paths)."""
    return [
        Route("/stask/workflows", create_workflow, methods=["POST"]),
        Route("/stask/task/{id:id}/workflow", show_workflow, methods=["GET"]),
        Route("/stask/tasks/{id:id}/workflow", show_workflow, methods=["GET"]),
    ]
