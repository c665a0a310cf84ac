"""Schedules: the checks of a schedule's fields, the schedules workers declare, and the
scheduler firing each due slot exactly once however many schedulers race for it (threads with
connections of their own, and real ``pgstask daemon`` processes)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import psycopg
import pytest

from pgstask import BaseWorker, Client, Task, queries, schedules
from pgstask.db import make_pool
from pgstask.errors import InvalidScheduleError
from pgstask.runtime.cleaner import Cleaner
from pgstask.runtime.scheduler import MISFIRE_GRACE, Scheduler
from pgstask.settings import Settings
from tests.daemons import ROOT, daemon_env, running_daemon, stop_process, wait_for
from tests.schedule_workers import TickWorker

SCHEDULE_WORKERS = ("tests.sample_workers", "tests.schedule_workers")


class Export(BaseWorker):
    identifier = "export"

    def task_export(self, task: Task, options: dict[str, Any]) -> None:
        """Nothing."""


def fields(**given: Any) -> dict[str, Any]:
    return {"action": "export", "cron": "0 3 * * *", **given}


# --- what a valid schedule is -------------------------------------------------------------------


def test_a_schedule_takes_its_defaults() -> None:
    s = schedules.check("nightly", "export", fields(), worker=Export)
    assert (s.cron.expression, s.cron.timezone, s.data, s.priority) == (
        "0 3 * * *",
        "UTC",
        {},
        "normal",
    )
    assert (s.max_attempts, s.misfire, s.active) == (3, "skip", True)


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("nightly", {"action": "export"}, "schedule 'nightly': cron is required"),
        ("nightly", {"cron": "0 3 * * *"}, "action is required"),
        ("nightly", fields(every="day"), "unknown field(s) every; use action, cron"),
        ("nightly", fields(cron="0 25 * * *"), "invalid cron expression '0 25 * * *': bad hour"),
        ("nightly", fields(timezone="Europe/Atlantis"), "unknown time zone 'Europe/Atlantis'"),
        ("nightly", fields(action="import"), "worker 'export' has no action 'import'"),
        ("nightly", fields(priority="urgent"), "unknown priority 'urgent'"),
        ("nightly", fields(max_attempts=0), "max_attempts must be between 1 and 1000"),
        ("nightly", fields(misfire="later"), "unknown misfire 'later'; use skip or run_once"),
        ("nightly", fields(data=[1, 2]), "data must be a JSON object"),
        ("nightly", fields(data=[]), "data must be a JSON object"),
        ("nightly", fields(data=""), "data must be a JSON object"),
        ("bad\ud800name", fields(), "a schedule's name"),
        ("nightly", fields(data={"x": float("nan")}), "data"),
        ("nightly", fields(active="yes"), "active is true or false"),
        (" nightly", fields(), "without blanks around it"),
        ("", fields(), "non-empty text"),
        ("a\nb", fields(), "no control characters"),
        ("x" * 201, fields(), "at most 200 characters"),
        (7, fields(), "non-empty text"),
    ],
)
def test_a_bad_schedule_is_refused_naming_what_is_wrong(
    name: Any, given: Any, message: str
) -> None:
    with pytest.raises(InvalidScheduleError, match=re.escape(message)):
        schedules.check(name, "export", given, worker=Export)


def test_one_name_declared_by_two_workers_is_refused() -> None:
    class Other(BaseWorker):
        identifier = "other"
        schedules: ClassVar[dict[str, dict[str, Any]]] = {
            "nightly": {"action": "go", "cron": "@daily"}
        }

        def task_go(self, task: Task, options: dict[str, Any]) -> None:
            """Nothing."""

    class Mine(Export):
        schedules: ClassVar[dict[str, dict[str, Any]]] = {"nightly": fields()}

    with pytest.raises(InvalidScheduleError, match="declared by workers 'export' and 'other'"):
        schedules.declared([Mine, Other])


# --- the schedules of code, written at a daemon's start -----------------------------------------


def test_code_schedules_are_written_updated_and_reported_when_gone(settings: Settings) -> None:
    with running_daemon(settings, modules=SCHEDULE_WORKERS):
        pass
    with psycopg.connect(str(settings.dsn), autocommit=True) as conn:
        conn.row_factory = psycopg.rows.dict_row
        rows = {r["name"]: r for r in queries.schedule_list(conn)}
        assert set(rows) == {"every-second", "nightly"}
        assert rows["nightly"]["origin"] == "code" and rows["nightly"]["timezone"] == "Europe/Kyiv"
        # A change in code is written at the next start; a schedule gone from code stays, marked.
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(
                TickWorker,
                "schedules",
                {"every-second": {"action": "tick", "cron": "*/2 * * * * *"}},
            )
            with running_daemon(settings, modules=SCHEDULE_WORKERS):
                pass
        rows = {r["name"]: r for r in queries.schedule_list(conn)}
        assert rows["every-second"]["cron"] == "*/2 * * * * *"
        assert rows["nightly"]["missing_from_code_at"] is not None
        assert rows["every-second"]["missing_from_code_at"] is None


# --- the scheduler ------------------------------------------------------------------------------


@pytest.fixture
def pool(settings: Settings) -> Iterator[Any]:
    assert settings.dsn
    p = make_pool(settings.dsn, max_size=4)
    try:
        yield p
    finally:
        p.close()


def _add(pool: Any, name: str = "nightly", **given: Any) -> None:
    schedule = schedules.check(name, "export", fields(**given))
    with pool.connection() as conn:
        queries.schedule_upsert(conn, **schedule.row(origin="api"))


def _set_next(pool: Any, name: str, seconds_ago: float) -> dt.datetime:
    with pool.connection() as conn:
        row = conn.execute(
            "UPDATE s_schedules SET next_run_at = date_trunc('second', now())"
            " - make_interval(secs => %s) WHERE name = %s RETURNING next_run_at",
            (seconds_ago, name),
        ).fetchone()
    return row["next_run_at"]  # type: ignore[no-any-return]


def _tasks(pool: Any, name: str) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT r.slot, t.id, t.identifier, t.action, t.meta, t.status FROM s_schedule_runs r"
            " JOIN s_tasks t ON t.id = r.task_id WHERE r.schedule_name = %s ORDER BY r.slot",
            (name,),
        ).fetchall()


def test_a_new_schedule_gets_its_next_slot_and_fires_when_due(pool: Any) -> None:
    _add(pool, cron="0 3 * * *", timezone="Europe/Kyiv", data={"n": 1})
    scheduler = Scheduler(pool=pool, interval=1.0)
    assert scheduler.step() == 0  # the first pass computes the next slot
    with pool.connection() as conn:
        row = queries.schedule_get(conn, name="nightly")
    assert row is not None and row["next_run_at"].astimezone(ZoneInfo("Europe/Kyiv")).hour == 3
    slot = _set_next(pool, "nightly", 1)
    assert scheduler.step() == 1
    assert scheduler.step() == 0  # fired once
    [run] = _tasks(pool, "nightly")
    assert (run["slot"], run["identifier"], run["action"], run["meta"]) == (
        slot,
        "export",
        "export",
        {"n": 1},
    )
    with pool.connection() as conn:
        row = queries.schedule_get(conn, name="nightly")
    assert row is not None and row["last_task_id"] == run["id"] and row["next_run_at"] > slot


def test_a_missed_slot_is_skipped_or_run_once_never_a_backlog(pool: Any) -> None:
    _add(pool, "skipper", cron="* * * * *")
    _add(pool, "catcher", cron="* * * * *", misfire="run_once")
    scheduler = Scheduler(pool=pool, interval=1.0)
    scheduler.step()
    hours = 3 * 3600.0
    assert MISFIRE_GRACE.total_seconds() < hours
    _set_next(pool, "skipper", hours)
    missed = _set_next(pool, "catcher", hours)
    assert scheduler.step() == 1  # one task for the catcher's missed slot, none for the skipper
    assert scheduler.step() == 0  # and no backlog of the 180 minutes between
    assert _tasks(pool, "skipper") == []
    assert [r["slot"] for r in _tasks(pool, "catcher")] == [missed]
    with pool.connection() as conn:
        for name in ("skipper", "catcher"):
            row = queries.schedule_get(conn, name=name)
            assert (
                row is not None
                and row["next_run_at"] > conn.execute("SELECT now()").fetchone()["now"]
            )


def test_a_late_pass_loses_no_slot(pool: Any) -> None:
    """A pass 5 s late for a per-second schedule fires the 6 slots it passed, one a pass."""
    _add(pool, "seconds", cron="* * * * * *")
    scheduler = Scheduler(pool=pool, interval=1.0)
    scheduler.step()
    first = _set_next(pool, "seconds", 5)
    fired = sum(scheduler.step() for _ in range(6))
    assert fired == 6
    assert [r["slot"] for r in _tasks(pool, "seconds")] == [
        first + dt.timedelta(seconds=i) for i in range(6)
    ]


def test_a_schedule_the_scheduler_cannot_read_is_disabled_with_the_reason(pool: Any) -> None:
    with pool.connection() as conn:  # plain SQL: nothing checked the expression
        conn.execute(
            "INSERT INTO s_schedules (name, identifier, action, cron)"
            " VALUES ('bad', 'export', 'export', '0 25 * * *')"
        )
    assert Scheduler(pool=pool, interval=1.0).step() == 0
    with pool.connection() as conn:
        row = queries.schedule_get(conn, name="bad")
    assert row is not None and not row["active"] and "bad hour" in row["last_error"]


def test_racing_schedulers_fire_each_slot_once(settings: Settings, pool: Any) -> None:
    """Eight schedulers, each with connections of its own, step at the same moment on the same
    due slot, twenty times over: one task per slot."""
    # Yearly: the slot after a raced one is never due too (with every minute, a slot of the
    # last minute would be followed by a due one, and a round could fire two).
    _add(pool, "raced", cron="@yearly")
    Scheduler(pool=pool, interval=1.0).step()
    assert settings.dsn
    pools = [make_pool(settings.dsn, max_size=2) for _ in range(8)]
    try:
        racers = [Scheduler(pool=p, interval=1.0) for p in pools]
        slots = []
        for round_ in range(20):
            # Two seconds apart: a round that crosses a second boundary of the clock still
            # gets a slot of its own (one second apart, it would get the last round's again).
            slots.append(_set_next(pool, "raced", 2 * (round_ + 1)))
            barrier = threading.Barrier(len(racers))
            got: list[int] = []

            def race(
                s: Scheduler, barrier: threading.Barrier = barrier, got: list[int] = got
            ) -> None:
                barrier.wait()
                got.append(s.step())

            threads = [threading.Thread(target=race, args=(s,)) for s in racers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sum(got) == 1, (round_, got)
    finally:
        for p in pools:
            p.close()
    assert sorted(r["slot"] for r in _tasks(pool, "raced")) == sorted(slots)


def _runs(settings: Settings, name: str) -> int:
    with psycopg.connect(str(settings.dsn)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM s_schedule_runs WHERE schedule_name = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


def _start_scheduling_daemon(settings: Settings) -> subprocess.Popen[bytes]:
    settings.storage.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "pgstask", "daemon"],
        env={**daemon_env(settings), "PGSTASK_WORKERS": ",".join(SCHEDULE_WORKERS)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _assert_every_second_fired_once(settings: Settings, at_least: int) -> None:
    """Every slot of 'every-second' from the first to the last has exactly one task: no slot
    twice (the compare-and-set and the runs' key), none skipped (a late pass catches up)."""
    with psycopg.connect(str(settings.dsn)) as conn:
        rows = conn.execute(
            "SELECT r.slot, count(t.id) FROM s_schedule_runs r"
            " LEFT JOIN s_tasks t ON t.id = r.task_id"
            " WHERE r.schedule_name = 'every-second' GROUP BY r.slot ORDER BY r.slot"
        ).fetchall()
        per_task = conn.execute(
            "SELECT count(*) FROM s_tasks WHERE identifier = 'ticks'"  # only schedules make them
        ).fetchone()
    slots = [r[0] for r in rows]
    assert len(slots) >= at_least
    assert all(count == 1 for _, count in rows)
    assert slots == [slots[0] + dt.timedelta(seconds=i) for i in range(len(slots))]
    assert per_task is not None and per_task[0] == len(slots)


def test_daemon_processes_fire_every_second_exactly_once_while_restarted(
    settings: Settings,
) -> None:
    """Three ``pgstask daemon`` processes with a per-second schedule; one is killed and another
    started meanwhile."""
    procs = [_start_scheduling_daemon(settings) for _ in range(3)]
    try:
        wait_for(lambda: _runs(settings, "every-second") >= 3, timeout=30)
        time.sleep(3)
        procs[0].kill()
        procs[0].wait(10)
        procs.append(_start_scheduling_daemon(settings))
        time.sleep(4)
    finally:
        for proc in procs:
            stop_process(proc)
    _assert_every_second_fired_once(settings, at_least=5)


def test_every_slot_fires_once_across_a_database_restart(settings: Settings, pg: Any) -> None:
    """Two daemons with a per-second schedule while PostgreSQL restarts (every connection cut,
    a fire in flight rolled back): the slots missed during the restart are fired after it, each
    once."""
    procs = [_start_scheduling_daemon(settings) for _ in range(2)]
    try:
        wait_for(lambda: _runs(settings, "every-second") >= 3, timeout=30)
        before = _runs(settings, "every-second")
        pg.restart()
        wait_for(lambda: _runs(settings, "every-second") >= before + 4, timeout=60, step=0.3)
    finally:
        for proc in procs:
            stop_process(proc)
    _assert_every_second_fired_once(settings, at_least=7)


def test_the_cleaner_trims_old_runs_and_keeps_each_schedules_latest(
    settings: Settings, pool: Any
) -> None:
    _add(pool, "old", cron="@daily")
    with pool.connection() as conn:
        for days in (90, 60, 45):
            conn.execute(
                "INSERT INTO s_schedule_runs (schedule_name, slot, task_id, fired_at)"
                " VALUES ('old', now() - make_interval(days => %s), 1,"
                " now() - make_interval(days => %s))",
                (days, days),
            )
    cleaned = Cleaner(
        pool=pool, storage=settings.storage, task_retention_days=30.0, log_retention_days=None
    ).step()
    assert cleaned.schedule_runs == 2
    with pool.connection() as conn:
        [kept] = conn.execute("SELECT slot FROM s_schedule_runs").fetchall()
        assert kept["slot"] > conn.execute("SELECT now() - interval '46 days' AS t").fetchone()["t"]


def test_run_once_processes_started_together_fire_a_due_slot_once(settings: Settings) -> None:
    """Cron starts ``pgstask run-once`` on four hosts at the same minute: the due slot yields one
    task, and the run-once that fired it (or another) runs it. A yearly schedule whose next slot
    is set a second ago: the slot after it is not due while the test runs (a minutely one's
    next minute could be, and rightly fire a second task)."""
    assert settings.dsn
    with Client(settings=settings) as client:
        client.add_schedule("yearly", "sample", {"action": "noop", "cron": "0 0 1 1 *"})
    pool = make_pool(settings.dsn, max_size=2)
    try:
        Scheduler(pool=pool, interval=1.0).step()  # its next slot
        slot = _set_next(pool, "yearly", 1)
    finally:
        pool.close()
    env = daemon_env(settings)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pgstask", "run-once"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    with psycopg.connect(settings.dsn) as conn:
        runs = conn.execute(
            "SELECT r.slot, t.status FROM s_schedule_runs r JOIN s_tasks t ON t.id = r.task_id"
            " WHERE r.schedule_name = 'yearly'"
        ).fetchall()
        tasks = conn.execute("SELECT count(*) FROM s_tasks").fetchone()
    assert runs == [(slot, 80)]  # one task for the slot, completed by one of them
    assert tasks == (1,)
