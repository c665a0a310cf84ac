"""pgstask as Django's task backend, in a real Django project (tests/django_project, the example
of docs/django.md): its view enqueues through Django's test client, a real ``manage.py
pgstask_daemon`` (or ``pgstask daemon`` with ``DJANGO_SETTINGS_MODULE``) runs the functions,
and ``get_result`` reads the outcome back as Django's ``TaskResult``.

Django is set up once in this process, on a database of this module cloned from the migrated
template (pgstask's tables) and migrated by Django (the project's own)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import django
import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import close_old_connections, connections, transaction
from django.test import Client as HttpClient
from django.test.utils import override_settings
from django.utils import timezone
from psycopg.conninfo import conninfo_to_dict

from pgstask import Client, Status
from pgstask.contrib.django import database
from pgstask.contrib.django._compat import InvalidTask, TaskResultDoesNotExist, task_backends
from pgstask.errors import DatabaseError
from pgstask.task import Task as Row
from tests.conftest import Server
from tests.daemons import ROOT, scalar, stop_process

PROJECT = ROOT / "tests" / "django_project"
PARIS = ZoneInfo("Europe/Paris")  # the project's TIME_ZONE


def db_env(dsn: str) -> dict[str, str]:
    """The variables the project's settings read its database from."""
    params = conninfo_to_dict(dsn)
    return {
        "DB_NAME": str(params["dbname"]),
        "DB_USER": str(params.get("user", "")),
        "DB_PASSWORD": str(params.get("password", "")),
        "DB_HOST": str(params.get("host", "")),
        "DB_PORT": str(params.get("port", "")),
    }


@pytest.fixture(scope="module")
def dsn(pg: Server, template_db: str) -> Iterator[str]:
    """The project's database (Django's tables and pgstask's), Django set up on it."""
    name = pg.create_database("django", template=template_db)
    url = pg.dsn(name)
    saved = dict(os.environ)
    os.environ.update(db_env(url), DJANGO_SETTINGS_MODULE="mysite.settings")
    sys.path.insert(0, str(PROJECT))
    try:
        django.setup()
        call_command("migrate", verbosity=0)
        yield url
    finally:
        connections.close_all()
        database.close_clients()
        sys.path.remove(str(PROJECT))
        os.environ.clear()
        os.environ.update(saved)
        pg.drop_database(name)


@pytest.fixture(autouse=True)
def _close_pools() -> Iterator[None]:
    yield
    database.close_clients()
    if apps.ready:  # Django was set up (by the dsn fixture)
        connections.close_all()


@pytest.fixture
def pgstask(dsn: str) -> Iterator[Client]:
    with Client(dsn) as client:
        yield client


def daemon_env(dsn: str, storage: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGSTASK_", "DJANGO_"))}
    env.update(
        db_env(dsn),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(PROJECT)]),
        PGSTASK_STORAGE=str(storage),
        PGSTASK_POLL_INTERVAL="0.5",
        PGSTASK_HEARTBEAT_INTERVAL="0.2",
        PGSTASK_RETRY_BASE_DELAY="0.05",
        PGSTASK_RETRY_MAX_DELAY="0.2",
        **extra,
    )
    return env


