"""The named SQL queries: the loader, the one-to-one match with ``pgstask.queries``, and a smoke
run of every query through its wrapper against a migrated database.

A new query needs a wrapper with the same name, keyword parameters named like the query's
``%(name)s`` placeholders, and an entry in ``SMOKE`` below.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import re
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgstask import migrate, queries
from pgstask.db import Conn
from pgstask.queries import Row
from pgstask.sql import parse
from pgstask.sql import queries as named_queries
from pgstask.task import Task

ENTITIES = (
    *("task", "worker", "daemon", "progress", "log", "schema", "file", "metrics"),
    *("server", "lock", "channel", "schedule", "preset", "webhook", "notification"),
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sb]")  # b: sent in binary
_POSITIONAL = re.compile(r"(?<![)%])%[sbt]\b")


def _wrappers() -> dict[str, Callable[..., Any]]:
    """The public functions that ``pgstask.queries`` defines in its modules and re-exports."""
    return {
        name: function
        for name, function in inspect.getmembers(queries, inspect.isfunction)
        if function.__module__.startswith(f"{queries.__name__}.") and not name.startswith("_")
    }


# --- the catalog ----------------------------------------------------------------------------


def test_every_query_has_a_wrapper_and_every_wrapper_a_query() -> None:
    sql_names = set(named_queries())
    wrapper_names = set(_wrappers())
    assert sorted(sql_names - wrapper_names) == [], "queries without a wrapper in pgstask.queries"
    assert sorted(wrapper_names - sql_names) == [], "wrappers without a query in pgstask/sql"


def test_the_queries_of_each_file_are_wrapped_in_the_module_of_its_name() -> None:
    """``sql/tasks.sql``'s in ``pgstask/queries/tasks.py``, and so on."""
    wrappers = _wrappers()
    for entry in resources.files("pgstask.sql").iterdir():
        if entry.name.endswith(".sql"):
            module = f"{queries.__name__}.{entry.name.removesuffix('.sql')}"
            names = parse(entry.read_text(encoding="utf-8"))
            assert {name: wrappers[name].__module__ for name in names} == dict.fromkeys(
                names, module
            )


@pytest.mark.parametrize("name", sorted(named_queries()))
def test_wrapper_parameters_match_the_placeholders(name: str) -> None:
    text = named_queries()[name]
    assert not _POSITIONAL.search(text), f"{name}: use named %(name)s parameters"
    wrapper = _wrappers().get(name)
    assert wrapper is not None, f"{name} has no wrapper"
    parameters = inspect.signature(wrapper).parameters
    assert next(iter(parameters)) == "conn", f"{name}: the connection comes first"
    keywords = {p.name for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == set(_PLACEHOLDER.findall(text)), name


def test_query_names_follow_entity_verb() -> None:
    for name in named_queries():
        assert name.split("_", 1)[0] in ENTITIES, name


# --- the loader -----------------------------------------------------------------------------


def test_parse_splits_named_blocks_and_keeps_their_comments() -> None:
    text = (
        "-- File header, not part of any query.\n\n"
        "-- name: task_one\n-- Why it is written this way.\nSELECT 1;\n\n"
        "-- name: task_two\nSELECT 2;\n"
    )
    assert parse(text) == {
        "task_one": "-- Why it is written this way.\nSELECT 1;",
        "task_two": "SELECT 2;",
    }


def test_parse_rejects_a_duplicate_name() -> None:
    with pytest.raises(ValueError, match="'task_one' is defined twice"):
        parse("-- name: task_one\nSELECT 1;\n-- name: task_one\nSELECT 2;\n")


@pytest.mark.parametrize("body", ["", "\n\n", "-- only a comment\n"])
def test_parse_rejects_an_empty_query(body: str) -> None:
    with pytest.raises(ValueError, match="'task_empty' is empty"):
        parse(f"-- name: task_empty\n{body}-- name: task_two\nSELECT 2;\n")
    with pytest.raises(ValueError, match="'task_empty' is empty"):
        parse(f"-- name: task_two\nSELECT 2;\n-- name: task_empty\n{body}")


@pytest.mark.parametrize("line", ["-- name:", "-- name: ", "-- name: Task-One", "--name: x y"])
def test_parse_rejects_a_malformed_name_line(line: str) -> None:
    # Unchecked, the line and its SQL would silently become part of the query before it.
    with pytest.raises(ValueError, match="malformed query name line"):
        parse(f"-- name: task_one\nSELECT 1;\n{line}\nSELECT 2;\n")


def test_every_file_loads() -> None:
    loaded = named_queries()
    assert "task_claim" in loaded
    assert all(body.strip() for body in loaded.values())


# --- every query runs -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class World:
    """Rows every smoke call can use: worker ``w``, a live daemon, and one task per state."""

    daemon_id: uuid.UUID
    pending: Task  # dedupe key "k-pending", concurrency key "tenant-1"
    running: Task  # claimed by the daemon
    failed_id: int  # finished 40 days ago


@pytest.fixture
def world(conn: Conn) -> World:
    """Rows for the smoke calls, in the rolled-back transaction of ``conn``."""
    queries.worker_register_many(
        conn,
        active=True,
        identifiers=["w"],
        classes=["tests:Worker"],
        scopes=["shop"],
        titles=["W"],
        descriptions=[""],
        icons=[""],
        actions=[Jsonb(["run", "wait"])],
        defaults=[Jsonb({})],
    )
    daemon_id = uuid.uuid4()
    queries.daemon_register(
        conn, id=daemon_id, hostname="host", pid=1, concurrency=2, identifiers=["w"], version="t"
    )
    first, pending, failed = _insert(
        conn,
        ["run", "wait", "fail"],
        dedupe_keys=[None, "k-pending", None],
        concurrency_keys=[None, "tenant-1", None],
    )
    running = queries.task_claim(conn, daemon_id=daemon_id, identifiers=["w"], limit=1)
    assert [t.id for t in running] == [first.id]
    conn.execute(
        "UPDATE s_tasks SET status = 100, finished_at = now() - interval '40 days' WHERE id = %s",
        (failed.id,),
    )
    return World(daemon_id=daemon_id, pending=pending, running=running[0], failed_id=failed.id)


def _insert(
    conn: Conn,
    actions: list[str],
    *,
    dedupe_keys: list[str | None] | None = None,
    concurrency_keys: list[str | None] | None = None,
    replace: bool = False,
) -> list[Task]:
    n = len(actions)
    insert = queries.task_replace_many if replace else queries.task_insert_many
    return insert(
        conn,
        identifiers=["w"] * n,
        actions=actions,
        metas=[json.dumps({"n": i}) for i in range(n)],
        priorities=["normal"] * n,
        start_ats=[None] * n,
        max_attempts=[3] * n,
        started_by=[None] * n,
        dedupe_keys=dedupe_keys or [None] * n,
        concurrency_keys=concurrency_keys or [None] * n,
    )


def _task_insert_many(conn: Conn, w: World) -> None:
    tasks = _insert(
        conn, ["x", "y"], dedupe_keys=["k-new", "k-pending"], concurrency_keys=["t", None]
    )
    assert [t.action for t in tasks] == ["x"]  # k-pending is taken by an incomplete task
    assert tasks[0].status == 10 and tasks[0].meta == {"n": 0} and tasks[0].message
    assert tasks[0].concurrency_key == "t" and w.pending.concurrency_key == "tenant-1"


def _task_replace_many(conn: Conn, w: World) -> None:
    assert w.pending.meta == {"n": 1}
    tasks = _insert(conn, ["y", "x"], dedupe_keys=["k-pending", "k-new"], replace=True)
    assert sorted((t.action, t.meta["n"]) for t in tasks) == [("wait", 0), ("x", 1)]
    replaced = next(t for t in tasks if t.id == w.pending.id)
    assert replaced.message == ("Task queued (replaced by a later create)")
    conn.execute("UPDATE s_tasks SET status = 50 WHERE id = %s", (w.pending.id,))
    assert _insert(conn, ["z"], dedupe_keys=["k-pending"], replace=True) == []  # running


def _task_get_throttled_many(conn: Conn, w: World) -> None:
    conn.execute("UPDATE s_tasks SET dedupe_key = 'k-done' WHERE id = %s", (w.failed_id,))
    keys = ["k-done", "k-none"]
    assert queries.task_get_throttled_many(conn, dedupe_keys=keys, throttle=60) == []  # 40 days
    conn.execute("UPDATE s_tasks SET finished_at = now() WHERE id = %s", (w.failed_id,))
    found = queries.task_get_throttled_many(conn, dedupe_keys=keys, throttle=60)
    assert [t.id for t in found] == [w.failed_id]


def _task_reserve_ids(conn: Conn, w: World) -> None:
    now, ids = queries.task_reserve_ids(conn, n=3)
    assert len(ids) == 3 and ids == sorted(ids) and ids[0] > w.running.id
    assert now == conn.execute("SELECT now()").fetchone()["now"]  # type: ignore[index]


def _task_copy(conn: Conn, w: World) -> None:
    now, (task_id,) = queries.task_reserve_ids(conn, n=1)
    row = (
        task_id,
        "w",
        "a\tb",
        '{"k": "\\\\N"}',
        "low",
        now,
        2,
        7,
        "k\n1",
        "Task queued",
        now,
        now,
        '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
    )
    queries.task_copy(conn, [row])
    task = queries.task_get(conn, id=task_id)
    assert task is not None and (task.action, task.meta, task.status) == ("a\tb", {"k": "\\N"}, 10)
    assert (task.priority, task.max_attempts, task.started_by) == ("low", 2, 7)
    assert task.concurrency_key == "k\n1"
    assert task.trace_context == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    }


