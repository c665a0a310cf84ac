"""Retries, ``Retry`` and ``Snooze``: the pure rules (backoff, a worker's retry settings, matching
exceptions by name, the exceptions' checks), then real daemons running actions that snooze, ask
for a retry or raise, in threads and in child processes.

Delays are checked against the database clock, exactly: the statement that writes a snooze or a
retry sets ``start_at = now() + delay`` and ``updated_at = now()``, so ``start_at - updated_at``
is the delay it was given, however long the test took.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import psycopg
import pytest

from pgstask import Client, ConfigurationError, Retry, Snooze, Status, Task, TaskControl
from pgstask.cli import main
from pgstask.cli.run import Report
from pgstask.errors import MAX_DELAY, PgstaskError
from pgstask.retry import RetryPolicy, backoff, exception_names
from pgstask.runtime.daemon import Daemon
from pgstask.runtime.runner import Outcome, OutcomeKind, describe_outcomes
from pgstask.settings import Settings
from pgstask.workers import BaseWorker
from tests.daemons import executions, running_daemon, wait_for
from tests.http_support import api
from tests.retry_workers import ControlWorker, QuotaError
from tests.test_progress import fake_task

MODULES = ("tests.sample_workers", "tests.retry_workers")
GLOBAL = RetryPolicy(2.0, 600.0)


# --- the pure rules -------------------------------------------------------------------------


def test_backoff_doubles_caps_and_spreads_by_the_jitter_given() -> None:
    assert [backoff(a, base=2, maximum=600, jitter=0) for a in (1, 2, 3, 10, 60)] == [
        2,
        4,
        8,
        600,
        600,
    ]
    assert backoff(3, base=2, maximum=600, jitter=0.5, rand=lambda: 0.0) == 4.0  # 8 - 50 %
    assert backoff(3, base=2, maximum=600, jitter=0.5, rand=lambda: 1.0) == 12.0
    assert backoff(1, base=2, maximum=600, jitter=0.5, rand=lambda: 0.0) == 1.0  # base * (1 - j)


def test_a_worker_without_retry_settings_gets_the_global_policy() -> None:
    assert GLOBAL.for_worker("w", {}) is GLOBAL
    assert GLOBAL.for_worker("w", {"timeout": 5, "retry_on": None, "max_snoozes": None}) is GLOBAL


def test_a_workers_retry_settings_override_the_global_ones_key_by_key() -> None:
    policy = GLOBAL.for_worker(
        "w",
        {
            "retry_base_delay": 5,
            "retry_jitter": 0,
            "retry_on": ["ConnectionError", "mylib.errors.Timeout"],
            "fail_on": [],
            "max_snoozes": 0,
        },
    )
    assert policy == RetryPolicy(
        5.0, 600.0, 0.0, ("ConnectionError", "mylib.errors.Timeout"), (), 0
    )
    assert [policy.delay(a) for a in (1, 2, 3)] == [5.0, 10.0, 20.0]


def test_a_workers_own_base_or_maximum_wins_over_the_global_other() -> None:
    # Only a maximum below the global base: the backoff starts at that maximum.
    assert GLOBAL.for_worker("w", {"retry_max_delay": 1}).base_delay == 1.0
    # Only a base above the global maximum: it waits that long each time.
    only_base = GLOBAL.for_worker("w", {"retry_base_delay": 900, "retry_jitter": 0})
    assert (only_base.max_delay, only_base.delay(1), only_base.delay(5)) == (900, 900, 900)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"retry_base_delay": 0}, "retry_base_delay=0; it must be a number of seconds above 0"),
        ({"retry_base_delay": -1}, "retry_base_delay=-1; it must be"),
        ({"retry_base_delay": True}, "retry_base_delay=True; it must be"),
        ({"retry_base_delay": "2"}, "retry_base_delay='2'; it must be"),
        ({"retry_max_delay": math.inf}, "retry_max_delay=inf; it must be"),
        ({"retry_max_delay": MAX_DELAY + 1}, "retry_max_delay=31622401.0; it must be"),
        ({"retry_jitter": 1}, "retry_jitter=1; it must be a number from 0 to less than 1"),
        ({"retry_jitter": -0.1}, "retry_jitter=-0.1; it must be"),
        ({"retry_on": "ConnectionError"}, "retry_on='ConnectionError'; it must be a list of"),
        ({"fail_on": ["ValueError, KeyError"]}, "fail_on=['ValueError, KeyError']; it must be"),
        ({"fail_on": [ValueError]}, "fail_on=[<class 'ValueError'>]; it must be"),
        ({"fail_on": {"ValueError": 1}}, "fail_on={'ValueError': 1}; it must be"),
        ({"max_snoozes": -1}, "max_snoozes=-1; it must be a whole number from 0 up, or null"),
        ({"max_snoozes": 2.5}, "max_snoozes=2.5; it must be"),
        (
            {"retry_base_delay": 10, "retry_max_delay": 5},
            "invalid settings retry_base_delay=10.0 and retry_max_delay=5.0: the maximum must "
            "not be smaller than the base",
        ),
    ],
)
def test_invalid_retry_settings_are_refused_naming_worker_and_setting(
    settings: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError) as caught:
        GLOBAL.for_worker("shop", settings)
    assert str(caught.value).startswith("worker 'shop' has ")
    assert expected in str(caught.value)


class _Outer:
    class Inner(QuotaError):
        pass


def test_an_exception_is_named_by_every_class_of_its_mro() -> None:
    names = exception_names(_Outer.Inner("x"))
    assert names[:3] == ("Inner", "_Outer.Inner", "tests.test_retry._Outer.Inner")
    for name in ("QuotaError", "tests.retry_workers.QuotaError", "ConnectionError"):
        assert name in names
    for name in ("builtins.ConnectionError", "OSError", "Exception", "BaseException"):
        assert name in names
    assert "object" not in names
    assert len(names) == len(set(names))


def test_fail_on_wins_over_retry_on_and_names_match_base_classes() -> None:
    policy = RetryPolicy(1, 1, retry_on=("OSError",), fail_on=("tests.retry_workers.QuotaError",))
    assert policy.not_retried(exception_names(ConnectionError())) is None
    assert policy.not_retried(exception_names(QuotaError())) == (
        "the worker's fail_on names tests.retry_workers.QuotaError"
    )
    assert policy.not_retried(exception_names(ValueError())) == (
        "the worker's retry_on names neither its class nor a base class of it"
    )
    assert RetryPolicy(1, 1).not_retried(exception_names(KeyboardInterrupt())) is None
    assert RetryPolicy(1, 1, retry_on=()).not_retried(exception_names(OSError())) is not None


def test_snooze_and_retry_are_control_flow_not_pgstask_errors() -> None:
    for exc in (Snooze(1), Retry()):
        assert isinstance(exc, TaskControl) and isinstance(exc, Exception)
        assert not isinstance(exc, PgstaskError)


def test_snooze_and_retry_take_seconds_or_a_timedelta() -> None:
    assert Snooze(dt.timedelta(minutes=2)).seconds == 120.0
    assert Snooze(Fraction(1, 2), "waiting").seconds == 0.5
    assert (Snooze(0).seconds, str(Snooze(0)), str(Snooze(3, "waiting"))) == (
        0.0,
        "snoozed for 0s",
        "waiting",
    )
    assert (Retry().delay, str(Retry()), str(Retry(30)), str(Retry(1, "rate limited"))) == (
        None,
        "retry requested",
        "retry requested in 30s",
        "rate limited",
    )
    assert Retry(delay=MAX_DELAY).delay == MAX_DELAY


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        (-1, ValueError, "must be a number of seconds from 0 to 31622400 (366 days), not -1"),
        (math.nan, ValueError, "not nan"),
        (math.inf, ValueError, "not inf"),
        (MAX_DELAY + 1, ValueError, "not 31622401.0"),
        (10**400, ValueError, "from 0 to 31622400"),
        (dt.timedelta(seconds=-1), ValueError, "not datetime.timedelta(days=-1, seconds=86399)"),
        (True, TypeError, "must be a number of seconds, not True"),
        ("5", TypeError, "not '5'"),
        (None, TypeError, "not None"),
    ],
)
def test_snooze_and_retry_refuse_what_is_not_a_delay(
    value: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=r"^Snooze\(seconds\) ") as snooze:
        Snooze(value)  # type: ignore[arg-type]
    assert text in str(snooze.value)
    if value is not None:  # None is Retry's "the backoff"
        with pytest.raises(error, match=r"^Retry\(delay\) "):
            Retry(value)  # type: ignore[arg-type]


# --- real daemons ---------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    """A client of the test's database with the retry workers registered."""
    with Client(settings=settings) as c:
        c.discover_workers(MODULES)
        yield c


