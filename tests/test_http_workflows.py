"""HTTP API: tasks that depend on others (``depends_on`` on the create and run endpoints), whole
workflows in one call (``POST /stask/workflows``), a task's parents, children and workflow, and
the clear 422 of every bad input, against a real PostgreSQL (and a daemon where tasks run)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from pgstask import Client
from pgstask.settings import Settings
from tests.daemons import running_daemon, wait_for
from tests.http_support import api

DIAMOND = [
    {"ref": "d", "identifier": "sample", "action": "noop", "depends_on": ["b", "c"]},
    {"ref": "b", "identifier": "sample", "action": "noop", "depends_on": ["a"]},
    {"ref": "c", "identifier": "sample", "action": "noop", "depends_on": ["a"]},
    {"ref": "a", "identifier": "sample", "action": "noop", "data": {"first": True}},
]


def _register(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])


def _task(http: TestClient, task_id: int) -> dict[str, Any]:
    found: dict[str, Any] = http.get(f"/stask/task/{task_id}").json()["task"]
    return found


def _count(http: TestClient) -> int:
    count: int = http.get("/stask/tasks").json()["count"]
    return count


def test_a_diamond_is_created_in_one_call_and_runs_in_order(settings: Settings) -> None:
    _register(settings)
    with api(settings) as http:
        response = http.post("/stask/workflows", json={"tasks": DIAMOND})
        assert response.status_code == 201, response.text
        body = response.json()
        refs = body["refs"]
        assert [t["id"] for t in body["tasks"]] == [refs["d"], refs["b"], refs["c"], refs["a"]]
        assert refs["a"] < refs["b"] < refs["d"] and refs["c"] < refs["d"]  # parents first
        statuses = {t["id"]: t["status_text"] for t in body["tasks"]}
        assert statuses[refs["a"]] == "pending"
        assert {statuses[refs[r]] for r in "bcd"} == {"waiting"}
        d = _task(http, refs["d"])
        assert sorted(d["depends_on"]) == sorted([refs["b"], refs["c"]])
        assert d["waiting_for"] == 2 and d["has_children"] is False
        progress = http.get(f"/stask/task/{refs['d']}/progress").json()
        assert (progress["status"], progress["progress"]) == ("waiting", 0)

        waiting = http.get("/stask/tasks", params={"status": "waiting"}).json()
        assert sorted(t["id"] for t in waiting["tasks"]) == sorted(refs[r] for r in "bcd")
        assert http.get("/stask/tasks", params={"status": "20"}).json()["count"] == 3
        assert http.get("/stask/stats").json()["waiting"] == 3

        for path in ("/stask/task/{id}/workflow", "/stask/tasks/{id}/workflow"):
            flow = http.get(path.format(id=refs["c"])).json()
            assert flow["success"] is True and flow["id"] == refs["c"]
            assert [t["id"] for t in flow["tasks"]] == sorted(refs.values())
            assert flow["count"] == 4 and flow["truncated"] is False
            edges = {(e["parent_id"], e["task_id"]) for e in flow["edges"]}
            assert edges == {
                (refs["a"], refs["b"]),
                (refs["a"], refs["c"]),
                (refs["b"], refs["d"]),
                (refs["c"], refs["d"]),
            }

        shown = http.get(f"/stask/task/{refs['b']}").json()
        assert [p["id"] for p in shown["parents"]] == [refs["a"]]
        assert shown["parents"][0]["status_text"] == "pending"
        assert [c["id"] for c in shown["children"]] == [refs["d"]]
        assert shown["children"][0] == {
            "id": refs["d"],
            "identifier": "sample",
            "action": "noop",
            "status": 20,
            "status_text": "waiting",
        }

        with running_daemon(settings):
            wait_for(lambda: _task(http, refs["d"])["status_text"] == "completed")
        finished = {r: _task(http, refs[r])["finished_at"] for r in "abcd"}
        assert finished["a"] <= min(finished["b"], finished["c"])
        assert max(finished["b"], finished["c"]) <= finished["d"]


def test_a_task_alone_is_a_workflow_of_one(settings: Settings) -> None:
    with api(settings) as http:
        task_id = http.post("/stask/task", json={"identifier": "x", "action": "y"}).json()["task"]
        flow = http.get(f"/stask/task/{task_id['id']}/workflow").json()
        assert [t["id"] for t in flow["tasks"]] == [task_id["id"]] and flow["edges"] == []
        shown = http.get(f"/stask/task/{task_id['id']}").json()
        assert shown["parents"] == [] and shown["children"] == []
        missing = http.get("/stask/task/999999/workflow")
        assert missing.status_code == 404
        assert missing.json()["error"] == "Task not found"


def test_create_and_run_take_depends_on_and_on_parent_failure(settings: Settings) -> None:
    _register(settings)
    with api(settings) as http:
        parent = http.post("/stask/task", json={"identifier": "nobody", "action": "wait"})
        first = parent.json()["task"]["id"]
        other = http.post("/stask/task", json={"identifier": "nobody", "action": "wait"})
        second = other.json()["task"]["id"]

        created = http.post(
            "/stask/task",
            json={
                "identifier": "sample",
                "action": "noop",
                "depends_on": [first, second],
                "on_parent_failure": "run",
            },
        )
        assert created.status_code == 201, created.text
        task = created.json()["task"]
        assert task["status_text"] == "waiting" and task["waiting_for"] == 2
        assert task["depends_on"] == [first, second] and task["on_parent_failure"] == "run"

        enveloped = http.post(
            "/stask/worker/sample/run/noop",
            json={"options": {"n": 1}, "depends_on": [first], "on_parent_failure": "cancel"},
        )
        assert enveloped.status_code == 201, enveloped.text
        assert enveloped.json()["status"] == "waiting"
        queried = http.post(
            f"/stask/worker/sample/run/noop?depends_on={first},{second}&on_parent_failure=run",
            json={"n": 2},
        )
        assert queried.status_code == 201, queried.text
        shown = _task(http, queried.json()["id"])
        assert shown["depends_on"] == [first, second] and shown["on_parent_failure"] == "run"
        assert shown["meta"] == {"n": 2}

        plain = http.post("/stask/task", json={"identifier": "x", "action": "y", "depends_on": []})
        assert plain.json()["task"]["status_text"] == "pending"  # no dependencies: none to wait

        children = http.get(f"/stask/task/{first}").json()["children"]
        assert [c["id"] for c in children] == [
            task["id"],
            enveloped.json()["id"],
            queried.json()["id"],
        ]

        # A cancelled parent: the child that says "run" runs, the one that says "cancel" does not.
        assert http.post(f"/stask/task/{first}/cancel").status_code == 200
        assert _task(http, enveloped.json()["id"])["status_text"] == "cancelled"
        assert _task(http, task["id"])["status_text"] == "waiting"  # second has not finished
        assert http.post(f"/stask/task/{second}/cancel").status_code == 200
        assert _task(http, task["id"])["status_text"] == "pending"


BAD_WORKFLOWS = [
    (
        [
            {"ref": "a", "identifier": "sample", "action": "noop", "depends_on": ["b"]},
            {"ref": "b", "identifier": "sample", "action": "noop", "depends_on": ["a"]},
        ],
        "depends_on forms a cycle: 'a' -> 'b' -> 'a'",
    ),
    (
        [{"identifier": "sample", "action": "noop", "depends_on": ["nowhere"]}],
        "task #0: depends_on names ref 'nowhere', which no task has",
    ),
    (
        [
            {"ref": "a", "identifier": "sample", "action": "noop"},
            {"identifier": "sample", "action": "noop", "depends_on": "a"},
        ],
        "task #1: depends_on must be a list of refs and task ids, not str",
    ),
    (
        [{"identifier": "sample", "action": "noop", "on_parent_failure": "ignore"}],
        "task #0: on_parent_failure must be 'cancel' or 'run', not 'ignore'",
    ),
    (
        [{"identifier": "sample", "action": "noop", "depends_on": [0]}],
        "task #0: depends_on: 0 is not a task id",
    ),
    (
        [
            {"ref": "a", "identifier": "sample", "action": "noop"},
            {"ref": "a", "identifier": "sample", "action": "noop"},
        ],
        "task #1: ref 'a' is used by task #0 too",
    ),
    (
        [{"identifier": "sample", "action": "noop", "throttle": 5}],
        "task #0: unknown field(s) 'throttle'",
    ),
    (
        [{"identifier": "sample", "action": "noop", "max_attempts": 0}],
        "task #0: max_attempts must be a whole number from 1 to 1000",
    ),
    (["noop"], "task #0: must be a JSON object, not str"),
    ([], "tasks must be a non-empty list of task objects"),
]


@pytest.mark.parametrize(("tasks", "message"), BAD_WORKFLOWS)
def test_a_bad_workflow_is_a_422_naming_the_item_and_creates_nothing(
    settings: Settings, tasks: list[Any], message: str
) -> None:
    _register(settings)
    with api(settings) as http:
        response = http.post("/stask/workflows", json={"tasks": tasks})
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(message), response.json()
        assert _count(http) == 0


def test_a_missing_parent_is_a_422_and_the_whole_workflow_is_rolled_back(
    settings: Settings,
) -> None:
    _register(settings)
    with api(settings) as http:
        tasks = [
            {"ref": "a", "identifier": "sample", "action": "noop"},
            {"identifier": "sample", "action": "noop", "depends_on": ["a", 424242]},
        ]
        response = http.post("/stask/workflows", json={"tasks": tasks})
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "Invalid task"
        assert "depends on task 424242, which does not exist" in body["message"]
        assert "must name an existing task" in body["message"]  # the database's hint
        assert _count(http) == 0
        single = http.post(
            "/stask/task", json={"identifier": "sample", "action": "noop", "depends_on": [424242]}
        )
        assert single.status_code == 422
        assert "depends on task 424242, which does not exist" in single.json()["message"]
        assert _count(http) == 0


@pytest.mark.parametrize(
    ("body", "query", "message"),
    [
        ({"depends_on": 4}, "", "depends_on must be a list of task ids, not int"),
        ({"depends_on": "4,7"}, "", "depends_on must be a list of task ids, not str"),
        ({"depends_on": [4, "x"]}, "", "depends_on must list task ids (whole numbers from 1)"),
        ({"depends_on": [True]}, "", "depends_on must list task ids (whole numbers from 1)"),
        ({"on_parent_failure": "skip"}, "", "on_parent_failure must be 'cancel' or 'run'"),
        ({}, "?depends_on=4;7", "depends_on must be task ids separated by commas"),
        ({}, "?depends_on=0", "depends_on: '0' is not a task id"),
        ({}, "?on_parent_failure=later", "on_parent_failure must be 'cancel' or 'run'"),
    ],
)
def test_bad_dependencies_of_one_task_are_a_422_naming_the_field(
    settings: Settings, body: dict[str, Any], query: str, message: str
) -> None:
    _register(settings)
    with api(settings) as http:
        parent = http.post("/stask/task", json={"identifier": "nobody", "action": "wait"})
        assert parent.status_code == 201
        if query:
            answers = [http.post(f"/stask/worker/sample/run/noop{query}", json={})]
        else:
            answers = [
                http.post("/stask/task", json={"identifier": "sample", "action": "noop", **body}),
                http.post("/stask/worker/sample/run/noop", json={"options": {}, **body}),
            ]
        for response in answers:
            assert response.status_code == 422, response.text
            assert response.json()["message"].startswith(message), response.json()
        assert _count(http) == 1


def test_throttle_or_replace_with_depends_on_is_a_422(settings: Settings) -> None:
    with api(settings) as http:
        parent = http.post("/stask/task", json={"identifier": "nobody", "action": "wait"})
        response = http.post(
            "/stask/task",
            json={
                "identifier": "x",
                "action": "y",
                "dedupe_key": "k",
                "throttle": 10,
                "depends_on": [parent.json()["task"]["id"]],
            },
        )
        assert response.status_code == 422
        assert "throttle and replace do not apply" in response.json()["message"]