def _task_get(conn: Conn, w: World) -> None:
    assert queries.task_get(conn, id=w.pending.id) == w.pending
    assert queries.task_get(conn, id=-1) is None


def _task_get_by_dedupe_key(conn: Conn, w: World) -> None:
    found = queries.task_get_by_dedupe_key(conn, dedupe_key="k-pending")
    assert found is not None and found.id == w.pending.id


def _task_get_latest_by_dedupe_key(conn: Conn, w: World) -> None:
    found = queries.task_get_latest_by_dedupe_key(conn, dedupe_key="k-pending")
    assert found is not None and found.id == w.pending.id  # the holder
    conn.execute("UPDATE s_tasks SET dedupe_key = 'k-done' WHERE id = %s", (w.failed_id,))
    found = queries.task_get_latest_by_dedupe_key(conn, dedupe_key="k-done")
    assert found is not None and found.id == w.failed_id  # finished 40 days ago: any age
    assert queries.task_get_latest_by_dedupe_key(conn, dedupe_key="k-none") is None


def _task_claim(conn: Conn, w: World) -> None:
    claimed = queries.task_claim(conn, daemon_id=w.daemon_id, identifiers=["w"], limit=5)
    assert [(t.id, t.status, t.attempts) for t in claimed] == [(w.pending.id, 50, 1)]


def _task_claim_limited(conn: Conn, w: World) -> None:
    # Without flow control the worker is task_claim's; with max_running it is this claim's, and
    # the task it runs already counts.
    assert queries.task_claim_limited(conn, daemon_id=w.daemon_id, identifiers=["w"], limit=5) == []
    conn.execute("UPDATE s_workers SET settings = '{\"max_running\": 1}' WHERE identifier = 'w'")
    assert queries.task_claim(conn, daemon_id=w.daemon_id, identifiers=["w"], limit=5) == []
    assert queries.task_claim_limited(conn, daemon_id=w.daemon_id, identifiers=["w"], limit=5) == []
    conn.execute("UPDATE s_workers SET settings = '{\"max_running\": 2}' WHERE identifier = 'w'")
    claimed = queries.task_claim_limited(conn, daemon_id=w.daemon_id, identifiers=["w"], limit=5)
    assert [(t.id, t.status, t.attempts) for t in claimed] == [(w.pending.id, 50, 1)]


def _task_starts_delete_before(conn: Conn, w: World) -> None:
    conn.execute(
        "INSERT INTO s_task_starts (identifier, started_at)"
        " VALUES ('w', now() - interval '8 days'), ('w', now())"
    )
    assert queries.task_starts_delete_before(conn, seconds=7 * 86400) == 1
    assert conn.execute("SELECT count(*) AS n FROM s_task_starts").fetchone() == {"n": 1}


def _task_claim_by_id(conn: Conn, w: World) -> None:
    task = queries.task_claim_by_id(conn, daemon_id=w.daemon_id, id=w.pending.id)
    assert task is not None and task.status == 50 and task.daemon_id == w.daemon_id
    assert queries.task_claim_by_id(conn, daemon_id=w.daemon_id, id=w.pending.id) is None


def _task_next_start_at(conn: Conn, w: World) -> None:
    assert queries.task_next_start_at(conn, identifiers=["w"]) == 0.0  # due now
    assert queries.task_next_start_at(conn, identifiers=["other"]) is None


def _task_complete_many(conn: Conn, w: World) -> None:
    done = queries.task_complete_many(
        conn,
        daemon_id=w.daemon_id,
        outcomes=[(w.running.id, 1, "ok", {"rows": 3}, 1024), (w.pending.id, 0, None, None, None)],
    )
    assert done == [(w.running.id, 1)]  # the pending one fails the compare-and-set


def _task_fail_many(conn: Conn, w: World) -> None:
    rows = queries.task_fail_many(
        conn,
        daemon_id=w.daemon_id,
        ids=[w.running.id],
        claims=[1],
        messages=["boom"],
        errors=["Traceback ..."],
        retry_delays=[0.5],
        peak_memory=[None],
    )
    assert [(r["id"], r["status"]) for r in rows] == [(w.running.id, 10)]


def _task_give_back_many(conn: Conn, w: World) -> None:
    given = queries.task_give_back_many(
        conn, daemon_id=w.daemon_id, ids=[w.running.id], claims=[1], messages=[None]
    )
    assert given == [(w.running.id, 1)]
    task = queries.task_get(conn, id=w.running.id)
    assert task is not None and task.message == "Given back by a daemon that shut down"


