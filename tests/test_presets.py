"""Presets: the checks of a preset's fields and of a start's, and ``pgstask_enqueue_preset()``
in SQL (the merge, its named arguments, its errors, the wake-up of the insert trigger)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import psycopg
import pytest
from psycopg import errors

from pgstask import BaseWorker, Task, presets, queries
from pgstask.db import Conn
from pgstask.errors import InvalidPresetError, InvalidTaskError


class Export(BaseWorker):
    identifier = "preset-export"

    def task_export(self, task: Task, options: dict[str, Any]) -> None:
        """Nothing."""


def fields(**given: Any) -> dict[str, Any]:
    return {"identifier": "preset-export", "action": "export", **given}


# --- what a valid preset is ---------------------------------------------------------------------


def test_a_preset_takes_its_defaults() -> None:
    p = presets.check("csv", fields())
    assert (p.identifier, p.action, p.data, p.priority, p.max_attempts, p.description) == (
        "preset-export",
        "export",
        {},
        "normal",
        3,
        "",
    )
    given = presets.check("csv", fields(data={"f": 1}, priority=None, max_attempts=None))
    assert (given.data, given.priority, given.max_attempts) == ({"f": 1}, "normal", 3)
    assert presets.check("csv", fields()).row()["name"] == "csv"


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("csv", {"action": "export"}, "preset 'csv': identifier is required"),
        ("csv", {"identifier": "preset-export"}, "preset 'csv': action is required"),
        ("csv", fields(colour="red"), "unknown field(s) colour; use identifier, action"),
        ("csv", fields(action="import"), "worker 'preset-export' has no action 'import'"),
        ("csv", fields(identifier=" "), "identifier must be a non-empty string"),
        ("csv", fields(identifier="w" * 256), "identifier is longer than 255 characters"),
        ("csv", fields(priority="urgent"), "unknown priority 'urgent'; use high, normal or low"),
        ("csv", fields(max_attempts=0), "max_attempts must be between 1 and 1000, not 0"),
        ("csv", fields(max_attempts="3"), "max_attempts must be a whole number, not '3'"),
        ("csv", fields(data=[1, 2]), "data must be a JSON object"),
        ("csv", fields(data=""), "data must be a JSON object"),
        ("csv", fields(data={"x": float("nan")}), "data is not JSON-serialisable"),
        ("csv", fields(description=5), "description must be text"),
        ("csv", fields(description="d" * 1001), "description is longer than 1000"),
        ("csv", "export", "its fields are a mapping"),
        ("", fields(), "a preset's name is non-empty text"),
        (" csv", fields(), "without blanks around it"),
        ("a\tb", fields(), "no control characters"),
        ("x" * 201, fields(), "at most 200 characters"),
        ("bad\ud800name", fields(), "a preset's name contains a lone surrogate"),
        (None, fields(), "a preset's name is non-empty text"),
    ],
)
def test_a_bad_preset_is_refused_naming_what_is_wrong(name: Any, given: Any, message: str) -> None:
    assert Export.identifier == "preset-export"  # defined here: its actions are known
    with pytest.raises(InvalidPresetError, match=re.escape(message)):
        presets.check(name, given)


def test_a_worker_this_process_does_not_define_is_accepted() -> None:
    assert presets.check("far", {"identifier": "elsewhere", "action": "anything"}).action


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"data": [1]}, "data must be a JSON object"),
        ({"priority": "urgent"}, "unknown priority 'urgent'"),
        ({"start_at": "tomorrow"}, "start_at must be a datetime"),
        ({"start_at": dt.datetime(2030, 1, 1)}, "start_at must be timezone-aware"),
        ({"max_attempts": 1001}, "max_attempts must be between 1 and 1000"),
        ({"user_id": "me"}, "user_id must be a whole number"),
        ({"dedupe_key": ""}, "dedupe_key must be a non-empty string"),
    ],
)
def test_a_bad_start_is_refused(given: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTaskError, match=re.escape(message)):
        presets.check_start(**given)


def test_a_start_keeps_what_is_not_given_as_none() -> None:
    start = presets.check_start({"b": 2})
    assert json.loads(start.data) == {"b": 2}
    assert start._replace(data="") == presets.Start("", None, None, None, None, None)


# --- pgstask_enqueue_preset() -------------------------------------------------------------------


def _preset(conn: Conn, name: str = "nightly-export", **given: Any) -> None:
    values = {
        "identifier": "report",
        "action": "export",
        "data": json.dumps({"format": "csv", "filters": {"year": 2026}, "rows": 10}),
        "priority": "high",
        "max_attempts": 5,
        **given,
    }
    conn.execute(
        "INSERT INTO s_presets (name, identifier, action, data, priority, max_attempts)"
        " VALUES (%(name)s, %(identifier)s, %(action)s, %(data)s, %(priority)s, %(max_attempts)s)",
        {"name": name, **values},
    )


def _task(conn: Conn, task_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM s_tasks WHERE id = %s", (task_id,)).fetchone()
    assert row is not None
    return row


def _enqueue(conn: Conn, sql: str, *args: Any) -> int:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def test_sql_merges_the_overrides_over_the_preset_data(conn: Conn) -> None:
    _preset(conn)
    task_id = _enqueue(
        conn,
        "SELECT pgstask_enqueue_preset('nightly-export', %s)",
        '{"format": "xlsx", "filters": {}}',
    )
    task = _task(conn, task_id)
    assert (task["identifier"], task["action"], task["status"]) == ("report", "export", 10)
    # Shallow: a key given replaces the preset's whole (filters), the others stay (rows).
    assert task["meta"] == {"format": "xlsx", "filters": {}, "rows": 10}
    assert (task["priority"], task["max_attempts"]) == ("high", 5)
    assert task["message"] == "Task queued from preset nightly-export"
    assert task["start_at"] == conn.execute("SELECT now()").fetchone()["now"]  # type: ignore[index]

    plain = _task(conn, _enqueue(conn, "SELECT pgstask_enqueue_preset('nightly-export')"))
    assert plain["meta"] == {"format": "csv", "filters": {"year": 2026}, "rows": 10}
    null = _task(conn, _enqueue(conn, "SELECT pgstask_enqueue_preset('nightly-export', NULL)"))
    assert null["meta"] == plain["meta"]


def test_sql_named_arguments_replace_the_preset_fields(conn: Conn) -> None:
    _preset(conn)
    later = dt.datetime(2031, 5, 1, 3, tzinfo=dt.UTC)
    task_id = _enqueue(
        conn,
        "SELECT pgstask_enqueue_preset('nightly-export', priority => 'low', start_at => %s,"
        " max_attempts => 1, started_by => 42, dedupe_key => 'export-2031')",
        later,
    )
    task = _task(conn, task_id)
    assert (task["priority"], task["start_at"], task["max_attempts"]) == ("low", later, 1)
    assert (task["started_by"], task["dedupe_key"]) == (42, "export-2031")
    with pytest.raises(errors.UniqueViolation):  # as pgstask_enqueue: the key is taken
        conn.execute("SELECT pgstask_enqueue_preset('nightly-export', dedupe_key => 'export-2031')")


def test_sql_refuses_an_unknown_preset_with_no_data_found(conn: Conn) -> None:
    with pytest.raises(errors.NoDataFound) as caught:
        conn.execute("SELECT pgstask_enqueue_preset('nope', '{}')")
    assert caught.value.sqlstate == "P0002"
    assert caught.value.diag.message_primary == "pgstask: no preset is named 'nope'"
    assert "SELECT name FROM s_presets" in (caught.value.diag.message_hint or "")


@pytest.mark.parametrize("overrides", ["[1, 2]", '"x"', "3", "null"])
def test_sql_refuses_overrides_that_are_not_an_object(conn: Conn, overrides: str) -> None:
    _preset(conn)
    with pytest.raises(errors.InvalidParameterValue) as caught:
        conn.execute("SELECT pgstask_enqueue_preset('nightly-export', %s::jsonb)", (overrides,))
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary.startswith(  # type: ignore[union-attr]
        "pgstask: the overrides of preset 'nightly-export' must be a JSON object, not "
    )


def test_sql_the_insert_trigger_checks_the_merged_task(conn: Conn) -> None:
    _preset(conn)
    deep = json.dumps({"deep": json.loads("[" * 101 + "]" * 101)})
    deeper = pytest.raises(errors.CheckViolation, match="nested at most 100 levels")
    with deeper, conn.transaction():
        conn.execute("SELECT pgstask_enqueue_preset('nightly-export', %s)", (deep,))
    with pytest.raises(errors.CheckViolation, match="s_tasks_priority_check"):
        conn.execute("SELECT pgstask_enqueue_preset('nightly-export', priority => 'urgent')")


def test_the_table_refuses_what_sql_can_check(conn: Conn) -> None:
    for bad, constraint in [
        ({"name": " x"}, "s_presets_name_check"),
        ({"identifier": "\t"}, "s_presets_identifier_check"),
        ({"data": "[1]"}, "s_presets_data_check"),
        ({"priority": "urgent"}, "s_presets_priority_check"),
        ({"max_attempts": 0}, "s_presets_max_attempts_check"),
    ]:
        name = bad.pop("name", "p")
        with pytest.raises(errors.CheckViolation, match=constraint), conn.transaction():
            _preset(conn, name, **bad)


def test_sql_enqueue_wakes_the_daemons_at_commit(dsn: str) -> None:
    """The task goes through the statement trigger: one notification on pgstask_tasks."""
    with (
        psycopg.connect(dsn, autocommit=True) as listener,
        psycopg.connect(dsn, autocommit=True) as sender,
    ):
        sender.execute(
            "INSERT INTO s_presets (name, identifier, action) VALUES ('ping', 'report', 'go')"
        )
        listener.execute("LISTEN pgstask_tasks")
        sender.execute("SELECT pgstask_enqueue_preset('ping')")
        got = list(listener.notifies(timeout=10, stop_after=1))
    assert [n.channel for n in got] == ["pgstask_tasks"]


def test_the_three_statements_that_start_a_preset_merge_alike(conn: Conn) -> None:
    """``pgstask_enqueue_preset``, the client's ``preset_enqueue`` and a schedule of the preset
    (``schedule_run_now``, as ``schedule_fire``) each code the merge: one result."""
    _preset(conn)
    overrides = {"format": "xlsx", "filters": {}, "extra": [1, 2]}
    from_sql = _enqueue(
        conn, "SELECT pgstask_enqueue_preset('nightly-export', %s)", json.dumps(overrides)
    )
    from_client = queries.preset_enqueue(
        conn,
        name="nightly-export",
        data=json.dumps(overrides),
        priority=None,
        start_at=None,
        max_attempts=None,
        user_id=None,
        dedupe_key=None,
    )
    conn.execute(
        "INSERT INTO s_schedules (name, preset, cron, data) VALUES ('n', 'nightly-export',"
        " '@daily', %s)",
        (json.dumps(overrides),),
    )
    from_schedule = queries.schedule_run_now(conn, name="n")
    assert from_client is not None and from_schedule is not None
    fields = ("identifier", "action", "meta", "priority", "max_attempts")
    sql_row = _task(conn, from_sql)
    expected = tuple(sql_row[f] for f in fields)
    assert expected == (
        "report",
        "export",
        {"format": "xlsx", "filters": {}, "rows": 10, "extra": [1, 2]},
        "high",
        5,
    )
    for task in (from_client, from_schedule):
        assert tuple(getattr(task, f) for f in fields) == expected
