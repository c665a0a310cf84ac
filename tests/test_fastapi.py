"""pgstask mounted in a real FastAPI app (docs/fastapi.md, whose examples run here as written):
the app's own route enqueues with the injected ``AsyncClient``, the mounted API lists the task
and serves the dashboard under the prefix, with pgstask's tokens or the app's own check, and
the app's lifespan opens and closes the pools."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pgstask import Client, ConfigurationError, Status, files
from pgstask.contrib.asgi import STATE, Mounted, client_of, mount
from pgstask.http import create_app
from pgstask.settings import Settings
from pgstask.workflow import Workflow
from tests.daemons import running_daemon
from tests.http_support import BASE_URL, RO_TOKEN, RW_TOKEN
from tests.test_async_client import python_blocks

RW = {"Authorization": f"Bearer {RW_TOKEN}"}
RO = {"Authorization": f"Bearer {RO_TOKEN}"}
SAME_ORIGIN = {"Origin": BASE_URL}


@pytest.fixture(autouse=True)
def _environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples read their settings from the environment, as an app does."""
    monkeypatch.setenv("PGSTASK_DSN", str(settings.dsn))
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    monkeypatch.setenv("PGSTASK_API_TOKENS", f"rw:{RW_TOKEN},ro:{RO_TOKEN}")


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        yield c


def example(n: int) -> FastAPI:
    """The app of docs/fastapi.md's ``n``-th python block."""
    namespace: dict[str, Any] = {"__name__": f"docs_fastapi_{n}"}
    exec(compile(python_blocks("fastapi.md")[n], "docs/fastapi.md", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, FastAPI)
    return app


def browser(app: Starlette) -> TestClient:
    """A client of ``app`` that runs its lifespan and follows no redirects."""
    return TestClient(app, base_url=BASE_URL, follow_redirects=False)


def test_the_apps_route_enqueues_and_the_mounted_api_lists_the_task(
    settings: Settings, client: Client
) -> None:
    app = example(0)
    mounted = getattr(app.state, STATE)
    with browser(app) as http:
        ordered = http.post("/reports")
        assert ordered.status_code == 200, ordered.text
        task_id = ordered.json()["task"]
        assert http.get(f"/reports/{task_id}").json() == {"status": "pending"}

        listed = http.get("/tasks/stask/tasks", headers=RO)
        assert listed.status_code == 200, listed.text
        assert [t["id"] for t in listed.json()["tasks"]] == [task_id]
        shown = http.get(f"/tasks/stask/task/{task_id}", headers=RO).json()
        assert shown["task"]["identifier"] == "report"
        assert http.get("/tasks/healthz").status_code == 200  # public, as when served alone
        described = http.get("/tasks/stask/openapi.json", headers=RO).json()
        assert described["servers"] == [{"url": "/tasks"}] and "/stask/tasks" in described["paths"]

        created = http.post(
            "/tasks/stask/task", json={"identifier": "report", "action": "export"}, headers=RW
        )
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/tasks/stask/task/{created.json()['task']['id']}"

        with running_daemon(settings, modules=("pgstask.workers.examples",)):
            done = client.wait(task_id, timeout=60)
        assert done.status == Status.COMPLETED
        assert http.get(f"/reports/{task_id}").json() == {"status": "completed"}
        assert mounted.async_client._pool is not None
    assert mounted.async_client._pool is None and mounted.client._pool is None  # closed


def test_pgstask_tokens_guard_the_mounted_api_and_dashboard() -> None:
    body = {"identifier": "report", "action": "export"}
    with browser(example(0)) as http:
        assert http.get("/tasks/stask/tasks").status_code == 401
        wrong = {"Authorization": "Bearer not-a-token-of-this-app"}
        assert http.get("/tasks/stask/tasks", headers=wrong).status_code == 401
        assert http.post("/tasks/stask/task", json=body, headers=RO).status_code == 403

        page = http.get("/tasks/stask/", headers={"Accept": "text/html"})
        assert (page.status_code, page.headers["location"]) == (303, "/tasks/stask/login")
        assert '<form method="post" action="login">' in http.get("/tasks/stask/login").text
        signed_in = http.post("/tasks/stask/login", data={"token": RW_TOKEN}, headers=SAME_ORIGIN)
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/tasks/stask/")
        page = http.get("/tasks/stask/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and 'src="static/js/main.js"' in page.text
        assert http.get("/tasks/stask/static/js/main.js").status_code == 200
        assert http.get("/tasks/stask").headers["location"] == "/tasks/stask/"

        # The cookie writes with the dashboard's header from its own origin only.
        assert http.post("/tasks/stask/task", json=body).status_code == 403
        headers = {**SAME_ORIGIN, "X-Pgstask-Request": "1"}
        assert http.post("/tasks/stask/task", json=body, headers=headers).status_code == 201


def test_the_apps_own_check_guards_the_mount_with_auth_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSTASK_API_TOKENS")  # no pgstask token at all
    admin = {"X-Role": "admin"}
    body = {"identifier": "report", "action": "export"}
    with browser(example(1)) as http:
        assert http.get("/admin/tasks/stask/tasks").status_code == 403  # the app's middleware
        assert http.get("/admin/tasks/stask/tasks", headers=admin).status_code == 200
        created = http.post("/admin/tasks/stask/task", json=body, headers=admin)
        assert created.status_code == 201, created.text
        assert created.headers["location"].startswith("/admin/tasks/stask/task/")
        page = http.get("/admin/tasks/stask/", headers={**admin, "Accept": "text/html"})
        assert page.status_code == 200 and 'src="static/js/main.js"' in page.text

        # A write with the app's session cookie needs the dashboard's header and origin.
        http.cookies.set("session", "the-apps-own")
        assert http.post("/admin/tasks/stask/task", json=body, headers=admin).status_code == 403
        headers = {**admin, **SAME_ORIGIN, "X-Pgstask-Request": "1"}
        assert http.post("/admin/tasks/stask/task", json=body, headers=headers).status_code == 201
        assert [
            t["id"] for t in http.get("/admin/tasks/stask/tasks", headers=admin).json()["tasks"]
        ]


def test_an_app_with_its_own_lifespan_enters_the_mounted_ones(settings: Settings) -> None:
    app = example(2)

    @app.get("/count")
    async def count(request: Request) -> dict[str, int]:
        return {"total": (await client_of(request).stats())["total"]}

    mounted = getattr(app.state, STATE)
    with browser(app) as http:
        assert mounted.async_client._pool is not None  # opened by the app's lifespan
        assert http.get("/count").json() == {"total": 0}
        assert http.get("/tasks/stask/stats", headers=RO).status_code == 200
    assert mounted.async_client._pool is None and mounted.client._pool is None


def test_a_starlette_app_mounts_it_too(settings: Settings) -> None:
    async def enqueue(request: Request) -> JSONResponse:
        task = await client_of(request).create("report", "export")
        return JSONResponse({"task": task.id})

    app = Starlette(routes=[Route("/enqueue", enqueue, methods=["POST"])])
    mount(app, "/jobs", settings=settings)
    with browser(app) as http:
        task_id = http.post("/enqueue").json()["task"]
        listed = http.get("/jobs/stask/tasks", headers=RO).json()["tasks"]
        assert [t["id"] for t in listed] == [task_id]


def test_without_a_mount_the_client_is_refused_by_name() -> None:
    async def handler(request: Request) -> Any:
        client_of(request)

    app = Starlette(routes=[Route("/", handler)])
    with TestClient(app) as http, pytest.raises(ConfigurationError, match="no pgstask is mounted"):
        http.get("/")


@pytest.mark.parametrize("path", ["tasks", "/tasks/", ""])
def test_a_mount_path_is_checked(path: str) -> None:
    with pytest.raises(ConfigurationError, match="mount a path like '/tasks'"):
        mount(FastAPI(), path)


def test_an_unknown_auth_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="auth must be 'tokens' or 'app'"):
        create_app(settings, auth="none")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="auth must be"):
        Mounted(settings=settings, auth="open")  # type: ignore[arg-type]


