"""The daemon's life: wake-up, schedule, polling, reconnects, cancel, timeouts, shutdown,
rescue of a killed daemon (items 2, 3, 7, 9)."""

from __future__ import annotations

import datetime as dt
import signal
import time

import psycopg

from pgstask import Client, Status
from pgstask.settings import Settings
from tests.daemons import (
    executions,
    running_daemon,
    scalar,
    start_daemon_process,
    stop_process,
    wait_for,
)


def _insert_sql(dsn: str, action: str = "noop", delay: float | None = None) -> int:
    """A plain SQL insert, as another system would do it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO s_tasks (identifier, action, start_at) "
            "VALUES ('sample', %s, now() + make_interval(secs => coalesce(%s, 0))) RETURNING id",
            (action, delay),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _status(dsn: str, task_id: int) -> int:
    return int(scalar(dsn, "SELECT status FROM s_tasks WHERE id = %s", (task_id,)))  # type: ignore[arg-type]


def test_plain_sql_insert_wakes_an_idle_daemon_without_a_poll(settings: Settings) -> None:
    slow_poll = settings.replace(poll_interval=60.0)
    with running_daemon(slow_poll) as daemon:
        assert daemon.listener is not None
        wait_for(lambda: daemon.listener is not None and daemon.listener.connected_count > 0)
        time.sleep(0.3)  # let the start-up poll pass, so only NOTIFY can start the next task
        task_id = _insert_sql(settings.dsn or "")
        wait_for(lambda: _status(settings.dsn or "", task_id) == Status.COMPLETED, timeout=10)


def test_future_start_at_is_honoured_and_runs_on_time(settings: Settings) -> None:
    slow_poll = settings.replace(poll_interval=60.0)
    with running_daemon(slow_poll):
        time.sleep(0.3)
        task_id = _insert_sql(settings.dsn or "", delay=1.5)
        wait_for(lambda: _status(settings.dsn or "", task_id) == Status.COMPLETED, timeout=15)
    with psycopg.connect(settings.dsn or "") as conn:
        row = conn.execute(
            "SELECT started_at >= start_at FROM s_tasks WHERE id = %s", (task_id,)
        ).fetchone()
    assert row == (True,)


def test_poll_only_mode_runs_tasks_without_listen(settings: Settings) -> None:
    polling = settings.replace(poll_only=True, poll_interval=0.2)
    with running_daemon(polling) as daemon:
        assert daemon.listener is None
        task_id = _insert_sql(settings.dsn or "")
        wait_for(lambda: _status(settings.dsn or "", task_id) == Status.COMPLETED)


def test_daemon_survives_the_database_restarting(settings: Settings, pg) -> None:  # type: ignore[no-untyped-def]
    with running_daemon(settings) as daemon:
        first = _insert_sql(settings.dsn or "")
        wait_for(lambda: _status(settings.dsn or "", first) == Status.COMPLETED)
        before = daemon.listener.connected_count if daemon.listener else 0
        pg.restart()
        second = _insert_sql(settings.dsn or "")
        wait_for(lambda: _status(settings.dsn or "", second) == Status.COMPLETED, timeout=30)
        if daemon.listener is not None:
            wait_for(
                lambda: daemon.listener is not None and daemon.listener.connected_count > before
            )


def test_cancel_pending_is_immediate_and_running_stops_at_next_progress(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        pending = client.create(
            "sample", "noop", start_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        )
        assert client.cancel(pending).status == Status.CANCELLED
        running = client.create("sample", "sleep", {"seconds": 30})
        wait_for(lambda: client.get(running).status == Status.RUNNING)
        client.cancel(running)
        # the action stops at its next push_progress; its progress row is then removed
        wait_for(
            lambda: (
                scalar(
                    settings.dsn or "",
                    "SELECT count(*) FROM s_task_progress WHERE task_id = %s",
                    (running.id,),
                )
                == 0
            ),
            timeout=10,
        )
        wait_for(lambda: running.id not in daemon_running(client))
        final = client.get(running)
        assert final.status == Status.CANCELLED
        assert [r.message for r in client.logs(running)] == ["Cancelled by user"]
    assert [e[:2] for e in executions(settings) if e[0] == running.id] == [(running.id, 1)]


def daemon_running(client: Client) -> list[int]:
    return [t.id for t in client.list(status="running")]


def test_worker_timeout_fails_the_attempt_and_retries(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("slow", "spin", max_attempts=2)
        wait_for(lambda: client.get(task).status == Status.FAILED, timeout=20)
        final = client.get(task)
    assert final.attempts == 2
    assert "timed out" in (final.message or "")


def test_graceful_shutdown_gives_back_unfinished_tasks(settings: Settings) -> None:
    quick = settings.replace(shutdown_grace=0.3)
    with Client(settings=quick) as client:
        task = client.create("sample", "sleep", {"seconds": 30})
        with running_daemon(quick):
            wait_for(lambda: client.get(task).status == Status.RUNNING)
        back = client.get(task)
        assert back.status == Status.PENDING
        assert back.attempts == 0  # the interrupted attempt does not count
        assert client.daemons() == []


def test_graceful_shutdown_lets_short_actions_finish(settings: Settings) -> None:
    with Client(settings=settings) as client:
        task = client.create("sample", "sleep", {"seconds": 0.5})
        with running_daemon(settings):
            wait_for(lambda: client.get(task).status == Status.RUNNING)
        assert client.get(task).status == Status.COMPLETED


def test_killed_daemon_tasks_are_rescued_and_never_completed_twice(settings: Settings) -> None:
    with Client(settings=settings) as client:
        tasks = [client.create("sample", "busy", {"seconds": 2}) for _ in range(3)]
        victim = start_daemon_process(settings, "--concurrency", "3")
        try:
            wait_for(lambda: all(client.get(t).status == Status.RUNNING for t in tasks), timeout=30)
            # running is set at claim; kill only once every action has recorded its start
            wait_for(lambda: len(executions(settings)) == 3, timeout=30)
            stop_process(victim, signal.SIGKILL)
        finally:
            if victim.poll() is None:
                victim.kill()
        with running_daemon(settings):
            wait_for(
                lambda: all(client.get(t).status == Status.COMPLETED for t in tasks), timeout=40
            )
        for task in tasks:
            final = client.get(task)
            assert final.attempts == 2
            assert any("Rescued" in r.message for r in client.logs(task))
    runs = executions(settings)
    assert sorted(a for _, a, _ in runs) == [1, 1, 1, 2, 2, 2]


def test_rescue_fails_a_task_whose_attempts_are_used_up(settings: Settings) -> None:
    with Client(settings=settings) as client:
        task = client.create("sample", "busy", {"seconds": 5}, max_attempts=1)
        victim = start_daemon_process(settings)
        try:
            wait_for(lambda: client.get(task).status == Status.RUNNING, timeout=30)
            stop_process(victim, signal.SIGKILL)
        finally:
            if victim.poll() is None:
                victim.kill()
        with running_daemon(settings):
            wait_for(lambda: client.get(task).status == Status.FAILED, timeout=30)
        assert client.get(task).attempts == 1


def test_heartbeat_keeps_the_daemon_row_fresh(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings) as daemon:
        assert daemon.heartbeat is not None
        beats = daemon.heartbeat.beats
        wait_for(lambda: daemon.heartbeat is not None and daemon.heartbeat.beats >= beats + 2)
        [row] = client.daemons()
        assert row["alive"] and row["id"] == daemon.id


def test_daemon_declared_dead_registers_again(settings: Settings) -> None:
    with running_daemon(settings) as daemon:
        assert daemon.heartbeat is not None
        with psycopg.connect(settings.dsn or "", autocommit=True) as conn:
            conn.execute("DELETE FROM s_daemons")
        daemon.heartbeat.step()
        assert scalar(settings.dsn or "", "SELECT count(*) FROM s_daemons") == 1


def test_values_postgresql_cannot_store_fail_their_task_not_the_batch(settings: Settings) -> None:
    """Outcomes are written in batches: one result or text that PostgreSQL refuses must not
    keep the others (or itself) from being written."""
    kinds = ["nan", "nul result", "nul message", "nul error", "backslash text"]
    kinds += ["surrogate result", "surrogate message", "surrogate error", "number message"]
    with Client(settings=settings) as client, running_daemon(settings):
        tasks = {
            k: client.create("sample", "unstorable", {"kind": k}, max_attempts=1) for k in kinds
        }
        plain = client.create("sample", "noop")
        wait_for(lambda: all(client.get(t).is_finished for t in [*tasks.values(), plain]))
        final = {k: client.get(t) for k, t in tasks.items()}
        assert client.get(plain).status == Status.COMPLETED
    assert final["nan"].status == Status.FAILED
    assert "not JSON-serialisable" in (final["nan"].message or "")
    assert final["nul result"].status == Status.FAILED
    assert "NUL" in (final["nul result"].message or "")
    assert (final["nul message"].status, final["nul message"].message) == (
        Status.COMPLETED,
        "done\ufffd!",
    )
    assert final["nul error"].status == Status.FAILED
    assert final["nul error"].message == "Failed: ValueError: bad\ufffdbyte"
    backslash = final["backslash text"]
    assert (backslash.status, backslash.result) == (Status.COMPLETED, "\\u0000")
    assert final["surrogate result"].status == Status.FAILED
    assert "lone surrogate" in (final["surrogate result"].message or "")
    assert (final["surrogate message"].status, final["surrogate message"].message) == (
        Status.COMPLETED,
        "read caf\ufffd.txt",
    )
    assert final["surrogate error"].message == "Failed: ValueError: cannot read caf\ufffd.txt"
    assert (final["number message"].status, final["number message"].message) == (
        Status.COMPLETED,
        "42",
    )


def test_a_retryable_failure_with_a_lone_surrogate_in_its_error_is_retried(
    settings: Settings,
) -> None:
    fast = settings.replace(retry_base_delay=0.05, retry_max_delay=0.1)
    with Client(settings=fast) as client, running_daemon(fast):
        task = client.create("sample", "unstorable", {"kind": "surrogate error"}, max_attempts=2)
        wait_for(lambda: client.get(task).is_finished)
        final = client.get(task)
    assert (final.status, final.attempts) == (Status.FAILED, 2)  # retried, not failed at once
