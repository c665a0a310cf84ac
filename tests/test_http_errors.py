"""HTTP API errors: ids out of range on every route, messages in the user's terms (no
constraint names, SQLSTATEs, Python limits or connection details), JSON for every answer the
app gives, and the headers every answer carries."""

from __future__ import annotations

import json
import logging
import random
import socket
from pathlib import Path

import pytest
from starlette.routing import Route

from pgstask import Client
from pgstask.db import Conn
from pgstask.http import create_app
from pgstask.http.bodies import MAX_ID
from pgstask.http.errors import REFUSED
from pgstask.settings import Settings
from tests.http_support import RW_TOKEN, api, http_settings
from tests.test_cli import env as env  # the fixture
from tests.test_http_serve import serving

HUGE = "9" * 4301  # past Python's int-digits limit
#: Ids no task can have, with the answer each gets: 0 and below are malformed (400, sTask's
#: "Task ID must be greater than 0"), past bigint cannot exist (404).
BAD_IDS = [
    (HUGE, 404),
    (str(MAX_ID + 1), 404),
    ("0" * 30 + "1" + "0" * 19, 404),
    ("-1", 400),
    ("-" + HUGE, 400),
    ("0", 400),
]
#: Texts that must never reach a user.
INTERNALS = ("SQLSTATE", "constraint", "s_tasks", "set_int_max_str_digits", "Traceback")