def start(args: list[str], env: dict[str, str], storage: Path) -> subprocess.Popen[bytes]:
    storage.mkdir(parents=True, exist_ok=True)
    with open(storage / "daemon.out", "ab") as log:
        return subprocess.Popen(args, env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def signals_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the receivers of the project (shop/receivers.py) record the signals they get, in
    this process and in the daemons started after this fixture."""
    path = tmp_path / "signals.jsonl"
    monkeypatch.setenv("SHOP_SIGNALS_FILE", str(path))
    return path


def deliveries(path: Path, result_id: str) -> list[dict[str, Any]]:
    """The signals recorded for the result ``result_id``, in the order they were sent."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line["id"] == result_id]


@pytest.fixture
def manage_daemon(
    dsn: str, tmp_path: Path, signals_file: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``python manage.py pgstask_daemon`` (every queue; pgstask's DSN from Django's DATABASES)."""
    storage = tmp_path / "storage"
    proc = start(
        [sys.executable, "manage.py", "pgstask_daemon", "--", "--concurrency", "2"],
        daemon_env(dsn, storage),
        storage,
    )
    yield proc
    assert stop_process(proc) == 0, (storage / "daemon.out").read_text()


def row_of(dsn: str, result_id: str) -> Row | None:
    with Client(dsn) as client:
        found = client.list(limit=1000)
    for row in found:
        if row.dedupe_key == f"django:{result_id}":
            return row
    return None


def finished(client: Client, result_id: str) -> Row:
    row = row_of(client.dsn, result_id)
    assert row is not None, f"no task for result {result_id}"
    return client.wait(row.id, timeout=60)


def test_the_view_enqueues_in_its_transaction_and_the_daemon_runs_the_task(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes]
) -> None:
    from shop.models import Order
    from shop.tasks import send_receipt

    http = HttpClient()
    answer = http.post("/orders", {"email": "ada@example.com", "total": "12.50"})
    assert answer.status_code == 201, answer.content
    order_id, result_id = answer.json()["order"], answer.json()["receipt"]

    row = row_of(dsn, result_id)
    assert row is not None
    assert (row.identifier, row.action, row.priority) == ("django:default", "run", "normal")
    assert row.meta == {
        "task": "shop.tasks.send_receipt",
        "args": [order_id],
        "kwargs": {},
        "result_id": result_id,
        "backend": "default",
        "queue": "default",
        "priority": 0,
    }
    assert finished(pgstask, result_id).status == Status.COMPLETED

    result = send_receipt.get_result(result_id)
    assert result.status == "SUCCESSFUL" and result.is_finished
    assert result.return_value == {"order": order_id, "sent_to": "ada@example.com"}
    assert result.args == [order_id] and result.kwargs == {} and result.errors == []
    assert result.enqueued_at and result.started_at and result.finished_at
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.attempts == 1 and result.task.func is send_receipt.func
    assert Order.objects.get(pk=order_id).receipt_sent  # the function used the ORM
    status = http.get(f"/orders/receipt/{result_id}").json()
    assert status == {"status": "SUCCESSFUL", "attempts": 1, "sent": result.return_value}


def test_a_rolled_back_view_enqueues_nothing(dsn: str, pgstask: Client) -> None:
    from shop.models import Order

    before = pgstask.stats()["total"]
    answer = HttpClient().post("/orders", {"email": "bob@example.com", "total": "0"})
    assert answer.status_code == 400
    assert not Order.objects.filter(email="bob@example.com").exists()
    assert pgstask.stats()["total"] == before


def test_a_failing_task_is_retried_then_failed_with_its_errors(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes]
) -> None:
    from shop.tasks import charge

    result = charge.enqueue(41)
    assert result.status == "READY"
    assert finished(pgstask, result.id).status == Status.FAILED
    result.refresh()
    assert result.status == "FAILED" and result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == ["shop.tasks.PaymentDeclined"] * 3
    assert "order 41 declined (attempt 1)" in result.errors[0].traceback
    assert "order 41 declined (attempt 3)" in result.errors[2].traceback
    assert result.errors[0].exception_class.__name__ == "PaymentDeclined"
    with pytest.raises(ValueError, match="failed"):
        result.return_value  # noqa: B018  (Django's own rule)


def test_priority_run_after_and_queue_map_onto_the_row_and_async_functions_run(
    dsn: str, pgstask: Client, tmp_path: Path
) -> None:
    from shop.tasks import notify_team, send_receipt

    later = dt.datetime(2031, 5, 1, 9, 30, tzinfo=dt.UTC)
    low = send_receipt.using(priority=-10, run_after=later).enqueue(1)
    with override_settings(USE_TZ=False):  # where Django allows a naive run_after
        naive = send_receipt.using(run_after=dt.datetime(2031, 5, 1, 11, 30)).enqueue(1)
    high = notify_team.enqueue("a new order", channel="sales")
    rows = [row_of(dsn, r.id) for r in (low, naive, high)]
    assert rows[0] is not None and rows[1] is not None and rows[2] is not None
    assert (rows[0].priority, rows[0].start_at) == ("low", later)
    assert rows[1].start_at == later  # naive: Django's TIME_ZONE (Paris, UTC+2 in May)
    assert (rows[2].identifier, rows[2].priority) == ("django:emails:async", "high")
    assert rows[2].meta["kwargs"] == {"channel": "sales"}
    assert send_receipt.get_result(low.id).status == "READY"

    # pgstask daemon with DJANGO_SETTINGS_MODULE, serving the emails queue only.
    storage = tmp_path / "storage"
    env = daemon_env(
        dsn,
        storage,
        DJANGO_SETTINGS_MODULE="mysite.settings",
        PGSTASK_DSN=dsn,
        PGSTASK_WORKERS="pgstask.contrib.django.worker",
        PGSTASK_DJANGO_QUEUES="emails",
    )
    proc = start([sys.executable, "-m", "pgstask", "daemon"], env, storage)
    try:
        other = send_receipt.enqueue(1)  # the default queue: not this daemon's
        assert finished(pgstask, high.id).status == Status.COMPLETED
    finally:
        assert stop_process(proc) == 0, (storage / "daemon.out").read_text()
    assert notify_team.get_result(high.id).return_value == "sales: a new order"
    waiting = row_of(dsn, other.id)
    assert waiting is not None and waiting.status == Status.PENDING


def test_without_use_tz_a_result_s_times_are_naive_in_time_zone(dsn: str, pgstask: Client) -> None:
    """With ``USE_TZ = False`` Django's datetimes are naive, in ``TIME_ZONE``: a result's are
    too, as at its enqueue, so that they compare with ``timezone.now()``."""
    from shop.tasks import send_receipt

    with override_settings(USE_TZ=False):
        enqueued = send_receipt.enqueue(1)
        row = row_of(dsn, enqueued.id)
        assert row is not None
        pgstask.cancel(row.id)
        result = send_receipt.get_result(enqueued.id)
        assert enqueued.enqueued_at is not None and enqueued.enqueued_at.tzinfo is None
        assert result.enqueued_at == row.created_at.astimezone(PARIS).replace(tzinfo=None)
        assert result.finished_at is not None and result.finished_at.tzinfo is None
        assert result.enqueued_at <= result.finished_at < timezone.now() + dt.timedelta(hours=1)
    assert send_receipt.get_result(enqueued.id).enqueued_at == row.created_at  # USE_TZ: aware


def test_get_result_sees_the_enqueues_of_its_own_transaction(dsn: str, pgstask: Client) -> None:
    """Where an enqueue joins Django's transaction, ``get_result`` reads in it too: a view under
    ``ATOMIC_REQUESTS``, or a test of Django's ``TestCase`` (one transaction, rolled back), reads
    the result of its own enqueue before any commit."""
    from shop.tasks import send_receipt

    with transaction.atomic():
        result = send_receipt.enqueue(5)
        assert send_receipt.get_result(result.id).status == "READY"
        result.refresh()
        assert result.args == [5] and result.enqueued_at is not None
        transaction.set_rollback(True)
    with pytest.raises(TaskResultDoesNotExist):
        send_receipt.get_result(result.id)


def own_dsn(dsn: str) -> dict[str, Any]:
    """``TASKS`` with pgstask's database named by its own DSN: enqueues wait for the commit."""
    return {
        "default": {
            "BACKEND": "pgstask.contrib.django.PgstaskBackend",
            "OPTIONS": {"DSN": dsn},
        }
    }


def test_an_enqueue_waits_for_the_commit_when_pgstask_has_its_own_dsn(
    dsn: str, pgstask: Client
) -> None:
    from shop.tasks import send_receipt

    with override_settings(TASKS=own_dsn(dsn)):
        with transaction.atomic():
            kept = send_receipt.enqueue(7)
            assert row_of(dsn, kept.id) is None  # not before the commit
        assert row_of(dsn, kept.id) is not None
        assert send_receipt.get_result(kept.id).status == "READY"

        with transaction.atomic():
            dropped = send_receipt.enqueue(8)
            transaction.set_rollback(True)
        assert row_of(dsn, dropped.id) is None
        with pytest.raises(TaskResultDoesNotExist):
            send_receipt.get_result(dropped.id)


def test_bad_input_is_refused_with_a_clear_message(dsn: str) -> None:
    from shop.tasks import send_receipt

    with pytest.raises(
        TypeError, match=r"arguments of task shop\.tasks\.send_receipt must be JSON"
    ):
        send_receipt.enqueue(dt.date(2030, 1, 1))
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        send_receipt.using(queue_name="nope")
    with pytest.raises(TaskResultDoesNotExist):
        send_receipt.get_result("not-a-result-id")
    bad = {"default": {"BACKEND": "pgstask.contrib.django.PgstaskBackend", "QUEUES": ["a.b"]}}
    with override_settings(TASKS=bad), pytest.raises(ImproperlyConfigured, match=r"'a\.b'"):
        send_receipt.using(priority=1)
    unknown = {"default": {"BACKEND": "pgstask.contrib.django.PgstaskBackend", "OPTIONS": {"X": 1}}}
    with override_settings(TASKS=unknown), pytest.raises(ImproperlyConfigured, match="'X'"):
        send_receipt.using(priority=1)


def test_a_def_function_runs_in_a_child_process_with_isolation_process(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes]
) -> None:
    from shop.tasks import send_receipt

    pgstask.update_worker_settings("django:default", {"isolation": "process"})
    result = send_receipt.enqueue(0)  # no such order: the function raises DoesNotExist
    assert finished(pgstask, result.id).status == Status.FAILED
    result.refresh()
    assert [e.exception_class_path for e in result.errors] == ["shop.models.Order.DoesNotExist"] * 3
    assert "Order matching query does not exist" in result.errors[-1].traceback


def test_django_check_reports_a_database_pgstask_cannot_use(dsn: str) -> None:
    tasks = {
        "default": {
            "BACKEND": "pgstask.contrib.django.PgstaskBackend",
            "OPTIONS": {"DATABASE": "replica"},
        }
    }
    with override_settings(TASKS=tasks):
        [error] = task_backends["default"].check()
    assert error.id == "pgstask.E001" and "'replica', which is not in DATABASES" in error.msg


def test_the_worker_module_needs_django_settings(dsn: str, tmp_path: Path) -> None:
    env = daemon_env(
        dsn, tmp_path, PGSTASK_DSN=dsn, PGSTASK_WORKERS="pgstask.contrib.django.worker"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pgstask", "daemon"], env=env, cwd=PROJECT, capture_output=True
    )
    assert done.returncode == 2
    assert b"set DJANGO_SETTINGS_MODULE" in done.stderr
    env["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    env["PGSTASK_DJANGO_QUEUES"] = "emails,nope"
    done = subprocess.run(
        [sys.executable, "-m", "pgstask", "daemon"], env=env, cwd=PROJECT, capture_output=True
    )
    assert done.returncode == 2
    assert b"PGSTASK_DJANGO_QUEUES names queues no pgstask backend of TASKS has: nope" in (
        done.stderr
    )


def test_manage_py_pgstask_migrate(dsn: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "pgstask_migrate"],
        env=daemon_env(dsn, PROJECT),
        cwd=PROJECT,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    assert b"up to date" in done.stdout


def test_an_enqueue_on_a_dead_persistent_connection_leaves_it_to_be_replaced(
    dsn: str, pgstask: Client
) -> None:
    """With ``CONN_MAX_AGE = None`` Django keeps its connection across requests; when it broke
    (a server restart, a failover) the enqueue that finds it fails, and the end of that request
    replaces it, as after a failed query of Django's own: the next request enqueues."""
    from shop.tasks import send_receipt

    django_db = connections["default"]
    django_db.close()
    django_db.settings_dict["CONN_MAX_AGE"] = None
    try:
        close_old_connections()  # a request starts
        send_receipt.enqueue(1)
        scalar(dsn, "SELECT pg_terminate_backend(%s)", (django_db.connection.info.backend_pid,))
        with pytest.raises(DatabaseError, match="cannot use PostgreSQL"):
            send_receipt.enqueue(2)
        close_old_connections()  # the request ends
        close_old_connections()  # the next one starts
        again = send_receipt.enqueue(3)
    finally:
        django_db.settings_dict["CONN_MAX_AGE"] = 0
        django_db.close()
    assert row_of(dsn, again.id) is not None


def test_an_async_function_gets_a_new_connection_after_the_old_one_broke(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes]
) -> None:
    """The async ORM's connection (asgiref's thread for sync code) is closed after each
    ``async def`` function as the ``def`` functions' are (``CONN_MAX_AGE = 0``): one killed
    meanwhile (a server restart) does not fail every later function."""
    from shop.edge_tasks import async_backend_pid, backend_pid

    for function in (backend_pid, async_backend_pid):
        first = function.enqueue()
        assert finished(pgstask, first.id).status == Status.COMPLETED
        pid = function.get_result(first.id).return_value
        scalar(dsn, "SELECT pg_terminate_backend(%s)", (pid,))
        second = function.enqueue()
        assert finished(pgstask, second.id).status == Status.COMPLETED, function
        assert function.get_result(second.id).return_value != pid


def test_a_function_that_changed_kind_since_its_enqueue_still_runs(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes]
) -> None:
    """A deploy made a ``def`` function ``async def`` (or back) while tasks of it waited on the
    worker of the old kind: that worker still runs them, as Django's ``Task.call``/``acall``."""
    from shop.models import Order
    from shop.tasks import notify_team, send_receipt

    order = Order.objects.create(email="kind@example.com", total=1)
    waiting = {}
    for function, worker, args in (
        (notify_team, "django:emails", ["hello"]),  # enqueued when it was a def function
        (send_receipt, "django:default:async", [order.pk]),  # when it was an async def one
    ):
        result_id = str(uuid.uuid4())
        meta = {
            "task": function.module_path,
            "args": args,
            "kwargs": {},
            "result_id": result_id,
            "backend": "default",
            "queue": function.queue_name,
            "priority": 0,
        }
        pgstask.create(worker, "run", meta, dedupe_key=f"django:{result_id}")
        waiting[function] = result_id
    for function, result_id in waiting.items():
        assert finished(pgstask, result_id).status == Status.COMPLETED, function
    assert notify_team.get_result(waiting[notify_team]).return_value == "orders: hello"
    assert send_receipt.get_result(waiting[send_receipt]).return_value["order"] == order.pk


