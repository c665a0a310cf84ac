"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /stask/openapi.json``.

The document is assembled from two sources so that it cannot drift from the app:

- the app's own routes give every path (sTask's singular and plural aliases alike), its methods
  and its path parameters, typed from the route's convertor (``{id:id}`` is an int64 of at least
  1, a plain segment a string without ``/``); which routes need no token comes from
  ``middleware.PUBLIC_PATHS`` and which methods are writes from ``middleware.SAFE_METHODS``;
- ``OPERATIONS`` (``_openapi_operations.py``, the preset endpoints' in ``_openapi_presets.py``,
  the webhook endpoints' in ``_openapi_webhooks.py``, the workflow endpoints' in
  ``_openapi_workflows.py``)
  describes each endpoint once: summary, query parameters, request body, its own answers; the
  parameters and bodies are built in
  ``_openapi_inputs.py`` (the task endpoints' query parameters and the task's fields in a body
  from the routes' own allowlists), the JSON schemas are in ``_openapi_schemas.py``.

A route whose endpoint has no description is left out and named by ``undocumented()``; the test
suite fails on it, so a new route cannot ship undescribed. Routes made with
``include_in_schema=False`` (pages, not API operations) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starlette.convertors import IntegerConvertor
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from pgstask import __version__
from pgstask.http import bodies
from pgstask.http._openapi_operations import OPERATIONS, Operation
from pgstask.http._openapi_presets import PRESET_OPERATIONS
from pgstask.http._openapi_schemas import COMPONENTS, error_answer, json_answer
from pgstask.http._openapi_webhooks import WEBHOOK_OPERATIONS
from pgstask.http._openapi_workflows import WORKFLOW_OPERATIONS
from pgstask.http.middleware import PUBLIC_PATHS, SAFE_METHODS
from pgstask.http.paths import rooted

PATH = "/stask/openapi.json"

DESCRIPTION = """\
pgstask's HTTP API: sTask's paths and field names, with an HTTP status code that matches every
error. Every route but `GET /healthz` needs a token: `Authorization: Bearer <token>` (the
dashboard sends the same token in its session cookie instead). A read-only token gets 403 on
writes. Every error is JSON: `{"success": false, "code", "error", "message"}`. The dashboard's
HTML pages (`/stask/`, `/stask/login`, `/stask/logout`, `/stask/static/…`) are for browsers and
are not described here.
"""


def _described_routes(routes: Iterable[BaseRoute]) -> Iterable[tuple[Route, str]]:
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield route, method


def undocumented(routes: Iterable[BaseRoute]) -> list[str]:
    """``METHOD /path`` of every API route that ``OPERATIONS`` does not describe."""
    return [
        f"{method} {route.path}"
        for route, method in _described_routes(routes)
        if (route.endpoint, method) not in _ALL
    ]


def document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (an app's ``app.routes``)."""
    paths: dict[str, dict[str, Any]] = {}
    first_path: dict[tuple[Any, str], str] = {}
    for route, method in _described_routes(routes):
        described = _ALL.get((route.endpoint, method))
        if described is None:
            continue
        key = (route.endpoint, method)
        canonical = first_path.setdefault(key, route.path_format)
        operation = _operation(route, method, described, alias_of=canonical)
        paths.setdefault(route.path_format, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "pgstask HTTP API", "version": __version__, "description": DESCRIPTION},
        "tags": [
            {"name": "tasks", "description": "Creating, reading and changing tasks"},
            {"name": "files", "description": "Result downloads and uploads"},
            {"name": "workers", "description": "Registered workers and their settings"},
            {"name": "schedules", "description": "Tasks enqueued by cron expressions"},
            {"name": "presets", "description": "Named task templates, and starting one"},
            {"name": "webhooks", "description": "Where notifications of finished tasks go"},
            {"name": "performance", "description": "Figures and alerts of the queue"},
            {"name": "service", "description": "Health, counts, cache, limits, metrics"},
        ],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": COMPONENTS,
    }


def _operation(route: Route, method: str, described: Operation, *, alias_of: str) -> dict[str, Any]:
    name = route.endpoint.__name__
    alias = alias_of != route.path_format
    out: dict[str, Any] = {
        "operationId": f"{name}_via_{_alias_word(route.path_format)}" if alias else name,
        "summary": described.summary,
        "tags": [described.tag],
    }
    description = described.description
    if alias:
        description = f"The same as `{method} {alias_of}`. {description}".strip()
    if description:
        out["description"] = description
    parameters = [_path_parameter(name, c) for name, c in route.param_convertors.items()]
    parameters += described.query
    if parameters:
        out["parameters"] = parameters
    if described.body is not None:
        out["requestBody"] = described.body
    if route.path in PUBLIC_PATHS:
        out["security"] = []
    out["responses"] = _responses(route, method, described)
    return out


def _alias_word(path: str) -> str:
    """The fixed segments of a path (``tasks_logs`` for ``/stask/tasks/{id}/logs``): what
    tells an alias's operationId apart."""
    return "_".join(p for p in path.strip("/").split("/")[1:] if not p.startswith("{"))


#: Path parameters by name: description and an example that exists where the examples run.
_PATH_PARAMETERS = {
    "id": ("A task id", 1),
    "identifier": ("A worker's identifier", "demo"),
    "action": ("An action of the worker, in any of sTask's spellings", "count"),
    "name": ("A schedule's name (it may hold /)", "nightly-count"),
    "preset": ("A preset's name (it may hold /)", "count-to-3"),
    "webhook": ("A webhook's name", "ops"),
}


def _path_parameter(name: str, convertor: Any) -> dict[str, Any]:
    description, example = _PATH_PARAMETERS.get(name, ("", None))
    if isinstance(convertor, IntegerConvertor):
        schema: dict[str, Any] = {
            "type": "integer",
            "format": "int64",
            "minimum": 1,
            "maximum": bodies.MAX_ID,
        }
    else:
        # What the router matches for a plain segment: anything without a slash.
        schema = {"type": "string", "pattern": f"^{convertor.regex}$"}
    if example is not None:
        schema["examples"] = [example]
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _responses(route: Route, method: str, described: Operation) -> dict[str, Any]:
    answers: dict[str, Any] = {str(code): answer for code, answer in described.answers.items()}
    errors = {400, *described.errors}  # 400 everywhere: a Host header that is not allowed
    if route.path not in PUBLIC_PATHS:
        errors.update((401, 429))
    if method not in SAFE_METHODS:
        errors.add(403)
    if described.body is not None:
        errors.update((413, 415))
    if any(isinstance(c, IntegerConvertor) for c in route.param_convertors.values()):
        errors.add(404)
    if described.database:
        errors.add(503)
    for code in sorted(errors):
        answers.setdefault(str(code), error_answer(code))
    return dict(sorted(answers.items()))


async def serve(request: Request) -> JSONResponse:
    """This API's OpenAPI document; mounted under a prefix, with that prefix as its server."""
    described = document(request.app.routes)
    if request.scope.get("root_path"):
        described = {**described, "servers": [{"url": rooted(request.scope, "")}]}
    return JSONResponse(described)


#: Every description: the endpoints' and this document's own.
_ALL: dict[tuple[Any, str], Operation] = {
    **OPERATIONS,
    **PRESET_OPERATIONS,
    **WEBHOOK_OPERATIONS,
    **WORKFLOW_OPERATIONS,
    (serve, "GET"): Operation(
        "This document",
        "service",
        {200: json_answer("OpenAPI 3.1", {"type": "object", "required": ["openapi", "paths"]})},
        database=False,
    ),
}


def routes() -> list[Route]:
    """The document's own route, ``GET /stask/openapi.json``."""
    return [Route(PATH, serve, methods=["GET"])]
