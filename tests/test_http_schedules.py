"""HTTP API: schedules (list, show, add or replace, pause, resume, run now, remove), against a
real PostgreSQL, with the tokens each needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pgstask import Client
from pgstask.settings import Settings
from tests.http_support import RO_TOKEN, api
from tests.sample_workers import SampleWorker

NIGHTLY = {
    "name": "nightly",
    "identifier": "sample",
    "action": "noop",
    "cron": "0 3 * * *",
    "timezone": "Europe/Kyiv",
    "data": {"n": 1},
}


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    assert SampleWorker.identifier == "sample"  # defined in this process: its actions are known
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
    with api(settings) as http:
        yield http


def _add(http: TestClient, **changes: Any) -> dict[str, Any]:
    response = http.post("/stask/schedules", json={**NIGHTLY, **changes})
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def test_add_list_show_and_replace(http: TestClient) -> None:
    response = http.post("/stask/schedules", json=NIGHTLY)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/stask/schedules/nightly"
    body = response.json()
    assert body["success"] is True and body["message"] == "Schedule added"
    added = body["schedule"]
    assert (added["name"], added["identifier"], added["action"]) == ("nightly", "sample", "noop")
    assert (added["cron"], added["timezone"], added["data"]) == (
        "0 3 * * *",
        "Europe/Kyiv",
        {"n": 1},
    )
    assert (added["priority"], added["max_attempts"], added["misfire"]) == ("normal", 3, "skip")
    assert (added["active"], added["origin"], added["next_run_at"]) == (True, "api", None)
    assert "inserted" not in added

    _add(http, name="reports/weekly", cron="@weekly", timezone=None, priority=None)
    listed = http.get("/stask/schedules").json()
    assert [s["name"] for s in listed["schedules"]] == ["nightly", "reports/weekly"]
    assert listed["count"] == 2
    for key in ("next_run_at", "last_run_at", "last_task_id", "last_task_status", "last_error"):
        assert key in listed["schedules"][0]
    assert "missing_from_code_at" in listed["schedules"][0]
    weekly = http.get("/stask/schedules/reports/weekly").json()["schedule"]
    assert (weekly["cron"], weekly["timezone"], weekly["priority"]) == ("@weekly", "UTC", "normal")
    assert http.get("/stask/schedules/reports%2Fweekly").json()["schedule"] == weekly

    replaced = http.post("/stask/schedules", json={**NIGHTLY, "priority": "high"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["message"] == "Schedule replaced"
    assert replaced.json()["schedule"]["priority"] == "high"
    assert http.get("/stask/schedules/nightly").json()["schedule"]["priority"] == "high"
    assert http.post("/stask/schedules", json={**NIGHTLY, "priority": "high"}).status_code == 200


def test_pause_resume_run_and_remove(http: TestClient) -> None:
    _add(http, priority="low", max_attempts=5)
    paused = http.post("/stask/schedules/nightly/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["message"] == "Schedule paused"
    assert paused.json()["schedule"]["active"] is False

    run = http.post("/stask/schedules/nightly/run")
    assert run.status_code == 201, run.text
    body = run.json()
    task = body["task"]
    assert run.headers["location"] == f"/stask/task/{task['id']}"
    assert body["message"] == "Task queued by schedule nightly"
    assert (task["identifier"], task["action"], task["meta"]) == ("sample", "noop", {"n": 1})
    assert (task["priority"], task["max_attempts"], task["status_text"]) == ("low", 5, "pending")
    assert http.get(f"/stask/task/{task['id']}").json()["task"]["id"] == task["id"]
    after = http.get("/stask/schedules/nightly").json()["schedule"]
    assert (after["active"], after["last_task_id"], after["last_run_at"]) == (False, None, None)

    resumed = http.post("/stask/schedules/nightly/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["schedule"]["active"] is True

    removed = http.delete("/stask/schedules/nightly")
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"success": True, "message": "Schedule removed"}
    assert http.get("/stask/schedules").json()["schedules"] == []
    assert http.get(f"/stask/task/{task['id']}").status_code == 200  # its task stays


def test_a_name_ending_like_an_operation_is_still_a_name(http: TestClient) -> None:
    _add(http, name="x/run")
    assert http.get("/stask/schedules/x/run").json()["schedule"]["name"] == "x/run"
    assert http.post("/stask/schedules/x/run/pause").json()["schedule"]["active"] is False
    assert http.delete("/stask/schedules/x/run").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/stask/schedules/nothing"),
        ("POST", "/stask/schedules/nothing/pause"),
        ("POST", "/stask/schedules/nothing/resume"),
        ("POST", "/stask/schedules/nothing/run"),
        ("DELETE", "/stask/schedules/nothing"),
        ("GET", "/stask/schedules/" + "n" * 201),
        ("GET", "/stask/schedules/%ED%A0%80"),
    ],
)
def test_an_unknown_schedule_is_a_404(http: TestClient, method: str, path: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "Schedule not found"


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"cron": "61 * * * *"}, "schedule 'nightly'"),
        ({"cron": "@reboot"}, "@reboot"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"colour": "red"}, "unknown field(s) 'colour'"),
        ({"action": "fly"}, "has no action 'fly'"),
        ({"priority": "urgent"}, "unknown priority 'urgent'"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"misfire": "later"}, "unknown misfire 'later'"),
        ({"active": "yes"}, "active is true or false"),
        ({"data": [1]}, "data must be a JSON object"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": " x"}, "without blanks around it"),
        ({"name": "n" * 201}, "at most 200 characters"),
        ({"identifier": None}, "identifier must be a non-empty string"),
        ({"identifier": "w" * 201}, "identifier must be 1-200 characters"),
        ({"cron": None}, "cron is required"),
    ],
)
def test_a_bad_schedule_is_a_422_naming_the_field(
    http: TestClient, changes: dict[str, Any], needle: str
) -> None:
    response = http.post("/stask/schedules", json={**NIGHTLY, **changes})
    assert response.status_code == 422, response.text
    assert needle in response.json()["message"]
    assert http.get("/stask/schedules").json()["schedules"] == []


def test_a_schedule_declared_in_code_is_not_replaced(settings: Settings, http: TestClient) -> None:
    with Client(settings=settings) as client, client.connection() as c:
        c.execute(
            "INSERT INTO s_schedules (name, identifier, action, cron, origin)"
            " VALUES ('nightly', 'sample', 'noop', '@daily', 'code')"
        )
    response = http.post("/stask/schedules", json=NIGHTLY)
    assert response.status_code == 422, response.text
    assert "declared in code by worker 'sample'" in response.json()["message"]
    assert http.post("/stask/schedules/nightly/pause").status_code == 200


def test_unknown_query_parameters_are_a_422(http: TestClient) -> None:
    response = http.get("/stask/schedules?active=true")
    assert response.status_code == 422 and "'active'" in response.json()["message"]


WRITES = [
    ("POST", "/stask/schedules", NIGHTLY),
    ("POST", "/stask/schedules/nightly/pause", None),
    ("POST", "/stask/schedules/nightly/resume", None),
    ("POST", "/stask/schedules/nightly/run", None),
    ("DELETE", "/stask/schedules/nightly", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_need_a_read_write_token(
    settings: Settings, http: TestClient, method: str, path: str, body: Any
) -> None:
    _add(http)
    with api(settings, token=None) as anonymous:
        assert anonymous.request(method, path, json=body).status_code == 401
    with api(settings, token=RO_TOKEN) as read_only:
        refused = read_only.request(method, path, json=body)
        assert refused.status_code == 403 and "read-only" in refused.json()["message"]
        assert read_only.get("/stask/schedules").status_code == 200
        assert read_only.get("/stask/schedules/nightly").status_code == 200
    assert http.get("/stask/schedules/nightly").json()["schedule"]["active"] is True
    assert http.get("/stask/tasks").json()["count"] == 0


@pytest.mark.parametrize("path", ["/stask/schedules", "/stask/schedules/nightly"])
def test_reads_need_a_token(settings: Settings, path: str) -> None:
    with api(settings, token=None) as anonymous:
        assert anonymous.get(path).status_code == 401
