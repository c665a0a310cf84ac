"""Process isolation (worker setting ``isolation: "process"``) and ``peak_memory`` per task.

Every test runs real child processes against a real database; nothing is mocked. Children are
started by the daemon's fork server, so their pids are not this process's children: a pid is
"gone" once ``os.kill(pid, 0)`` finds no process (the fork server reaps its children before the
daemon learns their exit status).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import psycopg
import pytest

from pgstask import Client, Status, Task
from pgstask.progress import read_snapshot
from pgstask.settings import Settings
from tests.daemons import (
    executions,
    running_daemon,
    scalar,
    start_daemon_process,
    stop_process,
    wait_for,
)

MB = 2**20
GB = 2**30


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user has that pid now
        return True
    return True


def pids(settings: Settings, task: Task) -> list[int]:
    """The pids that ran ``task``, one per attempt, in order."""
    return [pid for task_id, _, pid in executions(settings) if task_id == task.id]


def progress_row(settings: Settings, task: Task) -> tuple[Any, ...] | None:
    with psycopg.connect(settings.dsn or "", autocommit=True) as conn:
        return conn.execute(
            "SELECT status, progress, processed, total, eta, message FROM s_task_progress "
            "WHERE task_id = %s",
            (task.id,),
        ).fetchone()


def daemon_output(settings: Settings) -> str:
    return "".join(p.read_text() for p in settings.storage.glob("daemon-*.out"))


def without_time(snapshot: dict[str, Any] | None) -> dict[str, Any]:
    assert snapshot is not None
    return {k: v for k, v in snapshot.items() if k != "updated_at"}


@pytest.fixture
def workers_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose ``Client.execute``/``process_pending_tasks`` find the sample workers (the
    actions they run in this process record their executions in the test's storage)."""
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    return settings.replace(worker_modules=("tests.sample_workers",))


def test_process_action_completes_with_result_progress_and_logs(settings: Settings) -> None:
    storage = settings.storage
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("isolated", "steps", {"total": 5, "hold": True})
        # The child writes the progress row and the snapshot itself, coalesced as in a thread.
        wait_for(lambda: progress_row(settings, task) == (50, 100, 5, 5, 0.0, "waiting"))
        wait_for(lambda: (read_snapshot(storage, task.id) or {}).get("message") == "waiting")
        assert without_time(read_snapshot(storage, task.id)) == {
            "id": task.id,
            "identifier": "isolated",
            "action": "steps",
            "status": "running",
            "status_code": 50,
            "progress": 100,
            "processed": 5,
            "total": 5,
            "eta": 0.0,
            "eta_text": "0s",
            "message": "waiting",
            "result": None,
        }
        (storage / f"release-{task.id}").touch()
        wait_for(lambda: client.get(task).status == Status.COMPLETED)
        final = client.get(task)
        logs = client.logs(task)
    [pid] = pids(settings, task)
    assert pid != os.getpid()
    assert (final.result, final.message, final.progress, final.attempts) == (
        {"steps": 5},
        "did 5 steps",
        100,
        1,
    )
    assert progress_row(settings, task) is None  # deleted with the completion
    assert without_time(read_snapshot(storage, task.id)) == {
        "id": task.id,
        "identifier": "isolated",
        "action": "steps",
        "status": "completed",
        "status_code": 80,
        "progress": 100,
        "processed": 5,
        "total": 5,
        "eta": 0.0,
        "eta_text": "0s",
        "message": "did 5 steps",
        "result": {"steps": 5},
    }
    assert [(r.level, r.message, r.context) for r in logs] == [("info", "steps done", {"pid": pid})]
    assert "[INFO] steps done" in (storage / f"{task.id}.log").read_text()
    wait_for(lambda: not alive(pid))


