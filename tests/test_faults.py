"""Faults that used to strand a task or let the wrong run complete it (docs/reliability.md).

- a claim that committed but whose reply never reached the daemon;
- rows PostgreSQL stores but Python cannot read, claimed together with good tasks;
- a retry claimed again by the same daemon while the earlier run's thread still runs;
- a cancel, then a retry, while the cancelled run still runs on the same daemon;
- a daemon cut off from the database (a black-holing proxy) while its action runs.

Real daemons on a real server; the network faults go through ``tests.proxy``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from pgstask import Client, Status, queries
from pgstask.db import make_pool
from pgstask.runtime import supervisor as supervisor_module
from pgstask.runtime.daemon import Daemon
from pgstask.runtime.rescuer import LOCK_KEY as RESCUE_LOCK
from pgstask.runtime.rescuer import Rescuer
from pgstask.settings import Settings
from pgstask.task import UnreadableTask
from tests.daemons import ROOT, daemon_env, executions, running_daemon, wait_for
from tests.fault_workers import spans
from tests.proxy import proxy

FAULT_WORKERS = ("tests.sample_workers", "tests.fault_workers")


def _task(dsn: str, task_id: int) -> tuple[int, int, int]:
    """(status, attempts, claims) of a task, read with a plain query."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT status, attempts, claims FROM s_tasks WHERE id = %s", (task_id,)
        ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]))


# --- 1. a claim whose reply is lost ------------------------------------------------------------


def test_a_claim_whose_reply_is_lost_is_given_back_and_runs_once(settings: Settings) -> None:
    assert settings.dsn
    with proxy(settings.dsn) as net, Client(settings=settings) as client:
        with running_daemon(settings.replace(dsn=net.dsn)) as daemon:
            assert daemon.heartbeat is not None
            net.cut_next_claim_reply()
            tasks = client.create_many([{"identifier": "sample", "action": "noop"}] * 3)
            wait_for(lambda: net.cuts == 1)
            # the claim committed: the tasks are running on a live daemon that never got them
            dsn = settings.dsn
            wait_for(lambda: all(_task(dsn, t.id)[0] == Status.COMPLETED for t in tasks))
            assert daemon.heartbeat.given_back >= 1
        for task in tasks:
            status, attempts, claims = _task(settings.dsn, task.id)
            assert (status, attempts) == (Status.COMPLETED, 1)  # the lost claim did not count
            assert claims >= 1
            messages = [r.message for r in client.logs(task)]
            assert not any("discarded" in m for m in messages)
    runs = [e[0] for e in executions(settings)]
    assert sorted(runs) == sorted(t.id for t in tasks)  # each ran exactly once


# --- 1. rows that cannot be read -----------------------------------------------------------------

POISON = {
    "deep meta": "UPDATE s_tasks SET meta = jsonb_build_object('x', "
    "(repeat('[', 10000) || repeat(']', 10000))::jsonb) WHERE id = %s",
    "huge number": "UPDATE s_tasks SET meta = jsonb_build_object('n', repeat('9', 5000)::numeric)"
    " WHERE id = %s",
    "start_at -infinity": "UPDATE s_tasks SET start_at = '-infinity' WHERE id = %s",
    "BC start_at": "UPDATE s_tasks SET start_at = '0044-03-15 12:00:00+00 BC' WHERE id = %s",
    "created_at infinity": "UPDATE s_tasks SET created_at = 'infinity' WHERE id = %s",
}


def _poison(dsn: str, good: int) -> tuple[dict[str, int], list[int]]:
    """Good tasks and one of each unreadable row, written in one transaction (plain SQL:
    ``UPDATE`` is how such rows get past the insert trigger, as do rows from before it)."""
    with psycopg.connect(dsn) as conn:
        ids = [
            int(r[0])
            for r in conn.execute(
                "INSERT INTO s_tasks (identifier, action) "
                "SELECT 'sample', 'noop' FROM generate_series(1, %s) RETURNING id",
                (good + len(POISON),),
            ).fetchall()
        ]
        bad: dict[str, int] = {}
        for (name, statement), task_id in zip(POISON.items(), ids, strict=False):
            conn.execute(statement, (task_id,))
            bad[name] = task_id
    return bad, ids[len(POISON) :]


