"""Webhooks: list, show, add or replace, remove (docs/notifications.md).

pgstask's own endpoints, under ``/stask/webhooks``. ``POST /stask/webhooks`` (the name in the
body) and ``PUT /stask/webhooks/{name}`` both add a webhook or replace the one of that name; the
answer carries the webhook's ``secret`` only when the call set it (a new webhook, a ``secret``
given, or ``rotate_secret``): no read returns it. A bad field is a 422 naming it (a URL that is
not http or https among them), an unknown webhook a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pgstask import webhooks
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.paths import rooted
from pgstask.http.state import state

#: The fields of a write's body beside the name.
FIELDS = (*webhooks.FIELDS, "rotate_secret")


def webhook_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``s_webhooks`` row as the API answers it: times in ISO 8601; ``secret`` only when
    set by this call."""
    out = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
    out.pop("inserted", None)
    if out.get("secret") is None:
        out.pop("secret", None)
    return out


def list_webhooks(request: Request) -> JSONResponse:
    """Every webhook, by name, without secrets."""
    bodies.query_params(request, ())
    rows = state(request).client.webhooks()
    return JSONResponse(
        {"success": True, "webhooks": [webhook_json(r) for r in rows], "count": len(rows)}
    )


def show_webhook(request: Request) -> JSONResponse:
    """One webhook's row, without its secret."""
    row = state(request).client.webhook(request.path_params["webhook"])
    return JSONResponse({"success": True, "webhook": webhook_json(row)})


async def add_webhook(request: Request) -> JSONResponse:
    """Add a webhook (201) or replace the one of that name (200): ``name`` and ``url``, and
    optionally ``events``, ``secret`` or ``rotate_secret``, ``active``, ``description``."""
    body = await bodies.json_object(request)
    bodies.only_known(body, ("name", *FIELDS), "field(s)")
    return await _write(request, bodies.text(body.get("name"), "name"), body)


async def put_webhook(request: Request) -> JSONResponse:
    """As ``add_webhook``, the name in the path."""
    body = await bodies.json_object(request)
    bodies.only_known(body, FIELDS, "field(s)")
    return await _write(request, request.path_params["webhook"], body)


async def _write(request: Request, name: str, body: dict[str, Any]) -> JSONResponse:
    rotate = body.get("rotate_secret", False)
    if not isinstance(rotate, bool):
        raise ApiError(422, "rotate_secret must be true or false")
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise ApiError(422, "active must be true or false")
    description: Any = body.get("description")  # checked by the client (None: empty)
    url: Any = body.get("url")  # any JSON value: the client says what a URL must be
    row = await run_in_threadpool(
        state(request).client.add_webhook,
        name,
        url,
        events=body.get("events"),
        secret=body.get("secret"),
        rotate_secret=rotate,
        active=active,
        description=description,
    )
    inserted = bool(row["inserted"])
    return JSONResponse(
        {
            "success": True,
            "message": "Webhook added" if inserted else "Webhook replaced",
            "webhook": webhook_json(row),
        },
        201 if inserted else 200,
        headers={"Location": rooted(request.scope, f"/stask/webhooks/{quote(name, safe='')}")},
    )


def remove_webhook(request: Request) -> JSONResponse:
    """Delete the webhook; deliveries queued for it fail, saying so."""
    state(request).client.remove_webhook(request.path_params["webhook"])
    return JSONResponse({"success": True, "message": "Webhook removed"})


def routes() -> list[Route]:
    """The webhook endpoints."""
    one = "/stask/webhooks/{webhook}"
    return [
        Route("/stask/webhooks", list_webhooks, methods=["GET"]),
        Route("/stask/webhooks", add_webhook, methods=["POST"]),
        Route(one, show_webhook, methods=["GET"]),
        Route(one, put_webhook, methods=["PUT"]),
        Route(one, remove_webhook, methods=["DELETE"]),
    ]
