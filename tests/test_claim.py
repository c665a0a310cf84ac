"""Claiming and completing: order, SKIP LOCKED, attempts at claim, compare-and-set (item 2)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgstask import Client, queries
from pgstask.db import Dedicated, connect
from pgstask.runtime import completer as completer_module
from pgstask.runtime.completer import Completer
from pgstask.runtime.runner import Outcome, OutcomeKind
from pgstask.settings import Settings
from pgstask.sql import queries as named_queries
from pgstask.task import Status
from tests.daemons import executions, running_daemon, wait_for


def _register(conn: psycopg.Connection[dict[str, object]], *identifiers: str) -> None:
    n = len(identifiers)
    queries.worker_register_many(
        conn,
        active=True,
        identifiers=list(identifiers),
        classes=["x:Y"] * n,
        scopes=[""] * n,
        titles=[""] * n,
        descriptions=[""] * n,
        icons=[""] * n,
        actions=[Jsonb([])] * n,
        defaults=[Jsonb({})] * n,
    )


def test_claim_orders_by_priority_then_start_at_then_id(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
    _register(conn, "w")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ids = {}
    for name, priority, start in [
        ("low", "low", None),
        ("normal-late", "normal", None),
        ("high", "high", None),
        ("normal-early", "normal", past),
        ("high-early", "high", past),
    ]:
        conn.execute(
            "INSERT INTO s_tasks (identifier, action, priority, start_at) "
            "VALUES ('w', %s, %s, coalesce(%s, now())) RETURNING id",
            (name, priority, start),
        )
        ids[name] = conn.execute("SELECT max(id) AS id FROM s_tasks").fetchone()["id"]  # type: ignore[index]
    claimed = queries.task_claim(conn, daemon_id=uuid.uuid4(), identifiers=["w"], limit=10)
    order = sorted(
        claimed, key=lambda t: (t.priority != "high", t.priority == "low", t.start_at, t.id)
    )
    assert [t.action for t in order] == ["high-early", "high", "normal-early", "normal-late", "low"]
    assert all(t.status == Status.RUNNING and t.attempts == 1 for t in claimed)


def test_claim_takes_at_most_the_free_slots_and_skips_locked_rows(dsn: str) -> None:
    with connect(dsn) as setup:
        _register(setup, "w")
        setup.execute(
            "INSERT INTO s_tasks (identifier, action) SELECT 'w', 'a' FROM generate_series(1, 10)"
        )
        setup.commit()
    first, second = connect(dsn), connect(dsn)
    try:
        a = queries.task_claim(first, daemon_id=uuid.uuid4(), identifiers=["w"], limit=4)
        # first has not committed: its rows are locked, the second claimer skips them
        b = queries.task_claim(second, daemon_id=uuid.uuid4(), identifiers=["w"], limit=4)
        assert len(a) == 4 and len(b) == 4
        assert not {t.id for t in a} & {t.id for t in b}
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()


def test_future_tasks_inactive_and_unknown_workers_are_not_claimed(
    conn: psycopg.Connection,
) -> None:  # type: ignore[type-arg]
    _register(conn, "w", "off")
    queries.worker_set_active(conn, identifier="off", active=False)
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, start_at) "
        "VALUES ('w', 'later', now() + interval '1 hour')"
    )
    conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('off', 'a'), ('nobody', 'a')")
    assert (
        queries.task_claim(
            conn, daemon_id=uuid.uuid4(), identifiers=["w", "off", "nobody"], limit=10
        )
        == []
    )
    due = queries.task_next_start_at(conn, identifiers=["w"])
    assert due is not None and 3590 < due <= 3600


def test_completion_is_a_compare_and_set(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
    _register(conn, "w")
    conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a')")
    me, other = uuid.uuid4(), uuid.uuid4()
    [task] = queries.task_claim(conn, daemon_id=me, identifiers=["w"], limit=1)
    first, stale = [(task.id, 1, None, None, None)], [(task.id, 2, None, None, None)]
    # another daemon, or another run of the task (claims), cannot complete it
    assert queries.task_complete_many(conn, daemon_id=other, outcomes=first) == []
    assert queries.task_complete_many(conn, daemon_id=me, outcomes=stale) == []
    assert queries.task_complete_many(conn, daemon_id=me, outcomes=first) == [(task.id, 1)]
    # and a second completion changes nothing
    assert queries.task_complete_many(conn, daemon_id=me, outcomes=first) == []
    done = queries.task_get(conn, id=task.id)
    assert done is not None and done.status == Status.COMPLETED and done.progress == 100


def test_explain_claim_uses_the_partial_index(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
    _register(conn, "w")
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, priority) "
        "SELECT 'w', 'a', (ARRAY['low','normal','high'])[1 + i % 3] "
        "FROM generate_series(1, 20000) i"
    )
    conn.execute("ANALYZE s_tasks")
    plan = conn.execute(
        "EXPLAIN SELECT id FROM s_tasks WHERE status = 10 AND identifier = 'w' "
        "AND priority_rank = 1 AND start_at <= now() "
        "ORDER BY start_at, id LIMIT 10 FOR UPDATE SKIP LOCKED"
    ).fetchall()
    assert "s_tasks_claim_idx" in "\n".join(str(r) for r in plan)


def test_two_daemons_run_5000_tasks_exactly_once(settings: Settings) -> None:
    fast = settings.replace(concurrency=8)
    with Client(settings=fast) as client:
        client.create_many([{"identifier": "sample", "action": "noop"} for _ in range(5000)])
        with running_daemon(fast), running_daemon(fast):
            wait_for(lambda: client.stats()["completed"] == 5000, timeout=90)
        stats = client.stats()
    assert stats["completed"] == 5000 and stats["failed"] == 0 and stats["pending"] == 0
    runs = executions(fast)
    assert len(runs) == 5000
    assert len({task_id for task_id, _, _ in runs}) == 5000
    with psycopg.connect(settings.dsn or "") as conn:
        attempts = conn.execute("SELECT attempts, count(*) FROM s_tasks GROUP BY 1").fetchall()
    assert attempts == [(1, 5000)]


def test_concurrent_claimers_never_share_a_task(dsn: str) -> None:
    with connect(dsn) as setup:
        _register(setup, "w")
        setup.execute(
            "INSERT INTO s_tasks (identifier, action) SELECT 'w', 'a' FROM generate_series(1, 2000)"
        )
        setup.commit()
    seen: Counter[int] = Counter()
    lock = threading.Lock()

    def claimer() -> None:
        with connect(dsn) as conn:
            me = uuid.uuid4()
            while True:
                batch = queries.task_claim(conn, daemon_id=me, identifiers=["w"], limit=7)
                conn.commit()
                if not batch:
                    return
                with lock:
                    seen.update(t.id for t in batch)

    threads = [threading.Thread(target=claimer, name=f"claimer-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(seen) == 2000 and set(seen.values()) == {1}


@pytest.mark.parametrize("limit", [1, 3])
def test_claim_never_exceeds_its_limit(conn: psycopg.Connection, limit: int) -> None:  # type: ignore[type-arg]
    _register(conn, "w")
    conn.execute(
        "INSERT INTO s_tasks (identifier, action) SELECT 'w', 'a' FROM generate_series(1, 50)"
    )
    assert (
        len(queries.task_claim(conn, daemon_id=uuid.uuid4(), identifiers=["w"], limit=limit))
        == limit
    )


def _plan_buffers(node: dict[str, Any]) -> int:
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


def _claim_plan(conn: psycopg.Connection[Any], age: float | None = None) -> dict[str, Any]:
    row = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + named_queries()["task_claim"],
        {"daemon_id": uuid.uuid4(), "identifiers": ["w"], "limit": 10, "age": age},
    ).fetchone()
    assert row is not None
    [plan] = row.values() if isinstance(row, dict) else row
    root: dict[str, Any] = plan[0]["Plan"]
    return root


def _claim_ctes(root: dict[str, Any]) -> tuple[int, int]:
    """Rows of the ``claimable`` CTE and the pages every CTE of the claim read (the SELECT …
    FOR UPDATE SKIP LOCKED part, below the UPDATE)."""
    ctes = {
        c["Subplan Name"]: c
        for c in root.get("Plans", [])
        if str(c.get("Subplan Name", "")).startswith("CTE ")
    }
    assert "CTE claimable" in ctes, json.dumps(root, indent=1)[:3000]
    return ctes["CTE claimable"]["Actual Rows"], sum(_plan_buffers(c) for c in ctes.values())


@pytest.mark.parametrize(
    ("future_priority", "due", "age"),
    [
        ("high", 20, None),
        ("normal", 20, None),
        ("low", 20, None),
        ("high", 100_000, None),
        ("high", 100_000, 3600.0),
        ("low", 20, 3600.0),
    ],
)
def test_claim_plan_stays_proportional_to_the_batch(
    dsn: str, future_priority: str, due: int, age: float | None
) -> None:
    """200,000 tasks scheduled for tomorrow (of any priority) and a backlog of due ones: the
    claim of 10 reads a few pages, not the queue (EXPLAIN ANALYZE's buffer counts, which do not
    depend on the machine's speed), with priority aging on or off."""
    # A database of its own: rows inserted and rolled back by other tests would leave dead
    # index entries that every scan steps over.
    conn = connect(dsn, autocommit=True, name="pytest")
    try:
        _claim_plan_case(conn, future_priority, due, age)
    finally:
        conn.close()


def _claim_plan_case(
    conn: psycopg.Connection[Any], future_priority: str, due: int, age: float | None
) -> None:
    _register(conn, "w")
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, priority, start_at) "
        "SELECT 'w', 'later', %s, now() + interval '1 day' FROM generate_series(1, 200000)",
        (future_priority,),
    )
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, priority) "
        "SELECT 'w', 'due', (ARRAY['low', 'normal'])[1 + i %% 2] FROM generate_series(1, %s) i",
        (due,),
    )
    conn.execute("ANALYZE s_tasks")
    root = _claim_plan(conn, age)
    assert root["Actual Rows"] == 10
    rows, pages = _claim_ctes(root)
    assert rows == 10
    assert pages < 60, json.dumps(root, indent=1)[:6000]
    assert _plan_buffers(root) < 400  # the UPDATE of 10 rows and their index entries


