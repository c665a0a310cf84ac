"""Schedules that start a preset: the checks, every entry point that writes one (a worker's
attribute at a daemon's start, the client), the scheduler firing them with the data merged in
the statement that inserts the task, one task per slot under a race, and a preset removed from
under its schedules."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgstask import (
    Client,
    InvalidScheduleError,
    PresetNotFoundError,
    Status,
    queries,
    schedules,
)
from pgstask.db import make_pool
from pgstask.runtime.scheduler import Scheduler
from pgstask.settings import Settings
from tests.preset_workers import DigestWorker
from tests.sample_workers import SampleWorker
from tests.test_cli import base_env, cli

DIGEST = {"preset": "digest-daily", "cron": "0 3 * * *"}


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    assert SampleWorker.identifier == "sample"  # defined here: its actions are known
    with Client(settings=settings) as c:
        c.add_preset(
            "digest-daily",
            "sample",
            "noop",
            {"to": "ops", "format": "html", "items": 10},
            priority="high",
            max_attempts=5,
        )
        yield c


@pytest.fixture
def pool(settings: Settings) -> Iterator[Any]:
    assert settings.dsn
    p = make_pool(settings.dsn, max_size=4)
    try:
        yield p
    finally:
        p.close()


def _due(client: Client, name: str, seconds_ago: int = 1) -> Any:
    """Give schedule ``name`` a due slot (whole seconds, as a slot is); the slot."""
    with client.connection() as c:
        row = c.execute(
            "UPDATE s_schedules SET next_run_at = date_trunc('second', now())"
            " - make_interval(secs => %s) WHERE name = %s RETURNING next_run_at",
            (seconds_ago, name),
        ).fetchone()
    assert row is not None
    return row["next_run_at"]


def _slot_tasks(client: Client, name: str) -> list[Any]:
    with client.connection() as c:
        rows = c.execute(
            "SELECT task_id FROM s_schedule_runs WHERE schedule_name = %s ORDER BY slot", (name,)
        ).fetchall()
    return [client.get(r["task_id"]) for r in rows]


# --- what a valid schedule of a preset is -------------------------------------------------------


def test_a_schedule_of_a_preset_leaves_priority_and_attempts_to_it() -> None:
    s = schedules.check("nightly", None, {**DIGEST, "data": {"items": 3}})
    assert (s.preset, s.identifier, s.action, s.data) == ("digest-daily", None, None, {"items": 3})
    assert (s.priority, s.max_attempts) == (None, None)
    assert s.row(origin="api")["identifier"] is None
    given = schedules.check("nightly", "sample", {**DIGEST, "priority": "low", "max_attempts": 2})
    assert (given.priority, given.max_attempts) == ("low", 2)
    assert given.row(origin="code")["identifier"] is None  # the preset gives the worker


@pytest.mark.parametrize(
    ("identifier", "given", "message"),
    [
        (None, {**DIGEST, "action": "noop"}, "give an action or a preset, not both"),
        (None, {"cron": "@daily"}, "action is required (or preset, to start a preset)"),
        (None, {**DIGEST, "preset": " x"}, "a preset's name is non-empty text without blanks"),
        (None, {**DIGEST, "preset": 5}, "a preset's name is non-empty text"),
        (None, {"action": "noop", "cron": "@daily"}, "identifier must be a non-empty string"),
        (None, {**DIGEST, "priority": "urgent"}, "unknown priority 'urgent'"),
        (None, {**DIGEST, "data": [1]}, "data must be a JSON object"),
        (" ", DIGEST, "identifier must be a non-empty string"),
    ],
)
def test_a_bad_schedule_of_a_preset_is_refused(
    identifier: Any, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidScheduleError, match=re.escape(message)):
        schedules.check("nightly", identifier, given)


# --- the client ---------------------------------------------------------------------------------


def test_add_fire_and_run_a_schedule_of_a_preset(client: Client, pool: Any) -> None:
    added = client.add_schedule("nightly", None, {**DIGEST, "data": {"format": "text"}})
    assert added["inserted"] is True
    assert (added["preset"], added["identifier"], added["action"]) == ("digest-daily", None, None)
    assert (added["preset_identifier"], added["preset_action"]) == ("sample", "noop")
    assert (added["priority"], added["max_attempts"]) == (None, None)
    assert client.preset("digest-daily")["schedules"] == ["nightly"]

    scheduler = Scheduler(pool=pool, interval=1.0)
    scheduler.step()  # its next slot
    _due(client, "nightly")
    assert scheduler.step() == 1
    [task] = _slot_tasks(client, "nightly")
    assert (task.identifier, task.action) == ("sample", "noop")
    assert task.meta == {"to": "ops", "format": "text", "items": 10}
    assert (task.priority, task.max_attempts) == ("high", 5)
    assert task.message == "Task queued by schedule nightly from preset digest-daily"

    now = client.run_schedule("nightly")
    assert (now.meta, now.priority) == (task.meta, "high")
    # The preset changed: the next slot takes it as it is then.
    client.add_preset("digest-daily", "sample", "sync_stock", {"to": "all"}, priority="low")
    _due(client, "nightly", 5)  # not the slot fired above, whatever second this runs in
    assert scheduler.step() == 1
    later = max(_slot_tasks(client, "nightly"), key=lambda t: t.id)
    assert (later.action, later.priority) == ("sync_stock", "low")
    assert later.meta == {"to": "all", "format": "text"}


def test_a_schedule_may_set_its_own_priority_and_attempts(client: Client, pool: Any) -> None:
    client.add_schedule("urgent", "sample", {**DIGEST, "priority": "low", "max_attempts": 1})
    Scheduler(pool=pool, interval=1.0).step()
    _due(client, "urgent")
    assert Scheduler(pool=pool, interval=1.0).step() == 1
    [task] = _slot_tasks(client, "urgent")
    assert (task.priority, task.max_attempts) == ("low", 1)


@pytest.mark.parametrize(
    ("identifier", "given", "needle"),
    [
        (None, {**DIGEST, "preset": "nope"}, "schedule 'x': no preset is named 'nope'; add it"),
        ("other", DIGEST, "starts preset 'digest-daily', which is of worker 'sample'"),
        (None, {**DIGEST, "colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_add_refuses_a_bad_schedule_of_a_preset(
    client: Client, identifier: Any, given: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        client.add_schedule("x", identifier, given)
    assert needle in str(caught.value)
    assert client.schedules() == []


def test_a_removed_preset_disables_its_schedules_and_the_pass_goes_on(
    client: Client, pool: Any
) -> None:
    client.add_schedule("a-digest", None, DIGEST)
    client.add_schedule("b-plain", "sample", {"action": "noop", "cron": "0 3 * * *"})
    scheduler = Scheduler(pool=pool, interval=1.0)
    scheduler.step()
    assert client.remove_preset("digest-daily") == ["a-digest"]
    _due(client, "a-digest")
    _due(client, "b-plain")
    assert scheduler.step() == 1  # the plain one fired in the same pass
    digest = client.schedule("a-digest")
    assert digest["active"] is False and _slot_tasks(client, "a-digest") == []
    assert "preset 'digest-daily' does not exist" in digest["last_error"]
    assert (digest["preset_identifier"], digest["preset_action"]) == (None, None)
    assert len(_slot_tasks(client, "b-plain")) == 1
    with pytest.raises(PresetNotFoundError, match="schedule 'a-digest' starts preset"):
        client.run_schedule("a-digest")

    # The preset back, the schedule resumed: it fires from its next slot.
    client.add_preset("digest-daily", "sample", "noop")
    resumed = client.resume_schedule("a-digest")
    assert resumed["active"] is True and resumed["last_error"] is None
    scheduler.step()
    _due(client, "a-digest")
    assert scheduler.step() == 1


def test_a_task_postgresql_refuses_disables_its_schedule(client: Client, pool: Any) -> None:
    """Preset and schedule data each fit a task; merged, they pass 1 MiB."""
    client.add_preset("big", "sample", "noop", {"a": "x" * 600_000})
    half = {"b": "y" * 600_000}
    client.add_schedule("big-alone", None, {"preset": "big", "cron": "@daily"})
    client.add_schedule("small", None, {**DIGEST, "data": half})
    client.add_schedule("too-big", None, {"preset": "big", "cron": "@daily", "data": half})
    scheduler = Scheduler(pool=pool, interval=1.0)
    scheduler.step()
    for name in ("big-alone", "small", "too-big"):
        _due(client, name)
    assert scheduler.step() == 2  # the two others fired in the same pass
    broken = client.schedule("too-big")
    assert broken["active"] is False
    assert "its task cannot be inserted" in broken["last_error"]
    assert "s_tasks_meta_size_check" in broken["last_error"]
    assert client.schedule("small")["active"] is True


def test_racing_schedulers_fire_each_slot_of_a_preset_schedule_once(
    settings: Settings, client: Client, pool: Any
) -> None:
    client.add_schedule("raced", None, {"preset": "digest-daily", "cron": "@yearly"})
    Scheduler(pool=pool, interval=1.0).step()
    assert settings.dsn
    pools = [make_pool(settings.dsn, max_size=2) for _ in range(6)]
    try:
        racers = [Scheduler(pool=p, interval=1.0) for p in pools]
        for round_ in range(8):
            _due(client, "raced", 2 * (round_ + 1))
            barrier = threading.Barrier(len(racers))
            got: list[int] = []

            def race(
                s: Scheduler, barrier: threading.Barrier = barrier, got: list[int] = got
            ) -> None:
                barrier.wait()
                got.append(s.step())

            threads = [threading.Thread(target=race, args=(s,)) for s in racers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sum(got) == 1, (round_, got)
    finally:
        for p in pools:
            p.close()
    tasks = _slot_tasks(client, "raced")
    assert len(tasks) == 8 and all(t.meta["to"] == "ops" for t in tasks)
    assert client.stats()["pending"] == 8


# --- a worker's attribute, written at a daemon's start ------------------------------------------


def test_a_worker_schedule_of_an_unknown_preset_stops_the_daemon_at_its_start(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.dsn
    env = {
        **base_env(),
        "PGSTASK_DSN": settings.dsn,
        "PGSTASK_STORAGE": str(tmp_path / "storage"),
        "PGSTASK_WORKERS": "tests.preset_workers",
    }
    missing = cli(env, "run-once")
    assert missing.returncode == 2, missing.stderr
    assert "schedule 'nightly-digest': no preset is named 'digest-daily'" in missing.stderr

    with Client(settings=settings) as client:
        client.add_preset("digest-daily", "sample", "noop")
        other = cli(env, "run-once")
        assert other.returncode == 2, other.stderr
        assert "of worker 'digest' starts preset 'digest-daily', which is of worker 'sample'" in (
            other.stderr
        )
        client.add_preset("digest-daily", "digest", "send", {"to": "ops", "n": 1})
        started = cli(env, "run-once")
        assert started.returncode == 0, started.stderr
        row = client.schedule("nightly-digest")
        assert (row["origin"], row["preset"], row["identifier"], row["data"]) == (
            "code",
            "digest-daily",
            None,
            {"n": 2},
        )
        with pytest.raises(InvalidScheduleError, match="declared in code by worker 'digest'"):
            client.add_schedule("nightly-digest", None, DIGEST)
        task = client.run_schedule("nightly-digest")
        assert (task.identifier, task.action) == ("digest", "send")
        assert task.meta == {"to": "ops", "n": 2}
        assert task.status == Status.PENDING


def test_a_worker_schedule_of_a_preset_the_worker_lacks_the_action_of_is_refused(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client, client.connection() as c:
        c.execute(
            "INSERT INTO s_presets (name, identifier, action) VALUES ('digest-daily', 'digest',"
            " 'fly')"
        )
        with pytest.raises(InvalidScheduleError, match="preset 'digest-daily': worker 'digest'"):
            schedules.write_declared(c, [DigestWorker])
        assert queries.schedule_list(c) == []