def _row(settings: Settings, task: Task) -> dict[str, Any]:
    """The task's row, with ``wait`` = ``start_at - updated_at`` (the delay it was written with)
    and ``until`` = ``start_at`` in UTC as the snooze message prints it."""
    with psycopg.connect(settings.dsn or "", autocommit=True) as conn:
        cur = conn.execute(
            "SELECT *, start_at - updated_at AS wait, "
            "to_char(start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS until "
            "FROM s_tasks WHERE id = %s",
            (task.id,),
        )
        values = cur.fetchone()
        assert values is not None and cur.description is not None
        return dict(zip([c.name for c in cur.description], values, strict=True))


def _attempts(settings: Settings, task: Task) -> list[int]:
    """The attempt number of each run of the task's action, in order."""
    return [attempt for task_id, attempt, _ in executions(settings) if task_id == task.id]


def _messages(client: Client, task: Task) -> list[str]:
    return [r.message for r in client.logs(task)]


@pytest.mark.parametrize("worker", ["control", "control_process"])
def test_a_snoozed_task_keeps_its_attempt_and_runs_again_after_its_delay(
    settings: Settings, client: Client, worker: str
) -> None:
    # max_attempts=1: a snooze that counted the attempt would leave none for the second run.
    task = client.create(worker, "snooze", {"times": 1, "seconds": 0.3}, max_attempts=1)
    # No poll in the test's time: the daemon that wrote the snooze wakes at its start_at.
    with running_daemon(settings.replace(poll_interval=60.0), modules=MODULES):
        wait_for(lambda: client.get(task).is_finished)
    final = client.get(task)
    assert (final.status, final.attempts, final.snoozes) == (Status.COMPLETED, 1, 1)
    assert final.result == {"snoozes": 1, "attempts": 1}  # what the action saw on its 2nd run
    assert final.last_error is None
    assert final.started_at is not None and final.started_at >= final.start_at
    assert _attempts(settings, task) == [1, 1]
    assert _messages(client, task) == ["Snoozed for 0.3s"]
    in_daemon = [pid for task_id, _, pid in executions(settings) if task_id == task.id]
    assert (os.getpid() in in_daemon) == (worker == "control")


