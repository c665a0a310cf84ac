"""HTTP API: creating tasks (both run paths, POST /stask/task), reading them and their progress,
against a real PostgreSQL and a daemon that runs them."""

from __future__ import annotations

import itertools
import json
import secrets

import pytest

from pgstask import Client, Status
from pgstask.settings import Settings
from tests.daemons import running_daemon, wait_for
from tests.http_support import api

RUN_PATHS = ["/stask/worker/{w}/run/{a}", "/stask/workers/{w}/tasks/{a}"]
PROGRESS_PATHS = ["/stask/task/{id}/progress", "/stask/tasks/{id}/progress"]


def _register(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])


@pytest.mark.parametrize("path", RUN_PATHS)
def test_run_creates_a_task_that_a_daemon_runs(settings: Settings, path: str) -> None:
    _register(settings)
    with api(settings) as http, running_daemon(settings):
        response = http.post(path.format(w="sample", a="steps"), json={"total": 4})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["success"] is True and body["message"] == "Task created successfully"
        task_id = body["id"]
        assert response.headers["location"] == f"/stask/task/{task_id}"
        wait_for(lambda: http.get(f"/stask/task/{task_id}").json()["task"]["status"] == 80)
        shown = http.get(f"/stask/task/{task_id}").json()["task"]
    assert shown["meta"] == {"total": 4} and shown["status_text"] == "completed"
    assert shown["result"] == {"steps": 4}


def test_run_options_key_is_the_options_and_may_carry_control_fields(settings: Settings) -> None:
    _register(settings)
    with api(settings) as http:
        response = http.post(
            "/stask/worker/sample/run/Sync Stock",
            json={"options": {"file": "a.csv"}, "priority": "high", "max_attempts": 5},
        )
        assert response.status_code == 201, response.text
        task = http.get(f"/stask/task/{response.json()['id']}").json()["task"]
        assert (task["meta"], task["priority"], task["max_attempts"]) == (
            {"file": "a.csv"},
            "high",
            5,
        )
        queried = http.post(
            "/stask/worker/sample/run/noop?priority=low&start_at=2030-01-01T00:00:00Z",
            json={"anything": [1, 2]},
        )
        assert queried.status_code == 201, queried.text
        task = http.get(f"/stask/task/{queried.json()['id']}").json()["task"]
    assert task["meta"] == {"anything": [1, 2]} and task["priority"] == "low"
    assert task["start_at"].startswith("2030-01-01")