SENDER = "pgstask.contrib.django.backend.PgstaskBackend"


def test_signals_of_a_successful_task_in_the_caller_and_in_the_daemon(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes], signals_file: Path
) -> None:
    """``task_enqueued`` in the enqueuing process when the row is inserted (here in Django's
    transaction, before its commit), ``task_started`` and ``task_finished`` in the daemon
    around the call, each with the backend's class as sender."""
    from shop.models import Order
    from shop.tasks import notify_team, send_receipt

    with transaction.atomic():
        result = send_receipt.enqueue(0)
        [enqueued] = deliveries(signals_file, result.id)
        assert enqueued["pid"] == os.getpid() and enqueued["sender"] == SENDER
        assert (enqueued["signal"], enqueued["status"], enqueued["enqueued_at"]) == (
            "enqueued",
            "READY",
            True,
        )
        transaction.set_rollback(True)  # as Django's database backend: it was sent, even so
    assert row_of(dsn, result.id) is None

    order = Order.objects.create(email="sig@example.com", total=3)
    for function, args, value in (
        (notify_team, ["hi"], "orders: hi"),  # async def: on the daemon's event loop
        (send_receipt, [order.pk], {"order": order.pk, "sent_to": "sig@example.com"}),
    ):
        done = function.enqueue(*args)
        assert finished(pgstask, done.id).status == Status.COMPLETED
        seen = deliveries(signals_file, done.id)
        assert [(d["signal"], d["status"]) for d in seen] == [
            ("enqueued", "READY"),
            ("started", "RUNNING"),
            ("finished", "SUCCESSFUL"),
        ]
        # The daemon's process (or its child: an earlier test set isolation "process").
        assert seen[0]["pid"] == os.getpid() != seen[1]["pid"] == seen[2]["pid"]
        assert all(d["sender"] == SENDER for d in seen)
        assert seen[1]["attempts"] == seen[2]["attempts"] == 1
        assert (seen[2]["return_value"], seen[2]["final"], seen[2]["finished_at"]) == (
            value,
            True,
            True,
        )


