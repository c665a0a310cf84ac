"""Presets: list, show, add or replace, remove, and start one.

pgstask's own endpoints (sTask only has "task templates and presets" on its roadmap), under
``/stask/presets``. A preset's name is the rest of the path (``/stask/presets/reports/daily``
names ``reports/daily``), as a schedule's; ``/start`` is a POST, so a name may end with that
word too. ``POST /stask/presets`` (the name in the body) and ``PUT /stask/presets/{name}`` both
add a preset or replace the one of that name. The checks of a preset's fields are
``pgstask.presets.check``'s, those of a start ``Client.create``'s; a bad one is a 422 naming the
field, an unknown preset a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask import presets
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.paths import rooted
from pgstask.http.state import state

#: The fields of the add endpoint's body: the preset's name and its fields.
BODY_FIELDS = ("name", *presets.FIELDS)
#: The fields of a start's body, all optional: the data merged over the preset's, and the
#: task's fields that replace the preset's (or, for ``start_at``, now).
START_FIELDS = ("data", "priority", "start_at", "max_attempts", "dedupe_key")


def preset_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``s_presets`` row as the API answers it: times in ISO 8601."""
    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v
        for k, v in row.items()
        if k != "inserted"
    }


def _name(request: Request) -> str:
    name: str = request.path_params["preset"]
    return name


def list_presets(request: Request) -> JSONResponse:
    """Every preset, by name, with the schedules that start it."""
    bodies.query_params(request, ())
    rows = state(request).client.presets()
    return JSONResponse(
        {"success": True, "presets": [preset_json(r) for r in rows], "count": len(rows)}
    )


def show_preset(request: Request) -> JSONResponse:
    """One preset's row."""
    row = state(request).client.preset(_name(request))
    return JSONResponse({"success": True, "preset": preset_json(row)})


async def add_preset(request: Request) -> JSONResponse:
    """Add a preset (201) or replace the one of that name (200): the body has its ``name``,
    ``identifier`` and ``action``, and optionally ``data``, ``priority``, ``max_attempts`` and
    ``description`` (null: the default)."""
    body = await bodies.json_object(request)
    bodies.only_known(body, BODY_FIELDS, "field(s)")
    return await _write(request, bodies.text(body.get("name"), "name"), body)


async def put_preset(request: Request) -> JSONResponse:
    """As ``add_preset``, the name in the path."""
    body = await bodies.json_object(request)
    bodies.only_known(body, presets.FIELDS, "field(s)")
    return await _write(request, _name(request), body)


async def _write(request: Request, name: str, body: dict[str, Any]) -> JSONResponse:
    identifier = bodies.text(body.get("identifier"), "identifier")
    action = bodies.text(body.get("action"), "action")
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise ApiError(422, "data must be a JSON object")
    given = {
        k: body[k] for k in ("priority", "max_attempts", "description") if body.get(k) is not None
    }
    row = await run_in_threadpool(
        state(request).client.add_preset, name, identifier, action, data, **given
    )
    inserted = bool(row["inserted"])
    return JSONResponse(
        {
            "success": True,
            "message": "Preset added" if inserted else "Preset replaced",
            "preset": preset_json(row),
        },
        201 if inserted else 200,
        headers={"Location": rooted(request.scope, f"/stask/presets/{quote(name, safe='')}")},
    )


def remove_preset(request: Request) -> JSONResponse:
    """Delete the preset; its tasks stay. ``schedules`` names the schedules that still start
    it: each is disabled at its next slot."""
    left = state(request).client.remove_preset(_name(request))
    return JSONResponse({"success": True, "message": "Preset removed", "schedules": left})


async def start_preset(request: Request) -> JSONResponse:
    """Enqueue one task of the preset: 201 with the task. The body (optional) has ``data``,
    merged over the preset's, and ``priority``, ``start_at``, ``max_attempts`` and
    ``dedupe_key``; null or absent: the preset's (``start_at``: now)."""
    name = _name(request)
    body = await bodies.json_object(request, empty={})
    bodies.only_known(body, START_FIELDS, "field(s)")
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise ApiError(422, "data must be a JSON object")
    given = body.get("priority"), body.get("max_attempts")
    task = await run_in_threadpool(
        state(request).client.create_from_preset,
        name,
        data,
        priority=None if given[0] is None else bodies.priority(given[0]),
        start_at=bodies.start_at(body.get("start_at")),
        max_attempts=None if given[1] in (None, "") else bodies.max_attempts(given[1]),
        dedupe_key=bodies.optional_text(body.get("dedupe_key"), "dedupe_key"),
    )
    return JSONResponse(
        {"success": True, "message": f"Task queued from preset {name}", "task": task.to_dict()},
        201,
        headers={"Location": rooted(request.scope, f"/stask/task/{task.id}")},
    )


def routes() -> list[Route]:
    """The preset endpoints; the start first, so that a name is what comes before
    ``/start``."""
    one = "/stask/presets/{preset:preset}"
    return [
        Route("/stask/presets", list_presets, methods=["GET"]),
        Route("/stask/presets", add_preset, methods=["POST"]),
        Route(f"{one}/start", start_preset, methods=["POST"]),
        Route(one, show_preset, methods=["GET"]),
        Route(one, put_preset, methods=["PUT"]),
        Route(one, remove_preset, methods=["DELETE"]),
    ]