def _task_snooze_many(conn: Conn, w: World) -> None:
    me, ids = w.daemon_id, [w.running.id, w.pending.id]
    written = queries.task_snooze_many(
        conn, daemon_id=me, ids=ids, claims=[1, 0], delays=[30.0, 5.0], messages=["waiting", None]
    )
    assert written == [(w.running.id, 1)]  # the pending one fails the compare-and-set
    task = queries.task_get(conn, id=w.running.id)
    assert task is not None
    assert (task.status, task.attempts, task.snoozes, task.daemon_id) == (10, 0, 1, None)
    assert (task.started_at, task.last_error) == (None, None)
    assert re.fullmatch(
        r"Snoozed until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: waiting", task.message or ""
    )
    row = conn.execute(
        "SELECT start_at - now() AS wait, to_char(start_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD HH24:MI:SS') AS until FROM s_tasks WHERE id = %s",
        (w.running.id,),
    ).fetchone()
    assert row is not None and row["wait"] == dt.timedelta(seconds=30)  # now(): the transaction's
    assert task.message == f"Snoozed until {row['until']} UTC: waiting"


def _task_give_back_unknown(conn: Conn, w: World) -> None:
    me = w.daemon_id
    assert queries.task_give_back_unknown(conn, daemon_id=me, ids=[w.running.id], claims=[1]) == []
    given = queries.task_give_back_unknown(conn, daemon_id=me, ids=[], claims=[])
    assert given == [w.running.run_key]
    task = queries.task_get(conn, id=w.running.id)
    assert task is not None and (task.status, task.attempts, task.daemon_id) == (10, 0, None)


def _task_lost(conn: Conn, w: World) -> None:
    ids, claims = [w.running.id, w.pending.id, w.running.id], [1, 0, 7]
    lost = queries.task_lost(conn, daemon_id=w.daemon_id, ids=ids, claims=claims)
    assert lost == [w.pending.run_key, (w.running.id, 7)]


def _task_set_status(conn: Conn, w: World) -> None:
    assert queries.task_set_status(
        conn, id=w.running.id, status=30, claims=1, daemon_id=w.daemon_id
    )
    assert not queries.task_set_status(
        conn, id=w.running.id, status=30, claims=2, daemon_id=w.daemon_id
    )


def _task_rescue(conn: Conn, w: World) -> None:
    assert queries.task_rescue(conn, stale_after=3600.0, base_delay=1.0, max_delay=60.0) == []
    queries.daemon_deregister(conn, id=w.daemon_id)
    rows = queries.task_rescue(conn, stale_after=3600.0, base_delay=1.0, max_delay=60.0)
    assert [(r["id"], r["status"]) for r in rows] == [(w.running.id, 10)]


def _task_cancel(conn: Conn, w: World) -> None:
    row = queries.task_cancel(conn, id=w.pending.id, message="Cancelled by test")
    assert row is not None and row["previous_status"] == 10 and row["notified"] == ""
    assert queries.task_cancel(conn, id=w.failed_id, message="no") is None


def _task_retry(conn: Conn, w: World) -> None:
    conn.execute("UPDATE s_tasks SET snoozes = 3 WHERE id = %s", (w.failed_id,))
    task = queries.task_retry(conn, id=w.failed_id)
    assert task is not None and (task.status, task.attempts, task.snoozes) == (10, 0, 0)
    assert queries.task_retry(conn, id=w.pending.id) is None


def _task_notify(conn: Conn, w: World) -> None:
    queries.task_notify(conn)


def _task_list(conn: Conn, w: World) -> None:
    nothing: dict[str, Any] = dict.fromkeys(
        (
            *("status", "identifier", "action", "priority", "concurrency_key"),
            *("created_from", "created_to", "before_id"),
        )
    )
    every = queries.task_list(conn, **nothing, limit=10)
    assert len(every) == 3 and every[0].id > every[-1].id
    filters = {**nothing, "status": 10, "identifier": "w", "action": "wait", "priority": "normal"}
    pending = queries.task_list(conn, **filters, limit=10)
    assert [t.id for t in pending] == [w.pending.id]
    keyed = queries.task_list(conn, **{**nothing, "concurrency_key": "tenant-1"}, limit=10)
    assert [t.id for t in keyed] == [w.pending.id]
    now = queries.server_now(conn)
    hour = dt.timedelta(hours=1)
    assert len(queries.task_list(conn, **{**nothing, "created_from": now - hour}, limit=10)) == 3
    assert queries.task_list(conn, **{**nothing, "created_to": now - hour}, limit=10) == []


def _task_pending(conn: Conn, w: World) -> None:
    assert [t.id for t in queries.task_pending(conn, limit=10)] == [w.pending.id]


def _task_count_by_status(conn: Conn, w: World) -> None:
    assert queries.task_count_by_status(conn) == {10: 1, 50: 1, 100: 1}


def _task_waiting_for_worker(conn: Conn, w: World) -> None:
    conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('nobody', 'a')")
    rows = queries.task_waiting_for_worker(conn)
    assert [(r["identifier"], r["count"]) for r in rows] == [("nobody", 1)]


def _task_delete_finished_before(conn: Conn, w: World) -> None:
    assert queries.task_delete_finished_before(conn, days=30) == 1
    assert queries.task_get(conn, id=w.failed_id) is None


def _progress_upsert_many(conn: Conn, w: World) -> None:
    for processed in (1, 2):
        queries.progress_upsert_many(
            conn,
            task_ids=[w.running.id],
            statuses=[50],
            progress=[processed * 10],
            processed=[processed],
            totals=[10],
            etas=[3.5],
            messages=[None],
        )
    row = queries.progress_get(conn, task_id=w.running.id)
    assert row is not None and row["processed"] == 2 and row["progress"] == 20


def _progress_get(conn: Conn, w: World) -> None:
    assert queries.progress_get(conn, task_id=w.running.id) is None


def _progress_delete_many(conn: Conn, w: World) -> None:
    _progress_upsert_many(conn, w)
    ids, claims = [w.running.id, w.pending.id], [1, 0]
    other = uuid.uuid4()  # the task now runs on another daemon: its row stays
    assert queries.progress_delete_many(conn, task_ids=ids, claims=claims, daemon_id=other) == 0
    # the outcome of another run (claims 2) than the one that holds the task: the row stays
    me = w.daemon_id
    assert queries.progress_delete_many(conn, task_ids=ids, claims=[2, 0], daemon_id=me) == 0
    assert queries.progress_delete_many(conn, task_ids=ids, claims=claims, daemon_id=me) == 1


def _progress_delete_orphaned(conn: Conn, w: World) -> None:
    _progress_upsert_many(conn, w)
    assert queries.progress_delete_orphaned(conn) == 0
    conn.execute("UPDATE s_tasks SET status = 80 WHERE id = %s", (w.running.id,))
    assert queries.progress_delete_orphaned(conn) == 1


def _log_insert_many(conn: Conn, w: World) -> None:
    stored = queries.log_insert_many(
        conn,
        task_ids=[w.running.id, w.running.id, 2**40, w.running.id],  # 2**40: no such task
        levels=["info", "error", "info", "debug"],
        messages=["one", "two", "gone", "three"],
        contexts=[Jsonb({}), Jsonb({"row": 2}), Jsonb({}), Jsonb({})],
    )
    assert stored == 3