def test_task_finished_is_sent_for_each_failed_attempt(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes], signals_file: Path
) -> None:
    """Each attempt is started then finished ``FAILED`` with its own error; ``final`` (and
    ``attempts`` reaching ``MAX_ATTEMPTS``) tells the last one."""
    from shop.tasks import charge

    result = charge.enqueue(43)
    assert finished(pgstask, result.id).status == Status.FAILED
    seen = deliveries(signals_file, result.id)
    assert [(d["signal"], d["status"], d["attempts"], d["final"]) for d in seen] == [
        ("enqueued", "READY", 0, None),
        ("started", "RUNNING", 1, None),
        ("finished", "FAILED", 1, False),
        ("started", "RUNNING", 2, None),
        ("finished", "FAILED", 2, False),
        ("started", "RUNNING", 3, None),
        ("finished", "FAILED", 3, True),
    ]
    assert all(d["errors"] == ["shop.tasks.PaymentDeclined"] for d in seen[2::2])


def test_an_on_commit_enqueue_sends_task_enqueued_after_the_commit(
    dsn: str, pgstask: Client, signals_file: Path
) -> None:
    from shop.tasks import send_receipt

    with override_settings(TASKS=own_dsn(dsn)):
        with transaction.atomic():
            kept = send_receipt.enqueue(9)
            assert deliveries(signals_file, kept.id) == []  # nothing is stored yet
            assert kept.enqueued_at is None
        [enqueued] = deliveries(signals_file, kept.id)
        assert (enqueued["signal"], enqueued["sender"], enqueued["enqueued_at"]) == (
            "enqueued",
            SENDER,
            True,
        )
        assert kept.enqueued_at is not None and row_of(dsn, kept.id) is not None

        with transaction.atomic():
            dropped = send_receipt.enqueue(10)
            transaction.set_rollback(True)
        assert deliveries(signals_file, dropped.id) == []


