"""The supervisor on a clock the test drives: the fence and the timeouts happen when that clock
says so, whatever the real time (a real database, real action threads, the daemon's parts built
by ``Daemon.setup`` and stepped by hand)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

from pgstask.client import Client
from pgstask.runtime.daemon import Daemon
from pgstask.runtime.heartbeat import Heartbeat
from pgstask.runtime.isolation import KILL_GRACE
from pgstask.runtime.producer import DUE_REREAD, Producer
from pgstask.runtime.runner import FENCED_MESSAGE
from pgstask.runtime.runs import RunTable
from pgstask.runtime.supervisor import Supervisor
from pgstask.settings import Settings
from pgstask.task import Status
from pgstask.workers.context import StopReason
from tests.daemons import wait_for
from tests.sample_workers import SampleWorker, SlowWorker


class HandClock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def daemon(
    settings: Settings, clock: HandClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    """A daemon set up but not run: its slots and completer started, the rest stepped by the
    test. The heartbeat beats only when the test asks (a one-hour interval)."""
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))  # where sample actions record
    quiet = dataclasses.replace(settings, heartbeat_interval=3600.0, stale_after=7200.0)
    d = Daemon(
        quiet,
        dsn=settings.dsn,
        workers={"sample": SampleWorker, "slow": SlowWorker},
        make_client=Client,
        clock=clock,
    )
    d.setup()
    assert d.slots and d.completer
    d.slots.start()
    d.completer.start()
    try:
        yield d
    finally:
        d.request_stop()
        d.request_stop()  # no grace period
        d._shutdown()


def _parts(d: Daemon) -> tuple[Producer, Supervisor, Heartbeat, RunTable]:
    assert d.producer and d.supervisor and d.heartbeat and d.runs
    return d.producer, d.supervisor, d.heartbeat, d.runs


def test_the_fence_closes_and_opens_on_the_supervisors_clock(
    daemon: Daemon, clock: HandClock, settings: Settings
) -> None:
    producer, supervisor, heartbeat, runs = _parts(daemon)
    heartbeat.start()
    wait_for(lambda: heartbeat.beats >= 1)
    with Client(settings=settings) as client:
        running = client.create("sample", "sleep", {"seconds": 60})
        assert producer.step() == 1
        waiting = client.create("sample", "noop")

        supervisor.step()  # no time has passed on its clock
        assert not daemon.fenced

        # A heartbeat that had not yet timed its next beat when the clock moved beats again at
        # once, at the new time; it then waits an hour, and the next move closes the fence.
        for _ in range(3):
            clock.now += daemon.fence_after + 0.01
            time.sleep(0.1)
            supervisor.step()
            if daemon.fenced:
                break
        assert daemon.fenced
        assert producer.step() == 0  # the fence is closed: nothing is claimed
        # The running action was asked to stop; its task is given back, the attempt not counted.
        wait_for(lambda: client.get(running).status == Status.PENDING)
        given_back = client.get(running)
        assert (given_back.attempts, given_back.message) == (0, FENCED_MESSAGE)
        assert client.get(waiting).status == Status.PENDING

        beats = heartbeat.beats
        heartbeat.wake()  # a beat gets through: its time is the clock's now
        wait_for(lambda: heartbeat.beats > beats)
        supervisor.step()
        assert not daemon.fenced
        assert producer.step() == 2
        wait_for(lambda: client.get(waiting).status == Status.COMPLETED)
        runs.stop(StopReason.SHUTDOWN)


def test_a_timeout_is_reached_on_the_clock_not_in_real_time(
    daemon: Daemon, clock: HandClock, settings: Settings
) -> None:
    producer, supervisor, _, runs = _parts(daemon)
    with Client(settings=settings) as client:
        task = client.create("slow", "spin", max_attempts=1)  # SlowWorker: timeout 0.5 s
        assert producer.step() == 1
        time.sleep(0.8)  # past the timeout in real time, not on the clock
        supervisor.step()
        [active] = runs.under_way()
        assert active.run.stop_reason is None
        assert client.get(task).status == Status.RUNNING

        clock.now += 0.5
        supervisor.step()
        assert active.run.stop_reason is StopReason.TIMEOUT
        wait_for(lambda: client.get(task).status == Status.FAILED)
        assert client.get(task).message == "Failed: timed out after 0.5s"


def test_a_thread_that_ignores_its_timeout_is_abandoned_kill_grace_later_on_the_clock(
    daemon: Daemon, clock: HandClock, settings: Settings
) -> None:
    producer, supervisor, _, runs = _parts(daemon)
    sample = daemon.workers["sample"]
    sample.settings = {**sample.settings, "timeout": 1}
    with Client(settings=settings) as client:
        task = client.create("sample", "busy", {"seconds": 1.5}, max_attempts=1)
        assert producer.step() == 1
        clock.now += 1.0
        supervisor.step()  # asked to stop; time.sleep does not listen
        [active] = runs.under_way()
        assert active.run.stop_reason is StopReason.TIMEOUT
        clock.now += KILL_GRACE - 0.01
        supervisor.step()
        assert runs.under_way() == [active]  # not yet

        clock.now += 0.01
        supervisor.step()
        assert runs.under_way() == []  # abandoned: its outcome is written now
        wait_for(lambda: client.get(task).status == Status.FAILED)
        assert client.get(task).message == "Failed: timed out after 1.0s and did not stop"


def test_run_once_claims_what_is_due_when_the_fence_opens_as_it_finds_nothing(
    settings: Settings, clock: HandClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supervisor's thread may open the fence between a claim that found it closed and
    run-once's look at the fence: run-once claims again instead of ending with the task due."""
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    quiet = dataclasses.replace(settings, heartbeat_interval=3600.0, stale_after=7200.0)
    d = Daemon(
        quiet, dsn=settings.dsn, workers={"sample": SampleWorker}, make_client=Client, clock=clock
    )

    def fence_closes() -> None:  # in place of the rescuer's and cleaner's passes
        wait_for(lambda: d.heartbeat is not None and d.heartbeat.beats >= 1)

        def silent_too_long() -> bool:
            # A heartbeat that had not yet timed its next beat beats again at once, at the new
            # time; then it waits an hour, and the next move of the clock closes the fence.
            clock.now += d.fence_after + 1.0
            time.sleep(0.5)
            return d.fenced

        wait_for(silent_too_long)

    real_step = Producer.step
    opened: list[bool] = []

    def step_as_the_fence_opens(producer: Producer) -> int:
        got = real_step(producer)
        if got == 0 and d.fenced and not opened:
            assert d.heartbeat is not None
            d.heartbeat.wake()  # a beat gets through; the supervisor opens the fence
            wait_for(lambda: not d.fenced)
            opened.append(True)
        return got

    monkeypatch.setattr(d, "_housekeeping", fence_closes)
    monkeypatch.setattr(Producer, "step", step_as_the_fence_opens)
    with Client(settings=settings) as client:
        task = client.create("sample", "noop")
        summary = d.run_once()
        assert opened
        assert client.get(task).status == Status.COMPLETED
        assert summary.completed == 1


