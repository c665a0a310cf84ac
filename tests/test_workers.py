"""Workers: action mapping, discovery, settings, activation, unknown workers (item 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pgstask import BaseWorker, Client, Status, Task, TaskCancelled, TaskStopped, UnknownActionError
from pgstask._copy import COPY_FROM
from pgstask.errors import ConfigurationError, PgstaskError
from pgstask.progress import ProgressState, ProgressTracker
from pgstask.settings import Settings
from pgstask.workers.context import Flag, StopReason, TaskRun
from pgstask.workers.registry import class_path, discover, load_class
from tests.daemons import running_daemon, wait_for
from tests.sample_workers import SampleWorker


@pytest.mark.parametrize(
    "action",
    [
        "sync_stock",
        "sync-stock",
        "Sync Stock",
        "SYNC_STOCK",
        "syncStock",
        "SyncStock",
        "sync__stock",
    ],
)
def test_action_names_map_like_stask(action: str) -> None:
    assert SampleWorker.resolve_action(action) == "task_sync_stock"


@pytest.mark.parametrize("action", ["sync.stock", "sync:stock", "", "   ", "missing"])
def test_unknown_actions_are_rejected_with_the_known_ones_listed(action: str) -> None:
    with pytest.raises(UnknownActionError, match=r"its actions: .*sync_stock"):
        SampleWorker.resolve_action(action)


def test_identifier_is_validated() -> None:
    class Bad(BaseWorker):
        identifier = "has spaces"

    with pytest.raises(ConfigurationError, match="identifier"):
        Bad.check_identifier()
    assert SampleWorker.check_identifier() == "sample"


def test_discovery_from_modules_and_entry_points() -> None:
    found = discover(["tests.sample_workers"])
    assert {"sample", "slow", "demo", "report"} <= set(found)
    assert found["sample"] is SampleWorker
    assert load_class(class_path(SampleWorker)) is SampleWorker
    assert load_class("no.such.module:Worker") is None
    with pytest.raises(ConfigurationError, match="cannot import worker module 'no_such_module'"):
        discover(["no_such_module"])


def test_two_classes_with_one_identifier_are_an_error() -> None:
    class Twin(BaseWorker):
        identifier = "sample"

    import types

    module = types.ModuleType("twin_module")
    Twin.__module__ = "twin_module"
    module.Twin = Twin  # type: ignore[attr-defined]
    import sys

    sys.modules["twin_module"] = module
    try:
        with pytest.raises(ConfigurationError, match="two worker classes"):
            discover(["tests.sample_workers", "twin_module"])
    finally:
        del sys.modules["twin_module"]


def test_settings_merge_class_defaults_with_stored_ones(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        client.update_worker_settings("sample", {"greeting": "hi", "extra": 1})
        task = client.create("sample", "settings")
        with running_daemon(settings):
            wait_for(lambda: client.get(task).status == Status.COMPLETED)
        result = client.get(task).result
    assert result["greeting"] == "hi" and result["extra"] == 1 and "record_dir" in result


def test_settings_changes_reach_a_running_daemon(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings) as daemon:
        client.update_worker_settings("sample", {"greeting": "live"})
        wait_for(lambda: daemon.workers["sample"].settings.get("greeting") == "live")


def test_unknown_action_fails_the_task_with_a_clear_message(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        with client.connection() as conn:  # SQL: the client refuses it (see the next test)
            row = conn.execute(
                "INSERT INTO s_tasks (identifier, action) VALUES ('sample', 'does-not-exist') "
                "RETURNING id"
            ).fetchone()
        assert row is not None
        task = int(row["id"])
        wait_for(lambda: client.get(task).status == Status.FAILED)
        final = client.get(task)
    assert "no action 'does-not-exist'" in (final.message or "")
    assert final.attempts == 1  # not retried: it can never succeed


def test_the_client_refuses_an_action_that_a_known_worker_does_not_have(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client:
        with pytest.raises(UnknownActionError) as refused:
            client.create("sample", "does-not-exist")
        assert str(refused.value).startswith("worker 'sample' has no action 'does-not-exist'")
        assert "sync_stock" in str(refused.value)  # the actions it has are listed
        for size in (2, COPY_FROM):  # the INSERT and the COPY forms
            items = [{"identifier": "sample", "action": "noop"}] * (size - 1)
            with pytest.raises(UnknownActionError, match="no action 'nope'"):
                client.create_many([*items, {"identifier": "sample", "action": "nope"}])
        assert client.stats()["total"] == 0  # nothing was created
        # Other spellings of a known action pass; unknown workers may run on another host.
        assert client.create("sample", "Sync-Stock").action == "Sync-Stock"
        assert client.create("not-installed-here", "anything").action == "anything"
        assert len(client.create_many([{"identifier": "sample", "action": "noop"}] * 2)) == 2


def test_an_action_of_any_class_with_the_identifier_is_accepted(settings: Settings) -> None:
    class Extended(SampleWorker):  # a second class with the identifier "sample"
        def task_extra(self, task: Task, options: dict[str, Any]) -> None:
            pass

    with Client(settings=settings) as client:
        assert client.create("sample", "extra").action == "extra"
        assert client.create("sample", "noop").action == "noop"
    assert Extended.identifier == "sample"


def test_a_worker_class_with_an_action_that_cannot_run_is_refused() -> None:
    """Its body would never run and its tasks would be completed at once. An ``async def``
    action is accepted: it runs on the daemon's event loop (tests/test_async_actions.py)."""

    class Eager(BaseWorker):
        identifier = "eager"

        async def task_go(self, task: Task, options: dict[str, Any]) -> None:
            pass

    assert Eager.async_actions() == ["go"]

    with pytest.raises(ConfigurationError) as async_generator:

        class Streaming(BaseWorker):
            identifier = "streaming"

            async def task_go(self, task: Task, options: dict[str, Any]) -> AsyncIterator[int]:
                yield 1

    with pytest.raises(ConfigurationError) as generator:

        class Lazy(BaseWorker):
            identifier = "lazy"

            def task_go(self, task: Task, options: dict[str, Any]) -> Iterator[int]:
                yield 1

    for refused, name, why in (
        (async_generator, "streaming", "is an async generator function"),
        (generator, "lazy", "is a generator function"),
    ):
        message = str(refused.value)
        assert message.startswith(f"worker {name!r} (tests.test_workers."), message
        assert f"action method task_go {why}" in message