def _log_list(conn: Conn, w: World) -> None:
    _log_insert_many(conn, w)
    every = queries.log_list(conn, task_id=w.running.id, limit=None, errors_only=False)
    assert [r["message"] for r in every] == ["one", "two", "three"]
    last = queries.log_list(conn, task_id=w.running.id, limit=2, errors_only=False)
    assert [r["message"] for r in last] == ["two", "three"]
    errors = queries.log_list(conn, task_id=w.running.id, limit=None, errors_only=True)
    assert [(r["message"], r["context"]) for r in errors] == [("two", {"row": 2})]


def _log_delete_for_task(conn: Conn, w: World) -> None:
    _log_insert_many(conn, w)
    assert queries.log_delete_for_task(conn, task_id=w.running.id) == 3


def _log_delete_older_than(conn: Conn, w: World) -> None:
    _log_insert_many(conn, w)
    conn.execute(
        "UPDATE s_task_logs SET created_at = now() - interval '10 days' WHERE level = 'info'"
    )
    assert queries.log_delete_older_than(conn, days=7) == 1


def _worker_notify(conn: Conn, w: World) -> None:
    queries.worker_notify(conn, identifier="w")  # delivery: test_http_ops (cache clear)


def _worker_register_many(conn: Conn, w: World) -> None:
    rows = queries.worker_register_many(
        conn,
        active=False,
        identifiers=["w", "v"],
        classes=["tests:Worker", "tests:Other"],
        scopes=["shop", ""],
        titles=["W", "V"],
        descriptions=["changed", ""],
        icons=["", ""],
        actions=[Jsonb(["run", "wait", "fail"]), Jsonb([])],
        defaults=[Jsonb({"max_running": 2}), Jsonb({})],
    )
    assert sorted((r["identifier"], r["inserted"]) for r in rows) == [("v", True), ("w", False)]
    row = queries.worker_get(conn, identifier="w")
    assert row is not None and row["actions"] == ["run", "wait", "fail"]


def _worker_list(conn: Conn, w: World) -> None:
    assert [r["identifier"] for r in queries.worker_list(conn)] == ["w"]
    queries.worker_set_active(conn, identifier="w", active=False)
    assert queries.worker_list(conn, active_only=True) == []


def _worker_get(conn: Conn, w: World) -> None:
    row = queries.worker_get(conn, identifier="w")
    assert row is not None and row["active"] is True and row["scope"] == "shop"
    assert queries.worker_get(conn, identifier="nobody") is None


def _worker_set_active(conn: Conn, w: World) -> None:
    row = queries.worker_set_active(conn, identifier="w", active=False)
    assert row is not None and row["active"] is False
    assert queries.worker_set_active(conn, identifier="nobody", active=True) is None


def _worker_update_settings(conn: Conn, w: World) -> None:
    queries.worker_update_settings(conn, identifier="w", settings=Jsonb({"a": 1, "b": 1}))
    row = queries.worker_update_settings(conn, identifier="w", settings=Jsonb({"b": 2}))
    assert row is not None and row["settings"] == {"a": 1, "b": 2}


def _worker_delete_many(conn: Conn, w: World) -> None:
    assert queries.worker_delete_many(conn, identifiers=["w", "nobody"]) == ["w"]


def _worker_states(conn: Conn, w: World) -> None:
    rows = queries.worker_states(conn, identifiers=["w", "nobody"])
    plain = {"identifier": "w", "active": True, "settings": {}, "flow": None, "notifies": False}
    assert rows == [plain]
    # notifies: the settings' notify over the class's (defaults); a JSON null switches it off.
    for settings, defaults, notifies in (
        ({}, {"notify": {"emails": ["a@example.com"]}}, True),
        ({"notify": None}, {"notify": {"emails": ["a@example.com"]}}, False),
        ({"notify": {"webhooks": ["ops"]}}, {}, True),
    ):
        conn.execute(
            "UPDATE s_workers SET settings = %s, defaults = %s WHERE identifier = 'w'",
            (Jsonb(settings), Jsonb(defaults)),
        )
        assert queries.worker_states(conn, identifiers=["w"])[0]["notifies"] is notifies


def _worker_count(conn: Conn, w: World) -> None:
    assert queries.worker_count(conn) == {"total": 1, "active": 1}


def _daemon_register(conn: Conn, w: World) -> None:
    other = uuid.uuid4()
    queries.daemon_register(
        conn, id=other, hostname="h2", pid=2, concurrency=1, identifiers=[], version="t"
    )
    assert queries.daemon_heartbeat(conn, id=other)


def _daemon_heartbeat(conn: Conn, w: World) -> None:
    assert queries.daemon_heartbeat(conn, id=w.daemon_id)
    assert not queries.daemon_heartbeat(conn, id=uuid.uuid4())


def _daemon_deregister(conn: Conn, w: World) -> None:
    queries.daemon_deregister(conn, id=w.daemon_id)
    assert not queries.daemon_heartbeat(conn, id=w.daemon_id)


def _daemon_delete_stale(conn: Conn, w: World) -> None:
    assert queries.daemon_delete_stale(conn, stale_after=60.0) == []
    conn.execute("UPDATE s_daemons SET heartbeat_at = now() - interval '2 minutes'")
    rows = queries.daemon_delete_stale(conn, stale_after=60.0)
    assert [(r["id"], r["hostname"], r["pid"]) for r in rows] == [(w.daemon_id, "host", 1)]


def _daemon_list(conn: Conn, w: World) -> None:
    rows = queries.daemon_list(conn, stale_after=60.0)
    assert [(r["id"], r["alive"]) for r in rows] == [(w.daemon_id, True)]


def _lock_try_acquire(conn: Conn, w: World) -> None:
    assert queries.lock_try_acquire(conn, key=0x70677374 + 1)


def _channel_listen(conn: Conn, w: World) -> None:
    queries.channel_listen(conn)  # takes effect at commit; here it only has to parse and run
    conn.execute("UNLISTEN *")


def _a_schedule(conn: Conn, name: str = "nightly", **fields: Any) -> Row:
    values: dict[str, Any] = {
        "identifier": "w",
        "action": "run",
        "preset": None,
        "cron": "0 3 * * *",
        "timezone": "Europe/Kyiv",
        "data": {"to": 3},
        "priority": "high",
        "max_attempts": 2,
        "misfire": "skip",
        "active": True,
        "origin": "code",
        **fields,
    }
    row = queries.schedule_upsert(conn, name=name, **values)
    assert row is not None
    return row


def _schedule_upsert(conn: Conn, w: World) -> None:
    row = _a_schedule(conn)
    assert row["inserted"] and row["next_run_at"] is None and row["data"] == {"to": 3}
    assert queries.schedule_upsert(conn, name="nightly", **_fields(row)) is None  # unchanged
    conn.execute("UPDATE s_schedules SET next_run_at = now() WHERE name = 'nightly'")
    again = queries.schedule_upsert(conn, name="nightly", **{**_fields(row), "priority": "low"})
    assert again is not None and not again["inserted"] and again["next_run_at"] is not None
    moved = queries.schedule_upsert(conn, name="nightly", **{**_fields(row), "cron": "0 4 * * *"})
    assert moved is not None and moved["next_run_at"] is None  # a new expression: recomputed


