"""The client's preset methods: list, show, add or replace, remove, and start one
(``create_from_preset``), in the client's own transaction or the caller's."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from pgstask import (
    Client,
    InvalidPresetError,
    InvalidTaskError,
    PresetNotFoundError,
    Status,
)
from pgstask.settings import Settings
from tests.sample_workers import SampleWorker


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        yield c


def _export(client: Client, **given: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "data": {"format": "csv", "filters": {"year": 2026}, "rows": 10},
        "priority": "high",
        "max_attempts": 5,
        "description": "The nightly CSV",
        **given,
    }
    return client.add_preset("nightly-export", "sample", "noop", **fields)


def test_add_lists_shows_and_replaces(client: Client) -> None:
    added = _export(client)
    assert added["inserted"] is True
    assert (added["name"], added["identifier"], added["action"]) == (
        "nightly-export",
        "sample",
        "noop",
    )
    assert added["data"] == {"format": "csv", "filters": {"year": 2026}, "rows": 10}
    assert (added["priority"], added["max_attempts"], added["description"]) == (
        "high",
        5,
        "The nightly CSV",
    )
    assert added["schedules"] == [] and added["created_at"] == added["updated_at"]
    client.add_preset("a-first", "sample", "sync-stock")
    assert [p["name"] for p in client.presets()] == ["a-first", "nightly-export"]
    shown = client.preset("nightly-export")
    assert shown == {k: v for k, v in added.items() if k != "inserted"}

    replaced = _export(client, priority="low", data=None)
    assert replaced["inserted"] is False and replaced["priority"] == "low"
    assert replaced["data"] == {} and replaced["created_at"] == added["created_at"]
    assert client.preset("nightly-export")["priority"] == "low"


@pytest.mark.parametrize(
    ("name", "args", "given", "needle"),
    [
        ("x", ("sample", "fly"), {}, "preset 'x': worker 'sample' has no action 'fly'"),
        ("x", ("sample", "noop"), {"priority": "urgent"}, "unknown priority 'urgent'"),
        ("x", ("sample", "noop"), {"max_attempts": 0}, "max_attempts must be between 1 and"),
        ("x", ("sample", "noop"), {"data": [1]}, "data must be a JSON object"),
        ("x", ("", "noop"), {}, "identifier must be a non-empty string"),
        (" x", ("sample", "noop"), {}, "without blanks around it"),
    ],
)
def test_add_refuses_a_bad_preset(
    client: Client, name: str, args: tuple[str, str], given: dict[str, Any], needle: str
) -> None:
    assert SampleWorker.identifier == "sample"  # defined here: its actions are known
    with pytest.raises(InvalidPresetError) as caught:
        client.add_preset(name, *args, **given)
    assert needle in str(caught.value)
    assert client.presets() == []


def test_add_checks_the_actions_of_a_registered_worker(client: Client) -> None:
    with client.connection() as c:
        c.execute(
            "INSERT INTO s_workers (identifier, class, actions) "
            "VALUES ('remote', 'elsewhere.Remote', '{pull}')"
        )
    with pytest.raises(InvalidPresetError, match="worker 'remote' has no action 'push'"):
        client.add_preset("sync", "remote", "push")
    assert client.add_preset("sync", "remote", "Pull")["inserted"]
    # A worker neither defined here nor registered: a daemon elsewhere may run it.
    assert client.add_preset("far", "unknown-here", "x")["inserted"]


def test_create_from_preset_merges_the_data_and_takes_the_preset_fields(client: Client) -> None:
    _export(client)
    task = client.create_from_preset("nightly-export", {"format": "xlsx", "filters": {}})
    assert (task.identifier, task.action, task.status) == ("sample", "noop", Status.PENDING)
    assert task.meta == {"format": "xlsx", "filters": {}, "rows": 10}  # shallow: filters whole
    assert (task.priority, task.max_attempts) == ("high", 5)
    assert task.message == "Task queued from preset nightly-export"
    assert client.get(task.id) == task
    plain = client.create_from_preset("nightly-export")
    assert plain.meta == {"format": "csv", "filters": {"year": 2026}, "rows": 10}


def test_create_from_preset_takes_the_fields_it_is_given(client: Client) -> None:
    _export(client)
    later = dt.datetime(2031, 5, 1, 3, tzinfo=dt.UTC)
    task = client.create_from_preset(
        "nightly-export", priority="low", start_at=later, max_attempts=1, user_id=7
    )
    assert (task.priority, task.start_at, task.max_attempts, task.started_by) == (
        "low",
        later,
        1,
        7,
    )


def test_create_from_preset_with_a_dedupe_key_returns_the_incomplete_task(client: Client) -> None:
    _export(client)
    first = client.create_from_preset("nightly-export", dedupe_key="export-today")
    again = client.create_from_preset("nightly-export", {"rows": 1}, dedupe_key="export-today")
    assert again == first
    client.cancel(first)
    third = client.create_from_preset("nightly-export", dedupe_key="export-today")
    assert third.id != first.id


def test_create_from_preset_in_the_callers_transaction(client: Client) -> None:
    _export(client)
    with client.connection() as c:
        with c.transaction(force_rollback=True):
            rolled_back = client.create_from_preset("nightly-export", conn=c)
        with c.transaction():
            kept = client.create_from_preset("nightly-export", {"rows": 2}, conn=c)
    with pytest.raises(Exception, match=f"task {rolled_back.id} does not exist"):
        client.get(rolled_back)
    assert client.get(kept).meta["rows"] == 2


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"data": [1]}, "data must be a JSON object"),
        ({"priority": "urgent"}, "unknown priority 'urgent'"),
        ({"start_at": dt.datetime(2031, 1, 1)}, "start_at must be timezone-aware"),
        ({"max_attempts": 0}, "max_attempts must be between 1 and 1000"),
        ({"data": {"deep": json.loads("[" * 101 + "]" * 101)}}, "nested"),
    ],
)
def test_a_bad_start_is_refused_and_creates_nothing(
    client: Client, given: dict[str, Any], needle: str
) -> None:
    _export(client)
    with pytest.raises(InvalidTaskError, match=needle):
        client.create_from_preset("nightly-export", **given)
    assert client.list() == []


def test_merged_data_the_task_cannot_hold_is_refused(client: Client) -> None:
    """Each half fits a task; merged, they pass 1 MiB: the constraint of s_tasks refuses it."""
    _export(client, data={"a": "x" * 600_000})
    with pytest.raises(InvalidTaskError, match="s_tasks_meta_size_check"):
        client.create_from_preset("nightly-export", {"b": "y" * 600_000})
    assert client.list() == []


def test_remove_returns_the_schedules_that_still_start_it(client: Client) -> None:
    _export(client)
    task = client.create_from_preset("nightly-export")
    with client.connection() as c:
        c.execute(
            "INSERT INTO s_schedules (name, preset, cron) VALUES ('nightly', 'nightly-export', %s)",
            ("0 3 * * *",),
        )
    assert client.preset("nightly-export")["schedules"] == ["nightly"]
    assert client.remove_preset("nightly-export") == ["nightly"]
    assert client.presets() == []
    assert client.get(task).identifier == "sample"  # its tasks stay
    client.add_preset("plain", "sample", "noop")
    assert client.remove_preset("plain") == []


@pytest.mark.parametrize("name", ["nothing", "", "nul\x00", "\ud800", 5, "x" * 201])
def test_an_unknown_preset_is_not_found(client: Client, name: Any) -> None:
    for method in (client.preset, client.remove_preset, client.create_from_preset):
        with pytest.raises(PresetNotFoundError) as caught:
            method(name)
        assert caught.value.name == (name if isinstance(name, str) else repr(name))
    assert client.list() == []