def test_unknown_worker_tasks_stay_pending_and_are_visible(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("nobody-runs-this", "x")
        known = client.create("sample", "noop")
        wait_for(lambda: client.get(known).status == Status.COMPLETED)
        assert client.get(task).status == Status.PENDING
        waiting = client.stats()["waiting_for_worker"]
    assert waiting == {"nobody-runs-this": {"count": 1, "registered": False}}


def test_deactivating_stops_new_claims_at_once_and_activating_resumes(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings.replace(poll_interval=60)):
        client.deactivate_worker("sample")
        task = client.create("sample", "noop")
        other = client.create("slow", "spin", max_attempts=1)  # wakes the daemon; slow is active
        wait_for(lambda: client.get(other).status != Status.PENDING)
        assert client.get(task).status == Status.PENDING
        assert client.stats()["waiting_for_worker"]["sample"] == {"count": 1, "registered": True}
        client.activate_worker("sample")
        client.create("slow", "spin", max_attempts=1)  # a new insert wakes the daemon again
        wait_for(lambda: client.get(task).status == Status.COMPLETED)


def test_an_action_enqueues_through_the_daemons_database(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("sample", "chain")
        wait_for(lambda: client.get(task).status == Status.COMPLETED)
        follow_up = client.get(client.get(task).result["follow_up"])
        wait_for(lambda: client.get(follow_up).status == Status.COMPLETED)
    assert (follow_up.identifier, follow_up.action, follow_up.meta) == (
        "sample",
        "noop",
        {"after": task.id},
    )


def test_a_base_exception_from_an_action_fails_the_task_instead_of_losing_it(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client, running_daemon(settings) as daemon:
        task = client.create("sample", "interrupt", max_attempts=2)
        wait_for(lambda: client.get(task).status == Status.FAILED)
        final = client.get(task)
        assert final.attempts == 2
        assert "KeyboardInterrupt: not an Exception" in (final.message or "")
        after = client.create("sample", "noop")  # the daemon goes on
        wait_for(lambda: client.get(after).status == Status.COMPLETED)
        assert daemon.slots is not None and daemon.slots.busy == 0


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_worker_marks_its_preparing_phase(settings: Settings, isolation: str) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        client.update_worker_settings("sample", {"isolation": isolation})
        with running_daemon(settings):
            task = client.create("sample", "phases")
            wait_for(lambda: client.get(task).status == Status.PREPARING)
            # The status is written first, then the progress row with the message.
            wait_for(lambda: client.progress(task)["message"] == "loading the catalogue")
            assert client.stats()["preparing"] == 1
            # The progress row can reach the database before anything made the storage
            # directory (a child process writes its snapshot file after): make it here.
            settings.storage.mkdir(parents=True, exist_ok=True)
            (settings.storage / f"go-{task.id}").touch()
            wait_for(lambda: client.get(task).status == Status.RUNNING)
            wait_for(lambda: client.progress(task)["message"] == "importing")
            (settings.storage / f"done-{task.id}").touch()
            wait_for(lambda: client.get(task).status == Status.COMPLETED)
            cancelled = client.create("sample", "phases")
            wait_for(lambda: client.get(cancelled).status == Status.PREPARING)
            client.cancel(cancelled)
            wait_for(lambda: client.get(cancelled).status == Status.CANCELLED)
            assert client.get(cancelled).attempts == 1


def test_first_registration_is_active_unless_configured(settings: Settings) -> None:
    with Client(settings=settings.replace(auto_activate=False)) as client:
        assert client.discover_workers(["tests.sample_workers"]) == [
            "demo",
            "isolated",
            "isolated_timeout",
            "report",
            "sample",
            "slow",
        ]
        assert not client.worker("sample")["active"]
        assert client.discover_workers(["tests.sample_workers"]) == []
    with Client(settings=settings) as client:
        client.clean_orphaned_workers()
        assert client.worker("sample")["active"] is False  # an admin's choice is kept


def test_rescan_and_clean_orphaned(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        with client.connection() as conn:
            conn.execute("UPDATE s_workers SET title = 'old' WHERE identifier = 'sample'")
            conn.execute(
                "INSERT INTO s_workers (identifier, class) VALUES ('gone', 'vanished.module:Gone')"
            )
        assert client.rescan_workers(["tests.sample_workers"]) == ["sample"]
        assert client.worker("sample")["title"] == "Sample"
        assert client.clean_orphaned_workers() == ["gone"]
        with pytest.raises(PgstaskError, match="no worker has the identifier 'gone'"):
            client.worker("gone")
        with pytest.raises(PgstaskError):
            client.activate_worker("gone")


def test_a_worker_made_outside_a_daemon_enqueues_through_a_client_of_its_own(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``BaseWorker.default_client``: the workers do not import the client, which sets it."""
    assert settings.dsn
    monkeypatch.setenv("PGSTASK_DSN", settings.dsn)
    worker = SampleWorker()
    try:
        assert type(worker.client) is Client
        assert worker.client is worker.client  # made once
        created = worker.create_task("noop", {"from": "outside"})
    finally:
        worker.client.close()
    with Client(settings=settings) as client:
        assert client.get(created.id).meta == {"from": "outside"}
        assert created.identifier == "sample"


def test_helpers_outside_a_run_explain_themselves() -> None:
    worker = SampleWorker()
    from tests.test_progress import fake_task

    with pytest.raises(PgstaskError, match="not running in this worker"):
        worker.push_progress(fake_task(), progress=5)


def _running(worker: BaseWorker, tmp_path: Path, stop: Flag | None = None) -> TaskRun:
    """A ``TaskRun`` of a fake task, registered in ``worker`` as the runner does."""
    from tests.test_progress import fake_task

    task = fake_task()
    tracker = ProgressTracker(ProgressState(task.id, "sample", "noop"), lambda s: None, tmp_path)
    run = TaskRun(task=task, tracker=tracker, emit_log=lambda record: None, _stop=stop or Flag())
    worker._runs[task.id] = run
    return run


@pytest.mark.parametrize("reason", list(StopReason))
def test_every_stop_reason_raises_task_stopped_with_the_reason(
    tmp_path: Path, reason: StopReason
) -> None:
    worker = SampleWorker()
    run = _running(worker, tmp_path)
    worker.push_progress(run.task, progress=5)  # not asked to stop: nothing raised
    run.cancel(reason)
    for helper in (
        lambda: worker.push_progress(run.task, progress=6),
        lambda: worker.check_cancelled(run.task),
        lambda: worker.mark_running(run.task),
    ):
        with pytest.raises(TaskStopped, match=f"task 1 stopped: {reason.value}") as caught:
            helper()
        assert caught.value.reason == reason.value


def test_a_stop_without_a_known_reason_raises_task_stopped_without_one(tmp_path: Path) -> None:
    """A child process's ``TaskRun`` sees only the shared stop flag, not the reason."""
    flag = Flag()
    worker = SampleWorker()
    run = _running(worker, tmp_path, flag)
    flag.set()
    with pytest.raises(TaskStopped, match="task 1 stopped: stopped") as caught:
        worker.check_cancelled(run.task)
    assert caught.value.reason is None


def test_task_cancelled_is_another_name_that_catches_every_stop(tmp_path: Path) -> None:
    """sTask's name for worker code that says ``except TaskCancelled``."""
    assert TaskCancelled is TaskStopped
    worker = SampleWorker()
    run = _running(worker, tmp_path)
    run.cancel(StopReason.TIMEOUT)  # not a cancellation, and still caught
    try:
        worker.check_cancelled(run.task)
    except TaskCancelled as exc:
        assert exc.reason == "timeout"
    else:
        pytest.fail("check_cancelled did not raise after a stop request")