@pytest.mark.parametrize(
    ("path", "kwargs", "code", "needle"),
    [
        ("/stask/worker/nobody/run/x", {"json": {}}, 404, "Worker not found or inactive: nobody"),
        ("/stask/worker/sample/run/fly", {"json": {}}, 422, "has no action 'fly'"),
        ("/stask/worker/sample/run/noop", {"content": b"{not json"}, 400, "not valid JSON"),
        ("/stask/worker/sample/run/noop", {"json": [1, 2]}, 422, "must be a JSON object"),
        ("/stask/worker/sample/run/noop", {"json": {"options": 3}}, 422, "options must be"),
        ("/stask/worker/sample/run/noop", {"json": {"options": {}, "x": 1}}, 422, "'x'"),
        ("/stask/worker/sample/run/noop?priority=urgent", {"json": {}}, 422, "priority"),
        ("/stask/worker/sample/run/noop?colour=red", {"json": {}}, 422, "'colour'"),
        ("/stask/worker/sample/run/noop?start_at=tomorrow", {"json": {}}, 422, "ISO 8601"),
        ("/stask/worker/sample/run/noop?start_at=2030-01-01T00:00", {"json": {}}, 422, "offset"),
        ("/stask/worker/sample/run/noop?max_attempts=0", {"json": {}}, 422, "max_attempts"),
        (
            "/stask/worker/sample/run/noop",
            {"content": b"a=1", "headers": {"content-type": "application/x-www-form-urlencoded"}},
            415,
            "application/json",
        ),
        ("/stask/worker/sample/run/noop", {"content": b"x" * (1024 * 1024 + 1)}, 413, "larger"),
        # Each of these was a 500 (or a 503) before it was checked here.
        (
            "/stask/worker/sample/run/noop",
            {"content": b'{"options": {}, "max_attempts": 1e400}'},
            400,
            "too large",
        ),
        ("/stask/worker/sample/run/noop", {"content": b'{"n": NaN}'}, 400, "NaN"),
        ("/stask/worker/sample/run/noop", {"content": b'{"a": "\\ud800"}'}, 422, "a holds"),
        ("/stask/worker/sample/run/noop", {"json": {"rows": [{"k\x00": 1}]}}, 422, "rows[0]"),
        (
            "/stask/worker/sample/run/noop",
            {"content": b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"},
            400,
            "nested too deeply",
        ),
        (
            "/stask/worker/sample/run/noop",
            {"json": {"options": {}, "dedupe_key": "k" * 256}},
            422,
            "longer than 255",
        ),
        (
            "/stask/worker/sample/run/noop?priority=urgent",
            {"json": {"options": {}, "priority": "high"}},
            422,
            "priority",
        ),
        (
            "/stask/worker/sample/run/noop",
            {"json": {"options": {}, "concurrency_key": "k" * 256}},
            422,
            "concurrency_key is longer than 255",
        ),
        (
            "/stask/worker/sample/run/noop?concurrency_key=",
            {"json": {}},
            422,
            "concurrency_key must be a non-empty string",
        ),
    ],
)
def test_run_rejects_bad_input_and_creates_nothing(
    settings: Settings, path: str, kwargs: dict[str, object], code: int, needle: str
) -> None:
    _register(settings)
    with api(settings) as http:
        response = http.post(path, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == code, response.text
        body = response.json()
        assert body["success"] is False and body["code"] == code
        assert needle in body["message"]
    with Client(settings=settings) as client:
        assert client.stats()["total"] == 0


def test_an_inactive_worker_cannot_run(settings: Settings) -> None:
    _register(settings)
    with Client(settings=settings) as client:
        client.deactivate_worker("sample")
    with api(settings) as http:
        response = http.post("/stask/worker/sample/run/noop", json={})
    assert response.status_code == 404 and "inactive" in response.json()["message"]


def test_post_task_creates_by_identifier_action_data(settings: Settings) -> None:
    with api(settings) as http:
        response = http.post(
            "/stask/task",
            json={"identifier": "sample", "action": "noop", "data": {"a": 1}, "priority": "high"},
        )
        assert response.status_code == 201, response.text
        task = response.json()["task"]
        assert (task["identifier"], task["meta"], task["priority"]) == ("sample", {"a": 1}, "high")
        assert task["status"] == Status.PENDING and task["status_text"] == "pending"
        for bad in (
            {"action": "noop"},
            {"identifier": "s", "action": " "},
            {"identifier": "s", "action": "a", "data": [1]},
            {"identifier": "s", "action": "a", "zz": 1},
            {"identifier": "s", "action": "a\x00"},
            {"identifier": "s", "action": "a", "dedupe_key": secrets.token_hex(2000)},
        ):
            assert http.post("/stask/task", json=bad).status_code == 422, bad
        assert (
            http.post("/stask/task/store", json={"identifier": "s", "action": "a"}).status_code
            == 201
        )


def test_concurrency_key_is_created_shown_and_filtered_on(settings: Settings) -> None:
    _register(settings)
    with api(settings) as http:
        created = http.post(
            "/stask/task",
            json={"identifier": "sample", "action": "noop", "concurrency_key": "tenant-1"},
        )
        assert created.status_code == 201, created.text
        task = created.json()["task"]
        assert task["concurrency_key"] == "tenant-1"
        enveloped = http.post(
            "/stask/worker/sample/run/noop",
            json={"options": {}, "concurrency_key": "tenant-2"},
        ).json()["id"]
        queried = http.post(
            "/stask/worker/sample/run/noop?concurrency_key=tenant-1", json={"a": 1}
        ).json()["id"]
        plain = http.post("/stask/task", json={"identifier": "sample", "action": "noop"})
        assert plain.json()["task"]["concurrency_key"] is None  # in every task's JSON
        shown = http.get(f"/stask/task/{enveloped}").json()["task"]
        assert shown["concurrency_key"] == "tenant-2" and shown["meta"] == {}

        def listed(**params: str) -> list[int]:
            response = http.get("/stask/tasks", params=params)
            assert response.status_code == 200, response.text
            return [t["id"] for t in response.json()["tasks"]]

        assert listed(concurrency_key="tenant-1") == [queried, task["id"]]
        assert listed(concurrency_key="tenant-2", identifier="sample") == [enveloped]
        assert listed(concurrency_key="nobody") == []
        assert len(listed(concurrency_key="")) == 4  # empty: no filter, like the others
        refused = http.get("/stask/tasks", params={"concurrency_key": "a\x00b"})
        assert refused.status_code == 422
        assert refused.json()["message"].startswith("concurrency_key holds a NUL character")


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("", "concurrency_key must be a non-empty string"),
        (" \t", "concurrency_key must be a non-empty string"),
        (7, "concurrency_key must be a non-empty string"),
        ("k" * 256, "concurrency_key is longer than 255 characters"),
        ("a\x00b", "concurrency_key"),
    ],
)
def test_a_bad_concurrency_key_is_a_422_naming_it(
    settings: Settings, key: object, needle: str
) -> None:
    with api(settings) as http:
        response = http.post(
            "/stask/task", json={"identifier": "sample", "action": "noop", "concurrency_key": key}
        )
        assert response.status_code == 422, response.text
        assert needle in response.json()["message"]
    with Client(settings=settings) as client:
        assert client.stats()["total"] == 0