def test_handlers_stream_a_result_file_read_a_workflow_and_start_a_preset(
    settings: Settings, client: Client
) -> None:
    data = b"row,square\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(200_000))
    assert len(data) > 2 * files.CHUNK_SIZE  # three chunks
    flow = Workflow()
    first = flow.add("report", "export")
    flow.add("report", "export", depends_on=[first])
    head, tail = client.create_workflow(flow)
    stored = client.store_file(head, io.BytesIO(data), filename="report ü.csv")
    client.add_preset("nightly", "report", "export", {"rows": 5})

    with browser(example(3)) as http:
        got = http.get(f"/reports/{head.id}/file")
        assert got.status_code == 200, got.text
        assert got.content == data
        assert got.headers["content-type"].startswith("text/csv")
        assert got.headers["content-length"] == str(stored.size)
        assert got.headers["content-disposition"] == (
            "attachment; filename*=UTF-8''report%20%C3%BC.csv"
        )
        missing = http.get(f"/reports/{tail.id}/file")
        assert (missing.status_code, missing.json()) == (
            404,
            {"detail": "the report is not ready yet"},
        )

        steps = http.get(f"/reports/{tail.id}/steps").json()
        assert steps == [
            {"action": "export", "status": "pending"},
            {"action": "export", "status": "waiting"},
        ]

        started = http.post("/exports/nightly")
        assert started.status_code == 200, started.text
        assert client.get(started.json()["task"]).meta == {"rows": 5, "requested_by": "web"}
        assert http.post("/exports/weekly").status_code == 404
