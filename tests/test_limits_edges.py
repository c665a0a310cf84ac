"""Flow control at its edges (docs/limits.md): claims that race a change of the task or of the
worker on another connection, made deterministic by holding a lock while the other side waits.
Each test commits to a database of its own (``dsn``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from pgstask import Client
from pgstask.settings import Settings
from pgstask.task import Status
from tests.daemons import running_daemon, wait_for


def _waiting_for_a_lock(dsn: str, application: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application,),
        ).fetchone()
    return row is not None and row[0] > 0


def _in_thread(
    dsn: str, application: str, call: Callable[[psycopg.Connection[Any]], Any]
) -> Callable[[], Any]:
    """Start ``call`` on a connection of its own; returns a function that joins and gives its
    result."""
    out: dict[str, Any] = {}

    def target() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name=application) as conn:
            out["result"] = call(conn)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(timeout=30)
        assert not thread.is_alive()
        return out["result"]

    return join


def test_execute_counts_the_key_the_task_has_when_it_claims_it(dsn: str) -> None:
    """A replace (or any update) that moves a pending task to another key while
    ``pgstask_claim_task`` waits for the worker's lock: the per-key limit is counted for the key
    the task is claimed with, not the one it had before the lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO s_workers (identifier, settings)"
            " VALUES ('p', '{\"max_running_per_key\": 1}')"
        )
        conn.execute(
            "INSERT INTO s_tasks (identifier, action, concurrency_key) VALUES ('p', 'x', 'k2')"
        )
        conn.execute("UPDATE s_tasks SET status = 50, daemon_id = gen_random_uuid()")
        row = conn.execute(
            "INSERT INTO s_tasks (identifier, action, concurrency_key) VALUES ('p', 'x', 'k1')"
            " RETURNING id"
        ).fetchone()
        assert row is not None
        task_id = row[0]
        with conn.transaction():
            # Another claim of the worker holds its lock; meanwhile the task moves to k2.
            conn.execute("SELECT 1 FROM s_workers WHERE identifier = 'p' FOR NO KEY UPDATE")
            join = _in_thread(
                dsn,
                "execute-race",
                lambda c: c.execute(
                    "SELECT id FROM pgstask_claim_task(%s, %s)", (uuid.uuid4(), task_id)
                ).fetchall(),
            )
            wait_for(lambda: _waiting_for_a_lock(dsn, "execute-race"), timeout=10)
            conn.execute("UPDATE s_tasks SET concurrency_key = 'k2' WHERE id = %s", (task_id,))
        assert join() == []  # k2 is at its limit of one
        running = conn.execute(
            "SELECT count(*) FROM s_tasks WHERE concurrency_key = 'k2' AND status IN (30, 50)"
        ).fetchone()
        assert running == (1,)


def test_a_limit_declared_by_another_daemons_class_is_claimed_here(settings: Settings) -> None:
    """Two versions of a worker class: this daemon's declares no limit, another's does (its
    daemon wrote it to s_workers.defaults). The plain claim leaves the worker to the limited
    claim, so this daemon must run that claim, going by the table's view, not its class."""
    with Client(settings=settings) as client, running_daemon(settings) as daemon:
        with psycopg.connect(str(settings.dsn), autocommit=True) as conn:
            conn.execute(
                "UPDATE s_workers SET defaults = '{\"max_running\": 1}' WHERE identifier = 'sample'"
            )
        wait_for(lambda: "sample" in daemon.limited)
        tasks = [client.create("sample", "noop") for _ in range(3)]
        wait_for(lambda: all(client.get(t).status == Status.COMPLETED for t in tasks))


def test_a_raised_limit_starts_held_back_tasks_without_a_poll(settings: Settings) -> None:
    """One task of a worker limited to one runs for seconds; two wait. Raising the limit (the
    s_workers trigger's NOTIFY makes the heartbeat reload) starts them at once: the daemon polls
    once a minute."""
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        client.update_worker_settings("sample", {"max_running": 1})
        with running_daemon(settings.replace(poll_interval=60.0)) as daemon:
            assert daemon.heartbeat is not None
            first = client.create("sample", "sleep", {"seconds": 30})
            wait_for(lambda: client.get(first).status == Status.RUNNING)
            rest = [client.create("sample", "noop") for _ in range(2)]
            # The producer's claim after those inserts is done by two heartbeats later.
            beats = daemon.heartbeat.beats
            wait_for(lambda: daemon.heartbeat.beats >= beats + 2)
            assert all(client.get(t).status == Status.PENDING for t in rest)
            client.update_worker_settings("sample", {"max_running": 3})
            wait_for(lambda: all(client.get(t).status == Status.COMPLETED for t in rest))
            client.cancel(first)