@pytest.mark.parametrize("path", ["/stask/task/{id}", "/stask/tasks/{id}"])
def test_task_ids_are_validated(settings: Settings, path: str) -> None:
    with api(settings) as http:
        assert http.get(path.format(id=999999)).status_code == 404
        assert http.get(path.format(id=0)).status_code == 400
        assert http.get(path.format(id=2**70)).status_code == 404
        assert http.get(path.format(id="abc")).status_code == 404
        assert http.get(path.format(id="-3")).status_code == 400


@pytest.mark.parametrize("path", PROGRESS_PATHS)
def test_progress_fields_and_log_lines(settings: Settings, path: str) -> None:
    _register(settings)
    with api(settings) as http, running_daemon(settings):
        created = http.post("/stask/worker/sample/run/sleep", json={"seconds": 30}).json()["id"]
        url = path.format(id=created)
        wait_for(lambda: http.get(url).json()["status"] == "running")
        wait_for(lambda: http.get(url).json()["message"] == "sleeping")
        live = http.get(url).json()
        assert live["success"] is True and live["code"] == 200 and live["id"] == created
        assert set(live) >= {"progress", "processed", "total", "eta", "message", "log_lines"}
        assert http.post(f"/stask/task/{created}/cancel").status_code == 200
        wait_for(lambda: http.get(url).json()["status"] == "cancelled")
        final = http.get(url).json()
    assert any("Cancelled by user" in line for line in final["log_lines"])


def test_progress_works_after_the_unlogged_table_is_emptied(settings: Settings) -> None:
    """A crash empties s_task_progress: a running task then reads as unknown progress, a
    finished one from its row; never an error."""
    _register(settings)
    with api(settings) as http, running_daemon(settings):
        running = http.post("/stask/worker/sample/run/sleep", json={"seconds": 30}).json()["id"]
        done = http.post("/stask/worker/sample/run/steps", json={"total": 3}).json()["id"]
        wait_for(lambda: http.get(f"/stask/task/{done}/progress").json()["status"] == "completed")
        wait_for(lambda: http.get(f"/stask/task/{running}/progress").json()["progress"] is not None)
        with Client(settings=settings) as client, client.connection() as conn:
            conn.execute("TRUNCATE s_task_progress")
        live = http.get(f"/stask/task/{running}/progress")
        final = http.get(f"/stask/task/{done}/progress")
        with Client(settings=settings) as client:
            client.cancel(running)
    assert live.status_code == 200 and live.json()["status"] == "running"
    assert final.status_code == 200
    assert (final.json()["progress"], final.json()["message"]) == (100, "did 3 steps")


@pytest.mark.parametrize("path", ["/stask/task/{id}/stream", "/stask/tasks/{id}/stream"])
def test_progress_stream_sends_changes_then_the_end(settings: Settings, path: str) -> None:
    _register(settings)
    with api(settings) as http, running_daemon(settings):
        created = http.post("/stask/worker/sample/run/steps", json={"total": 3}).json()["id"]
        events: list[tuple[str, dict[str, object]]] = []
        with http.stream("GET", path.format(id=created)) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((event, json.loads(line.removeprefix("data: "))))
        assert http.get(path.format(id=999999)).status_code == 404
    assert events[-1] == ("end", {"id": created, "status": "completed"})
    progress = [data for kind, data in events if kind == "progress"]
    assert progress and progress[-1]["progress"] == 100
    assert all(a != b for a, b in itertools.pairwise(progress))  # changes only
