"""Process isolation (worker setting ``isolation: "process"``) and ``peak_memory`` per task."""

from __future__ import annotations

import pytest

from pgstask import Client, Status
from pgstask.settings import Settings
from tests.daemons import running_daemon, wait_for

MB = 2**20
GB = 2**30


@pytest.fixture
def workers_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose ``Client.execute``/``process_pending_tasks`` find the sample workers (the
    actions they run in this process record their executions in the test's storage)."""
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    return settings.replace(worker_modules=("tests.sample_workers",))


def test_peak_memory_is_recorded_for_thread_actions(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        done = client.create("sample", "sleep", {"seconds": 0.5})
        failing = client.create("sample", "fail", max_attempts=1)
        tasks = [done, failing]
        wait_for(lambda: all(client.get(t).is_finished for t in tasks))
        finals = [client.get(t) for t in tasks]
    assert [t.status for t in finals] == [80, 100]
    for final in finals:
        assert final.peak_memory is not None and MB < final.peak_memory < 10 * GB


def test_peak_memory_is_recorded_by_execute_and_run_once(workers_settings: Settings) -> None:
    with Client(settings=workers_settings) as client:
        executed = client.create("sample", "noop")
        assert client.execute(executed)
        once = client.create("sample", "noop")
        assert client.process_pending_tasks(batch_size=1) == 1
        for task in (executed, once):
            final = client.get(task)
            assert final.status == Status.COMPLETED
            assert final.peak_memory is not None and MB < final.peak_memory < 10 * GB