def _fields(row: Row) -> dict[str, Any]:
    keep = ("identifier", "action", "preset", "cron", "timezone", "data", "priority")
    keep += ("max_attempts",)
    return {
        **{k: row[k] for k in keep},
        "misfire": row["misfire"],
        "active": True,
        "origin": "code",
    }


def _schedule_get(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    assert queries.schedule_get(conn, name="nightly")["cron"] == "0 3 * * *"  # type: ignore[index]
    assert queries.schedule_get(conn, name="none") is None
    _a_preset(conn)
    _a_schedule(conn, "p", identifier=None, action=None, preset="export")
    row = queries.schedule_get(conn, name="p")
    assert row is not None and (row["preset_identifier"], row["preset_action"]) == ("w", "run")


def _schedule_list(conn: Conn, w: World) -> None:
    _a_schedule(conn, "b")
    _a_schedule(conn, "a")
    conn.execute("UPDATE s_schedules SET last_task_id = %s WHERE name = 'b'", (w.running.id,))
    listed = queries.schedule_list(conn)
    assert [(r["name"], r["last_task_status"]) for r in listed] == [("a", None), ("b", 50)]


def _schedule_due(conn: Conn, w: World) -> None:
    _a_schedule(conn, "new")
    _a_schedule(conn, "later")
    conn.execute(
        "UPDATE s_schedules SET next_run_at = now() + interval '1 hour' WHERE name = 'later'"
    )
    _a_schedule(conn, "orphan", identifier=None, action=None, preset="gone")
    due = queries.schedule_due(conn, limit=10)
    assert [r["name"] for r in due] == ["new", "orphan"] and due[0]["now"] is not None
    assert [r["preset_missing"] for r in due] == [False, True]


def _schedule_next_run_at(conn: Conn, w: World) -> None:
    assert queries.schedule_next_run_at(conn) is None
    _a_schedule(conn)
    conn.execute("UPDATE s_schedules SET next_run_at = now() + interval '10 s'")
    delay = queries.schedule_next_run_at(conn)
    assert delay is not None and 9 < delay <= 10


def _schedule_fire(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    slot = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC)
    after = slot + dt.timedelta(days=1)
    conn.execute("UPDATE s_schedules SET next_run_at = %s", (slot,))
    fired = queries.schedule_fire(conn, name="nightly", slot=slot, next_run_at=after)
    assert fired is not None and fired["task_id"] is not None
    task = queries.task_get(conn, id=fired["task_id"])
    assert task is not None and (task.identifier, task.action, task.meta) == ("w", "run", {"to": 3})
    assert (task.priority, task.max_attempts, task.status) == ("high", 2, 10)
    row = queries.schedule_get(conn, name="nightly")
    assert row is not None and (row["next_run_at"], row["last_run_at"]) == (after, slot)
    assert row["last_task_id"] == task.id
    # The same slot again: the compare-and-set finds the schedule moved on.
    assert queries.schedule_fire(conn, name="nightly", slot=slot, next_run_at=after) is None
    # A schedule of a preset: the preset's worker and action, the data merged over its data,
    # the schedule's priority, the preset's max_attempts.
    _a_preset(conn)
    _a_schedule(
        conn,
        "p",
        identifier=None,
        action=None,
        preset="export",
        data={"rows": 1},
        priority="low",
        max_attempts=None,
    )
    conn.execute("UPDATE s_schedules SET next_run_at = %s WHERE name = 'p'", (slot,))
    fired = queries.schedule_fire(conn, name="p", slot=slot, next_run_at=after)
    assert fired is not None and fired["task_id"] is not None
    task = queries.task_get(conn, id=fired["task_id"])
    assert task is not None and (task.identifier, task.action) == ("w", "run")
    assert task.meta == {"format": "csv", "rows": 1}
    assert (task.priority, task.max_attempts) == ("low", 2)
    assert task.message == "Task queued by schedule p from preset export"
    # Its preset removed: nothing fires, the slot stays.
    conn.execute("DELETE FROM s_presets")
    conn.execute("UPDATE s_schedules SET next_run_at = %s WHERE name = 'p'", (after,))
    assert queries.schedule_fire(conn, name="p", slot=after, next_run_at=None) is None


def _schedule_move(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    first = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC)
    assert queries.schedule_move(conn, name="nightly", slot=None, next_run_at=first)
    assert not queries.schedule_move(conn, name="nightly", slot=None, next_run_at=first)
    assert queries.schedule_move(conn, name="nightly", slot=first, next_run_at=None)


def _schedule_disable(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    assert queries.schedule_disable(conn, name="nightly", error="bad")
    row = queries.schedule_get(conn, name="nightly")
    assert row is not None and (row["active"], row["last_error"]) == (False, "bad")


def _schedule_set_active(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    conn.execute("UPDATE s_schedules SET next_run_at = now() - interval '1 day'")
    paused = queries.schedule_set_active(conn, name="nightly", active=False)
    assert paused is not None and not paused["active"] and paused["next_run_at"] is not None
    resumed = queries.schedule_set_active(conn, name="nightly", active=True)
    assert resumed is not None and resumed["active"] and resumed["next_run_at"] is None
    assert queries.schedule_set_active(conn, name="none", active=True) is None


def _schedule_run_now(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    before = queries.schedule_get(conn, name="nightly")
    task = queries.schedule_run_now(conn, name="nightly")
    assert task is not None and (task.identifier, task.action, task.meta) == ("w", "run", {"to": 3})
    assert (task.priority, task.max_attempts, task.status) == ("high", 2, 10)
    assert task.message == "Task queued by schedule nightly, run now"
    assert queries.schedule_get(conn, name="nightly") == before  # its slots are untouched
    assert queries.schedule_run_now(conn, name="none") is None
    _a_preset(conn)
    _a_schedule(conn, "p", identifier=None, action=None, preset="export", priority=None)
    task = queries.schedule_run_now(conn, name="p")
    assert task is not None and (task.action, task.priority, task.meta["format"]) == (
        "run",
        "high",
        "csv",
    )
    assert task.message == "Task queued by schedule p from preset export, run now"
    conn.execute("DELETE FROM s_presets")
    assert queries.schedule_run_now(conn, name="p") is None


def _schedule_delete(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    assert queries.schedule_delete(conn, name="nightly")
    assert not queries.schedule_delete(conn, name="nightly")


def _schedule_mark_missing_from_code(conn: Conn, w: World) -> None:
    _a_schedule(conn, "kept")
    _a_schedule(conn, "gone")
    _a_schedule(conn, "api", origin="api")
    _a_preset(conn)
    _a_schedule(conn, "preset", identifier=None, action=None, preset="export")
    missing = queries.schedule_mark_missing_from_code(
        conn, identifiers=["w"], declared=["kept", "preset"]
    )
    assert missing == ["gone"]
    assert queries.schedule_mark_missing_from_code(conn, identifiers=["other"], declared=[]) == []
    # A code schedule of a preset is its preset's worker's.
    missing = queries.schedule_mark_missing_from_code(conn, identifiers=["w"], declared=[])
    assert sorted(missing) == ["kept", "preset"]


def _schedule_runs_delete_before(conn: Conn, w: World) -> None:
    _a_schedule(conn)
    for days in (3, 2, 1):
        slot = dt.datetime(2026, 12, 5, tzinfo=dt.UTC) - dt.timedelta(days=days)
        conn.execute(
            "INSERT INTO s_schedule_runs (schedule_name, slot, task_id, fired_at)"
            " VALUES ('nightly', %s, 1, now() - make_interval(days => %s))",
            (slot, days * 40),
        )
    assert queries.schedule_runs_delete_before(conn, days=30) == 2  # the latest stays


def _a_preset(conn: Conn, name: str = "export", **fields: Any) -> Row:
    values: dict[str, Any] = {
        "identifier": "w",
        "action": "run",
        "data": {"format": "csv", "rows": 10},
        "priority": "high",
        "max_attempts": 2,
        "description": "CSV export",
        **fields,
    }
    return queries.preset_upsert(conn, name=name, **values)


def _preset_upsert(conn: Conn, w: World) -> None:
    row = _a_preset(conn)
    assert row["inserted"] and row["data"] == {"format": "csv", "rows": 10}
    replaced = _a_preset(conn, priority="low", description="")
    assert not replaced["inserted"] and (replaced["priority"], replaced["description"]) == (
        "low",
        "",
    )
    assert replaced["created_at"] == row["created_at"]


def _preset_get(conn: Conn, w: World) -> None:
    _a_preset(conn)
    conn.execute(
        "INSERT INTO s_schedules (name, preset, cron) VALUES ('b', 'export', '@daily'),"
        " ('a', 'export', '@hourly')"
    )
    row = queries.preset_get(conn, name="export")
    assert row is not None and row["schedules"] == ["a", "b"] and row["action"] == "run"
    assert queries.preset_get(conn, name="none") is None


def _preset_list(conn: Conn, w: World) -> None:
    _a_preset(conn, "b")
    _a_preset(conn, "a")
    assert [(r["name"], r["schedules"]) for r in queries.preset_list(conn)] == [
        ("a", []),
        ("b", []),
    ]


def _preset_delete(conn: Conn, w: World) -> None:
    _a_preset(conn)
    conn.execute("INSERT INTO s_schedules (name, preset, cron) VALUES ('n', 'export', '@daily')")
    assert queries.preset_delete(conn, name="export") == ["n"]
    assert queries.preset_delete(conn, name="export") is None


def _preset_enqueue(conn: Conn, w: World) -> None:
    _a_preset(conn)
    args: dict[str, Any] = {
        "priority": None,
        "start_at": None,
        "max_attempts": None,
        "user_id": None,
        "dedupe_key": None,
    }
    task = queries.preset_enqueue(conn, name="export", data='{"rows": 5, "to": "x"}', **args)
    assert task is not None and (task.identifier, task.action, task.status) == ("w", "run", 10)
    assert task.meta == {"format": "csv", "rows": 5, "to": "x"}
    assert (task.priority, task.max_attempts) == ("high", 2)
    assert task.message == "Task queued from preset export"
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    given = {**args, "priority": "low", "start_at": later, "max_attempts": 7, "user_id": 9}
    other = queries.preset_enqueue(conn, name="export", data="{}", **given)
    assert other is not None and (other.priority, other.max_attempts) == ("low", 7)
    assert (other.start_at, other.started_by, other.meta["rows"]) == (later, 9, 10)
    taken = {**args, "dedupe_key": "k-pending"}  # the world's incomplete task holds it
    assert queries.preset_enqueue(conn, name="export", data="{}", **taken) is None
    assert queries.preset_enqueue(conn, name="none", data="{}", **args) is None


def _server_end_idle_transactions(conn: Conn, w: World) -> None:
    queries.server_end_idle_transactions(conn, seconds=2.5)
    row = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    assert row is not None and list(row.values()) == ["2500ms"]
    queries.server_end_idle_transactions(conn, seconds=0.0001)  # never 0, which means "off"
    row = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    assert row is not None and list(row.values()) == ["1ms"]
    conn.execute("RESET idle_in_transaction_session_timeout")


def _server_now(conn: Conn, w: World) -> None:
    now = queries.server_now(conn)
    assert isinstance(now, dt.datetime) and now.tzinfo is not None


def _schema_has_version_table(conn: Conn, w: World) -> None:
    assert queries.schema_has_version_table(conn)


def _schema_version(conn: Conn, w: World) -> None:
    assert queries.schema_version(conn) == migrate.head_revision()


def _schema_lock(conn: Conn, w: World) -> None:
    queries.schema_lock(conn, key=0x70677374 + 2)


def _schema_unlock(conn: Conn, w: World) -> None:
    queries.schema_lock(conn, key=0x70677374 + 2)
    assert conn.execute("SELECT pg_advisory_unlock_all()") is not None
    queries.schema_lock(conn, key=0x70677374 + 2)
    queries.schema_unlock(conn, key=0x70677374 + 2)


def _task_merge_meta(conn: Conn, w: World) -> None:
    merged = queries.task_merge_meta(conn, id=w.pending.id, patch=Jsonb({"file_id": 5}))
    assert merged is not None and merged.meta["file_id"] == 5
    assert queries.task_merge_meta(conn, id=w.running.id, patch=Jsonb({"x": 1})) is None


def _metrics_queue(conn: Conn, w: World) -> None:
    rows = {(r["identifier"], r["status"]): r for r in queries.metrics_queue(conn)}
    assert set(rows) == {("w", 10), ("w", 50)}
    assert rows[("w", 10)]["count"] == 1 and rows[("w", 10)]["oldest_due_seconds"] >= 0


def _metrics_finished(conn: Conn, w: World) -> None:
    conn.execute(
        "UPDATE s_tasks SET status = 80, started_at = now() - '3 seconds'::interval, "
        "finished_at = now() WHERE id = %s",
        (w.running.id,),
    )
    [row] = queries.metrics_finished(conn, window_seconds=300)
    assert (row["identifier"], row["status"], row["count"]) == ("w", 80, 1)
    assert row["p50_seconds"] == row["max_seconds"] == 3.0


def _finish_running(conn: Conn, w: World, status: int, message: str) -> None:
    conn.execute(
        "UPDATE s_tasks SET status = %s, message = %s, started_at = now() - '4 seconds'::interval,"
        " finished_at = now(), peak_memory = 1000 WHERE id = %s",
        (status, message, w.running.id),
    )


def _metrics_summary(conn: Conn, w: World) -> None:
    _finish_running(conn, w, 80, "done")
    row = queries.metrics_summary(conn, hours=24)
    # the world's failed task finished 40 days ago: outside the window
    assert (row["created"], row["finished"], row["completed"], row["failed"]) == (3, 1, 1, 0)
    assert row["max_memory"] == 1000


def _metrics_workers(conn: Conn, w: World) -> None:
    _finish_running(conn, w, 80, "done")
    [row] = queries.metrics_workers(conn, hours=24, identifier="w")
    assert (row["finished"], row["completed"], row["max_duration"]) == (1, 1, 4)
    assert queries.metrics_workers(conn, hours=24, identifier="other") == []


def _metrics_errors(conn: Conn, w: World) -> None:
    _finish_running(conn, w, 100, "Failed: boom")
    rows = queries.metrics_errors(conn, hours=24, limit=5)
    assert rows == [{"message": "Failed: boom", "count": 1}]


def _metrics_unserved(conn: Conn, w: World) -> None:
    assert queries.metrics_unserved(conn, stale_after=30) == []  # the world's daemon runs w
    conn.execute("UPDATE s_daemons SET identifiers = '{}'")
    [row] = queries.metrics_unserved(conn, stale_after=30)
    assert (row["identifier"], row["count"]) == ("w", 1)


def _metrics_stuck(conn: Conn, w: World) -> None:
    assert queries.metrics_stuck(conn, seconds=60, limit=10) == []
    conn.execute(
        "UPDATE s_tasks SET started_at = now() - '2 hours'::interval WHERE id = %s",
        (w.running.id,),
    )
    [row] = queries.metrics_stuck(conn, seconds=60, limit=10)
    assert row["id"] == w.running.id and row["running_seconds"] >= 7200


def _metrics_timeline(conn: Conn, w: World) -> None:
    _finish_running(conn, w, 80, "done")
    [row] = queries.metrics_timeline(conn, hours=24, bucket_seconds=3600)
    assert (row["completed"], row["failed"], row["average_duration"]) == (1, 0, 4)
    assert row["bucket"].minute == 0 and row["bucket"].second == 0


def _result_file(conn: Conn, w: World, filename: str = "r.csv") -> Row:
    return queries.file_create(
        conn,
        task_id=w.running.id,
        identifier="w",
        kind="result",
        filename=filename,
        content_type="text/csv",
        session_id=None,
        total_chunks=None,
    )


def _upload_session(conn: Conn) -> Row:
    return queries.file_create(
        conn,
        task_id=None,
        identifier="w",
        kind="upload",
        filename="u.csv",
        content_type="text/csv",
        session_id="session-1",
        total_chunks=2,
    )


def _file_create(conn: Conn, w: World) -> None:
    row = _result_file(conn, w)
    assert row["complete"] is False and row["size"] == 0


def _file_put_chunk(conn: Conn, w: World) -> None:
    row = _result_file(conn, w)
    queries.file_put_chunk(conn, file_id=row["id"], seq=0, data=b"first")
    queries.file_put_chunk(conn, file_id=row["id"], seq=0, data=b"again")  # a retried chunk
    queries.file_put_chunk(conn, file_id=row["id"], seq=1, data=b"!")
    assert queries.file_chunk(conn, file_id=row["id"], seq=0) == b"again"


def _file_chunk(conn: Conn, w: World) -> None:
    _file_put_chunk(conn, w)
    row = queries.file_latest(conn, task_id=w.running.id, kind="result")
    assert row is None  # not complete yet
    assert queries.file_chunk(conn, file_id=2**40, seq=0) is None


def _file_chunk_summary(conn: Conn, w: World) -> None:
    row = _upload_session(conn)
    assert queries.file_chunk_summary(conn, file_id=row["id"]) == {
        "chunks": 0,
        "size": 0,
        "last_seq": -1,
    }
    queries.file_put_chunk(conn, file_id=row["id"], seq=1, data=b"abc")
    assert queries.file_chunk_summary(conn, file_id=row["id"]) == {
        "chunks": 1,
        "size": 3,
        "last_seq": 1,
    }


def _file_finish(conn: Conn, w: World) -> None:
    row = _result_file(conn, w)
    done = queries.file_finish(conn, id=row["id"], size=3, sha256="ab")
    assert done is not None and done["complete"]
    assert queries.file_finish(conn, id=row["id"], size=3, sha256="ab") is None  # once


def _file_usage(conn: Conn, w: World) -> None:
    empty = {"bytes": 0, "open_uploads": 0, "session_exists": False}
    assert queries.file_usage(conn, identifier=None, session_id=None) == empty
    row = _upload_session(conn)
    queries.file_put_chunk(conn, file_id=row["id"], seq=0, data=b"abc")
    result = _result_file(conn, w)
    queries.file_put_chunk(conn, file_id=result["id"], seq=0, data=b"12345")
    assert queries.file_usage(conn, identifier="w", session_id="session-1") == {
        "bytes": 8,
        "open_uploads": 1,
        "session_exists": True,
    }
    other = queries.file_usage(conn, identifier="w", session_id="session-2")
    assert other["session_exists"] is False


def _file_get(conn: Conn, w: World) -> None:
    row = _result_file(conn, w)
    found = queries.file_get(conn, id=row["id"])
    assert found is not None and found["filename"] == "r.csv"
    assert queries.file_get(conn, id=2**40) is None


def _file_latest(conn: Conn, w: World) -> None:
    ids = []
    for name in ("a.csv", "b.csv"):
        row = _result_file(conn, w, name)
        queries.file_finish(conn, id=row["id"], size=0, sha256="")
        ids.append(row["id"])
    latest = queries.file_latest(conn, task_id=w.running.id, kind="result")
    assert latest is not None and latest["id"] == ids[-1]
    assert queries.file_latest(conn, task_id=w.running.id, kind="upload") is None


def _file_get_session(conn: Conn, w: World) -> None:
    _upload_session(conn)
    found = queries.file_get_session(conn, identifier="w", session_id="session-1")
    assert found is not None and found["total_chunks"] == 2
    assert queries.file_get_session(conn, identifier="v", session_id="session-1") is None


def _file_delete_abandoned(conn: Conn, w: World) -> None:
    row = _upload_session(conn)
    assert queries.file_delete_abandoned(conn, max_age=3600) == 0
    conn.execute(
        "UPDATE s_task_files SET created_at = now() - '2 days'::interval,"
        " updated_at = now() - '2 days'::interval WHERE id = %s",
        (row["id"],),
    )
    # started two days ago, but a chunk arrived just now: still under way
    queries.file_put_chunk(conn, file_id=row["id"], seq=0, data=b"part")
    assert queries.file_delete_abandoned(conn, max_age=3600) == 0
    conn.execute(
        "UPDATE s_task_files SET updated_at = now() - '2 days'::interval WHERE id = %s",
        (row["id"],),
    )
    assert queries.file_delete_abandoned(conn, max_age=3600) == 1


def _file_delete_unattached(conn: Conn, w: World) -> None:
    loose = queries.file_create(
        conn,
        task_id=None,
        identifier="w",
        kind="upload",
        filename="u.csv",
        content_type="text/csv",
        session_id=None,
        total_chunks=None,
    )
    queries.file_create(
        conn,
        task_id=w.running.id,
        identifier="w",
        kind="upload",
        filename="t.csv",
        content_type="text/csv",
        session_id=None,
        total_chunks=None,
    )
    conn.execute("UPDATE s_task_files SET created_at = now() - '40 days'::interval")
    assert queries.file_delete_unattached(conn, max_age=30 * 86400) == 1
    assert queries.file_get(conn, id=loose["id"]) is None


def _linked(conn: Conn, w: World) -> list[int]:
    """A child of the pending task (waiting for it), inserted by task_insert_linked."""
    rows = queries.task_insert_linked(
        conn,
        identifiers=["w"],
        actions=["run"],
        metas=["{}"],
        priorities=["normal"],
        start_ats=[None],
        max_attempts=[3],
        started_by=[None],
        dedupe_keys=[None],
        concurrency_keys=[None],
        depends_on=[f"{{{w.pending.id}}}"],
        on_parent_failure=["run"],
    )
    return [r["id"] for r in rows]


def _task_insert_linked(conn: Conn, w: World) -> None:
    (child,) = _linked(conn, w)
    found = queries.task_get(conn, id=child)
    assert found is not None and found.status == 20 and found.depends_on == [w.pending.id]
    assert found.on_parent_failure == "run" and found.waiting_for == 1


def _task_get_many(conn: Conn, w: World) -> None:
    found = queries.task_get_many(conn, ids=[w.running.id, w.pending.id, -1])
    assert [t.id for t in found] == sorted([w.running.id, w.pending.id])


def _task_parents(conn: Conn, w: World) -> None:
    (child,) = _linked(conn, w)
    assert [t.id for t in queries.task_parents(conn, id=child)] == [w.pending.id]
    assert queries.task_parents(conn, id=w.pending.id) == []


def _task_children(conn: Conn, w: World) -> None:
    (child,) = _linked(conn, w)
    assert [t.id for t in queries.task_children(conn, id=w.pending.id)] == [child]


def _task_workflow_ids(conn: Conn, w: World) -> None:
    (child,) = _linked(conn, w)
    expected = sorted([w.pending.id, child])
    assert queries.task_workflow_ids(conn, id=child, limit=10) == expected
    assert queries.task_workflow_ids(conn, id=child, limit=1) == expected[:1]
    assert queries.task_workflow_ids(conn, id=w.running.id, limit=10) == [w.running.id]


def _task_edges(conn: Conn, w: World) -> None:
    (child,) = _linked(conn, w)
    edges = queries.task_edges(conn, ids=[w.pending.id, child])
    assert edges == [{"task_id": child, "parent_id": w.pending.id, "done": False}]


def _task_await(conn: Conn, w: World) -> None:
    queries.task_await(conn, ids=[w.pending.id, w.failed_id])
    marked = queries.task_get_many(conn, ids=[w.pending.id, w.failed_id])
    assert [t.awaited for t in marked] == [True, False]  # a finished task is not marked


def _hook(conn: Conn, name: str = "ops", **values: Any) -> Row:
    fields: dict[str, Any] = {
        "url": "https://hooks.example.com/x",
        "secret": "s" * 20,
        "events": ["completed", "failed"],
        "active": True,
        "description": "",
        "keep_secret": True,
    }
    return queries.webhook_upsert(conn, name=name, **{**fields, **values})


def _webhook_upsert(conn: Conn, w: World) -> None:
    added = _hook(conn)
    assert added["inserted"] and added["secret"] == "s" * 20  # a new one: its secret, once
    kept = _hook(conn, url="http://other.example.com/", secret="t" * 20)
    assert not kept["inserted"] and kept["secret"] is None and kept["url"].startswith("http://")
    rotated = _hook(conn, secret="u" * 20, keep_secret=False)
    assert rotated["secret"] == "u" * 20
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        _hook(conn, "ftp", url="ftp://example.com/")


def _webhook_get(conn: Conn, w: World) -> None:
    _hook(conn)
    row = queries.webhook_get(conn, name="ops")
    assert row is not None and "secret" not in row and row["events"] == ["completed", "failed"]
    assert queries.webhook_get(conn, name="none") is None


def _webhook_list(conn: Conn, w: World) -> None:
    _hook(conn, "b")
    _hook(conn, "a")
    rows = queries.webhook_list(conn)
    assert [r["name"] for r in rows] == ["a", "b"] and all("secret" not in r for r in rows)


def _webhook_names(conn: Conn, w: World) -> None:
    _hook(conn)
    assert queries.webhook_names(conn, names=["ops", "gone"]) == ["gone"]


def _webhook_delete(conn: Conn, w: World) -> None:
    _hook(conn)
    assert queries.webhook_delete(conn, name="ops") is True
    assert queries.webhook_delete(conn, name="ops") is False


def _webhook_get_for_delivery(conn: Conn, w: World) -> None:
    _hook(conn)
    row = queries.webhook_get_for_delivery(conn, name="ops")
    assert row is not None and row["secret"] == "s" * 20 and row["active"]


def _task_set_notify_many(conn: Conn, w: World) -> None:
    targets = {"emails": ["a@example.com"], "on": ["failed"]}
    assert queries.task_set_notify_many(conn, ids=[w.pending.id], notifies=[Jsonb(targets)]) == 1
    assert queries.task_get_many(conn, ids=[w.pending.id])[0].notify == targets
    bad = Jsonb({"webhooks": "ops"})
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():  # s_tasks_notify_check
        queries.task_set_notify_many(conn, ids=[w.pending.id], notifies=[bad])


def _notification_enqueue(conn: Conn, w: World) -> None:
    _hook(conn, events=["failed"])
    _hook(conn, "done-only", events=["completed"])
    own = {"webhooks": ["ops", "done-only", "gone"], "emails": ["a@example.com"]}
    queries.task_set_notify_many(conn, ids=[w.failed_id], notifies=[Jsonb(own)])
    # The worker's: over its class's defaults; a shape SQL may store gives nothing, no error.
    conn.execute(
        "UPDATE s_workers SET settings = %s, defaults = %s WHERE identifier = 'w'",
        (
            Jsonb({"notify": {"emails": ["a@example.com", "b@example.com"], "webhooks": 5}}),
            Jsonb({"notify": {"emails": ["class@example.com"]}}),
        ),
    )
    ids = queries.notification_enqueue(conn, ids=[w.failed_id, w.pending.id, w.running.id])
    made = queries.task_get_many(conn, ids=ids)
    assert sorted((t.identifier, t.action, json.dumps(t.meta, sort_keys=True)) for t in made) == [
        ("pgstask.email", "send", json.dumps({"event": "failed", "task_id": w.failed_id, "to": a}))
        for a in ("a@example.com", "b@example.com")
    ] + [
        (
            "pgstask.webhook",
            "deliver",
            json.dumps({"event": "failed", "task_id": w.failed_id, "webhook": "ops"}),
        )
    ]
    assert all(t.max_attempts == 10 and t.notify is None for t in made)
    # The deliveries' own ends notify nobody.
    conn.execute("UPDATE s_tasks SET status = 100 WHERE id = ANY(%s)", (ids,))
    assert queries.notification_enqueue(conn, ids=ids) == []


# Each smoke call above is the module function named "_" + its query name.
SMOKE: dict[str, Callable[[Conn, World], None]] = {
    name.removeprefix("_"): call
    for name, call in list(globals().items())
    if name.startswith(tuple(f"_{entity}_" for entity in ENTITIES)) and callable(call)
}


def test_every_query_has_a_smoke_call() -> None:
    assert sorted(set(named_queries()) - set(SMOKE)) == [], "add a smoke call to SMOKE"
    assert sorted(set(SMOKE) - set(named_queries())) == [], "smoke calls of removed queries"


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_query_runs(name: str, conn: Conn, world: World) -> None:
    SMOKE[name](conn, world)