@pytest.mark.parametrize("worker", ["control", "control_process"])
def test_a_snooze_writes_pending_at_now_plus_its_seconds_by_the_database_clock(
    settings: Settings, client: Client, worker: str
) -> None:
    options = {"times": 1, "seconds": 3600, "message": "export not ready"}
    task = client.create(worker, "snooze", options)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(task).snoozes == 1)
    row = _row(settings, task)
    assert (row["status"], row["attempts"], row["snoozes"]) == (Status.PENDING, 0, 1)
    assert row["wait"] == dt.timedelta(hours=1)
    assert (row["daemon_id"], row["started_at"], row["last_error"]) == (None, None, None)
    assert row["message"] == f"Snoozed until {row['until']} UTC: export not ready"


def test_max_snoozes_fails_a_task_that_would_snooze_once_more(
    settings: Settings, client: Client
) -> None:
    task = client.create("strict", "snooze", {"times": 100, "seconds": 0}, max_attempts=3)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(task).is_finished)
    final = client.get(task)
    assert (final.status, final.attempts, final.snoozes) == (Status.FAILED, 1, 2)
    assert final.message == (
        "Failed: Snooze refused: the task snoozed 2 times, the most worker 'strict' allows "
        "(max_snoozes=2)"
    )
    assert _attempts(settings, task) == [1, 1, 1]
    retried = client.retry(task)  # a retry starts a fresh set of snoozes too
    assert (retried.attempts, retried.snoozes) == (0, 0)


@pytest.mark.parametrize("worker", ["control", "control_process"])
def test_retry_with_a_delay_counts_the_attempt_and_waits_exactly_that_long(
    settings: Settings, client: Client, worker: str
) -> None:
    task = client.create(worker, "retry", {"delay": 1000}, max_attempts=3)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(task).attempts == 1 and client.get(task).is_pending)
    row = _row(settings, task)
    assert (row["status"], row["attempts"], row["wait"]) == (10, 1, dt.timedelta(seconds=1000))
    assert row["message"] == "Failed: Retry: retry requested in 1000s"
    assert "Retry: retry requested in 1000s" in row["last_error"]  # the traceback
    assert _messages(client, task) == [
        "Failed: Retry: retry requested in 1000s",
        "Retrying in 1000.00s, as the action asked",
    ]


