"""Schedules: list, show, add or replace, pause, resume, run now, remove.

pgstask's own endpoints (sTask had no schedules), beside sTask's under ``/stask``, on plural
paths only. A schedule's name is the rest of the path (``/stask/schedules/reports/nightly``
names ``reports/nightly``); ``/pause``, ``/resume`` and ``/run`` are POSTs, so a name may end
with those words too. The checks of a schedule's fields are ``pgstask.schedules.check``'s; a
bad one is a 422 naming the field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask import schedules
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.paths import rooted
from pgstask.http.state import state

#: The fields of the add endpoint's body: the schedule's name, its worker and its fields.
BODY_FIELDS = ("name", "identifier", *schedules.FIELDS)


def schedule_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``s_schedules`` row as the API answers it: times in ISO 8601."""
    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v
        for k, v in row.items()
        if k != "inserted"
    }


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


def list_schedules(request: Request) -> JSONResponse:
    """Every schedule, by name, with its next and last slot, its last task and its state."""
    bodies.query_params(request, ())
    rows = state(request).client.schedules()
    return JSONResponse(
        {"success": True, "schedules": [schedule_json(r) for r in rows], "count": len(rows)}
    )


def show_schedule(request: Request) -> JSONResponse:
    """One schedule's row."""
    row = state(request).client.schedule(_name(request))
    return JSONResponse({"success": True, "schedule": schedule_json(row)})


async def add_schedule(request: Request) -> JSONResponse:
    """Add a schedule (201) or replace the one of that name added before (200): the body has
    its ``name``, its worker's ``identifier`` and its fields (``preset`` instead of
    ``identifier`` and ``action`` for one that starts a preset); a null field is its default. A
    schedule declared in code is changed in code (422)."""
    body = await bodies.json_object(request)
    bodies.only_known(body, BODY_FIELDS, "field(s)")
    name = bodies.text(body.get("name"), "name")
    # A schedule that starts a preset takes its worker from the preset.
    read = bodies.text if body.get("preset") is None else bodies.optional_text
    identifier = read(body.get("identifier"), "identifier")
    if body.get("data") is not None and not isinstance(body["data"], dict):
        raise ApiError(422, "data must be a JSON object")
    fields = {k: body[k] for k in schedules.FIELDS if body.get(k) is not None}
    row = await run_in_threadpool(state(request).client.add_schedule, name, identifier, fields)
    inserted = bool(row["inserted"])
    return JSONResponse(
        {
            "success": True,
            "message": "Schedule added" if inserted else "Schedule replaced",
            "schedule": schedule_json(row),
        },
        201 if inserted else 200,
        headers={"Location": rooted(request.scope, f"/stask/schedules/{quote(name, safe='')}")},
    )


def pause_schedule(request: Request) -> JSONResponse:
    """Stop the schedule firing until it is resumed."""
    row = state(request).client.pause_schedule(_name(request))
    return JSONResponse(
        {"success": True, "message": "Schedule paused", "schedule": schedule_json(row)}
    )


def resume_schedule(request: Request) -> JSONResponse:
    """Let the schedule fire again, from its next slot (not the ones it missed while paused)."""
    row = state(request).client.resume_schedule(_name(request))
    return JSONResponse(
        {"success": True, "message": "Schedule resumed", "schedule": schedule_json(row)}
    )


def run_schedule(request: Request) -> JSONResponse:
    """Enqueue one task of the schedule now (paused or not), its slots untouched: 201 with the
    task."""
    name = _name(request)
    task = state(request).client.run_schedule(name)
    return JSONResponse(
        {"success": True, "message": f"Task queued by schedule {name}", "task": task.to_dict()},
        201,
        headers={"Location": rooted(request.scope, f"/stask/task/{task.id}")},
    )


def remove_schedule(request: Request) -> JSONResponse:
    """Delete the schedule and its record of fired slots; its tasks stay."""
    state(request).client.remove_schedule(_name(request))
    return JSONResponse({"success": True, "message": "Schedule removed"})


def routes() -> list[Route]:
    """The schedule endpoints; the POSTs on a schedule first, so that its name is what comes
    before ``/pause``, ``/resume`` or ``/run``."""
    one = "/stask/schedules/{name:schedule}"
    return [
        Route("/stask/schedules", list_schedules, methods=["GET"]),
        Route("/stask/schedules", add_schedule, methods=["POST"]),
        Route(f"{one}/pause", pause_schedule, methods=["POST"]),
        Route(f"{one}/resume", resume_schedule, methods=["POST"]),
        Route(f"{one}/run", run_schedule, methods=["POST"]),
        Route(one, show_schedule, methods=["GET"]),
        Route(one, remove_schedule, methods=["DELETE"]),
    ]