def test_unreadable_rows_fail_with_a_message_and_poison_nothing(settings: Settings) -> None:
    assert settings.dsn
    bad, good = _poison(settings.dsn, good=6)
    with Client(settings=settings) as client:
        # lists and lookups show every row, the unreadable ones with what could not be read
        listed = {t.id: t for t in client.list(limit=100)}
        assert set(listed) >= set(bad.values()) | set(good)
        for name, task_id in bad.items():
            task = listed[task_id]
            assert isinstance(task, UnreadableTask), name
            assert task.problem, name
            assert isinstance(client.get(task_id), UnreadableTask)
        with running_daemon(settings):
            wait_for(lambda: all(client.get(i).status == Status.COMPLETED for i in good))
            wait_for(lambda: all(client.get(i).status == Status.FAILED for i in bad.values()))
        for name, task_id in bad.items():
            message = client.get(task_id).message or ""
            assert message.startswith("Failed: pgstask cannot read it: "), (name, message)
    assert sorted(e[0] for e in executions(settings)) == sorted(good)


def test_a_start_at_of_infinity_neither_runs_nor_breaks_the_producer(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert settings.dsn
    with Client(settings=settings) as client:
        later = client.create("sample", "noop")
        never = client.create("sample", "noop")
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute("UPDATE s_tasks SET start_at = 'infinity' WHERE id = %s", (never.id,))
            conn.execute(
                "UPDATE s_tasks SET start_at = now() + interval '1 second' WHERE id = %s",
                (later.id,),
            )
        with running_daemon(settings):
            wait_for(lambda: client.get(later).status == Status.COMPLETED)
            time.sleep(1.0)  # several producer passes with the infinite start_at pending
        assert client.get(never).status == Status.PENDING
    failures = [r for r in caplog.records if r.name.startswith("pgstask") and r.exc_info]
    assert failures == []


def _pgstask(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgstask", *args],
        env=daemon_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_lists_and_shows_unreadable_rows(settings: Settings) -> None:
    assert settings.dsn
    bad, _ = _poison(settings.dsn, good=1)
    listing = _pgstask(settings, "tasks", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    for task_id in bad.values():
        assert f'"id": {task_id}' in listing.stdout
    shown = _pgstask(settings, "tasks", "show", str(bad["deep meta"]))
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "nested too deeply" in shown.stdout


def test_a_run_the_runner_cannot_end_fails_instead_of_staying_running(settings: Settings) -> None:
    with Client(settings=settings) as client:
        with running_daemon(settings, modules=FAULT_WORKERS) as daemon:
            task = client.create("broken", "unprintable", max_attempts=1)
            wait_for(lambda: client.get(task).status == Status.FAILED)
            assert daemon.runs.known() == set()
        final = client.get(task)
    assert final.message == "Failed: pgstask could not end the run (RuntimeError)"


# --- 2. the wrong run completes a task --------------------------------------------------------


@pytest.fixture
def quick_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread that ignores its timeout is abandoned 2 s after it, not 5 s."""
    monkeypatch.setattr(supervisor_module, "KILL_GRACE", 2.0)


@pytest.mark.usefixtures("quick_kill")
def test_a_retry_on_the_same_daemon_keeps_its_timeout(settings: Settings) -> None:
    """Attempt 1 ignores its 0.5 s timeout and is abandoned at ~2.5 s; the same daemon claims
    attempt 2 at once. Attempt 1's thread returns at 3.8 s, while attempt 2 runs: attempt 2 must
    still be timed out (at ~5 s) and fail, never complete at ~6.4 s."""
    with Client(settings=settings) as client:
        with running_daemon(settings, modules=FAULT_WORKERS, concurrency=4):
            task = client.create(
                "timed_runs", "busy_per_claim", {"seconds": [3.8, 3.8]}, max_attempts=2
            )
            wait_for(lambda: client.get(task).status == Status.FAILED, timeout=30)
            time.sleep(2.0)  # attempt 2's thread returns meanwhile: its outcome is discarded
            final = client.get(task)
        assert (final.status, final.attempts, final.claims) == (Status.FAILED, 2, 2)
        assert "timed out after 0.5s and did not stop" in (final.message or "")
        assert final.result is None
    runs = [s for s in spans(settings.storage) if s[0] == task.id]
    assert sorted(s[1] for s in runs) == [1, 2]


def test_a_cancelled_run_cannot_complete_the_retry_that_followed(settings: Settings) -> None:
    """Poll-only, a slow heartbeat: the cancelled run 1 is never told to stop and returns
    while run 2 (the retry, on the same daemon) runs. Its outcome must be discarded."""
    quiet = settings.replace(poll_only=True, heartbeat_interval=5.0, stale_after=30.0)
    with Client(settings=settings) as client:
        with running_daemon(quiet, modules=FAULT_WORKERS):
            task = client.create("runs", "busy_per_claim", {"seconds": [2.0, 5.0]})
            wait_for(lambda: client.get(task).status == Status.RUNNING)
            client.cancel(task)
            client.retry(task)
            wait_for(lambda: client.get(task).claims == 2 and client.get(task).is_running)
            wait_for(lambda: len(spans(settings.storage)) == 1, timeout=10)  # run 1 returned
            time.sleep(0.5)
            assert client.get(task).status == Status.RUNNING  # run 2 is still on it
            wait_for(lambda: client.get(task).status == Status.COMPLETED, timeout=15)
            wait_for(lambda: len(spans(settings.storage)) == 2)
        messages = [r.message for r in client.logs(task)]
    assert any("discarded" in m for m in messages), messages
    second = max(spans(settings.storage), key=lambda s: s[1])
    assert (
        second[1] == 2 and second[3] - second[2] >= 5.0
    )  # the completion is run 2's, after its whole sleep


# --- 3. a daemon cut off from the database fences itself ---------------------------------------


def test_a_black_holed_daemon_stops_its_action_before_the_task_runs_elsewhere(
    settings: Settings,
) -> None:
    assert settings.dsn
    # stale after 3 s: the daemon fences itself at 2.3 s, 0.7 s before the earliest rescue
    stale = settings.replace(stale_after=3.0)
    with proxy(settings.dsn) as net, Client(settings=settings) as client:
        behind = stale.replace(dsn=net.dsn)
        with running_daemon(behind, modules=FAULT_WORKERS) as cut_off:
            assert cut_off.fence_after == pytest.approx(2.3)
            task = client.create("runs", "steady", {"seconds": 6.0})
            wait_for(lambda: client.get(task).status == Status.RUNNING)
            net.hold()  # no error, no answer: every connection of the daemon hangs
            with running_daemon(stale, modules=FAULT_WORKERS):
                wait_for(lambda: cut_off.fenced, timeout=10)
                # the other daemon rescues the task (stale after 3 s) and runs it again
                wait_for(lambda: client.get(task).claims == 2, timeout=15)
                net.release()
                wait_for(lambda: client.get(task).status == Status.COMPLETED, timeout=20)
                wait_for(lambda: not cut_off.fenced, timeout=10)
        first, second = sorted(s for s in spans(settings.storage) if s[0] == task.id)[:2]
        final = client.get(task)
    assert (first[1], second[1]) == (1, 2)
    assert first[3] <= second[2], "the cut-off run was still running when the re-run started"
    assert second[3] - second[2] >= 6.0  # the re-run completed the task
    assert final.status == Status.COMPLETED and final.claims == 2


def test_a_fenced_daemon_gives_its_task_back_when_the_database_returns_in_time(
    settings: Settings,
) -> None:
    """Cut off longer than the fence delay (4.55 s here) but shorter than ``stale_after`` (6 s):
    nobody rescues the task, and the daemon that stopped it gives it back itself, the attempt
    not counted; it runs again and completes."""
    assert settings.dsn
    slow = settings.replace(stale_after=6.0)
    with proxy(settings.dsn) as net, Client(settings=settings) as client:
        with running_daemon(slow.replace(dsn=net.dsn), modules=FAULT_WORKERS) as cut_off:
            assert cut_off.fence_after == pytest.approx(4.55)
            task = client.create("runs", "steady", {"seconds": 8.0})
            wait_for(lambda: client.get(task).status == Status.RUNNING)
            net.hold()
            wait_for(lambda: cut_off.fenced, timeout=10)
            wait_for(lambda: len(spans(settings.storage)) == 1)  # the action stopped
            net.release()
            wait_for(lambda: client.get(task).claims == 2, timeout=10)
            wait_for(lambda: client.get(task).status == Status.COMPLETED, timeout=20)
        final = client.get(task)
        messages = [r.message for r in client.logs(task)]
    assert (final.attempts, final.claims) == (1, 2)  # the stopped attempt did not count
    assert not any("Rescued" in m for m in messages), messages
    first, second = sorted(spans(settings.storage), key=lambda s: s[1])
    assert first[3] < second[2] and second[3] - second[2] >= 8.0


@contextlib.contextmanager
def another_rescuer(settings: Settings) -> Iterator[Rescuer]:
    """The rescuer of another daemon, on a pool of its own."""
    assert settings.dsn
    pool = make_pool(settings.dsn, max_size=2)
    try:
        yield Rescuer(
            pool=pool,
            storage=settings.storage,
            stale_after=settings.stale_after,
            base_delay=0.05,
            max_delay=0.05,
            interval=1.0,
        )
    finally:
        pool.close()


def _running_on_a_dead_daemon(dsn: str, task_id: int) -> None:
    """The task as a daemon that vanished left it: running, claimed once, no daemon row."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE s_tasks SET status = 50, attempts = 1, claims = 1,"
            " daemon_id = gen_random_uuid(), started_at = now() WHERE id = %s",
            (task_id,),
        )


def test_a_hung_transaction_that_logged_on_a_task_does_not_keep_it_from_rescue(
    settings: Settings,
) -> None:
    """A daemon that hangs after inserting a log row of its task, inside the transaction, holds
    the foreign key's KEY SHARE lock on the task row: the rescue must not skip the row for it."""
    assert settings.dsn
    with Client(settings=settings) as client:
        task = client.create("sample", "noop")
        _running_on_a_dead_daemon(settings.dsn, task.id)
        with psycopg.connect(settings.dsn) as hung:
            hung.execute(
                "INSERT INTO s_task_logs (task_id, level, message) VALUES (%s, 'info', 'hung')",
                (task.id,),
            )
            with another_rescuer(settings) as rescuer:
                assert rescuer.step() == 1
            hung.rollback()
        assert client.get(task).status == Status.PENDING


def test_a_daemon_transaction_left_idle_is_ended_by_the_server_after_stale_after(
    settings: Settings,
) -> None:
    """A daemon that hangs inside its rescuer pass would hold the rescuer's lock for as long as
    the server believes its connection alive (hours, for a silent network): the server ends a
    daemon's transaction left idle for ``stale_after`` (1.5 s here), and another daemon's
    rescuer gets the lock and rescues."""
    assert settings.dsn
    with Client(settings=settings) as client:
        hung_daemon = Daemon(
            settings, dsn=settings.dsn, workers={}, make_client=Client, concurrency=1
        )
        hung_daemon.setup()
        try:
            conn = hung_daemon.pool.getconn()
            assert queries.lock_try_acquire(conn, key=RESCUE_LOCK)  # then it hangs
            task = client.create("sample", "noop")
            _running_on_a_dead_daemon(settings.dsn, task.id)
            with another_rescuer(settings) as rescuer:
                assert rescuer.step() == 0  # the lock is held
                wait_for(lambda: rescuer.step() == 1, timeout=10, step=0.2)
            with pytest.raises(psycopg.Error):
                conn.execute("SELECT 1")  # the server ended the idle transaction's session
            hung_daemon.pool.putconn(conn)
        finally:
            hung_daemon.request_stop()
            hung_daemon._shutdown()
        assert client.get(task).status == Status.PENDING


def test_tasks_watch_rides_out_a_database_restart(settings: Settings, pg) -> None:  # type: ignore[no-untyped-def]
    with Client(settings=settings) as client:
        task = client.create("sample", "sleep", {"seconds": 4.0})
        watcher = subprocess.Popen(
            [sys.executable, "-m", "pgstask", "tasks", "watch", str(task.id), "--interval", "0.2"],
            env=daemon_env(settings),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with running_daemon(settings):
                wait_for(lambda: client.get(task).status == Status.RUNNING)
                pg.restart()
                wait_for(lambda: _completed(client, task.id), timeout=40)
            out, err = watcher.communicate(timeout=60)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.communicate()
    assert watcher.returncode == 0, (out, err)
    assert "completed" in out


def _completed(client: Client, task_id: int) -> bool:
    try:
        return client.get(task_id).status == Status.COMPLETED
    except Exception:
        return False
