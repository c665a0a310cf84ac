"""``async def`` actions on the daemon's event loop: many at once, progress, logs and marks,
failures and retries, cancel, timeout, shutdown, rescue, a worker with both kinds of action,
``run-once``/``execute``, and what pgstask refuses (docs/workers.md, "Async actions")."""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from typing import Any

import pytest

from pgstask import BaseWorker, Client, Status, Task
from pgstask.errors import ConfigurationError
from pgstask.retry import RetryPolicy
from pgstask.runtime.daemon import Daemon
from pgstask.runtime.runner import check_worker_settings
from pgstask.settings import Settings
from pgstask.workers.context import DONE, LoopFlag
from tests import async_workers
from tests.async_workers import INTERVALS, THREADS, events
from tests.daemons import running_daemon, scalar, start_daemon_process, stop_process, wait_for

MODULES = ("tests.async_workers",)


def _events_of(settings: Settings, task: Task) -> list[tuple[int, str]]:
    return [(attempt, event) for i, attempt, event in events(settings.storage) if i == task.id]


def _idle(daemon: Daemon) -> bool:
    return daemon.runs is not None and not daemon.runs.under_way()


def test_a_thousand_async_actions_run_at_once_on_one_daemon(settings: Settings) -> None:
    group, n = uuid.uuid4().hex, 1000
    with Client(settings=settings) as client:
        data = {"group": group, "n": n}
        items = [{"identifier": "asyncs", "action": "overlap", "data": data} for _ in range(n)]
        ids = client.create_many(items, returning="ids")
        with running_daemon(settings, modules=MODULES, async_concurrency=n) as daemon:
            assert daemon.slots is not None and daemon.slots.concurrency == settings.concurrency
            done = "SELECT count(*) FROM s_tasks WHERE status = 80 AND id = ANY(%s)"
            wait_for(lambda: scalar(settings.dsn or "", done, (ids,)) == n, timeout=90)
    intervals = INTERVALS.pop(group)
    assert len(intervals) == n
    # Every action was under way at one moment: the last to start began before the first ended
    # (each awaits until all have started, so fewer slots would have kept them from ending).
    assert max(start for start, _ in intervals) < min(end for _, end in intervals)
    assert THREADS.pop(group) == {"pgstask-loop"}


def test_progress_logs_and_result_of_an_async_action_reach_the_database(
    settings: Settings,
) -> None:
    dsn = settings.dsn or ""
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("asyncs", "report")
        live = "SELECT processed, total, message FROM s_task_progress WHERE task_id = %s"
        wait_for(lambda: scalar(dsn, live, (task.id,)) == 1)
        wait_for(lambda: [r.message for r in client.logs(task)] == ["async hello"])
        assert client.get(task).status == Status.RUNNING
        (settings.storage / f"release-{task.id}").touch()
        wait_for(lambda: client.get(task).status == Status.COMPLETED)
        final = client.get(task)
        [record] = client.logs(task)
    assert final.result == {"answer": 42}
    assert final.message == "async done"
    assert final.progress == 100
    assert (record.level, record.context) == ("info", {"n": 1})