def test_retry_fails_for_good_when_the_attempts_are_used_up(
    settings: Settings, client: Client
) -> None:
    task = client.create("control", "retry", {"delay": 0, "message": "busy"}, max_attempts=3)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(task).is_finished)
    final = client.get(task)
    assert (final.status, final.attempts, final.message) == (
        Status.FAILED,
        3,
        "Failed: Retry: busy",
    )
    assert _attempts(settings, task) == [1, 2, 3]


@pytest.mark.parametrize("worker", ["strict", "strict_process"])
def test_a_workers_class_retry_rules_decide_each_exception(
    settings: Settings, client: Client, worker: str
) -> None:
    tasks = {
        name: client.create(worker, "raise", {"error": name}, max_attempts=3)
        for name in ("QuotaError", "ValueError", "KeyError")
    }
    backoff_retry = client.create(worker, "retry", {}, max_attempts=3)  # Retry(): its backoff
    asked = client.create(worker, "retry", {"delay": 500}, max_attempts=3)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: all(client.get(t).attempts == 1 for t in [*tasks.values(), asked]))
        wait_for(lambda: client.get(backoff_retry).attempts == 1)
        wait_for(lambda: not any(client.get(t).is_running for t in tasks.values()))
        wait_for(lambda: client.get(asked).is_pending and client.get(backoff_retry).is_pending)
    quota = _row(settings, tasks["QuotaError"])  # a ConnectionError: retried, 1000 s backoff
    assert (quota["status"], quota["wait"]) == (10, dt.timedelta(seconds=1000))
    assert quota["message"] == "Failed: QuotaError: raised on purpose"
    assert _row(settings, backoff_retry)["wait"] == dt.timedelta(seconds=1000)
    assert _row(settings, asked)["wait"] == dt.timedelta(seconds=500)  # retry_on does not apply
    for name, why in [
        ("ValueError", "the worker's fail_on names ValueError"),
        ("KeyError", "the worker's retry_on names neither its class nor a base class of it"),
    ]:
        final = client.get(tasks[name])
        assert (final.status, final.attempts) == (Status.FAILED, 1), name
        assert f"Not retried: {why}" in _messages(client, tasks[name])


def test_retry_settings_changed_live_reach_the_next_task(
    settings: Settings, client: Client
) -> None:
    with running_daemon(settings, modules=MODULES) as daemon:
        change = {
            "retry_base_delay": 700,
            "retry_jitter": 0,
            "fail_on": ["tests.retry_workers.QuotaError"],
            "timeout": 0.3,
        }
        client.update_worker_settings("control", change)
        wait_for(lambda: daemon.workers["control"].settings.get("retry_base_delay") == 700)
        retried = client.create("control", "raise", {"error": "ConnectionError"})
        failed = client.create("control", "raise", {"error": "QuotaError"})
        timed_out = client.create("control", "spin")  # a timeout follows the backoff too
        for task in (retried, failed, timed_out):
            wait_for(lambda t=task: client.get(t).attempts == 1 and not client.get(t).is_running)
    for task in (retried, timed_out):
        assert _row(settings, task)["wait"] == dt.timedelta(seconds=700)
    assert client.get(failed).status == Status.FAILED


def test_an_invalid_retry_setting_stored_by_sql_fails_tasks_not_the_daemon(
    settings: Settings, client: Client
) -> None:
    with psycopg.connect(settings.dsn or "", autocommit=True) as conn:
        conn.execute(
            "UPDATE s_workers SET settings = '{\"retry_jitter\": 2}' WHERE identifier = 'control'"
        )
    task = client.create("control", "snooze", max_attempts=3)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(task).is_finished)
        final = client.get(task)
        assert (final.status, final.attempts) == (Status.FAILED, 1)
        assert final.message == (
            "Failed: worker 'control' has an invalid setting retry_jitter=2; it must be a "
            "number from 0 to less than 1 (0.25: up to 25 % either way)"
        )
        assert _attempts(settings, task) == []  # the action never ran
        client.update_worker_settings("control", {"retry_jitter": 0.1})
        other = client.create("sample", "noop")  # the daemon runs on
        wait_for(lambda: client.get(other).status == Status.COMPLETED)