def test_a_run_is_given_back_at_shutdown_when_its_kill_grace_ends_after_the_grace_period(
    daemon: Daemon, clock: HandClock, settings: Settings
) -> None:
    """As before the supervisor had a thread of its own: it watches the runs during the grace
    period; the runs still under way after it are asked to stop and given back, none failed for
    a timeout that the clock reaches while they stop."""
    producer, supervisor, _, runs = _parts(daemon)
    sample = daemon.workers["sample"]
    sample.settings = {**sample.settings, "timeout": 1}
    supervisor.start()
    with Client(settings=settings) as client:
        task = client.create("sample", "busy", {"seconds": 1.5}, max_attempts=1)
        assert producer.step() == 1
        [active] = runs.under_way()

        def kill_grace_ends_while_stopping() -> None:
            wait_for(lambda: active.run.stop_reason is not None)
            clock.now += 1.0 + KILL_GRACE + 0.01  # past its timeout and the kill grace

        moving = threading.Thread(target=kill_grace_ends_while_stopping)
        moving.start()
        daemon.request_stop()
        daemon.request_stop()  # no grace period
        daemon._drain()
        moving.join()
        assert active.run.stop_reason is StopReason.SHUTDOWN
        wait_for(lambda: client.get(task).status != Status.RUNNING)
        given_back = client.get(task)
        assert (given_back.status, given_back.attempts) == (Status.PENDING, 0)
        assert daemon.summary.outcomes == {"given_back": 1}


def test_a_claim_that_takes_some_tasks_reuses_the_earliest_start_at_read_briefly(
    settings: Settings, clock: HandClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read of the earliest future ``start_at`` after a claim short of its room: a claim
    that took tasks reuses a read younger than ``DUE_REREAD`` (on the daemon's clock); an older
    one, or a claim that took nothing, reads it again, so the timed wake-up still comes."""
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    quiet = dataclasses.replace(
        settings, heartbeat_interval=3600.0, stale_after=7200.0, poll_interval=3600.0
    )
    d = Daemon(
        quiet, dsn=settings.dsn, workers={"sample": SampleWorker}, make_client=Client, clock=clock
    )
    d.setup()
    assert d.slots and d.completer and d.producer
    d.slots.start()
    d.completer.start()
    producer = d.producer
    try:
        with Client(settings=settings) as client:

            def later(seconds: int) -> None:
                start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
                client.create("sample", "noop", start_at=start)

            client.create("sample", "noop")
            assert producer.step() == 1  # short of its room: reads (nothing in the future)
            assert producer.next_delay(0) == 3600.0
            later(1000)
            client.create("sample", "noop")
            assert producer.step() == 1  # took a task, the read is fresh: not read again
            assert producer.next_delay(0) == 3600.0
            clock.now += DUE_REREAD * 2
            client.create("sample", "noop")
            assert producer.step() == 1  # the read is DUE_REREAD old: read again
            assert 900.0 < producer.next_delay(0) <= 1000.0
            later(500)
            assert producer.step() == 0  # took nothing: always read again
            assert 400.0 < producer.next_delay(0) <= 500.0
            wait_for(lambda: len(client.list(status="completed")) == 3)
    finally:
        d.request_stop()
        d.request_stop()
        d._shutdown()