def test_an_outcome_the_server_refuses_fails_its_task_and_holds_up_no_other(
    settings: Settings,
) -> None:
    """A value that got past the runner's checks and that PostgreSQL refuses (here a NUL in a
    result) must not block the batch forever: the others are written, that task fails."""
    me = uuid.uuid4()
    with connect(settings.dsn or "", autocommit=True) as conn:
        _register(conn, "w")
        conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a'), ('w', 'b')")
        good, bad = queries.task_claim(conn, daemon_id=me, identifiers=["w"], limit=2)
    dedicated = Dedicated(settings.dsn or "", name="pgstask-test")
    completer = Completer(db=dedicated, daemon_id=me, storage=settings.storage)
    completer.add(Outcome(good, OutcomeKind.COMPLETED, "fine", {"rows": 1}))
    completer.add(Outcome(bad, OutcomeKind.COMPLETED, "fine", {"text": "a\x00b"}))
    try:
        assert completer.step() == 2
    finally:
        dedicated.close()
    assert completer.pending == 0
    with Client(settings=settings) as client:
        assert (client.get(good).status, client.get(good).result) == (Status.COMPLETED, {"rows": 1})
        failed = client.get(bad)
        assert failed.status == Status.FAILED
        assert (failed.message or "").startswith("Failed: pgstask could not store the outcome: ")
        assert [r.level for r in client.logs(bad)] == ["error"]