@pytest.mark.parametrize(
    ("action", "options", "message"),
    [
        ("bad_snooze", {"seconds": -1}, "ValueError: Snooze(seconds) must be a number of seconds"),
        ("bad_snooze", {"seconds": "nan"}, "ValueError: Snooze(seconds) must be"),
        ("bad_snooze", {"seconds": "5"}, "TypeError: Snooze(seconds) must be a number of seconds"),
        ("bad_snooze", {"seconds": "inf", "patched": True}, "ValueError: Snooze(seconds) must"),
        ("bad_snooze", {"seconds": "x", "patched": True}, "TypeError: Snooze(seconds) must be"),
        ("bad_retry", {"delay": True}, "TypeError: Retry(delay) must be a number of seconds"),
        ("bad_retry", {"delay": -5}, "ValueError: Retry(delay) must be a number of seconds"),
    ],
)
def test_a_bad_snooze_or_retry_is_an_error_of_the_action_that_names_the_problem(
    settings: Settings, client: Client, action: str, options: dict[str, Any], message: str
) -> None:
    task = client.create("control_process", action, options, max_attempts=2)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(task).is_finished)
    final = client.get(task)
    assert (final.status, final.attempts, final.snoozes) == (Status.FAILED, 2, 0)  # retried
    assert (final.message or "").startswith(f"Failed: {message}")


def test_the_client_refuses_a_retry_setting_no_daemon_could_use(
    settings: Settings, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigurationError, match=r"retry_on='ValueError'; it must be a list"):
        client.update_worker_settings("control", {"retry_on": "ValueError"})
    with pytest.raises(ConfigurationError, match="the maximum must not be smaller than the base"):
        client.update_worker_settings("control", {"retry_base_delay": 9, "retry_max_delay": 3})
    assert client.worker("control")["settings"] == {}
    client.update_worker_settings("control", {"retry_on": ["ValueError"], "max_snoozes": None})
    with api(settings) as http:
        answer = http.post("/stask/worker/control/settings", json={"settings": {"fail_on": "X"}})
        assert answer.status_code == 422
        assert answer.json()["error"] == "Invalid settings"
        assert "invalid setting fail_on='X'" in answer.json()["message"]
    args = ["workers", "settings", "control", "--set", '{"max_snoozes": -1}']
    assert main([*args, "--dsn", settings.dsn or ""]) == 2
    assert "invalid setting max_snoozes=-1" in capsys.readouterr().err
    assert client.worker("control")["settings"] == {"retry_on": ["ValueError"], "max_snoozes": None}


class BadRetryWorker(BaseWorker):
    identifier = "bad_retry"
    settings = {"retry_on": "ConnectionError"}

    def task_noop(self, task: Task, options: dict[str, Any]) -> None:
        pass


def test_a_daemon_refuses_to_start_with_an_invalid_retry_setting_in_a_class(
    settings: Settings,
) -> None:
    daemon = Daemon(
        settings, dsn=settings.dsn or "", workers={"bad_retry": BadRetryWorker}, make_client=Client
    )
    with pytest.raises(ConfigurationError) as caught:
        daemon.run_once()
    assert str(caught.value) == (
        "worker 'bad_retry' has an invalid setting retry_on='ConnectionError'; it must be a list "
        'of exception class names, e.g. ["ConnectionError", "mylib.Timeout"] (in the class '
        "attribute tests.test_retry.BadRetryWorker.settings)"
    )
    with Client(settings=settings) as c:
        assert c.daemons() == [] and c.workers() == []  # refused before anything was written


def test_run_once_counts_a_snooze_as_done(
    settings: Settings, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))  # where the action records
    task = client.create("control", "snooze", {"seconds": 3600})
    daemon = Daemon(
        settings,
        dsn=settings.dsn or "",
        workers={"control": ControlWorker},
        make_client=Client,
    )
    summary = daemon.run_once()
    assert (dict(summary.outcomes), summary.ok) == ({"snoozed": 1}, True)
    assert client.get(task).snoozes == 1


def test_run_once_tells_a_snooze_in_words_and_quiet_leaves_it_out() -> None:
    task = fake_task(7)
    snoozed = Outcome(task, OutcomeKind.SNOOZED, "export not ready", snooze_delay=30.0)
    assert Report.line(snoozed) == (
        "task 7 sample.noop: snoozed for 30s (pending again later): export not ready"
    )
    assert describe_outcomes({"completed": 1, "snoozed": 2}) == (
        "1 completed, 0 failed, 2 snoozed (pending again later)"
    )
    out = io.StringIO()
    Report(out, quiet=True)(snoozed)
    assert out.getvalue() == ""
