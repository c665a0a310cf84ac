"""Worker hooks (docs/workers.md, "Hooks"): ``on_completed`` and ``on_failed`` run in the daemon
after the outcome is stored, in a thread of their own; an exception in one changes nothing."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pgstask import Client, Status, queries
from pgstask.db import Dedicated, connect, make_pool
from pgstask.runtime.completer import Completer
from pgstask.runtime.hooks import HookCaller
from pgstask.runtime.runner import Outcome, OutcomeKind
from pgstask.settings import Settings
from pgstask.workers.registry import register_workers
from tests import hook_workers
from tests.daemons import running_daemon, wait_for
from tests.hook_workers import FailedOnlyWorker, HookedWorker, hook_calls

MODULES = ("tests.hook_workers",)


@pytest.fixture(autouse=True)
def _open_gate() -> Iterator[None]:
    """No hook stays held by the gate after a test (the daemon could not stop)."""
    hook_workers.GATE.clear()
    hook_workers.ENTERED.clear()
    yield
    hook_workers.GATE.set()


def _calls(settings: Settings, task_id: int, hook: str | None = None) -> list[dict[str, Any]]:
    return [
        c
        for c in hook_calls(settings.storage)
        if c["id"] == task_id and (hook is None or c["hook"] == hook)
    ]


def test_on_completed_sees_the_outcome_stored(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("hooked", "ok", {"value": 7})
        wait_for(lambda: bool(_calls(settings, task.id)))
    [call] = _calls(settings, task.id)
    assert call["hook"] == "on_completed"
    assert (call["status"], call["stored_status"]) == (Status.COMPLETED, Status.COMPLETED)
    assert call["argument"] == {"value": 7, "pid": os.getpid()}
    assert call["message"] == "Task completed successfully"
    assert (call["pid"], call["thread"]) == (os.getpid(), "pgstask-hooks")


def test_a_raising_hook_is_logged_and_the_task_stays_completed(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pgstask.runtime.hooks")
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("hooked", "ok", {"hook_raises": True})
        wait_for(lambda: any(r.level == "warning" for r in client.logs(task)))
        warnings = [r for r in client.logs(task) if r.level == "warning"]
        assert client.get(task).status == Status.COMPLETED
    [warning] = warnings
    assert warning.message == (
        "on_completed hook raised ValueError: the hook broke (the task stays completed)"
    )
    assert "the hook broke" in warning.context["traceback"]
    [logged] = [r for r in caplog.records if r.name == "pgstask.runtime.hooks"]
    assert logged.getMessage() == f"task {task.id}: on_completed of worker 'hooked' raised"
    assert logged.exc_info is not None


def test_on_failed_is_called_once_for_a_final_failure_not_for_a_retried_attempt(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("hooked", "fail", max_attempts=2)
        wait_for(lambda: bool(_calls(settings, task.id)))
        assert client.get(task).attempts == 2
    [call] = _calls(settings, task.id)  # the first attempt was retried: no call for it
    assert call["hook"] == "on_failed"
    assert (call["status"], call["stored_status"], call["attempts"]) == (Status.FAILED,) * 2 + (2,)
    assert call["argument"] == call["message"] == "Failed: RuntimeError: boom"


def test_on_failed_is_called_for_mark_failed(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        task = client.create("hooked", "refuse", max_attempts=5)
        wait_for(lambda: bool(_calls(settings, task.id)))
    [call] = _calls(settings, task.id)
    assert (call["hook"], call["argument"], call["attempts"]) == ("on_failed", "refused", 1)


def test_the_hooks_of_a_process_isolated_action_run_in_the_daemon(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings, modules=MODULES):
        done = client.create("hooked_process", "ok", {"value": 1})
        failed = client.create("hooked_process", "fail", max_attempts=1)
        wait_for(lambda: bool(_calls(settings, done.id) and _calls(settings, failed.id)))
    [completed] = _calls(settings, done.id)
    assert completed["argument"]["pid"] != os.getpid()  # the action ran in a child process
    assert (completed["pid"], completed["thread"]) == (os.getpid(), "pgstask-hooks")
    assert completed["stored_status"] == Status.COMPLETED
    [failure] = _calls(settings, failed.id)
    assert (failure["hook"], failure["pid"]) == ("on_failed", os.getpid())


def test_execute_returns_once_the_hook_ran(settings: Settings) -> None:
    """``Client.execute`` runs a one-slot daemon in the calling process: its stop waits for the
    hooks of what it ran (up to the shutdown grace)."""
    here = settings.replace(worker_modules=MODULES)
    with Client(settings=here) as client:
        task = client.create("hooked", "ok", {"value": 3})
        assert client.execute(task)
        assert [c["hook"] for c in _calls(settings, task.id)] == ["on_completed"]


def test_a_slow_hook_holds_up_no_completion(settings: Settings) -> None:
    """One slot: the second task can only run once the first one's slot is free, and it is
    stored while the first one's hook is still held."""
    with (
        Client(settings=settings) as client,
        running_daemon(settings, modules=MODULES, concurrency=1),
    ):
        held = client.create("hooked", "ok", {"hook_gate": True})
        assert hook_workers.ENTERED.wait(15)
        after = client.create("hooked", "ok")
        wait_for(lambda: client.get(after).status == Status.COMPLETED)
        # the next task ran and was stored; the first hook is still held, the next one waits
        assert [c["hook"] for c in hook_calls(settings.storage)] == ["on_completed"]
        hook_workers.GATE.set()
        wait_for(lambda: bool(_calls(settings, after.id)))
    events = [(c["id"], c["hook"]) for c in hook_calls(settings.storage)]
    assert events == [
        (held.id, "on_completed"),
        (held.id, "on_completed returned"),
        (after.id, "on_completed"),
    ]