def test_process_action_that_raises_is_retried_with_its_traceback(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("isolated", "fail", max_attempts=2)
        wait_for(lambda: client.get(task).status == Status.FAILED)
        final = client.get(task)
        errors = client.error_logs(task)
    assert final.attempts == 2
    assert final.message == "Failed: RuntimeError: boom in a child"
    assert final.last_error is not None and "in task_fail" in final.last_error
    assert [r.context["attempt"] for r in errors] == [1, 2]
    for record in errors:
        assert "RuntimeError: boom in a child" in record.context["traceback"]
    first, second = pids(settings, task)
    assert len({first, second, os.getpid()}) == 3  # a new process for each attempt


def test_hung_process_action_is_killed_at_its_timeout_and_retried(settings: Settings) -> None:
    quick = settings.replace(shutdown_grace=0.5)
    with Client(settings=quick) as client, running_daemon(quick, concurrency=2):
        task = client.create("isolated_timeout", "hang", max_attempts=2)
        wait_for(lambda: len(pids(settings, task)) == 2, timeout=40)  # killed, then retried
        first = pids(settings, task)[0]
        assert not alive(first)
        [failure] = client.error_logs(task)
        assert failure.message == "Failed: timed out after 1.0s; its process was killed"
        assert failure.context["attempt"] == 1
        after = client.create("sample", "noop")  # the daemon goes on claiming
        wait_for(lambda: client.get(after).status == Status.COMPLETED)
        second = pids(settings, task)[1]
        assert alive(second)
    # Stopping the daemon kills the second child and gives its task back.
    assert not alive(second)
    with Client(settings=quick) as again:
        back = again.get(task)
    assert (back.status, back.attempts) == (Status.PENDING, 1)


def test_hung_process_action_fails_for_good_when_attempts_are_used_up(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("isolated_timeout", "hang", max_attempts=1)
        wait_for(lambda: client.get(task).status == Status.FAILED, timeout=40)
        final = client.get(task)
    assert final.message == "Failed: timed out after 1.0s; its process was killed"
    assert final.attempts == 1
    assert final.peak_memory is not None and MB < final.peak_memory < 10 * GB
    [pid] = pids(settings, task)
    assert not alive(pid)


def test_process_that_exits_fails_the_attempt_with_its_exit_code(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("isolated", "exit", max_attempts=2)
        wait_for(lambda: client.get(task).status == Status.FAILED)
        final = client.get(task)
        logs = client.logs(task)
    expected = "Failed: the action's process exited with code 3 without reporting an outcome"
    assert final.message == expected
    assert final.attempts == 2
    assert [r.message for r in logs if r.level == "error"] == [expected, expected]
    assert any(r.message.startswith("Retrying in") for r in logs)


def test_cancel_stops_a_running_process_action(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings) as daemon:
        task = client.create("isolated", "sleep", {"seconds": 60})
        wait_for(lambda: progress_row(settings, task) is not None)
        [pid] = pids(settings, task)
        client.cancel(task)
        wait_for(lambda: not alive(pid))
        wait_for(lambda: all(task_id != task.id for task_id, _ in daemon.runs.known()))
        # the completer deletes the progress row with the outcome's batch, a moment later
        wait_for(lambda: progress_row(settings, task) is None)
        final = client.get(task)
        assert (final.status, final.message) == (Status.CANCELLED, "Cancelled by user")
        assert (read_snapshot(settings.storage, task.id) or {}).get("status") == "cancelled"


def test_immediate_stop_leaves_no_child_process(settings: Settings) -> None:
    patient = settings.replace(shutdown_grace=60.0)
    with Client(settings=patient) as client:
        task = client.create("isolated", "busy", {"seconds": 60})
        with running_daemon(patient) as daemon:
            wait_for(lambda: len(pids(settings, task)) == 1)
            daemon.request_stop()
            daemon.request_stop()  # a second signal: no grace period
        [pid] = pids(settings, task)
        assert not alive(pid)
        back = client.get(task)
        assert (back.status, back.attempts) == (Status.PENDING, 0)  # given back


def test_invalid_isolation_fails_the_task_for_good(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        client.update_worker_settings("sample", {"isolation": "fork"})
        task = client.create("sample", "noop", max_attempts=3)
        with running_daemon(settings):
            wait_for(lambda: client.get(task).status == Status.FAILED)
        final = client.get(task)
    assert final.attempts == 1
    assert final.message == (
        "Failed: worker 'sample' has an invalid setting isolation='fork'; allowed values: "
        '"thread" (the default) or "process"'
    )
    assert pids(settings, task) == []  # the action never ran


def test_operators_switch_a_worker_to_process_isolation(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings) as daemon:
        in_thread = client.create("sample", "sync_stock")
        wait_for(lambda: client.get(in_thread).status == Status.COMPLETED)
        client.update_worker_settings("sample", {"isolation": "process"})
        wait_for(lambda: daemon.workers["sample"].settings.get("isolation") == "process")
        in_child = client.create("sample", "sync_stock")
        wait_for(lambda: client.get(in_child).status == Status.COMPLETED)
        assert client.get(in_child).result == "synced"
    assert pids(settings, in_thread) == [os.getpid()]
    [child] = pids(settings, in_child)
    assert child != os.getpid()


def test_create_task_from_a_child_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSTASK_DSN", settings.dsn or "")  # the child's Client reads it
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("isolated", "spawn")
        wait_for(lambda: client.get(task).status == Status.COMPLETED)
        created = client.get(client.get(task).result)
        wait_for(lambda: client.get(created).status == Status.COMPLETED)
    assert (created.identifier, created.action, created.meta) == ("isolated", "steps", {"total": 2})


def test_peak_memory_is_recorded_for_thread_and_process_actions(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        in_thread = client.create("sample", "sleep", {"seconds": 0.5})
        in_child = client.create("isolated", "steps", {"total": 3})
        failing = client.create("isolated", "fail", max_attempts=1)
        big = client.create("isolated", "allocate", {"mb": 100})
        tasks = [in_thread, in_child, failing, big]
        wait_for(lambda: all(client.get(t).is_finished for t in tasks))
        finals = [client.get(t) for t in tasks]
    assert [t.status for t in finals] == [80, 80, 100, 80]
    for final in finals:
        assert final.peak_memory is not None and MB < final.peak_memory < 10 * GB
    assert finals[3].result == 100 * MB
    assert finals[3].peak_memory > 100 * MB  # type: ignore[operator]


def test_peak_memory_is_recorded_by_execute_and_run_once(workers_settings: Settings) -> None:
    with Client(settings=workers_settings) as client:
        executed = [client.create("sample", "noop"), client.create("isolated", "steps")]
        for task in executed:
            assert client.execute(task)
        once = [client.create("sample", "noop"), client.create("isolated", "steps")]
        assert client.process_pending_tasks(batch_size=2) == 2
        for task in executed + once:
            final = client.get(task)
            assert final.status == Status.COMPLETED
            assert final.peak_memory is not None and MB < final.peak_memory < 10 * GB
    assert scalar(workers_settings.dsn or "", "SELECT count(*) FROM s_task_progress") == 0


def test_daemon_process_stopped_twice_leaves_no_child(settings: Settings) -> None:
    patient = settings.replace(shutdown_grace=60.0)
    with Client(settings=patient) as client:
        task = client.create("isolated", "busy", {"seconds": 60})
        daemon = start_daemon_process(patient)
        try:
            wait_for(lambda: len(pids(settings, task)) == 1, timeout=30)
            daemon.send_signal(signal.SIGTERM)
            # Wait until the first is handled: two pending SIGTERMs would merge into one.
            wait_for(lambda: "send it again to stop now" in daemon_output(settings))
            assert stop_process(daemon, signal.SIGTERM) == 0  # the second signal: at once
        finally:
            if daemon.poll() is None:
                daemon.kill()
        [pid] = pids(settings, task)
        assert not alive(pid)
        back = client.get(task)
        assert (back.status, back.attempts) == (Status.PENDING, 0)


def test_child_exits_when_its_daemon_is_killed(settings: Settings) -> None:
    with Client(settings=settings) as client:
        task = client.create("isolated", "busy", {"seconds": 60})
        daemon = start_daemon_process(settings)
        try:
            wait_for(lambda: len(pids(settings, task)) == 1, timeout=30)
            stop_process(daemon, signal.SIGKILL)
        finally:
            if daemon.poll() is None:
                daemon.kill()
        [pid] = pids(settings, task)
        wait_for(lambda: not alive(pid))