def test_an_async_action_that_raises_is_retried_then_fails(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("asyncs", "fail", max_attempts=2)
        given_up = client.create("asyncs", "give_up", max_attempts=3)
        wait_for(lambda: client.get(task).status == Status.FAILED)
        wait_for(lambda: client.get(given_up).status == Status.FAILED)
        final, marked = client.get(task), client.get(given_up)
    assert final.attempts == 2
    assert final.message == "Failed: RuntimeError: async boom"
    assert "async boom" in (final.last_error or "")
    assert _events_of(settings, task) == [(1, "fail"), (2, "fail")]
    assert (marked.attempts, marked.message) == (1, "gave up, asynchronously")


def test_cancel_reaches_an_async_action_as_cancelled_error(settings: Settings) -> None:
    with (
        Client(settings=settings) as client,
        running_daemon(settings, modules=MODULES) as daemon,
    ):
        task = client.create("asyncs", "wait")
        wait_for(lambda: _events_of(settings, task) == [(1, "started")])
        client.cancel(task)
        wait_for(lambda: _events_of(settings, task) == [(1, "started"), (1, "cancelled")])
        wait_for(lambda: _idle(daemon))
        final = client.get(task)
        assert final.status == Status.CANCELLED
        assert [r.message for r in client.logs(task)] == ["Cancelled by user"]


def test_an_async_action_past_its_timeout_is_cancelled_and_retried(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("asyncs-slow", "wait", max_attempts=2)
        wait_for(lambda: client.get(task).status == Status.FAILED, timeout=30)
        final = client.get(task)
    assert final.attempts == 2
    assert final.message == "Failed: timed out after 0.5s"
    seen = [(1, "started"), (1, "cancelled"), (2, "started"), (2, "cancelled")]
    assert _events_of(settings, task) == seen


def test_an_async_action_that_swallows_its_timeout_is_failed_by_the_daemon(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("asyncs-slow", "stubborn", max_attempts=1)
        # 5 s after its deadline (KILL_GRACE), as for a thread that does not stop
        wait_for(lambda: client.get(task).status == Status.FAILED, timeout=30)
        final = client.get(task)
    assert final.message == "Failed: timed out after 0.5s and did not stop"
    assert (1, "swallowed") in _events_of(settings, task)


def test_a_loop_flag_set_from_another_thread_cancels_its_task_once() -> None:
    seen: list[str] = []

    async def action() -> None:
        flag = LoopFlag()
        current = asyncio.current_task()
        assert current is not None
        flag.attach(current)
        setter = threading.Thread(target=flag.set)
        setter.start()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
        setter.join()
        flag.set()  # a second request cancels nothing more
        await DONE
        await asyncio.sleep(0.01)
        seen.append("went on")

    asyncio.run(action())
    assert seen == ["cancelled", "went on"]


def test_shutdown_cancels_async_actions_past_the_grace_and_gives_them_back(
    settings: Settings,
) -> None:
    quick = settings.replace(shutdown_grace=0.5)
    with Client(settings=quick) as client:
        long = client.create("asyncs", "wait", {"seconds": 60})
        short = client.create("asyncs", "wait", {"seconds": 0.1})
        with running_daemon(quick, modules=MODULES):
            wait_for(lambda: _events_of(quick, long) == [(1, "started")])
            wait_for(lambda: (1, "started") in _events_of(quick, short))
        back, done = client.get(long), client.get(short)
        assert client.daemons() == []
    assert (back.status, back.attempts) == (Status.PENDING, 0)
    assert _events_of(quick, long) == [(1, "started"), (1, "cancelled")]
    assert done.status == Status.COMPLETED
    assert _events_of(quick, short) == [(1, "started"), (1, "slept")]


def test_an_async_action_that_swallows_its_cancellation_is_abandoned_at_shutdown(
    settings: Settings,
) -> None:
    quick = settings.replace(shutdown_grace=0.2)
    with Client(settings=quick) as client:
        task = client.create("asyncs", "stubborn")
        with running_daemon(quick, modules=MODULES):
            wait_for(lambda: _events_of(quick, task) == [(1, "started")])
        back = client.get(task)
    # Given back all the same (the attempt not counted); the action saw the cancellation.
    assert (back.status, back.attempts) == (Status.PENDING, 0)
    assert (1, "swallowed") in _events_of(quick, task)


def test_a_worker_runs_its_sync_actions_on_threads_and_async_ones_on_the_loop(
    settings: Settings,
) -> None:
    modules = ("tests.sample_workers", *MODULES)
    with Client(settings=settings) as client, running_daemon(settings, modules=modules):
        plain = [client.create("mixed", "plain") for _ in range(3)]
        fancy = [client.create("mixed", "fancy") for _ in range(3)]
        sample = client.create("sample", "sync_stock")
        every = [*plain, *fancy, sample]
        wait_for(lambda: all(client.get(t).status == Status.COMPLETED for t in every))
        results = {t.id: client.get(t).result for t in every}
    assert [results[t.id] for t in plain] == ["plain"] * 3
    assert [results[t.id] for t in fancy] == ["fancy"] * 3
    assert results[sample.id] == "synced"
    for task in plain:
        [(_, event)] = _events_of(settings, task)
        assert event.startswith("plain pgstask-action-")
    for task in fancy:
        assert _events_of(settings, task) == [(1, "fancy pgstask-loop")]


def test_a_killed_daemon_s_async_tasks_are_rescued(settings: Settings) -> None:
    with Client(settings=settings) as client:
        tasks = [client.create("asyncs", "wait", {"seconds": 2}) for _ in range(3)]
        victim = start_daemon_process(settings, "--workers", "tests.async_workers")
        try:
            wait_for(lambda: all(_events_of(settings, t) for t in tasks), timeout=30)
            stop_process(victim, signal.SIGKILL)
        finally:
            if victim.poll() is None:
                victim.kill()
        with running_daemon(settings, modules=MODULES):
            wait_for(
                lambda: all(client.get(t).status == Status.COMPLETED for t in tasks), timeout=40
            )
        for task in tasks:
            assert client.get(task).attempts == 2
            assert any("Rescued" in r.message for r in client.logs(task))
            assert _events_of(settings, task) == [(1, "started"), (2, "started"), (2, "slept")]


def test_run_once_and_execute_run_async_actions(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    here = settings.replace(worker_modules=MODULES)
    with Client(settings=here) as client:
        fancy = client.create("mixed", "fancy")
        assert client.execute(fancy) is True
        assert client.get(fancy).result == "fancy"
        batch = [client.create("mixed", "fancy"), client.create("mixed", "plain")]
        batch.append(client.create("asyncs", "wait", {"seconds": 0.05}))
        assert client.process_pending_tasks(10) == 3
        assert [client.get(t).status for t in batch] == [Status.COMPLETED] * 3


def test_a_stored_isolation_process_fails_the_tasks_of_async_actions(settings: Settings) -> None:
    with (
        Client(settings=settings) as client,
        running_daemon(settings, modules=MODULES) as daemon,
    ):
        client.update_worker_settings("asyncs", {"isolation": "process"})
        wait_for(lambda: daemon.workers["asyncs"].settings.get("isolation") == "process")
        task = client.create("asyncs", "wait", {"seconds": 0.01}, max_attempts=3)
        wait_for(lambda: client.get(task).status == Status.FAILED)
        final = client.get(task)
    assert final.attempts == 1
    assert 'has async actions and the setting isolation="process"' in (final.message or "")
    assert _events_of(settings, task) == []


def test_a_worker_class_with_async_actions_and_isolation_process_is_refused() -> None:
    class Isolated(BaseWorker):
        identifier = "async-isolated-refused"
        settings = {"isolation": "process"}

        async def task_go(self, task: Task, options: dict[str, Any]) -> None:
            pass

    with pytest.raises(ConfigurationError) as refused:
        check_worker_settings([Isolated], RetryPolicy(1.0, 2.0))
    assert "'async-isolated-refused' has async actions" in str(refused.value)
    assert "Isolated.settings" in str(refused.value)


def test_async_actions_are_told_apart() -> None:
    assert async_workers.MixedWorker.async_actions() == ["fancy"]
    assert async_workers.MixedWorker.is_async_action("Fancy")
    assert not async_workers.MixedWorker.is_async_action("plain")
    assert not async_workers.MixedWorker.is_async_action("missing")