def test_a_failed_warning_write_does_not_write_committed_completions_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain completions are committed by their own statement; if the warning written after
    it fails, the completions must not go back to the buffer (a second pass would find their
    tasks no longer held and log a false 'discarded' on each)."""
    me = uuid.uuid4()
    with connect(settings.dsn or "", autocommit=True) as conn:
        _register(conn, "w")
        conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a'), ('w', 'b')")
        kept, lost = queries.task_claim(conn, daemon_id=me, identifiers=["w"], limit=2)
        conn.execute("UPDATE s_tasks SET status = 90 WHERE id = %s", (lost.id,))  # cancelled
    dedicated = Dedicated(settings.dsn or "", name="pgstask-test")
    completer = Completer(db=dedicated, daemon_id=me, storage=settings.storage)
    completer.add(Outcome(kept, OutcomeKind.COMPLETED, "fine"))
    completer.add(Outcome(lost, OutcomeKind.COMPLETED, "fine"))
    real_write = completer_module.logs.write
    calls = 0

    def failing_once(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise psycopg.OperationalError("the connection broke")
        real_write(*args, **kwargs)

    monkeypatch.setattr(completer_module.logs, "write", failing_once)
    try:
        assert completer.step() == 2
        assert completer.pending == 1  # the warning, for the next batch
        completer.step()
        assert completer.pending == 0
    finally:
        dedicated.close()
    with Client(settings=settings) as client:
        assert client.get(kept).status == Status.COMPLETED
        assert client.logs(kept) == []
        assert [r.message[:24] for r in client.logs(lost)] == ["Outcome 'completed' of a"]


def _function_pages(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> int:
    """Rows and pages of one call of a set-returning function (EXPLAIN ANALYZE's buffer counts
    of the function scan include the statements the function runs)."""
    row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params).fetchone()
    assert row is not None
    [plan] = row.values() if isinstance(row, dict) else row
    root: dict[str, Any] = plan[0]["Plan"]
    assert root["Actual Rows"] == params["limit"], json.dumps(root, indent=1)
    return _plan_buffers(root)


def test_claims_stay_proportional_with_a_million_pending_over_ten_thousand_keys(dsn: str) -> None:
    """1,000,000 pending tasks of a worker with every limit and fair sharing on, over 10,000 keys,
    beside a worker without limits: a limited claim of 10 reads a few hundred pages however many
    claims came before, and the plain claim of the other worker does not read the backlog."""
    conn = connect(dsn, autocommit=True, name="pytest")
    try:
        _register(conn, "w", "p")
        flow = {
            "max_running": 100_000,
            "max_running_per_key": 2,
            "rate_limit": {"limit": 1000, "per": 60, "per_key": True},
            "fair_share": True,
        }
        conn.execute("UPDATE s_workers SET settings = %s WHERE identifier = 'w'", (Jsonb(flow),))
        conn.execute(
            "INSERT INTO s_tasks (identifier, action, priority, concurrency_key)"
            " SELECT 'w', 'a', (ARRAY['low', 'normal', 'high'])[1 + i % 3], 'k' || (i % 10000)"
            " FROM generate_series(1, 1000000) i"
        )
        conn.execute(
            "INSERT INTO s_tasks (identifier, action) SELECT 'p', 'a' FROM generate_series(1, 5)"
        )
        conn.execute("ANALYZE s_tasks")
        limited = named_queries()["task_claim_limited"]
        params = {"daemon_id": uuid.uuid4(), "identifiers": ["w", "p"], "limit": 10, "age": None}
        # The first call plans the function's statements (catalog pages); then 30 claims in a row.
        _function_pages(conn, limited, params)
        pages = [_function_pages(conn, limited, params) for _ in range(30)]
        assert max(pages) < 800, pages
        root = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + named_queries()["task_claim"],
            {**params, "limit": 10},
        ).fetchone()
        assert root is not None
        [plan] = root.values() if isinstance(root, dict) else root
        rows, plain_pages = _claim_ctes(plan[0]["Plan"])
        assert rows == 5 and plain_pages < 60
    finally:
        conn.close()


def test_a_limited_claim_with_aging_does_not_walk_every_key(dsn: str) -> None:
    """With PGSTASK_PRIORITY_AGE set, the aged stages of a per-key claim must not visit every
    key when no task is old enough: 10,000 keys of fresh tasks, a claim of 10 reads a few
    hundred pages, as without aging."""
    conn = connect(dsn, autocommit=True, name="pytest")
    try:
        _register(conn, "w")
        flow = {"max_running_per_key": 2, "fair_share": True}
        conn.execute("UPDATE s_workers SET settings = %s WHERE identifier = 'w'", (Jsonb(flow),))
        conn.execute(
            "INSERT INTO s_tasks (identifier, action, priority, concurrency_key)"
            " SELECT 'w', 'a', (ARRAY['low', 'normal'])[1 + i % 2], 'k' || (i % 10000)"
            " FROM generate_series(1, 30000) i"
        )
        conn.execute("ANALYZE s_tasks")
        limited = named_queries()["task_claim_limited"]
        params = {"daemon_id": uuid.uuid4(), "identifiers": ["w"], "limit": 10, "age": 600.0}
        _function_pages(conn, limited, params)  # plans the function's statements
        # Ten: PL/pgSQL turns to a statement's generic plan after five runs, and that plan too
        # must stay on the index.
        pages = [_function_pages(conn, limited, params) for _ in range(10)]
        assert max(pages) < 800, pages
    finally:
        conn.close()
