"""HTTP API: presets (list, show, add or replace by POST and PUT, remove, start) and schedules
that start one, against a real PostgreSQL, with the tokens each needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pgstask import Client
from pgstask.settings import Settings
from tests.http_support import RO_TOKEN, api
from tests.sample_workers import SampleWorker

EXPORT = {
    "name": "nightly-export",
    "identifier": "sample",
    "action": "noop",
    "data": {"format": "csv", "filters": {"year": 2026}, "rows": 10},
    "priority": "high",
    "max_attempts": 5,
    "description": "The nightly CSV",
}


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    assert SampleWorker.identifier == "sample"  # defined in this process: its actions are known
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
    with api(settings) as http:
        yield http


def _add(http: TestClient, **changes: Any) -> dict[str, Any]:
    response = http.post("/stask/presets", json={**EXPORT, **changes})
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def test_add_list_show_replace_and_remove(http: TestClient) -> None:
    response = http.post("/stask/presets", json=EXPORT)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/stask/presets/nightly-export"
    body = response.json()
    assert body["success"] is True and body["message"] == "Preset added"
    added = body["preset"]
    assert {k: added[k] for k in EXPORT} == EXPORT
    assert added["schedules"] == [] and "inserted" not in added
    assert added["created_at"] == added["updated_at"] and "T" in added["created_at"]

    put = http.put("/stask/presets/reports/daily", json={"identifier": "sample", "action": "noop"})
    assert put.status_code == 201, put.text
    assert put.headers["location"] == "/stask/presets/reports%2Fdaily"
    daily = put.json()["preset"]
    assert (daily["name"], daily["data"], daily["priority"], daily["max_attempts"]) == (
        "reports/daily",
        {},
        "normal",
        3,
    )
    listed = http.get("/stask/presets").json()
    assert [p["name"] for p in listed["presets"]] == ["nightly-export", "reports/daily"]
    assert listed["count"] == 2
    assert http.get("/stask/presets/reports/daily").json()["preset"] == daily
    assert http.get("/stask/presets/reports%2Fdaily").json()["preset"] == daily

    replaced = http.put(
        "/stask/presets/nightly-export",
        json={"identifier": "sample", "action": "sync_stock", "priority": None},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["message"] == "Preset replaced"
    assert (replaced.json()["preset"]["action"], replaced.json()["preset"]["priority"]) == (
        "sync_stock",
        "normal",
    )

    removed = http.delete("/stask/presets/reports/daily")
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"success": True, "message": "Preset removed", "schedules": []}
    assert [p["name"] for p in http.get("/stask/presets").json()["presets"]] == ["nightly-export"]


def test_start_merges_the_data_and_takes_the_given_fields(http: TestClient) -> None:
    _add(http)
    started = http.post("/stask/presets/nightly-export/start", json={"data": {"format": "xlsx"}})
    assert started.status_code == 201, started.text
    body = started.json()
    task = body["task"]
    assert started.headers["location"] == f"/stask/task/{task['id']}"
    assert body["message"] == "Task queued from preset nightly-export"
    assert task["meta"] == {"format": "xlsx", "filters": {"year": 2026}, "rows": 10}
    assert (task["identifier"], task["action"], task["status_text"]) == (
        "sample",
        "noop",
        "pending",
    )
    assert (task["priority"], task["max_attempts"]) == ("high", 5)

    plain = http.post("/stask/presets/nightly-export/start")  # no body: the preset as it is
    assert plain.status_code == 201, plain.text
    assert plain.json()["task"]["meta"] == EXPORT["data"]
    given = http.post(
        "/stask/presets/nightly-export/start",
        json={
            "priority": "low",
            "max_attempts": "2",
            "start_at": "2031-05-01T03:00:00Z",
            "dedupe_key": "export-2031",
            "data": None,
        },
    ).json()["task"]
    assert (given["priority"], given["max_attempts"], given["dedupe_key"]) == (
        "low",
        2,
        "export-2031",
    )
    assert given["start_at"].startswith("2031-05-01T03:00:00")
    again = http.post(
        "/stask/presets/nightly-export/start", json={"dedupe_key": "export-2031"}
    ).json()["task"]
    assert again["id"] == given["id"]  # the incomplete task holding the key


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"action": "fly"}, "preset 'nightly-export': worker 'sample' has no action 'fly'"),
        ({"priority": "urgent"}, "unknown priority 'urgent'"),
        ({"max_attempts": 0}, "max_attempts must be between 1 and 1000"),
        ({"max_attempts": "3"}, "max_attempts must be a whole number"),
        ({"data": [1]}, "data must be a JSON object"),
        ({"description": "d" * 1001}, "description is longer than 1000"),
        ({"colour": "red"}, "unknown field(s) 'colour'"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": " x"}, "without blanks around it"),
        ({"name": "n" * 201}, "at most 200 characters"),
        ({"identifier": None}, "identifier must be a non-empty string"),
        ({"identifier": "w" * 256}, "identifier is longer than 255 characters"),
        ({"action": " "}, "action must be a non-empty string"),
    ],
)
def test_a_bad_preset_is_a_422_naming_the_field(
    http: TestClient, changes: dict[str, Any], needle: str
) -> None:
    response = http.post("/stask/presets", json={**EXPORT, **changes})
    assert response.status_code == 422, response.text
    assert needle in response.json()["message"]
    assert http.get("/stask/presets").json()["presets"] == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"data": [1]}, "data must be a JSON object"),
        ({"data": "x"}, "data must be a JSON object"),
        ({"priority": "urgent"}, "unknown priority 'urgent'"),
        ({"max_attempts": 0}, "max_attempts must be a whole number from 1 to 1000"),
        ({"start_at": "tomorrow"}, "start_at 'tomorrow' is not an ISO 8601 date and time"),
        ({"start_at": "2031-05-01T03:00:00"}, "start_at needs a UTC offset"),
        ({"dedupe_key": ""}, "dedupe_key must be a non-empty string"),
        ({"file": "b.csv"}, "unknown field(s) 'file'; use data, dedupe_key"),
    ],
)
def test_a_bad_start_is_a_422_naming_the_field(
    http: TestClient, body: dict[str, Any], needle: str
) -> None:
    _add(http)
    response = http.post("/stask/presets/nightly-export/start", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["message"]
    assert http.get("/stask/tasks").json()["count"] == 0


def test_a_put_body_names_no_preset(http: TestClient) -> None:
    response = http.put("/stask/presets/x", json={"name": "y", "identifier": "s", "action": "a"})
    assert response.status_code == 422 and "unknown field(s) 'name'" in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/stask/presets/nothing"),
        ("DELETE", "/stask/presets/nothing"),
        ("POST", "/stask/presets/nothing/start"),
        ("GET", "/stask/presets/" + "n" * 201),
        ("POST", "/stask/presets/%ED%A0%80/start"),
    ],
)
def test_an_unknown_preset_is_a_404(http: TestClient, method: str, path: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "Preset not found"


def test_a_name_ending_like_an_operation_is_still_a_name(http: TestClient) -> None:
    _add(http, name="x/start")
    assert http.get("/stask/presets/x/start").json()["preset"]["name"] == "x/start"
    task = http.post("/stask/presets/x/start/start").json()["task"]
    assert task["message"] == "Task queued from preset x/start"
    assert http.delete("/stask/presets/x/start").status_code == 200


def test_a_schedule_that_starts_a_preset(http: TestClient) -> None:
    _add(http)
    schedule = {"name": "nightly", "preset": "nightly-export", "cron": "0 3 * * *"}
    added = http.post("/stask/schedules", json={**schedule, "data": {"rows": 1}})
    assert added.status_code == 201, added.text
    row = added.json()["schedule"]
    assert (row["preset"], row["identifier"], row["action"]) == ("nightly-export", None, None)
    assert (row["preset_identifier"], row["preset_action"]) == ("sample", "noop")
    assert (row["priority"], row["max_attempts"]) == (None, None)
    task = http.post("/stask/schedules/nightly/run").json()["task"]
    assert task["meta"] == {"format": "csv", "filters": {"year": 2026}, "rows": 1}
    assert task["message"] == "Task queued by schedule nightly from preset nightly-export, run now"
    assert http.get("/stask/presets/nightly-export").json()["preset"]["schedules"] == ["nightly"]

    removed = http.delete("/stask/presets/nightly-export")
    assert removed.json()["schedules"] == ["nightly"]
    gone = http.post("/stask/schedules/nightly/run")
    assert gone.status_code == 404 and gone.json()["error"] == "Preset not found"
    assert "schedule 'nightly' starts preset 'nightly-export'" in gone.json()["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"preset": "nope"}, "no preset is named 'nope'"),
        ({"preset": "nightly-export", "action": "noop"}, "give an action or a preset, not both"),
        ({"preset": "nightly-export", "identifier": "other"}, "which is of worker 'sample'"),
        ({"preset": "nightly-export", "identifier": ""}, "identifier must be a non-empty string"),
        ({"preset": " p"}, "a preset's name is non-empty text"),
        ({}, "identifier must be a non-empty string"),
    ],
)
def test_a_bad_schedule_of_a_preset_is_a_422(
    http: TestClient, body: dict[str, Any], needle: str
) -> None:
    _add(http)
    response = http.post("/stask/schedules", json={"name": "n", "cron": "@daily", **body})
    assert response.status_code == 422, response.text
    assert needle in response.json()["message"]
    assert http.get("/stask/schedules").json()["schedules"] == []


WRITES = [
    ("POST", "/stask/presets", EXPORT),
    ("PUT", "/stask/presets/nightly-export", {"identifier": "sample", "action": "noop"}),
    ("POST", "/stask/presets/nightly-export/start", None),
    ("DELETE", "/stask/presets/nightly-export", None),
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
        assert read_only.get("/stask/presets").status_code == 200
        assert read_only.get("/stask/presets/nightly-export").status_code == 200
    assert http.get("/stask/presets/nightly-export").json()["preset"]["priority"] == "high"
    assert http.get("/stask/tasks").json()["count"] == 0


@pytest.mark.parametrize("path", ["/stask/presets", "/stask/presets/nightly-export"])
def test_reads_need_a_token(settings: Settings, path: str) -> None:
    with api(settings, token=None) as anonymous:
        assert anonymous.get(path).status_code == 401


def test_unknown_query_parameters_are_a_422(http: TestClient) -> None:
    response = http.get("/stask/presets?worker=sample")
    assert response.status_code == 422 and "'worker'" in response.json()["message"]
