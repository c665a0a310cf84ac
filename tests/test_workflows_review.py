"""Adversarial cases of workflows (docs/workflows.md): dependencies that must hold however a
task is retried, ended or waited for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgstask.client import Client
from pgstask.settings import Settings
from pgstask.task import Status, Task
from tests.daemons import wait_for


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        yield c


def _set_status(dsn: str, task_id: int, status: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE s_tasks SET status = %s, finished_at = CASE WHEN %s >= 80 THEN now() END"
            " WHERE id = %s",
            (status, status, task_id),
        )


# --- retry -----------------------------------------------------------------------------------


def test_a_retried_waiting_task_still_waits_for_its_unfinished_parent(
    client: Client, dsn: str
) -> None:
    """A waiting task cancelled by hand and retried while its parent is still pending goes back
    to waiting, and runs only when the parent completes."""
    parent = client.create("w", "a")
    child = client.create("w", "b", depends_on=[parent])
    client.cancel(child)
    retried = client.retry(child)
    assert retried.status == Status.WAITING
    _set_status(dsn, parent.id, 80)
    assert client.get(child).status == Status.PENDING


def test_retrying_a_parent_and_then_its_cancelled_child_keeps_the_order(
    client: Client, dsn: str
) -> None:
    """The documented recovery: a parent failed and cancelled its child; retry the parent, then
    the child ("retry those too"). The child waits for the parent's new run."""
    parent = client.create("w", "a")
    child = client.create("w", "b", depends_on=[parent])
    _set_status(dsn, parent.id, 100)
    assert client.get(child).status == Status.CANCELLED
    client.retry(parent)
    assert client.retry(child).status == Status.WAITING
    _set_status(dsn, parent.id, 80)
    assert client.get(child).status == Status.PENDING


# --- ends at a trigger depth above 0 ------------------------------------------------------------


@pytest.fixture
def orders(dsn: str) -> str:
    """A table of the application whose trigger ends the task an order names (a statement at
    trigger depth 1)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int, task bigint, status smallint)")
        conn.execute(
            "CREATE FUNCTION orders_end_task() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " UPDATE s_tasks SET status = NEW.status, finished_at = now() WHERE id = NEW.task;"
            " RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER orders_end_task AFTER INSERT ON orders"
            " FOR EACH ROW EXECUTE FUNCTION orders_end_task()"
        )
    return dsn


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.CANCELLED])
def test_a_parent_ended_by_an_applications_trigger_releases_its_children(
    client: Client, orders: str, status: Status
) -> None:
    """docs/workflows.md: the rules hold "for every way a task ends". A parent completed or
    cancelled by a statement inside a trigger of the application's own table."""
    parent = client.create("w", "a")
    child = client.create("w", "b", depends_on=[parent])
    with psycopg.connect(orders, autocommit=True) as conn:
        conn.execute("INSERT INTO orders VALUES (1, %s, %s)", (parent.id, int(status)))
    assert client.get(parent).status == status
    expected = Status.PENDING if status == Status.COMPLETED else Status.CANCELLED
    assert client.get(child).status == expected


def test_an_awaited_task_ended_by_an_applications_trigger_is_announced(
    client: Client, orders: str
) -> None:
    task = client.create("w", "a")
    with psycopg.connect(orders, autocommit=True) as listener:
        listener.execute("LISTEN pgstask_finished")
        with pytest.raises(TimeoutError):
            client.wait(task, timeout=0.01)  # marks it awaited
        with psycopg.connect(orders, autocommit=True) as conn:
            conn.execute("INSERT INTO orders VALUES (1, %s, 80)", (task.id,))
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.payload for n in notes] == [str(task.id)]


# --- dedupe and notify ------------------------------------------------------------------------


def test_a_create_with_depends_on_leaves_the_notify_of_the_key_holder_alone(
    client: Client,
) -> None:
    """As a plain create does: an item whose dedupe_key is held is not created, and its notify
    targets are not written over the holder's."""
    holder = client.create("w", "a", dedupe_key="k", notify={"emails": ["holder@example.com"]})
    plain = client.create("w", "a", dedupe_key="k", notify={"emails": ["x@example.com"]})
    assert plain.id == holder.id
    assert client.get(holder).notify == {"emails": ["holder@example.com"]}
    parent = client.create("w", "p")
    linked = client.create(
        "w",
        "a",
        dedupe_key="k",
        depends_on=[parent],
        notify={"emails": ["intruder@example.com"]},
    )
    assert linked.id == holder.id
    assert client.get(holder).notify == {"emails": ["holder@example.com"]}


# --- wait ------------------------------------------------------------------------------------


def _in_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = target()
        except BaseException as exc:  # handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, name="review-wait")
    thread.start()
    return thread, out


def _blocked_on_a_lock(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return row is not None and row[0] > 0


def test_wait_keeps_its_timeout_while_a_transaction_links_a_child_to_the_task(
    settings: Settings,
) -> None:
    """A caller's transaction creates a child of the task (the link locks the parent until it
    commits). wait(timeout=0.5) on the parent raises TimeoutError meanwhile: it is not held
    for as long as that transaction lasts."""
    with Client(settings=settings) as client, psycopg.connect(str(settings.dsn)) as caller:
        parent = client.create("w", "a")
        client.create("w", "b", depends_on=[parent], conn=caller)  # not committed yet
        thread, out = _in_thread(lambda: client.wait(parent, timeout=0.5))
        thread.join(30)
        alive = thread.is_alive()
        caller.rollback()
        thread.join()
    assert not alive, "wait(timeout=0.5) was still blocked after 30 s"
    assert isinstance(out.get("error"), TimeoutError), out


def test_wait_many_is_not_aborted_by_a_deadlock_with_a_completion(settings: Settings) -> None:
    """A completion that releases two children (one transaction, parents one after the other)
    and a wait_many on those children lock them in opposite orders. The deadlock PostgreSQL
    breaks is not the waiter's error: wait_many returns the tasks once they end."""
    dsn = str(settings.dsn)
    with Client(settings=settings) as client:
        p1 = client.create("w", "a")
        p2 = client.create("w", "a")
        c2 = client.create("w", "b", depends_on=[p2])  # the lower id: marked first
        c1 = client.create("w", "b", depends_on=[p1])
        with psycopg.connect(dsn) as completer:
            completer.execute("UPDATE s_tasks SET status = 80 WHERE id = %s", (p1.id,))  # locks c1
            thread, out = _in_thread(lambda: client.wait_many([c1, c2], timeout=60))
            # It holds c2 and waits for c1, or it marked c2 and left c1 for later.
            wait_for(lambda: _blocked_on_a_lock(dsn) or _marked(dsn, [c2]))
            completer.execute("UPDATE s_tasks SET status = 80 WHERE id = %s", (p2.id,))  # wants c2
            completer.commit()
        wait_for(lambda: not thread.is_alive() or "error" in out or _marked(dsn, [c1, c2]))
        for task in (c1, c2):
            if client.get(task).status == Status.PENDING:
                client.cancel(task)
        thread.join(60)
    assert "error" not in out, out.get("error")
    assert [t.status for t in out["value"]] == [Status.CANCELLED] * 2


def _marked(dsn: str, tasks: list[Task]) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT bool_and(awaited) FROM s_tasks WHERE id = ANY(%s)", ([t.id for t in tasks],)
        ).fetchone()
    return bool(row and row[0])
