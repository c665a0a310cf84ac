"""Progress and logs: derived fields, coalescing, snapshots, GC, the unlogged table (items 5, 6)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from pgstask import Client, Status, Task
from pgstask.db import make_pool
from pgstask.logs import LogRecord
from pgstask.progress import (
    ProgressState,
    ProgressTracker,
    collect_garbage,
    format_eta,
    read_snapshot,
)
from pgstask.runtime.completer import Completer
from pgstask.settings import Settings
from tests.daemons import running_daemon, wait_for


def fake_task(task_id: int = 1) -> Task:
    now = dt.datetime.now(dt.UTC)
    return Task(
        id=task_id,
        identifier="sample",
        action="noop",
        status=50,
        message=None,
        started_by=None,
        meta={},
        result=None,
        start_at=now,
        started_at=now,
        finished_at=None,
        attempts=1,
        claims=1,
        snoozes=0,
        max_attempts=3,
        priority="normal",
        progress=0,
        daemon_id=None,
        last_error=None,
        dedupe_key=None,
        peak_memory=None,
        created_at=now,
        updated_at=now,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tracker(tmp_path: Path, clock: Clock, writes: list[ProgressState]) -> ProgressTracker:
    state = ProgressState(7, "sample", "steps")
    return ProgressTracker(state, lambda s: writes.append(s), tmp_path, interval=0.25, clock=clock)


def test_push_keeps_fields_and_derives_percentage_and_eta(tmp_path: Path) -> None:
    clock, writes = Clock(), []
    tracker = _tracker(tmp_path, clock, writes)  # type: ignore[arg-type]
    tracker.push(total=200, message="starting")
    clock.now += 10
    tracker.push(processed=50)
    state = tracker.state
    assert (state.progress, state.processed, state.total, state.message) == (
        25,
        50,
        200,
        "starting",
    )
    assert state.eta == pytest.approx(30.0)  # 150 left at 5 per second
    tracker.push(progress=90)
    assert state.processed == 50 and state.progress == 90
    assert format_eta(130) == "2m 10s" and format_eta(None) == "—"


def test_push_is_coalesced_but_the_final_state_is_always_written(tmp_path: Path) -> None:
    clock, writes = Clock(), []
    tracker = _tracker(tmp_path, clock, writes)  # type: ignore[arg-type]
    for i in range(1, 1001):
        tracker.push(processed=i, total=1000)
    assert len(writes) == 1  # the first push writes, the rest wait for the interval
    clock.now += 0.3
    tracker.push(processed=1000)
    assert len(writes) == 2
    tracker.finish(Status.COMPLETED, "all done", result="file.csv")
    snap = read_snapshot(tmp_path, 7)
    assert snap is not None
    assert (snap["status"], snap["progress"], snap["message"], snap["result"]) == (
        "completed",
        100,
        "all done",
        "file.csv",
    )
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".~")]  # temp files renamed


@pytest.mark.parametrize(
    "kwargs", [{"progress": 101}, {"progress": -1}, {"processed": -3}, {"total": "x"}, {"eta": -1}]
)
def test_bad_progress_values_are_rejected(tmp_path: Path, kwargs: dict[str, object]) -> None:
    tracker = _tracker(tmp_path, Clock(), [])
    with pytest.raises(ValueError):
        tracker.push(**kwargs)  # type: ignore[arg-type]


def test_snapshot_gc_follows_the_marker(tmp_path: Path) -> None:
    old, fresh, temp = tmp_path / "1.json", tmp_path / "2.json", tmp_path / ".~3_1_1.json"
    for path in (old, fresh, temp):
        path.write_text("{}")
    now = time.time()
    os.utime(old, (now - 25 * 3600, now - 25 * 3600))
    os.utime(temp, (now - 2 * 3600, now - 2 * 3600))
    assert collect_garbage(tmp_path, now=now) == 2
    assert fresh.exists() and not old.exists() and not temp.exists()
    assert (tmp_path / ".gc_progress").exists()
    os.utime(fresh, (now - 25 * 3600, now - 25 * 3600))
    assert collect_garbage(tmp_path, now=now + 60) == 0  # throttled by the marker
    assert collect_garbage(tmp_path, now=now + 3601) == 1


def test_log_files_are_collected_after_the_log_retention(tmp_path: Path) -> None:
    old_log, fresh_log, other = tmp_path / "7.log", tmp_path / "8.log", tmp_path / "notes.log"
    for path in (old_log, fresh_log, other):
        path.write_text("[x] [INFO] y\n")
    now = time.time()
    for path in (old_log, other):
        os.utime(path, (now - 8 * 86400, now - 8 * 86400))
    assert collect_garbage(tmp_path, now=now) == 0  # no log retention given: logs are kept
    assert collect_garbage(tmp_path, now=now + 3601, log_max_age=7 * 86400) == 1
    assert not old_log.exists() and fresh_log.exists()
    assert other.exists()  # only {id}.log files are pgstask's


def test_progress_flows_to_table_snapshot_and_final_row(settings: Settings) -> None:
    with Client(settings=settings) as client:
        task = client.create("sample", "sleep", {"seconds": 30})
        with running_daemon(settings):
            wait_for(lambda: client.progress(task)["message"] == "sleeping")
            live = client.progress(task)
            assert live["status"] == "running" and live["progress"] == 0
            # a crash empties the unlogged table: reading still works and says "unknown"
            with psycopg.connect(settings.dsn or "", autocommit=True) as conn:
                conn.execute("TRUNCATE s_task_progress")
            assert client.progress(task)["progress"] is None
            client.cancel(task)
        steps = client.create("sample", "steps", {"total": 40})
        with running_daemon(settings):
            wait_for(lambda: client.get(steps).status == Status.COMPLETED)
        done = client.get(steps)
        assert done.progress == 100 and done.message == "did 40 steps"
        shown = client.progress(steps)
        assert (shown["progress"], shown["processed"], shown["total"]) == (100, 40, 40)
        snap = json.loads((settings.storage / f"{steps.id}.json").read_text())
        assert snap["status"] == "completed" and snap["progress"] == 100
        with psycopg.connect(settings.dsn or "") as conn:
            left = conn.execute("SELECT count(*) FROM s_task_progress").fetchone()
        assert left == (0,)


def test_logs_all_last_errors_clear_and_files(settings: Settings) -> None:
    with Client(settings=settings) as client:
        task = client.create("sample", "log")
        failing = client.create("sample", "fail", max_attempts=2)
        with running_daemon(settings):
            wait_for(lambda: client.get(task).is_finished and client.get(failing).is_finished)
        assert [r.message for r in client.logs(task)] == ["first", "second", "third"]
        assert [r.message for r in client.last_logs(task, 2)] == ["second", "third"]
        assert [r.level for r in client.error_logs(task)] == ["error"]
        assert client.logs(task)[0].context == {"n": 1}
        file_lines = (settings.storage / f"{task.id}.log").read_text().splitlines()
        assert len(file_lines) == 3 and "[WARNING] second" in file_lines[1]
        errors = client.error_logs(failing)
        assert len(errors) == 2 and "Traceback" in errors[0].context["traceback"]
        assert any("Retrying in" in r.message for r in client.logs(failing))
        assert client.clear_logs(task) == 3 and client.logs(task) == []
        assert not (settings.storage / f"{task.id}.log").exists()
        with client.connection() as conn:
            conn.execute("UPDATE s_task_logs SET created_at = now() - interval '40 days'")
        kept = len(client.logs(failing))
        log_file = settings.storage / f"{failing.id}.log"
        forty_days_ago = time.time() - 40 * 86400
        os.utime(log_file, (forty_days_ago, forty_days_ago))
        assert kept >= 3
        assert client.clean_old_logs(30) == kept
        assert client.logs(failing) == []
        assert not log_file.exists()


def test_log_records_kept_back_in_an_outage_are_stored_later(settings: Settings) -> None:
    """What an action logged while the database was away reaches s_task_logs with the next
    batch the completer writes; a record of a task deleted meanwhile is dropped, not fatal."""
    with Client(settings=settings) as client:
        task = client.create("sample", "noop")
        gone = client.create("sample", "noop")
        with client.connection() as conn:
            conn.execute("DELETE FROM s_tasks WHERE id = %s", (gone.id,))
        pool = make_pool(settings.dsn or "", max_size=2)
        try:
            completer = Completer(db=pool, daemon_id=uuid.uuid4(), storage=settings.storage)
            completer.add_logs(
                [
                    LogRecord.make(task.id, "warning", "written during the outage", n=1),
                    LogRecord.make(gone.id, "info", "of a deleted task"),
                ]
            )
            assert completer.pending == 2
            completer.step()
            assert completer.pending == 0
        finally:
            pool.close()
        [record] = client.logs(task)
    assert (record.level, record.message, record.context) == (
        "warning",
        "written during the outage",
        {"n": 1},
    )