def test_hooks_left_at_shutdown_are_dropped_after_the_grace(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """One hook held past the shutdown grace, one queued behind it: the queued one is dropped,
    with a warning in the daemon's log and on its task; the held one is left to end alone."""
    caplog.set_level(logging.WARNING, logger="pgstask.runtime.hooks")
    with Client(settings=settings) as client:
        with running_daemon(settings, modules=MODULES, concurrency=1) as daemon:
            held = client.create("hooked", "ok", {"hook_gate": True})
            assert hook_workers.ENTERED.wait(15)
            queued = client.create("hooked", "ok")
            hooks = daemon.hooks
            assert hooks is not None
            wait_for(lambda: hooks.pending == 1)
        hook_workers.GATE.set()  # the daemon has stopped
        records = [(r.level, r.message) for r in client.logs(queued)]
        assert client.get(queued).status == Status.COMPLETED
    assert ("warning", "on_completed hook not called: the daemon stopped") in records
    assert _calls(settings, queued.id) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "pgstask.runtime.hooks"]
    assert f"hooks: the daemon stopped; dropped the hooks of task(s) {queued.id}" in messages
    assert "hooks: a hook is still running; it is left to end alone" in messages
    assert [c["hook"] for c in _calls(settings, held.id)][:1] == ["on_completed"]


def test_cancelled_tasks_call_no_hook(settings: Settings) -> None:
    """One slot: the cancelled run ends (its outcome discarded) before the next task runs, so
    the next task's hook comes after anything the cancelled one could have caused."""
    with (
        Client(settings=settings) as client,
        running_daemon(settings, modules=MODULES, concurrency=1),
    ):
        running = client.create("hooked", "wait")
        wait_for(lambda: client.get(running).status == Status.RUNNING)
        client.cancel(running)
        after = client.create("hooked", "ok")
        wait_for(lambda: bool(_calls(settings, after.id)))
        assert client.get(running).status == Status.CANCELLED
    assert _calls(settings, running.id) == []