def _id_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(dsn="postgresql://unused"), http_settings())
    out = []
    for route in app.routes:
        if isinstance(route, Route) and "id" in route.param_convertors:
            out += [
                (method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"
            ]
    return out


ID_ROUTES = _id_routes()


def _clean(text: str) -> None:
    for word in INTERNALS:
        assert word not in text, (word, text[:300])


def test_every_task_id_route_family_is_covered() -> None:
    paths = {path for _, path in ID_ROUTES}
    for suffix in (
        "",
        "/progress",
        "/stream",
        "/cancel",
        "/retry",
        "/logs",
        "/download",
        "/upload",
    ):
        assert f"/stask/task/{{id:id}}{suffix}" in paths
        assert f"/stask/tasks/{{id:id}}{suffix}" in paths


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
def test_an_id_out_of_range_is_a_json_4xx_on_every_route(
    settings: Settings, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    with api(settings) as http:
        for raw, code in BAD_IDS:
            response = http.request(method, path.replace("{id:id}", raw))
            assert response.status_code == code, (raw[:30], response.text[:300])
            body = response.json()
            assert body["success"] is False and body["code"] == code
            assert body["error"] == ("Task not found" if code == 404 else "Invalid task ID")
            assert len(response.text) < 300
            _clean(response.text)
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert not [r for r in server_side if r.levelno >= logging.ERROR]
    assert not [r for r in server_side if HUGE in r.getMessage()]


@pytest.mark.parametrize("raw", [HUGE, str(MAX_ID + 1), "-1", "0", "1e3", "²", "1_0"])
def test_a_query_id_out_of_range_is_a_422(settings: Settings, raw: str) -> None:
    with api(settings) as http:
        response = http.get("/stask/tasks", params={"before_id": raw})
    assert response.status_code == 422, response.text[:300]
    assert "before_id must be a whole number" in response.json()["message"]
    assert len(response.text) < 300
    _clean(response.text)


def test_numbers_in_a_json_body_past_python_limits_are_a_400(settings: Settings) -> None:
    with api(settings) as http:
        huge = http.post(
            "/stask/task",
            content=f'{{"identifier": "a", "action": "b", "data": {{"n": {HUGE}}}}}',
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 400
        assert huge.json()["message"] == (
            "the body is not valid JSON: a number has more than 4300 digits"
        )
        attempts = http.post(
            "/stask/task", json={"identifier": "a", "action": "b", "max_attempts": 10**4000}
        )
        assert attempts.status_code == 422
        assert attempts.json()["message"] == "max_attempts must be a whole number from 1 to 1000"
        assert len(attempts.text) < 300


def test_a_worker_identifier_that_cannot_exist_is_a_404(settings: Settings) -> None:
    with api(settings) as http:
        for identifier in ["x" * 5000, "a%00b", "%F0%9F%98%80"]:
            response = http.get(f"/stask/worker/{identifier}")
            assert response.status_code == 404, response.text[:300]
            _clean(response.text)


def test_a_text_filter_postgresql_cannot_compare_is_a_422(settings: Settings) -> None:
    with api(settings) as http:
        response = http.get("/stask/tasks", params={"identifier": "a\x00b"})
    assert response.status_code == 422
    assert response.json()["message"].startswith("identifier holds a NUL character")


def test_a_status_filter_names_the_allowed_values(settings: Settings) -> None:
    with api(settings) as http:
        for raw in ["999", "sleeping", HUGE, "²"]:
            response = http.get("/stask/tasks", params={"status": raw})
            assert response.status_code == 422
            message = response.json()["message"]
            assert "is not a valid Status" not in message
            assert message.endswith(
                "use one of pending (10), waiting (20), preparing (30), running (50), "
                "completed (80), cancelled (90), failed (100)"
            )
            assert len(message) < 200
        assert http.get("/stask/tasks", params={"status": "50"}).status_code == 200
        assert http.get("/stask/tasks", params={"status": "Running"}).status_code == 200


def test_data_past_the_stored_size_limit_is_named_in_user_terms(settings: Settings) -> None:
    # Under 1 MiB as JSON text, but its jsonb form (4 bytes of offset and a numeric per
    # element, little to compress) passes s_tasks_meta_size_check.
    rng = random.Random(7)
    data = {"n": [rng.randrange(10) for _ in range(300_000)]}
    with api(settings) as http:
        response = http.post("/stask/task", json={"identifier": "a", "action": "b", "data": data})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["message"].startswith("data must be at most 1 MiB as JSON")
    _clean(response.text)


def test_every_constraint_named_in_user_terms_is_in_the_schema(conn: Conn) -> None:
    rows = conn.execute("SELECT conname FROM pg_constraint WHERE contype = 'c'").fetchall()
    assert set(REFUSED) <= {r["conname"] for r in rows}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_named_without_its_address(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = _closed_port()
    dsn = f"postgresql://secret_user@127.0.0.1:{port}/nowhere?connect_timeout=5"
    with api(settings.replace(dsn=dsn)) as http:
        ready = http.get("/readyz")
        stats = http.get("/stask/stats")
    assert ready.status_code == 503 and stats.status_code == 503
    assert ready.json()["reason"].startswith("database unreachable")
    assert stats.json()["message"].startswith("database unreachable")
    for response in (ready, stats):
        assert "secret_user" not in response.text and str(port) not in response.text
    assert str(port) in caplog.text  # the detail is in the server log
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_unix_socket_database_is_named_without_its_path(
    settings: Settings, tmp_path: object
) -> None:
    dsn = f"postgresql://secret_user@/nowhere?host={tmp_path}&connect_timeout=5"
    with api(settings.replace(dsn=dsn)) as http:
        for response in (http.get("/readyz"), http.get("/stask/stats")):
            assert response.status_code == 503
            assert str(tmp_path) not in response.text and "secret_user" not in response.text


def test_a_task_that_exists_still_answers(settings: Settings) -> None:
    with Client(settings=settings) as client:
        task = client.create("a", "b")
    with api(settings) as http:
        assert http.get(f"/stask/task/{task.id}").json()["task"]["id"] == task.id
        assert http.get(f"/stask/task/{'0' * 40}{task.id}").json()["task"]["id"] == task.id


def _api_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff", response
    assert headers["cache-control"] == "no-store", response


def test_a_host_header_not_allowed_is_a_json_error(settings: Settings) -> None:
    with api(settings) as http:
        for host in ["evil.example", "", "[::1"]:
            response = http.get("/stask/stats", headers={"Host": host})
            assert response.status_code == 400
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {
                "success": False,
                "code": 400,
                "error": "Invalid host",
                "message": "the Host header names no host this server answers "
                "(PGSTASK_API_ALLOWED_HOSTS)",
            }
            _api_headers(response)


def test_every_api_answer_is_nosniff_and_no_store(settings: Settings) -> None:
    with api(settings) as http:
        answers = [
            http.get("/healthz"),
            http.get("/stask/stats"),
            http.get("/stask/tasks"),
            http.get("/stask/task/1"),
            http.get("/stask/openapi.json"),
            http.get("/stask/nothing-here"),
            http.delete("/stask/stats"),
            http.post("/stask/task", content=b"{", headers={"Content-Type": "application/json"}),
            http.post("/stask/task", content=b"x" * (2 << 20)),
            http.get("/stask/stats", headers={"Authorization": "Bearer wrong-token"}),
            http.get(f"/stask/task/{HUGE}"),
            http.get("/stask/static/nothing-here.js"),
            http.post("/stask/static/dashboard.css"),
        ]
        for response in answers:
            _api_headers(response)
            assert response.headers["content-type"] == "application/json", response
        static = http.get("/stask/static/dashboard.css")
        assert static.status_code == 200
        assert static.headers["cache-control"] == "private, no-cache"
        assert static.headers["x-content-type-options"] == "nosniff"


def _raw(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_malformed_http_is_answered_as_json_by_pgstask_serve(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}"}
    with serving(env, tmp_path / "serve.log") as (_, base):
        for request in [
            b"NOT HTTP AT ALL\r\n\r\n",
            b"GET /stask/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n",
            b"GET /stask/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Name: x\r\n\r\n",
            # Past h11's 16 KiB while arriving: answered while the rest is still being sent.
            b"GET /stask/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
            + b"a" * (512 * 1024)
            + b"\r\n\r\n",
            b"POST /stask/task HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
        ]:
            answer = _raw(base, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
            assert b"content-type: application/json" in head.lower()
            assert b"x-content-type-options: nosniff" in head.lower()
            assert json.loads(body) == {
                "success": False,
                "code": 400,
                "error": "Bad request",
                "message": "the request is not valid HTTP/1.1",
            }
        host = _raw(base, b"GET /stask/stats HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        assert b'"error":"Invalid host"' in host
