"""The OpenAPI document: every route described, valid OpenAPI 3.1, served with a token.

The property-based run against the document is ``test_http_schemathesis.py``.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pgstask.http import create_app, openapi
from pgstask.settings import Settings
from tests.http_support import RO_TOKEN, api, http_settings


def _routes() -> list[Any]:
    """The app's routes (building the app opens no connection)."""
    return list(create_app(Settings(dsn="postgresql:///unused"), http_settings()).routes)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_every_route_of_the_app_is_described() -> None:
    routes = _routes()
    assert openapi.undocumented(routes) == []
    operations = _operations(openapi.document(routes))
    served = {
        (method, route.path_format)
        for route in routes
        if isinstance(route, Route) and route.include_in_schema
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert set(operations) == served
    pages = {r.path for r in routes if not isinstance(r, Route) or not r.include_in_schema}
    assert pages == {"/stask/login", "/stask/logout", "/stask", "/stask/", "/stask/static"}
    for alias in ("/stask/task/{id}", "/stask/tasks/{id}", "/stask/task/store"):
        assert alias in {path for _, path in operations}
    assert ("POST", "/stask/workers/{identifier}/tasks/{action}") in operations
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(ids) == len(set(ids))


async def _page(request: Request) -> PlainTextResponse:
    return PlainTextResponse("a new route")


def test_a_route_without_a_description_is_named_and_left_out() -> None:
    routes = [
        *_routes(),
        Route("/stask/new", _page, methods=["GET", "POST"]),
        Route("/stask/page", _page, include_in_schema=False),  # a page, not an API operation
    ]
    assert openapi.undocumented(routes) == ["GET /stask/new", "POST /stask/new"]
    paths = openapi.document(routes)["paths"]
    assert "/stask/new" not in paths and "/stask/page" not in paths


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi.document(_routes())
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema


def test_security_parameters_and_errors_follow_the_routes() -> None:
    document = openapi.document(_routes())
    operations = _operations(document)
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    health = operations[("GET", "/healthz")]
    assert health["security"] == [] and "401" not in health["responses"]
    shown = operations[("GET", "/stask/task/{id}")]
    (task_id,) = shown["parameters"]
    assert task_id["in"] == "path" and task_id["schema"]["format"] == "int64"
    assert (task_id["schema"]["minimum"], task_id["schema"]["maximum"]) == (1, 2**63 - 1)
    assert {"200", "400", "401", "404", "503"} <= set(shown["responses"])
    assert "403" not in shown["responses"]  # reads: any valid token
    created = operations[("POST", "/stask/task")]
    assert {"201", "403", "413", "415", "422"} <= set(created["responses"])
    body = created["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["identifier", "action"] and body["additionalProperties"] is False
    error = created["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    upload = operations[("POST", "/stask/worker/{identifier}/upload")]["requestBody"]
    assert "multipart/form-data" in upload["content"]
    listed = operations[("GET", "/stask/tasks")]["parameters"]
    assert {p["name"] for p in listed} >= {
        *("status", "identifier", "concurrency_key", "before_id", "limit")
    }
    key = body["properties"]["concurrency_key"]
    assert key["anyOf"][0] == {"type": "string", "pattern": r"\S", "maxLength": 255}
    task = document["components"]["schemas"]["Task"]
    assert task["properties"]["concurrency_key"]["anyOf"][1] == {"type": "null"}
    run = operations[("POST", "/stask/schedules/{name}/run")]
    (name,) = run["parameters"]
    assert name["in"] == "path" and name["schema"]["pattern"] == r"^[^\x00-\x1f\x7f]+$"
    assert {"201", "403", "404"} <= set(run["responses"]) and run["tags"] == ["schedules"]
    added = operations[("POST", "/stask/schedules")]
    assert {"200", "201", "403", "422"} <= set(added["responses"])
    body = added["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name", "cron"]
    assert body["anyOf"] == [{"required": ["identifier", "action"]}, {"required": ["preset"]}]
    assert "403" not in operations[("GET", "/stask/schedules/{name}")]["responses"]
    start = operations[("POST", "/stask/presets/{preset}/start")]
    (preset,) = start["parameters"]
    assert preset["in"] == "path" and preset["description"].startswith("A preset's name")
    assert {"201", "403", "404", "413", "422"} <= set(start["responses"])
    assert start["requestBody"]["required"] is False and start["tags"] == ["presets"]
    put = operations[("PUT", "/stask/presets/{preset}")]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["identifier", "action"] and "name" not in body["properties"]
    assert {"200", "201", "403", "422"} <= set(put["responses"])


def test_the_document_is_served_to_any_token(settings: Settings) -> None:
    with api(settings, token=None) as http:
        assert http.get(openapi.PATH).status_code == 401
    with api(settings, token=RO_TOKEN) as http:
        response = http.get(openapi.PATH)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == openapi.document(http.app.routes)  # type: ignore[attr-defined]