def test_hooks_are_given_what_the_completer_stored(settings: Settings) -> None:
    """Without threads: the completer tells what it stored (the compare-and-set's runs, a
    replacement failure in place of an outcome the server refused), the caller picks the
    hooks: a completion, a final failure; not a retried failure, nor a run no longer held."""
    me = uuid.uuid4()
    with connect(settings.dsn or "", autocommit=True) as conn:
        register_workers(conn, [HookedWorker], active=True)
        for _ in range(5):
            conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('hooked', 'ok')")
        done, final, retried, refused, lost = queries.task_claim(
            conn, daemon_id=me, identifiers=["hooked"], limit=5
        )
        conn.execute("UPDATE s_tasks SET status = 90 WHERE id = %s", (lost.id,))
    told: list[list[Outcome]] = []
    calls: list[tuple[str, int, int, Any]] = []

    class Recording(HookedWorker):
        identifier = ""  # not a worker of its own: HookedWorker's hooks, recorded here

        def on_completed(self, task: Any, result: Any) -> None:
            calls.append(("on_completed", task.id, task.status, result))

        def on_failed(self, task: Any, error: str) -> None:
            calls.append(("on_failed", task.id, task.status, error))

    pool = make_pool(settings.dsn or "", max_size=2, name="pgstask-test")
    dedicated = Dedicated(settings.dsn or "", name="pgstask-test")
    caller = HookCaller(workers={"hooked": Recording()}, pool=pool, storage=settings.storage)

    def on_written(outcomes: list[Outcome]) -> None:
        told.append(outcomes)
        caller.add(outcomes)

    completer = Completer(
        db=dedicated, daemon_id=me, storage=settings.storage, on_written=on_written
    )
    completer.add(Outcome(done, OutcomeKind.COMPLETED, None, {"n": 1}))
    completer.add(Outcome(final, OutcomeKind.FAILED, "Failed: no", error="no"))
    completer.add(Outcome(retried, OutcomeKind.FAILED, "Failed: again", retry_delay=60.0))
    completer.add(Outcome(refused, OutcomeKind.COMPLETED, None, {"text": "a\x00b"}))
    completer.add(Outcome(lost, OutcomeKind.COMPLETED, None, {"n": 2}))
    try:
        assert completer.step() == 5
        assert caller.step() == 4
    finally:
        dedicated.close()
        pool.close()
    [outcomes] = told
    assert [(o.task.id, o.kind) for o in outcomes] == [
        (done.id, OutcomeKind.COMPLETED),
        (final.id, OutcomeKind.FAILED),
        (retried.id, OutcomeKind.FAILED),
        (refused.id, OutcomeKind.FAILED),  # the replacement, a final failure
    ]
    assert [c[:3] for c in calls] == [
        ("on_completed", done.id, Status.COMPLETED),
        ("on_failed", final.id, Status.FAILED),
        ("on_failed", refused.id, Status.FAILED),
    ]
    assert calls[0][3] == {"n": 1}
    assert calls[1][3] == "Failed: no"
    assert calls[2][3].startswith("Failed: pgstask could not store the outcome: ")


def test_only_workers_with_a_hook_cost_anything(settings: Settings) -> None:
    """No hook thread in a daemon whose workers define no hook; only the outcomes a defined
    hook wants are queued."""
    assert HookedWorker.defined_hooks() == {"on_completed", "on_failed"}
    assert FailedOnlyWorker.defined_hooks() == {"on_failed"}
    with running_daemon(settings) as daemon:  # the sample workers define no hook
        assert daemon.hooks is None
    pool = make_pool(settings.dsn or "", max_size=1, name="pgstask-test")
    try:
        assert HookCaller.for_workers({}, pool=pool, storage=settings.storage) is None
        caller = HookCaller(
            workers={"hooked_failed_only": FailedOnlyWorker()}, pool=pool, storage=settings.storage
        )
        with Client(settings=settings) as client:
            task = client.create("hooked_failed_only", "ok")
        caller.add([Outcome(task, OutcomeKind.COMPLETED), Outcome(task, OutcomeKind.SNOOZED)])
        assert caller.pending == 0
        caller.add([Outcome(task, OutcomeKind.FAILED, "Failed: no")])
        assert caller.pending == 1
    finally:
        pool.close()


def test_a_full_queue_drops_a_hook_with_a_warning_on_its_task(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pgstask.runtime.hooks")
    called: list[int] = []

    class Counting(FailedOnlyWorker):
        identifier = ""

        def on_completed(self, task: Any, result: Any) -> None:
            called.append(task.id)

    pool = make_pool(settings.dsn or "", max_size=1, name="pgstask-test")
    try:
        caller = HookCaller(
            workers={"hooked_failed_only": Counting()},
            pool=pool,
            storage=settings.storage,
            capacity=1,
        )
        with Client(settings=settings) as client:
            first, second = (client.create("hooked_failed_only", "ok") for _ in range(2))
            caller.add([Outcome(t, OutcomeKind.COMPLETED) for t in (first, second)])
            assert caller.pending == 1
            assert caller.step() == 1
            assert called == [first.id]  # the daemon's copy: the task was never run
            assert [(r.level, r.message) for r in client.logs(second)] == [
                ("warning", "on_completed hook not called: the hook queue is full (1)")
            ]
    finally:
        pool.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"hooks: the hook queue is full (1); dropped the hooks of task(s) {second.id}"
    ]