def test_a_receiver_that_raises_changes_no_outcome(
    dsn: str, pgstask: Client, manage_daemon: subprocess.Popen[bytes], signals_file: Path
) -> None:
    """shop/receivers.py's ``explode`` raises for every signal of ``shout``: the enqueue
    returns, the task completes with its value, the other receiver still gets each signal, and
    the daemon logs what the receiver raised."""
    from shop.edge_tasks import shout

    result = shout.enqueue("hi")
    assert finished(pgstask, result.id).status == Status.COMPLETED
    assert shout.get_result(result.id).return_value == "HI"
    seen = deliveries(signals_file, result.id)
    assert [(d["signal"], d["status"]) for d in seen] == [
        ("enqueued", "READY"),
        ("started", "RUNNING"),
        ("finished", "SUCCESSFUL"),
    ]
    assert stop_process(manage_daemon) == 0
    log = (signals_file.parent / "storage" / "daemon.out").read_text()
    for name in ("task_started", "task_finished"):
        assert (
            f"a receiver of Django's {name} signal, explode, raised RuntimeError: the error "
            f"tracker is down (result {result.id} of shop.edge_tasks.shout)"
        ) in log


def test_the_docs_show_the_project_as_it_is() -> None:
    """Every python block of docs/django.md that starts with ``# <path>`` is in that file of
    the example project, as written."""
    text = (ROOT / "docs" / "django.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n# ([\w/.]+)\n(.*?)```", text, flags=re.DOTALL)
    assert {path for path, _ in blocks} >= {
        "mysite/settings.py",
        "mysite/urls.py",
        "shop/models.py",
        "shop/tasks.py",
        "shop/views.py",
    }
    for path, code in blocks:
        assert code in (PROJECT / path).read_text(encoding="utf-8"), path
