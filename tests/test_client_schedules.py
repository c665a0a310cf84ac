"""The client's schedule methods: list, show, add or replace, pause, resume, remove, run now."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pgstask import Client, InvalidScheduleError, ScheduleNotFoundError, Status, schedules
from pgstask.db import make_pool
from pgstask.runtime.scheduler import Scheduler
from pgstask.settings import Settings
from tests.sample_workers import SampleWorker
from tests.schedule_workers import TickWorker

NIGHTLY = {"action": "noop", "cron": "0 3 * * *", "timezone": "Europe/Kyiv", "data": {"n": 1}}


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        yield c


def _fire_first_slot(client: Client, name: str) -> None:
    """Give the schedule a due slot and let a scheduler fire it."""
    with client.connection() as c:
        c.execute(
            "UPDATE s_schedules SET next_run_at = now() - interval '1 s' WHERE name = %s", (name,)
        )
    with make_pool(client.dsn, max_size=1, name="pgstask-test") as pool:
        assert Scheduler(pool=pool, interval=1.0).step() == 1


def test_add_lists_shows_and_replaces(client: Client) -> None:
    added = client.add_schedule("nightly", "sample", NIGHTLY)
    assert added["inserted"] is True and added["origin"] == "api"
    assert (added["identifier"], added["action"], added["cron"]) == ("sample", "noop", "0 3 * * *")
    assert (added["timezone"], added["data"], added["active"]) == ("Europe/Kyiv", {"n": 1}, True)
    assert added["next_run_at"] is None and added["last_task_id"] is None
    assert added["last_task_status"] is None
    client.add_schedule("a-first", "sample", {"action": "noop", "cron": "@hourly"})
    assert [r["name"] for r in client.schedules()] == ["a-first", "nightly"]
    assert client.schedule("nightly")["data"] == {"n": 1}

    same = client.add_schedule("nightly", "sample", NIGHTLY)
    assert same["inserted"] is False and same["data"] == {"n": 1}
    replaced = client.add_schedule("nightly", "sample", {**NIGHTLY, "priority": "high"})
    assert replaced["inserted"] is False and replaced["priority"] == "high"
    assert client.schedule("nightly")["priority"] == "high"


def test_add_with_active_false_pauses_and_true_resumes(client: Client) -> None:
    paused = client.add_schedule("nightly", "sample", {**NIGHTLY, "active": False})
    assert paused["inserted"] is True and paused["active"] is False
    resumed = client.add_schedule("nightly", "sample", {**NIGHTLY, "active": True})
    assert resumed["active"] is True and resumed["inserted"] is False
    client.pause_schedule("nightly")
    kept = client.add_schedule("nightly", "sample", {**NIGHTLY, "priority": "low"})
    assert kept["active"] is False  # not given: a pause stays


@pytest.mark.parametrize(
    ("name", "identifier", "fields", "needle"),
    [
        ("x", "sample", {**NIGHTLY, "cron": "61 * * * *"}, "schedule 'x'"),
        ("x", "sample", {**NIGHTLY, "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ("x", "sample", {**NIGHTLY, "colour": "red"}, "unknown field(s) colour"),
        ("x", "sample", {**NIGHTLY, "action": "fly"}, "has no action 'fly'"),
        ("x", "sample", {"cron": "@daily"}, "action is required"),
        (" x", "sample", NIGHTLY, "without blanks"),
    ],
)
def test_add_refuses_a_bad_schedule(
    client: Client, name: str, identifier: str, fields: dict[str, Any], needle: str
) -> None:
    assert SampleWorker.identifier == "sample"  # defined here: its actions are known
    with pytest.raises(InvalidScheduleError) as caught:
        client.add_schedule(name, identifier, fields)
    assert needle in str(caught.value)
    assert client.schedules() == []


def test_add_checks_the_actions_of_a_registered_worker(client: Client) -> None:
    with client.connection() as c:
        c.execute(
            "INSERT INTO s_workers (identifier, class, actions) "
            "VALUES ('remote', 'elsewhere.Remote', '{pull}')"
        )
    with pytest.raises(InvalidScheduleError, match="worker 'remote' has no action 'push'"):
        client.add_schedule("sync", "remote", {"action": "push", "cron": "@hourly"})
    assert client.add_schedule("sync", "remote", {"action": "Pull", "cron": "@hourly"})["inserted"]
    # A worker neither defined here nor registered: a daemon elsewhere may run it.
    assert client.add_schedule("far", "unknown-here", {"action": "x", "cron": "@daily"})["inserted"]


def test_a_schedule_declared_in_code_is_not_replaced(client: Client) -> None:
    with client.connection() as c:
        schedules.write_declared(c, [TickWorker])
    with pytest.raises(InvalidScheduleError, match="declared in code by worker 'ticks'"):
        client.add_schedule("nightly", "ticks", {"action": "tick", "cron": "@hourly"})
    assert client.schedule("nightly")["origin"] == "code"
    with client.connection() as c:  # no longer declared: the API may take it over
        c.execute("UPDATE s_schedules SET missing_from_code_at = now() WHERE name = 'nightly'")
    taken = client.add_schedule("nightly", "ticks", {"action": "tick", "cron": "@hourly"})
    assert (taken["origin"], taken["cron"], taken["missing_from_code_at"]) == (
        "api",
        "@hourly",
        None,
    )


def test_pause_resume_and_remove(client: Client) -> None:
    client.add_schedule("nightly", "sample", NIGHTLY)
    _fire_first_slot(client, "nightly")
    fired = client.schedule("nightly")
    assert fired["next_run_at"] is not None and fired["last_task_id"] is not None
    assert fired["last_task_status"] == "pending"
    assert client.schedules() == [fired]
    paused = client.pause_schedule("nightly")
    assert paused["active"] is False and paused["next_run_at"] == fired["next_run_at"]
    resumed = client.resume_schedule("nightly")
    assert resumed["active"] is True and resumed["next_run_at"] is None  # from its next slot
    assert resumed["last_task_id"] == fired["last_task_id"]
    client.remove_schedule("nightly")
    assert client.schedules() == []
    assert client.get(fired["last_task_id"]).identifier == "sample"  # its task stays
    assert paused["last_task_status"] == resumed["last_task_status"] == "pending"


def test_run_enqueues_one_task_now_and_leaves_the_slots(client: Client) -> None:
    client.add_schedule("nightly", "sample", {**NIGHTLY, "priority": "high", "max_attempts": 5})
    client.pause_schedule("nightly")
    before = client.schedule("nightly")
    task = client.run_schedule("nightly")
    assert (task.identifier, task.action, task.meta) == ("sample", "noop", {"n": 1})
    assert (task.priority, task.max_attempts, task.status) == ("high", 5, Status.PENDING)
    assert task.message == "Task queued by schedule nightly, run now"
    assert client.schedule("nightly") == before
    assert client.get(task.id) == task


@pytest.mark.parametrize("name", ["nothing", "", "nul\x00", "\ud800", 5])
def test_an_unknown_schedule_is_not_found(client: Client, name: Any) -> None:
    for method in (
        client.schedule,
        client.pause_schedule,
        client.resume_schedule,
        client.remove_schedule,
        client.run_schedule,
    ):
        with pytest.raises(ScheduleNotFoundError):
            method(name)
