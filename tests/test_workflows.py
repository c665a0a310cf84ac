"""Workflows (docs/workflows.md): dependencies enforced by the database, with real daemons.

The daemon processes poll once a minute, so a child that starts in time was started by the
wake-up of the completion that released it, not by a poll.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgstask import queries
from pgstask.client import Client
from pgstask.db import Conn
from pgstask.errors import InvalidTaskError
from pgstask.settings import Settings
from pgstask.sql import queries as named_queries
from pgstask.task import Status
from pgstask.workflow import Workflow
from tests.daemons import racing_daemons, stop_process, wait_for

WORKERS = "tests.workflow_workers"


@pytest.fixture
def runs(settings: Settings) -> Iterator[str]:
    dsn = str(settings.dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE flow_runs (task_id bigint PRIMARY KEY, name text, seen jsonb,"
            " outcomes jsonb, started timestamptz, ended timestamptz)"
        )
    yield dsn


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        yield c


def _daemons(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    return racing_daemons(settings, count, WORKERS)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        stop_process(proc)


def _step(dsn: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"identifier": "flow", "action": "step", "data": {"dsn": dsn, "name": name, **extra}}


def _ended(client: Client, ids: list[int], timeout: float = 60) -> None:
    wait_for(lambda: all(t.is_finished for t in client.wait_many(ids, timeout=timeout)))


def _intervals(dsn: str) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT name, started, ended FROM flow_runs").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


# --- with real daemons ---------------------------------------------------------------------------


def test_a_diamond_runs_in_order_and_the_last_task_sees_both_results(
    runs: str, settings: Settings, client: Client
) -> None:
    """A -> B, C -> D over two daemons: B and C start after A ended, D after both, and D's
    action reads B's and C's results."""
    flow = Workflow()
    a = flow.add(**_step(runs, "A"))
    b = flow.add(**_step(runs, "B"), depends_on=[a])
    c = flow.add(**_step(runs, "C"), depends_on=[a])
    flow.add(**_step(runs, "D"), depends_on=[b, c])
    procs = _daemons(settings, 2)
    try:
        tasks = client.create_workflow(flow)
        assert [t.status for t in tasks] == [Status.PENDING, *[Status.WAITING] * 3]
        done = client.wait_many(tasks, timeout=60)
    finally:
        _stop(procs)
    assert [t.status for t in done] == [Status.COMPLETED] * 4
    spans = _intervals(runs)
    assert spans["B"][0] >= spans["A"][1] and spans["C"][0] >= spans["A"][1]
    assert spans["D"][0] >= max(spans["B"][1], spans["C"][1])
    ids = {t.result["name"]: t.id for t in done}
    assert done[3].result["seen"] == {
        str(ids["B"]): {"name": "B", "seen": {str(ids["A"]): {"name": "A", "seen": {}}}},
        str(ids["C"]): {"name": "C", "seen": {str(ids["A"]): {"name": "A", "seen": {}}}},
    }
    assert [t.id for t in client.parents(done[3])] == sorted([ids["B"], ids["C"]])
    assert [t.id for t in client.children(done[0])] == sorted([ids["B"], ids["C"]])


def test_a_failing_parent_cancels_its_descendants_and_run_children_still_run(
    runs: str, settings: Settings, client: Client
) -> None:
    flow = Workflow()
    a = flow.add(**_step(runs, "A", fail=True), max_attempts=1)
    b = flow.add(**_step(runs, "B"), depends_on=[a])
    flow.add(**_step(runs, "C"), depends_on=[b])
    r = flow.add(**_step(runs, "R"), depends_on=[a], on_parent_failure="run")
    after_r = flow.add(**_step(runs, "S"), depends_on=[r])
    procs = _daemons(settings, 1)
    try:
        ta, tb, tc, tr, ts = client.create_workflow(flow)
        done = client.wait_many([ta, tb, tc, tr, ts], timeout=60)
    finally:
        _stop(procs)
    assert [t.status for t in done] == [
        Status.FAILED,
        Status.CANCELLED,
        Status.CANCELLED,
        Status.COMPLETED,
        Status.COMPLETED,
    ]
    assert done[1].message == f"Cancelled: its parent task {ta.id} (flow/step) failed"
    assert done[2].message == f"Cancelled: its parent task {tb.id} (flow/step) was cancelled"
    assert set(_intervals(runs)) == {"A", "R", "S"}  # B and C never ran
    with psycopg.connect(runs) as conn:
        row = conn.execute("SELECT outcomes FROM flow_runs WHERE name = 'R'").fetchone()
    assert row is not None and row[0] == {str(ta.id): "failed"}
    assert after_r.index == 4


def test_a_group_of_a_thousand_over_four_daemons_calls_back_exactly_once(
    runs: str, settings: Settings, client: Client
) -> None:
    """1,000 members (ten of which fail), four daemons, one callback: it runs once, after every
    member ended, and reads all 1,000 outcomes."""
    flow = Workflow()
    failing = set(random.Random(7).sample(range(1000), 10))
    members = [
        {
            "identifier": "flow",
            "action": "member",
            "data": {"i": i, "fail": i in failing},
            "max_attempts": 1,
        }
        for i in range(1000)
    ]
    nodes, callback = flow.group(members, _step(runs, "callback"))
    procs = _daemons(settings, 4)
    try:
        created = client.create_workflow(flow)
        final = client.wait(created[callback.index], timeout=120)
    finally:
        _stop(procs)
    assert final.status == Status.COMPLETED and final.attempts == 1 and final.claims == 1
    with psycopg.connect(runs) as conn:
        rows = conn.execute("SELECT outcomes, started FROM flow_runs").fetchall()
        last_end = conn.execute(
            "SELECT max(finished_at) FROM s_tasks WHERE action = 'member'"
        ).fetchone()
    assert len(rows) == 1  # the callback ran once
    outcomes = rows[0][0]
    assert len(outcomes) == 1000
    assert sorted(outcomes.values()).count("failed") == 10
    assert sorted(outcomes.values()).count("completed") == 990
    assert last_end is not None and rows[0][1] >= last_end[0]
    assert len(nodes) == 1000


def test_a_workflow_made_with_plain_sql_runs_in_order(runs: str, settings: Settings) -> None:
    """The documented SQL example: parents first, then a child that names them."""
    with psycopg.connect(runs, autocommit=True) as conn, conn.transaction():
        first = conn.execute(
            "INSERT INTO s_tasks (identifier, action, meta) VALUES ('flow', 'step', %s)"
            " RETURNING id",
            (Jsonb({"dsn": runs, "name": "first"}),),
        ).fetchone()
        assert first is not None
        second = conn.execute(
            "SELECT pgstask_enqueue('flow', 'step', %s, depends_on => ARRAY[%s]::bigint[])",
            (Jsonb({"dsn": runs, "name": "second"}), first[0]),
        ).fetchone()
        assert second is not None
        third = conn.execute(
            "INSERT INTO s_tasks (identifier, action, meta, depends_on)"
            " VALUES ('flow', 'step', %s, ARRAY[%s, %s]::bigint[]) RETURNING id",
            (Jsonb({"dsn": runs, "name": "third"}), first[0], second[0]),
        ).fetchone()
        assert third is not None
    procs = _daemons(settings, 1)
    try:
        with Client(settings=settings) as client:
            done = client.wait_many([first[0], second[0], third[0]], timeout=60)
    finally:
        _stop(procs)
    assert [t.status for t in done] == [Status.COMPLETED] * 3
    spans = _intervals(runs)
    assert spans["first"][1] <= spans["second"][0] <= spans["second"][1] <= spans["third"][0]


def test_children_added_while_their_parents_finish_are_never_stranded(
    settings: Settings, client: Client
) -> None:
    """Children created while their parents are being claimed and completed by two daemons:
    whatever the interleaving (parent pending, running, completing or done at the link), every
    child runs."""
    procs = _daemons(settings, 2)
    try:
        children: list[int] = []
        rng = random.Random(11)
        for round_ in range(10):
            parents = client.create_many(
                [{"identifier": "flow", "action": "member", "data": {"i": i}} for i in range(30)],
                returning="ids",
            )
            for _ in range(30):
                parent = rng.choice(parents)
                child = client.create("flow", "member", {"i": round_}, depends_on=[parent])
                children.append(child.id)
        done = client.wait_many(children, timeout=120)
    finally:
        _stop(procs)
    assert {t.status for t in done} == {Status.COMPLETED}


# --- the rules, in the database ------------------------------------------------------------------


def test_a_parent_that_ends_twice_counts_once(conn: Conn) -> None:
    """A child of two parents with on_parent_failure 'run': the first parent fails, is retried
    and fails again; the child still waits for the second."""
    p1, p2 = _ids(conn, "INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a'), ('w', 'b')")
    (child,) = _ids(
        conn,
        "INSERT INTO s_tasks (identifier, action, depends_on, on_parent_failure)"
        " VALUES ('w', 'c', ARRAY[%s, %s]::bigint[], 'run')",
        (p1, p2),
    )
    for status in (100, 10, 100):
        conn.execute("UPDATE s_tasks SET status = %s WHERE id = %s", (status, p1))
    assert _state(conn, child) == (Status.WAITING, 1)
    conn.execute("UPDATE s_tasks SET status = 80 WHERE id = %s", (p2,))
    assert _state(conn, child) == (Status.PENDING, 0)


def test_a_cancelled_waiting_task_cancels_its_children(conn: Conn) -> None:
    (p,) = _ids(conn, "INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a')")
    (mid,) = _ids(conn, CHILD, ("b", p))
    (leaf,) = _ids(conn, CHILD, ("c", mid))
    row = queries.task_cancel(conn, id=mid, message="Cancelled by user")
    assert row is not None and row["previous_status"] == Status.WAITING
    assert _state(conn, leaf)[0] == Status.CANCELLED
    assert _state(conn, p)[0] == Status.PENDING


def test_the_worker_setting_decides_when_the_task_does_not(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO s_workers (identifier, settings) VALUES ('w', %s)",
        (Jsonb({"on_parent_failure": "run"}),),
    )
    (p,) = _ids(conn, "INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a')")
    kids = _ids(
        conn,
        "INSERT INTO s_tasks (identifier, action, depends_on, on_parent_failure) VALUES"
        " ('w', 'b', ARRAY[%(p)s]::bigint[], NULL), ('w', 'c', ARRAY[%(p)s]::bigint[], 'cancel'),"
        " ('v', 'd', ARRAY[%(p)s]::bigint[], NULL)",
        {"p": p},  # type: ignore[arg-type]
    )
    conn.execute("UPDATE s_tasks SET status = 100 WHERE id = %s", (p,))
    assert [_state(conn, k)[0] for k in kids] == [
        Status.PENDING,  # the worker's setting: run
        Status.CANCELLED,  # the task's own
        Status.CANCELLED,  # worker v has no setting: cancel
    ]


def test_a_dependency_on_a_task_that_already_failed_cancels_at_once(conn: Conn) -> None:
    """A child of a failed parent is cancelled by its insert, and so is its own child inserted in
    the same statement (ids given: parents first)."""
    (p,) = _ids(conn, "INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a')")
    conn.execute("UPDATE s_tasks SET status = 100 WHERE id = %s", (p,))
    child, grandchild = _ids(
        conn,
        "INSERT INTO s_tasks (id, identifier, action, depends_on)"
        " VALUES (%s, 'w', 'b', ARRAY[%s]::bigint[]), (%s, 'w', 'c', ARRAY[%s]::bigint[])",
        (p + 1, p, p + 2, p + 1),
    )
    assert [_state(conn, t)[0] for t in (child, grandchild)] == [Status.CANCELLED] * 2


def test_a_waiting_task_holds_its_dedupe_key(client: Client) -> None:
    parent = client.create("w", "a")
    child = client.create("w", "b", depends_on=[parent], dedupe_key="once")
    again = client.create("w", "b", dedupe_key="once")
    assert again.id == child.id and child.status == Status.WAITING


def test_an_awaited_task_announces_its_end_on_commit(dsn: str) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as listener,
        psycopg.connect(dsn, autocommit=True) as writer,
    ):
        row = writer.execute(
            "INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a') RETURNING id"
        ).fetchone()
        assert row is not None
        listener.execute("LISTEN pgstask_finished")
        writer.execute("UPDATE s_tasks SET status = 80 WHERE id = %s", (row[0],))  # not awaited
        assert list(listener.notifies(timeout=0.2)) == []
        writer.execute("UPDATE s_tasks SET status = 10 WHERE id = %s", (row[0],))
        queries.task_await(writer, ids=[row[0]])
        writer.execute("UPDATE s_tasks SET status = 90 WHERE id = %s", (row[0],))
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.payload for n in notes] == [str(row[0])]


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [
                {"identifier": "w", "action": "a", "ref": "x", "depends_on": ["y"]},
                {"identifier": "w", "action": "a", "ref": "y", "depends_on": ["x"]},
            ],
            "depends_on forms a cycle: 'x' -> 'y' -> 'x'",
        ),
        (
            [{"identifier": "w", "action": "a", "ref": "x", "depends_on": ["x"]}],
            "depends_on forms a cycle: 'x' -> 'x'",
        ),
        (
            [{"identifier": "w", "action": "a", "depends_on": ["nope"]}],
            "task #0: depends_on names ref 'nope', which no task has",
        ),
        (
            [{"identifier": "w", "action": "a", "depends_on": 5}],
            "task #0: depends_on must be a list of refs and task ids, not int",
        ),
        (
            [{"identifier": "w", "action": "a", "depends_on": [1.5]}],
            "task #0: depends_on: a task id must be a whole number, not 1.5",
        ),
        (
            [{"identifier": "w", "action": "a", "depends_on": [0]}],
            "task #0: depends_on: 0 is not a task id",
        ),
        (
            [{"identifier": "w", "action": "a", "on_parent_failure": "ignore"}],
            "task #0: on_parent_failure must be 'cancel' or 'run', not 'ignore'",
        ),
        (
            [
                {"identifier": "w", "action": "a", "ref": "x"},
                {"identifier": "w", "action": "a", "ref": "x"},
            ],
            "task #1: ref 'x' is used by task #0 too",
        ),
        (
            [{"identifier": "w", "action": "a", "ref": "x", "colour": "red"}],
            "task #0: unknown field(s) colour",
        ),
    ],
)
def test_bad_workflows_are_refused_before_anything_is_created(
    client: Client, items: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(InvalidTaskError) as caught:
        client.create_many(items)
    assert str(caught.value) == message
    assert client.list() == []


def test_a_missing_parent_is_refused_by_the_database_for_every_entry_point(
    client: Client, conn: Conn
) -> None:
    with pytest.raises(InvalidTaskError, match="depends on task 999999, which does not exist"):
        client.create("w", "a", depends_on=[999999])
    with pytest.raises(InvalidTaskError, match="which does not exist"):
        client.create_many([{"identifier": "w", "action": "a", "depends_on": [999999]}])
    assert client.list() == []
    for statement in (
        "INSERT INTO s_tasks (identifier, action, depends_on) VALUES ('w', 'a', ARRAY[999999])",
        "SELECT pgstask_enqueue('w', 'a', depends_on => ARRAY[999999]::bigint[])",
    ):
        with (
            pytest.raises(psycopg.errors.ForeignKeyViolation, match="does not exist"),
            conn.transaction(),
        ):
            conn.execute(statement)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("{{}}", None, "must list 1 to 10000 task ids and no null"),
        ("{{NULL}}", None, "must list 1 to 10000 task ids and no null"),
        ("{{0}}", None, "which does not exist"),
        ("{{{later}}}", "{{{parent}}}", "task {first} cannot depend on task {later}: a task can"),
        ("{{{first}}}", None, "task {first} cannot depend on task {first}"),
    ],
)
def test_sql_inserts_with_bad_dependencies_are_refused(
    conn: Conn, first: str, second: str | None, message: str
) -> None:
    """Array literals (str.format templates) for depends_on of two rows inserted in one
    statement with given ids ("first", the second's "later"), the first naming what the case
    says."""
    (p,) = _ids(conn, "INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a')")
    ids = {"parent": p, "first": p + 1, "later": p + 2}
    with pytest.raises(psycopg.IntegrityError, match=message.format(**ids)), conn.transaction():
        conn.execute(
            "INSERT INTO s_tasks (id, identifier, action, depends_on)"
            " VALUES (%s, 'w', 'b', %s::bigint[]), (%s, 'w', 'c', %s::bigint[])",
            (p + 1, first.format(**ids), p + 2, None if second is None else second.format(**ids)),
        )


def test_sql_cannot_change_dependencies_or_pick_a_bad_policy(conn: Conn) -> None:
    (p,) = _ids(conn, "INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a')")
    (c,) = _ids(conn, CHILD, ("b", p))
    with pytest.raises(psycopg.errors.CheckViolation, match="cannot change"), conn.transaction():
        conn.execute("UPDATE s_tasks SET depends_on = NULL WHERE id = %s", (c,))
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute("SELECT pgstask_enqueue('w', 'a', on_parent_failure => 'maybe')")


def test_a_bad_worker_setting_is_refused(client: Client) -> None:
    from pgstask.errors import ConfigurationError

    client.discover_workers(["tests.workflow_workers"])
    with pytest.raises(ConfigurationError, match='on_parent_failure must be "cancel" or "run"'):
        client.update_worker_settings("flow", {"on_parent_failure": "skip"})


# --- the claim with a million waiting tasks ------------------------------------------------------


def test_the_claim_stays_proportional_with_a_million_waiting_tasks(dsn: str) -> None:
    """1,000,000 waiting tasks beside 20 pending ones: a claim of 10 reads a few dozen pages.
    (The waiting rows are made by an UPDATE, not through depends_on: linking a million children
    takes a minute, and the claim reads neither the rows nor their dependencies.)"""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO s_workers (identifier) VALUES ('w')")
        conn.execute(
            "INSERT INTO s_tasks (identifier, action) SELECT 'w', 'a'"
            " FROM generate_series(1, 1000000)"
        )
        conn.execute("UPDATE s_tasks SET status = 20, waiting_for = 1")
        conn.execute(
            "INSERT INTO s_tasks (identifier, action) SELECT 'w', 'a' FROM generate_series(1, 20)"
        )
        conn.execute("VACUUM ANALYZE s_tasks")
        params = {"daemon_id": uuid.uuid4(), "identifiers": ["w"], "limit": 10, "age": None}
        row = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + named_queries()["task_claim"],
            params,
        ).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    pages = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    assert plan["Actual Rows"] == 10, json.dumps(plan, indent=1)
    assert pages < 200, json.dumps(plan, indent=1)


# --- helpers -------------------------------------------------------------------------------------


def _ids(conn: Conn, insert: LiteralString, params: tuple[object, ...] = ()) -> list[int]:
    """The ids of the rows an INSERT made, in order."""
    return [r["id"] for r in conn.execute(insert + " RETURNING id", params).fetchall()]


#: A task of worker w that depends on one task: (action, parent id).
CHILD: LiteralString = (
    "INSERT INTO s_tasks (identifier, action, depends_on) VALUES ('w', %s, ARRAY[%s]::bigint[])"
)


def _state(conn: Conn, task_id: int) -> tuple[int, int]:
    row = conn.execute(
        "SELECT status, waiting_for FROM s_tasks WHERE id = %s", (task_id,)
    ).fetchone()
    assert row is not None
    return row["status"], row["waiting_for"]
