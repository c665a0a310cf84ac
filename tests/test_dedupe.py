"""De-duplication windows (docs/dedupe.md): ``throttle`` and ``replace`` beside ``dedupe_key``,
through the client, SQL, the HTTP API and the CLI, with a real daemon for the wake-up."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgstask import Client
from pgstask.errors import InvalidTaskError
from pgstask.settings import Settings
from pgstask.task import Status
from tests.daemons import ROOT, daemon_env, running_daemon, wait_for
from tests.http_support import api


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        c.discover_workers(["tests.sample_workers"])
        yield c


def _finish(client: Client, task_id: int, ago: float = 0.0) -> None:
    with client.connection() as c:
        c.execute(
            "UPDATE s_tasks SET status = 80,"
            " finished_at = now() - make_interval(secs => %s) WHERE id = %s",
            (ago, task_id),
        )


def test_throttle_answers_the_task_that_finished_within_the_window(client: Client) -> None:
    first = client.create("sample", "noop", {"n": 1}, dedupe_key="sync")
    assert client.create("sample", "noop", dedupe_key="sync", throttle=60).id == first.id
    _finish(client, first.id)
    again = client.create("sample", "noop", {"n": 2}, dedupe_key="sync", throttle=60)
    assert (again.id, again.status) == (first.id, Status.COMPLETED)  # no new task
    fresh = client.create("sample", "noop", {"n": 3}, dedupe_key="sync")  # no window: a new one
    assert fresh.id != first.id and fresh.meta == {"n": 3}
    _finish(client, fresh.id, ago=120)
    _finish(client, first.id, ago=130)
    later = client.create("sample", "noop", {"n": 4}, dedupe_key="sync", throttle=60)
    assert later.id not in (first.id, fresh.id) and later.status == Status.PENDING


def test_replace_gives_the_pending_task_the_new_fields(client: Client) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    first = client.create("sample", "noop", {"v": 1}, dedupe_key="debounce", start_at=soon)
    replaced = client.create(
        "sample",
        "noop",
        {"v": 2},
        dedupe_key="debounce",
        replace=True,
        priority="high",
        concurrency_key="tenant-7",
    )
    assert replaced.id == first.id
    assert (replaced.meta, replaced.priority, replaced.concurrency_key) == (
        {"v": 2},
        "high",
        "tenant-7",
    )
    assert replaced.start_at < soon  # now, the create's start
    assert replaced.message == "Task queued (replaced by a later create)"
    with client.connection() as c:
        c.execute("UPDATE s_tasks SET status = 50 WHERE id = %s", (first.id,))
    running = client.create("sample", "noop", {"v": 3}, dedupe_key="debounce", replace=True)
    assert (running.id, running.meta) == (first.id, {"v": 2})  # a running task keeps its data


def test_create_many_applies_the_window_to_every_item(client: Client) -> None:
    first = client.create("sample", "noop", {"v": 0}, dedupe_key="a")
    items: list[dict[str, Any]] = [
        {"identifier": "sample", "action": "noop", "data": {"v": 1}, "dedupe_key": "a"},
        {"identifier": "sample", "action": "noop", "data": {"v": 2}, "dedupe_key": "b"},
        {"identifier": "sample", "action": "noop", "data": {"v": 3}, "dedupe_key": "a"},
    ]
    tasks = client.create_many(items, replace=True)
    by_key = {t.dedupe_key: t for t in tasks}
    assert by_key["a"].id == first.id and by_key["a"].meta == {"v": 3}  # the last item wins
    assert by_key["b"].meta == {"v": 2}
    with pytest.raises(InvalidTaskError, match="need a dedupe_key"):
        client.create_many([{"identifier": "sample", "action": "noop"}], throttle=5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"throttle": 5}, "need a dedupe_key"),
        ({"replace": True}, "need a dedupe_key"),
        ({"dedupe_key": "k", "throttle": 0}, "more than 0"),
        ({"dedupe_key": "k", "throttle": -1}, "more than 0"),
        ({"dedupe_key": "k", "throttle": math.nan}, "more than 0"),
        ({"dedupe_key": "k", "throttle": 366 * 86400 + 1}, "at most"),
        ({"dedupe_key": "k", "throttle": "60"}, "a number of seconds"),
        ({"dedupe_key": "k", "throttle": True}, "a number of seconds"),
        ({"dedupe_key": "k", "replace": "yes"}, "true or false"),
    ],
)
def test_bad_windows_are_refused_and_create_nothing(
    client: Client, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidTaskError, match=message):
        client.create("sample", "noop", **fields)
    assert client.list() == []


def test_sql_users_have_the_same_windows(settings: Settings) -> None:
    with psycopg.connect(str(settings.dsn), autocommit=True) as conn:

        def enqueue(sql: str, params: tuple[Any, ...] = ()) -> Any:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None

        first = enqueue("SELECT pgstask_enqueue('w', 'a', '{\"v\": 1}', dedupe_key => 'k')")
        same = enqueue(
            "SELECT pgstask_enqueue('w', 'a', '{\"v\": 2}', dedupe_key => 'k', replace => true)"
        )
        assert same == first
        assert enqueue("SELECT meta FROM s_tasks WHERE id = %s", (first,)) == {"v": 2}
        conn.execute("UPDATE s_tasks SET status = 80, finished_at = now()")
        throttled = enqueue("SELECT pgstask_enqueue('w', 'a', dedupe_key => 'k', throttle => 60)")
        assert throttled == first
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="need a dedupe_key"):
            enqueue("SELECT pgstask_enqueue('w', 'a', throttle => 60)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="throttle must be"):
            enqueue("SELECT pgstask_enqueue('w', 'a', dedupe_key => 'k', throttle => -5)")
        assert enqueue("SELECT count(*) FROM s_tasks") == 1


def test_a_replaced_start_wakes_a_daemon_at_once(client: Client, settings: Settings) -> None:
    """The replaced task was due in an hour; its replacement is due now. The daemon polls once a
    minute: only the NOTIFY of the replace can start it in time."""
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    task = client.create("sample", "noop", dedupe_key="wake", start_at=later)
    with running_daemon(settings.replace(poll_interval=60.0)):
        client.create("sample", "noop", dedupe_key="wake", replace=True)
        wait_for(lambda: client.get(task).status == Status.COMPLETED, timeout=20)


def test_the_http_api_takes_throttle_and_replace(settings: Settings, client: Client) -> None:
    with api(settings) as http:
        body = {"identifier": "sample", "action": "noop", "dedupe_key": "h", "data": {"v": 1}}
        first = http.post("/stask/task", json=body)
        assert first.status_code == 201, first.text
        replaced = http.post("/stask/task", json={**body, "data": {"v": 2}, "replace": True})
        assert replaced.json()["task"]["id"] == first.json()["task"]["id"]
        assert replaced.json()["task"]["meta"] == {"v": 2}
        run = http.post("/stask/worker/sample/run/noop?dedupe_key=h&replace=true", json={"v": 3})
        assert run.status_code == 201 and run.json()["id"] == first.json()["task"]["id"]
        for bad, message in (({"throttle": "soon"}, "throttle"), ({"throttle": -1}, "throttle")):
            answer = http.post("/stask/task", json={**body, **bad})
            assert answer.status_code == 422, answer.text
            assert message in answer.json()["message"]
        no_key = http.post(
            "/stask/task", json={"identifier": "sample", "action": "noop", "replace": True}
        )
        assert no_key.status_code == 422 and "dedupe_key" in no_key.json()["message"]
    assert client.get(first.json()["task"]["id"]).meta == {"v": 3}


def test_the_cli_takes_throttle_and_replace(settings: Settings, client: Client) -> None:
    def create(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pgstask", "create", "sample", "noop", *args],
            cwd=ROOT,
            env=daemon_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = create("--data", '{"v": 1}', "--dedupe-key", "c")
    assert first.returncode == 0, first.stderr
    second = create("--data", '{"v": 2}', "--dedupe-key", "c", "--replace")
    assert second.stdout == first.stdout  # the same id
    assert client.get(int(first.stdout)).meta == {"v": 2}
    bad = create("--throttle", "-3", "--dedupe-key", "c")
    assert bad.returncode == 2 and "--throttle" in bad.stderr
    no_key = create("--replace")
    assert no_key.returncode == 2 and "dedupe_key" in no_key.stderr
