"""Flow control (docs/limits.md): the settings' rules in Python and in the table, and the limits
held by real ``pgstask daemon`` processes racing for the same tasks.

The race tests record when each action ran, by the database clock (``tests/limit_workers.py``):
an action starts after its claim committed and ends before its completion did, so the recorded
intervals of a limited worker overlap no more than its limit allows, if the claim holds it. The
daemons poll once a minute: the tasks a limit held back can only start in time because the end
of a running task wakes them.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgstask import limits, queries
from pgstask.client import Client
from pgstask.db import Conn
from pgstask.errors import ConfigurationError, TaskStateError
from pgstask.settings import Settings
from pgstask.workers.base import BaseWorker
from pgstask.workers.registry import register_workers
from tests.daemons import ROOT, daemon_env, racing_daemons, running_daemon, stop_process, wait_for
from tests.http_support import api

LIMIT_WORKERS = "tests.limit_workers"

# --- the rules ----------------------------------------------------------------------------------

VALID: list[dict[str, Any]] = [
    {},
    {"timeout": 5},  # not a flow-control setting
    {"max_running": 1},
    {"max_running": 1_000_000, "max_running_per_key": 2.0},
    {"max_running": None, "fair_share": False},
    {"rate_limit": {"limit": 10, "per": 1}},
    {"rate_limit": {"limit": 1, "per": 0.001, "per_key": True}},
    {"rate_limit": {"limit": 5, "per": 604800, "per_key": None}},
    {"rate_limit": None, "fair_share": True},
]

INVALID: list[dict[str, Any]] = [
    {"max_running": 0},
    {"max_running": -1},
    {"max_running": 1.5},
    {"max_running": "2"},
    {"max_running": True},
    {"max_running": 1_000_001},
    {"max_running_per_key": []},
    {"rate_limit": 10},
    {"rate_limit": {"limit": 10}},
    {"rate_limit": {"per": 1}},
    {"rate_limit": {"limit": 0, "per": 1}},
    {"rate_limit": {"limit": 1, "per": 0}},
    {"rate_limit": {"limit": 1, "per": 604801}},
    {"rate_limit": {"limit": 1, "per": 1, "burst": 2}},
    {"rate_limit": {"limit": 1, "per": 1, "per_key": "yes"}},
    {"rate_limit": {"limit": True, "per": 1}},
    {"fair_share": 1},
    {"fair_share": "true"},
]


def _sql_flow(conn: Conn, settings: dict[str, Any]) -> Any:
    row = conn.execute("SELECT pgstask_worker_flow(%s) AS flow", (Jsonb(settings),)).fetchone()
    assert row is not None
    return row["flow"]


@pytest.mark.parametrize("settings", VALID, ids=json.dumps)
def test_valid_settings_pass_in_python_and_in_the_table(
    conn: Conn, settings: dict[str, Any]
) -> None:
    limits.check(settings)
    flow = _sql_flow(conn, settings)
    # The table has a flow exactly when a setting asks for a limit (None and False ask for none).
    asks = any(settings.get(name) not in (None, False) for name in limits.KEYS)
    assert (flow is not None) == asks


@pytest.mark.parametrize("settings", INVALID, ids=json.dumps)
def test_invalid_settings_fail_in_python_and_in_the_table(
    conn: Conn, settings: dict[str, Any]
) -> None:
    with pytest.raises(ValueError) as python:
        limits.check(settings)
    name = next(iter(settings))
    assert name in str(python.value)
    with pytest.raises(psycopg.errors.CheckViolation) as table, conn.transaction():
        _sql_flow(conn, settings)
    assert name in str(table.value) and str(table.value).startswith("pgstask: ")


def test_the_table_normalises_the_flow(conn: Conn) -> None:
    flow = _sql_flow(conn, {"max_running": 2.0, "rate_limit": {"limit": 3, "per": 1}})
    assert flow == {"max_running": 2, "rate_limit": {"limit": 3, "per": 1.0, "per_key": False}}


def test_a_class_with_a_bad_limit_is_refused_when_registered(conn: Conn) -> None:
    class BadLimit(BaseWorker):
        identifier = "bad-limit"
        settings = {"max_running": 0}

        def task_run(self, task: Any, options: Any) -> None:
            """Never runs."""

    with pytest.raises(ConfigurationError, match=r"'bad-limit'.*max_running"):
        register_workers(conn, [BadLimit], active=True)


def test_a_bad_live_limit_is_refused_by_the_client_and_by_sql(settings: Settings) -> None:
    with Client(settings.dsn, settings=settings) as client:
        client.discover_workers([LIMIT_WORKERS])
        with pytest.raises(ConfigurationError, match="max_running"):
            client.update_worker_settings("limited-total", {"max_running": -3})
        row = client.update_worker_settings("limited-total", {"max_running": None})
        assert row["flow"] is None  # the class's limit lifted live
    with psycopg.connect(str(settings.dsn)) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            'UPDATE s_workers SET settings = \'{"rate_limit": {"limit": 2}}\''
            " WHERE identifier = 'limited-total'"
        )


def test_a_bad_live_limit_is_refused_over_http_and_by_the_cli(settings: Settings) -> None:
    with Client(settings.dsn, settings=settings) as client:
        client.discover_workers([LIMIT_WORKERS])
    with api(settings) as http:
        answer = http.post(
            "/stask/worker/limited-total/settings",
            json={"settings": {"rate_limit": {"limit": 5, "per": -1}}},
        )
        assert answer.status_code == 422
        assert "rate_limit.per must be a number of seconds" in answer.json()["message"]
        good = http.post(
            "/stask/worker/limited-total/settings", json={"settings": {"max_running": 3}}
        )
        assert good.status_code == 200
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgstask",
            "workers",
            "settings",
            "limited-total",
            "--set",
            '{"max_running_per_key": 0}',
            "--dsn",
            str(settings.dsn),
        ],
        cwd=ROOT,
        env=daemon_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2, cli.stderr
    assert "max_running_per_key must be a whole number from 1" in cli.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "pgstask", "workers", "list", "--dsn", str(settings.dsn)],
        cwd=ROOT,
        env=daemon_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "at most 3 running" in listed.stdout  # the live value, over the class's 2
    assert "3 starts per 1 s" in listed.stdout  # limited-rate's class default
    with Client(settings.dsn, settings=settings) as client:
        assert client.worker("limited-total")["flow"] == {"max_running": 3}


# --- priority aging -----------------------------------------------------------------------------


def _worker(conn: Conn, identifier: str, settings: dict[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO s_workers (identifier, settings) VALUES (%s, %s)",
        (identifier, Jsonb(settings or {})),
    )


def test_aging_puts_a_long_waiting_low_task_ahead_of_new_high_ones(conn: Conn) -> None:
    _worker(conn, "w")
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, priority, start_at) VALUES"
        " ('w', 'old', 'low', now() - interval '2 hours'),"
        " ('w', 'new', 'high', now()), ('w', 'new', 'high', now())"
    )
    strict = queries.task_claim(conn, daemon_id=uuid.uuid4(), identifiers=["w"], limit=1)
    assert [t.action for t in strict] == ["new"]
    aged = queries.task_claim(conn, daemon_id=uuid.uuid4(), identifiers=["w"], limit=1, age=3600)
    assert [(t.action, t.priority) for t in aged] == [("old", "low")]
    rest = queries.task_claim(conn, daemon_id=uuid.uuid4(), identifiers=["w"], limit=5, age=3600)
    assert [t.action for t in rest] == ["new"]  # each task once


def test_workers_take_turns_within_a_priority(conn: Conn) -> None:
    _worker(conn, "a")
    _worker(conn, "b")
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, start_at)"
        " SELECT 'a', 'x', now() - interval '1 hour' FROM generate_series(1, 5)"
    )
    conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('b', 'x')")
    first = queries.task_claim(conn, daemon_id=uuid.uuid4(), identifiers=["b", "a"], limit=1)
    assert [t.identifier for t in first] == ["b"]  # the order given, not start_at across workers


# --- the limited claim, one connection at a time -------------------------------------------------


def test_a_limited_claim_counts_running_tasks_and_starts(conn: Conn) -> None:
    _worker(conn, "t", {"max_running": 2})
    _worker(conn, "r", {"rate_limit": {"limit": 3, "per": 3600}})
    conn.execute(
        "INSERT INTO s_tasks (identifier, action) SELECT w, 'x' FROM unnest(ARRAY['t', 'r']) AS w,"
        " generate_series(1, 5)"
    )
    daemon = uuid.uuid4()
    assert queries.task_claim(conn, daemon_id=daemon, identifiers=["t", "r"], limit=10) == []
    claimed = queries.task_claim_limited(conn, daemon_id=daemon, identifiers=["t", "r"], limit=10)
    assert sorted(t.identifier for t in claimed) == ["r", "r", "r", "t", "t"]
    again = queries.task_claim_limited(conn, daemon_id=daemon, identifiers=["t", "r"], limit=10)
    assert again == []
    conn.execute("UPDATE s_tasks SET status = 80 WHERE identifier IN ('t', 'r') AND status = 50")
    after = queries.task_claim_limited(conn, daemon_id=daemon, identifiers=["t", "r"], limit=10)
    assert [t.identifier for t in after] == ["t", "t"]  # the rate's window is still full


def test_per_key_limits_and_fair_share_rotate_over_the_keys(conn: Conn) -> None:
    _worker(conn, "k", {"max_running_per_key": 1, "fair_share": True})
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, concurrency_key)"
        " SELECT 'k', 'x', 'big' FROM generate_series(1, 50)"
    )
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, concurrency_key)"
        " VALUES ('k', 'x', 'small'), ('k', 'x', 'small'), ('k', 'x', NULL)"
    )
    daemon = uuid.uuid4()
    claimed = queries.task_claim_limited(conn, daemon_id=daemon, identifiers=["k"], limit=10)
    # One task per key a pass, the unkeyed one as a group of its own; a second pass finds every
    # key at its limit of one.
    assert sorted(str(t.concurrency_key) for t in claimed) == ["None", "big", "small"]
    assert queries.task_claim_limited(conn, daemon_id=daemon, identifiers=["k"], limit=10) == []


@pytest.mark.parametrize("settings", [{"fair_share": True}, {"max_running_per_key": 1}])
def test_unkeyed_tasks_take_their_turn_and_do_not_starve_a_key(
    conn: Conn, settings: dict[str, Any]
) -> None:
    # The unkeyed tasks are one more key in the rotation (after the last key), not a group
    # served first in every claim: with room for one task a claim (a daemon with one free slot),
    # a backlog of unkeyed tasks must not hold back a key's task until it has drained.
    _worker(conn, "u", settings)
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, start_at)"
        " SELECT 'u', 'x', now() - interval '1 hour' FROM generate_series(1, 5)"
    )
    conn.execute("INSERT INTO s_tasks (identifier, action, concurrency_key) VALUES ('u', 'x', 'a')")
    keys = []
    for _ in range(3):
        claimed = queries.task_claim_limited(
            conn, daemon_id=uuid.uuid4(), identifiers=["u"], limit=1
        )
        keys += [t.concurrency_key for t in claimed]
        conn.execute("UPDATE s_tasks SET status = 80 WHERE identifier = 'u' AND status = 50")
    assert "a" in keys[:2], keys


def test_the_next_start_waits_for_a_full_rate_window_not_for_held_back_tasks(conn: Conn) -> None:
    _worker(conn, "t", {"max_running": 1})
    _worker(conn, "r", {"rate_limit": {"limit": 1, "per": 600}})
    conn.execute(
        "INSERT INTO s_tasks (identifier, action) SELECT 't', 'x' FROM generate_series(1, 3)"
    )
    queries.task_claim_limited(conn, daemon_id=uuid.uuid4(), identifiers=["t"], limit=5)
    # Two due tasks held back by max_running: nothing to wait for but the end of the running one.
    assert queries.task_next_start_at(conn, identifiers=["t"]) is None
    conn.execute(
        "INSERT INTO s_tasks (identifier, action) SELECT 'r', 'x' FROM generate_series(1, 2)"
    )
    queries.task_claim_limited(conn, daemon_id=uuid.uuid4(), identifiers=["r"], limit=5)
    delay = queries.task_next_start_at(conn, identifiers=["r"])
    # When the start (recorded by clock_timestamp(), after this transaction's now()) leaves it.
    assert delay is not None and 590 < delay < 601


# --- real daemons racing ------------------------------------------------------------------------


@pytest.fixture
def runs_table(settings: Settings) -> Iterator[str]:
    dsn = str(settings.dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE limit_runs (task_id bigint PRIMARY KEY, identifier text, key text,"
            " started timestamptz, ended timestamptz)"
        )
        # Every start the rate-limited claim records, kept (the claim deletes expired ones).
        conn.execute("CREATE TABLE start_log (identifier text, key text, started_at timestamptz)")
        conn.execute(
            "CREATE FUNCTION keep_start() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " INSERT INTO start_log VALUES (NEW.identifier, NEW.concurrency_key, NEW.started_at);"
            " RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER keep_start AFTER INSERT ON s_task_starts"
            " FOR EACH ROW EXECUTE FUNCTION keep_start()"
        )
    yield dsn


def _racing_daemons(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    return racing_daemons(settings, count, LIMIT_WORKERS)


def _enqueue(dsn: str, identifier: str, keys: list[str | None], seconds: float) -> None:
    options = Jsonb({"dsn": dsn, "seconds": seconds})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO s_tasks (identifier, action, meta, concurrency_key)"
            " SELECT %s, 'work', %s, k FROM unnest(%s::text[]) AS k",
            (identifier, options, keys),
        )


def _finished(dsn: str, identifier: str, n: int, timeout: float) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:

        def done() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM s_tasks WHERE identifier = %s AND status = 80",
                (identifier,),
            ).fetchone()
            return row is not None and row[0] == n

        wait_for(done, timeout=timeout)


def _intervals(dsn: str, identifier: str) -> list[tuple[str | None, dt.datetime, dt.datetime]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT key, started, ended FROM limit_runs WHERE identifier = %s", (identifier,)
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _most_at_once(intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    # An end sorts before a start at the same instant: touching intervals do not overlap.
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_max_running_holds_while_four_daemons_race(runs_table: str, settings: Settings) -> None:
    """Four daemons with four free slots each, 16 tasks of a worker that allows two at once."""
    procs = _racing_daemons(settings, 4)
    try:
        _enqueue(runs_table, "limited-total", [None] * 16, 0.15)
        _finished(runs_table, "limited-total", 16, timeout=30)
    finally:
        for proc in procs:
            stop_process(proc)
    intervals = _intervals(runs_table, "limited-total")
    assert len(intervals) == 16
    assert _most_at_once([(s, e) for _, s, e in intervals]) == 2


def test_per_key_limits_hold_while_daemons_race(runs_table: str, settings: Settings) -> None:
    """One task per key at once and three in all, four keys, three daemons."""
    procs = _racing_daemons(settings, 3)
    try:
        keys: list[str | None] = [f"tenant-{i % 4}" for i in range(16)]
        _enqueue(runs_table, "limited-per-key", keys, 0.1)
        _finished(runs_table, "limited-per-key", 16, timeout=30)
    finally:
        for proc in procs:
            stop_process(proc)
    intervals = _intervals(runs_table, "limited-per-key")
    for key in {k for k, _, _ in intervals}:
        assert _most_at_once([(s, e) for k, s, e in intervals if k == key]) == 1
    assert 2 <= _most_at_once([(s, e) for _, s, e in intervals]) <= 3


def test_a_rate_limit_holds_while_daemons_race(runs_table: str, settings: Settings) -> None:
    """Three starts a second, nine tasks, three daemons: every window of one second holds at
    most three starts (as the claims recorded them), and the last ones start without a poll."""
    procs = _racing_daemons(settings, 3)
    try:
        _enqueue(runs_table, "limited-rate", [None] * 9, 0.01)
        _finished(runs_table, "limited-rate", 9, timeout=30)
    finally:
        for proc in procs:
            stop_process(proc)
    with psycopg.connect(runs_table) as conn:
        starts = [
            r[0]
            for r in conn.execute(
                "SELECT started_at FROM start_log WHERE identifier = 'limited-rate'"
                " ORDER BY started_at"
            ).fetchall()
        ]
    assert len(starts) == 9
    for first, fourth in zip(starts, starts[3:], strict=False):
        assert fourth - first >= dt.timedelta(seconds=1)


def test_fair_share_serves_a_small_key_beside_a_large_backlog(
    runs_table: str, settings: Settings
) -> None:
    """One slot; 40 tasks of one key, then 3 of another: the three run among the first seven."""
    _enqueue(runs_table, "limited-fair", ["big"] * 40, 0.0)
    _enqueue(runs_table, "limited-fair", ["small"] * 3, 0.0)
    with running_daemon(settings, modules=(LIMIT_WORKERS,), concurrency=1):
        _finished(runs_table, "limited-fair", 43, timeout=60)
    with psycopg.connect(runs_table) as conn:
        order = [
            r[0]
            for r in conn.execute(
                "SELECT key FROM limit_runs WHERE identifier = 'limited-fair' ORDER BY started"
            ).fetchall()
        ]
    assert order.index("small") < 2 and "small" not in order[7:]


def test_execute_keeps_to_the_limits(runs_table: str, settings: Settings) -> None:
    """``Client.execute`` (``pgstask execute``) claims under the same lock and limits."""
    _enqueue(runs_table, "limited-total", [None] * 3, 0.0)
    settings = settings.replace(worker_modules=(LIMIT_WORKERS,))
    with Client(settings.dsn, settings=settings) as client:
        client.discover_workers([LIMIT_WORKERS])
        ids = [t.id for t in client.list(identifier="limited-total")]
        with psycopg.connect(runs_table, autocommit=True) as conn:
            conn.execute(
                "UPDATE s_tasks SET status = 50, daemon_id = gen_random_uuid() WHERE id = ANY(%s)",
                (ids[:2],),
            )
            with pytest.raises(TaskStateError, match="at one of its limits"):
                client.execute(ids[2])
            conn.execute("UPDATE s_tasks SET status = 80 WHERE id = %s", (ids[0],))
        assert client.execute(ids[2]) is True
