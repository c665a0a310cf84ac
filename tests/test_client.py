"""The client facade, retries and bad input (items 7, 8)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgstask import Client, InvalidTaskError, Status, TaskNotFoundError, TaskStateError
from pgstask._copy import COPY_FROM
from pgstask.retry import backoff
from pgstask.settings import Settings
from tests.daemons import executions, running_daemon, wait_for


@pytest.fixture(autouse=True)
def _record_runs_in_storage(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sample actions run in this process record their executions in the test's storage."""
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0.01, max_value=60),
    factor=st.floats(min_value=1, max_value=1000),
    r=st.floats(min_value=0, max_value=1),
)
def test_backoff_is_bounded_and_grows(attempt: int, base: float, factor: float, r: float) -> None:
    maximum = base * factor
    delay = backoff(attempt, base=base, maximum=maximum, rand=lambda: r)
    assert base * 0.75 - 1e-9 <= delay <= maximum + 1e-9
    if attempt > 1:
        assert backoff(attempt, base=base, maximum=maximum, rand=lambda: 0.5) >= backoff(
            attempt - 1, base=base, maximum=maximum, rand=lambda: 0.5
        )


def test_create_in_the_callers_transaction(settings: Settings) -> None:
    with Client(settings=settings) as client, psycopg.connect(settings.dsn or "") as conn:
        rolled_back = client.create("sample", "noop", conn=conn)
        conn.rollback()
        kept = client.create("sample", "noop", {"k": 1}, conn=conn)
        conn.commit()
        with pytest.raises(TaskNotFoundError):
            client.get(rolled_back.id)
        assert client.get(kept.id).meta == {"k": 1}
        with running_daemon(settings):
            wait_for(lambda: client.get(kept).status == Status.COMPLETED)
        assert [e[0] for e in executions(settings)] == [kept.id]


def test_bulk_create_stats_and_pending_order(settings: Settings) -> None:
    settings = settings.replace(worker_modules=("tests.sample_workers",))
    with Client(settings=settings) as client:
        tasks = client.create_many(
            [
                {"identifier": "sample", "action": "noop", "priority": p}
                for p in ("low", "high", "normal")
            ]
            + [{"identifier": "x", "action": "y", "data": {"i": 1}, "max_attempts": 5}]
        )
        assert [t.priority for t in tasks] == ["low", "high", "normal", "normal"]
        assert tasks[3].max_attempts == 5 and tasks[3].meta == {"i": 1}
        assert [t.priority for t in client.pending_tasks(3)] == ["high", "normal", "normal"]
        stats = client.stats()
        assert stats["pending"] == 4 and stats["total"] == 4 and stats["completed"] == 0
        assert client.process_pending_tasks(batch_size=2) == 2
        assert client.stats()["completed"] == 2
        listed = client.list(status="completed")
        assert {t.priority for t in listed} == {"high", "normal"}
        page = client.list(limit=2)
        assert client.list(before_id=page[-1].id, limit=10)[0].id < page[-1].id


def test_execute_runs_one_task_now_even_if_scheduled_later(settings: Settings) -> None:
    settings = settings.replace(worker_modules=("tests.sample_workers",))
    with Client(settings=settings) as client:
        later = client.create(
            "sample", "noop", start_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        )
        assert client.execute(later) is True
        assert client.get(later).status == Status.COMPLETED
        with pytest.raises(TaskStateError, match="only pending tasks"):
            client.execute(later)


def test_failures_retry_with_backoff_then_fail(settings: Settings) -> None:
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("sample", "fail", {"error": "bad row"}, max_attempts=3)
        final_at_once = client.create("sample", "give_up")
        wait_for(
            lambda: (
                client.get(task).status == Status.FAILED and client.get(final_at_once).is_finished
            )
        )
        failed = client.get(task)
        assert failed.attempts == 3 and failed.message == "Failed: RuntimeError: bad row"
        gave_up = client.get(final_at_once)
        assert gave_up.status == Status.FAILED and gave_up.attempts == 1
        assert gave_up.message == "gave up on purpose"
        retried = client.retry(task)
        assert retried.status == Status.PENDING and retried.attempts == 0
        wait_for(
            lambda: client.get(task).status == Status.FAILED and client.get(task).attempts == 3
        )
    assert sorted(a for t, a, _ in executions(settings) if t == task.id) == [1, 1, 2, 2, 3, 3]


def test_retry_and_cancel_refuse_the_wrong_states(settings: Settings) -> None:
    with Client(settings=settings) as client:
        task = client.create("sample", "noop")
        with pytest.raises(TaskStateError, match="only failed or cancelled"):
            client.retry(task)
        client.cancel(task)
        with pytest.raises(TaskStateError, match="already cancelled"):
            client.cancel(task)
        assert client.retry(task).status == Status.PENDING
        with pytest.raises(TaskNotFoundError):
            client.cancel(999_999)


def test_clean_old_tasks_removes_finished_ones_with_their_logs(settings: Settings) -> None:
    with Client(settings=settings) as client:
        old, recent, pending = (client.create("sample", "noop") for _ in range(3))
        client.cancel(old)
        client.cancel(recent)
        with client.connection() as conn:
            conn.execute(
                "UPDATE s_tasks SET finished_at = now() - interval '31 days' WHERE id = %s",
                (old.id,),
            )
        assert client.clean_old_tasks(30) == 1
        with pytest.raises(TaskNotFoundError):
            client.get(old)
        assert client.get(recent).status == Status.CANCELLED
        assert client.get(pending).status == Status.PENDING


def test_dedupe_key_returns_the_incomplete_task(settings: Settings) -> None:
    with Client(settings=settings) as client:
        first = client.create("sample", "noop", dedupe_key="nightly")
        assert client.create("sample", "noop", dedupe_key="nightly").id == first.id
        client.cancel(first)
        assert client.create("sample", "noop", dedupe_key="nightly").id != first.id


def test_concurrency_key_is_stored_and_filtered_on_by_every_create_path(settings: Settings) -> None:
    """create, create_many through INSERT (a small batch) and through COPY (a large one, with
    tasks and with ids) all store the key; list filters on it."""
    with Client(settings=settings) as client:
        single = client.create("w", "a", concurrency_key="tenant-1")
        small = client.create_many(
            [{**OK_ITEM, "concurrency_key": "tenant-1"}, {**OK_ITEM, "concurrency_key": None}]
        )
        large = client.create_many(
            [{**OK_ITEM, "concurrency_key": f"tenant-{i % 2}"} for i in range(COPY_FROM)]
        )
        ids = client.create_many(
            [{**OK_ITEM, "concurrency_key": "tenant-1"}] * COPY_FROM, returning="ids"
        )
        assert [t.concurrency_key for t in [single, *small]] == ["tenant-1", "tenant-1", None]
        for task in [single, *small, *large]:
            assert client.get(task) == task
        assert {client.get(i).concurrency_key for i in ids} == {"tenant-1"}
        assert client.get(single).to_dict()["concurrency_key"] == "tenant-1"
        listed = client.list(concurrency_key="tenant-1", limit=1000)
        expected = {single.id, small[0].id, *ids, *(t.id for t in large[1::2])}
        assert {t.id for t in listed} == expected
        assert client.list(concurrency_key="nobody") == []


def test_a_bad_key_stored_by_sql_is_refused_with_the_constraint_named(settings: Settings) -> None:
    """A blank or too long key from plain SQL fails on s_tasks_concurrency_key_check; through
    the client's connection it is an InvalidTaskError that names it."""
    with Client(settings=settings) as client:
        for key in ("", " \t", "k" * 256):
            with (
                pytest.raises(InvalidTaskError, match=r"s_tasks_concurrency_key_check.*23514"),
                client.connection() as conn,
            ):
                conn.execute(
                    "INSERT INTO s_tasks (identifier, action, concurrency_key)"
                    " VALUES ('w', 'a', %s)",
                    (key,),
                )
        assert client.stats()["total"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identifier": "", "action": "a"}, "identifier must be a non-empty string"),
        ({"identifier": "w", "action": None}, "action must be a non-empty string"),
        ({"identifier": "w", "action": "a", "data": [1]}, "data must be a JSON object"),
        ({"identifier": "w", "action": "a", "data": {"x": object()}}, "not JSON-serialisable"),
        ({"identifier": "w", "action": "a", "data": {"x": float("nan")}}, "not JSON-serialisable"),
        ({"identifier": "w", "action": "a", "data": {"x": "a\x00b"}}, "NUL"),
        ({"identifier": "w", "action": "a", "data": {"x": "caf\udce9"}}, "lone surrogate"),
        ({"identifier": "w", "action": "a", "data": {"x": "y" * 1_100_000}}, "larger than"),
        ({"identifier": "w", "action": "a", "priority": "urgent"}, "unknown priority"),
        ({"identifier": "w", "action": "a", "max_attempts": 0}, "between 1 and 1000"),
        # Longer keys could pass the row limit of the unique index (a database error).
        ({"identifier": "w", "action": "a", "dedupe_key": "k" * 256}, "longer than 255"),
        ({"identifier": "w", "action": "a", "concurrency_key": ""}, "concurrency_key must not"),
        ({"identifier": "w", "action": "a", "concurrency_key": " \t"}, "empty or blank"),
        ({"identifier": "w", "action": "a", "concurrency_key": "k" * 256}, "longer than 255"),
        ({"identifier": "w", "action": "a", "concurrency_key": 7}, "must be a string, not int"),
        ({"identifier": "w", "action": "a", "start_at": dt.datetime(2030, 1, 1)}, "timezone-aware"),
        ({"identifier": "w", "action": "a", "user_id": "7"}, "user_id must be a whole number"),
        ({"identifier": "w", "action": "a", "user_id": 2**63}, "user_id is out of range"),
    ],
)
def test_bad_input_is_rejected_and_nothing_is_created(
    settings: Settings, kwargs: dict[str, object], message: str
) -> None:
    with Client(settings=settings) as client:
        identifier, action = kwargs.pop("identifier"), kwargs.pop("action")
        with pytest.raises(InvalidTaskError, match=message):
            client.create(identifier, action, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidTaskError, match=r"task #1: .*" + message):
            client.create_many(
                [
                    {"identifier": "w", "action": "ok"},
                    {"identifier": identifier, "action": action, **kwargs},
                ]
            )
        # A batch large enough for COPY (unless the bad item has a dedupe_key) is validated as
        # it is sent: the COPY is aborted, and a caller's transaction stays usable.
        batch = [{"identifier": "w", "action": "ok"}] * COPY_FROM
        batch.append({"identifier": identifier, "action": action, **kwargs})
        with pytest.raises(InvalidTaskError, match=rf"task #{COPY_FROM}: .*" + message):
            client.create_many(batch, returning="ids")
        with psycopg.connect(settings.dsn or "") as conn:
            with pytest.raises(InvalidTaskError, match=rf"task #{COPY_FROM}: .*" + message):
                client.create_many(batch, conn=conn)
            kept = client.create("w", "after", conn=conn)
            conn.commit()
        assert [t.id for t in client.list()] == [kept.id]


def test_created_tasks_are_what_the_database_holds(settings: Settings) -> None:
    """Every field of the tasks create/create_many return equals the stored row's."""
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with Client(settings=settings) as client:
        single = client.create(
            "w",
            "a",
            {"b": [1, 2.5, None, True], "a": {"z": "é"}, "n": 10**20},
            priority="high",
            start_at=when,
            max_attempts=7,
            user_id=42,
            dedupe_key="k-1",
            concurrency_key="tenant-1",
        )
        many = client.create_many(
            [
                {"identifier": "w", "action": "x", "dedupe_key": "k-1"},  # taken: skipped
                {"identifier": "w", "action": "y", "data": {"i": 1}, "concurrency_key": "t 2"},
                {"identifier": "w", "action": "z", "dedupe_key": "k-2", "priority": "low"},
                {"identifier": "w", "action": "z", "dedupe_key": "k-2"},  # taken by the one before
                {"identifier": "w", "action": "q"},
            ]
        )
        assert [t.action for t in many] == ["y", "z", "q"]
        for task in [single, *many]:
            assert client.get(task) == task
        assert [t.concurrency_key for t in [single, *many]] == ["tenant-1", "t 2", None, None]


def test_a_large_batch_goes_through_copy_and_stores_what_it_returns(
    settings: Settings, dsn: str
) -> None:
    """From COPY_FROM tasks without a dedupe_key, create_many builds the tasks itself (COPY has
    no RETURNING): each must equal its stored row, whatever the texts hold (COPY's text format
    escapes tabs, newlines and backslashes), and the whole batch wakes daemons once."""
    paris = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2030, 5, 1, 12, 30, 15, 123456, tzinfo=paris)
    odd = "tab\there, newline\nthere, backslash \\N \\. \r end é 🚀"
    items = [
        {
            "identifier": f"w{i % 3}",
            "action": odd if i == 7 else f"a{i}",
            "data": {"i": i, "text": odd, "nested": {"b": [1, 2.5, None, True]}, "n": 10**20},
            "priority": ("low", "normal", "high")[i % 3],
            "start_at": when if i % 2 else None,
            "max_attempts": 1 + i % 5,
            "user_id": i if i % 4 else None,
            "concurrency_key": odd if i == 7 else f"tenant-{i % 3}" if i % 4 == 0 else None,
        }
        for i in range(COPY_FROM)
    ]
    with Client(settings=settings) as client, psycopg.connect(dsn, autocommit=True) as listening:
        listening.execute("LISTEN pgstask_tasks")
        created = client.create_many(items)
        got = [n.payload for n in listening.notifies(timeout=5, stop_after=2)]
        assert got == [""]
        assert [t.id for t in created] == sorted(t.id for t in created)
        assert [t.meta["i"] for t in created] == list(range(COPY_FROM))
        stored = {t.id: t for t in client.list(limit=1000)}
        assert len(stored) == COPY_FROM
        for task in created:
            assert stored[task.id] == task
            assert task.to_dict() == stored[task.id].to_dict()  # same offsets, same texts
        assert created[7].action == odd and created[1].start_at == when
        assert created[7].concurrency_key == odd and created[8].concurrency_key == "tenant-2"
        one = client.create("w", "a")  # the INSERT path: what differs is only what was asked
        assert (
            dataclasses.replace(
                created[2],
                id=one.id,
                identifier="w",
                action="a",
                meta={},
                max_attempts=3,
                priority="normal",
                started_by=None,
                created_at=one.created_at,
                updated_at=one.updated_at,
                start_at=one.start_at,
            )
            == one
        )


def test_a_copy_batch_in_the_callers_transaction_rolls_back_with_it(settings: Settings) -> None:
    items = [{"identifier": "w", "action": "a"}] * COPY_FROM
    with Client(settings=settings) as client, psycopg.connect(settings.dsn or "") as conn:
        created = client.create_many(items, conn=conn)
        assert len(created) == COPY_FROM
        conn.rollback()
        assert client.stats()["total"] == 0
        kept = client.create_many(items, conn=conn)
        conn.commit()
        assert {t.id for t in client.list(limit=1000)} == {t.id for t in kept}


def test_create_many_can_return_only_the_ids(settings: Settings) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    items = [
        {
            "identifier": "w",
            "action": f"a{i}",
            "data": {"i": i, "t": "tab\there"},
            "priority": ("low", "high")[i % 2],
            "start_at": when if i % 3 == 0 else None,
            "max_attempts": 1 + i % 4,
            "user_id": i,
            "concurrency_key": f"k{i % 2}" if i % 3 else None,
        }
        for i in range(COPY_FROM + 5)
    ]
    with Client(settings=settings) as client:
        ids = client.create_many(items, returning="ids")  # through COPY
        assert len(ids) == len(items) and ids == sorted(ids)
        for task_id, item in zip(ids, items, strict=True):
            task = client.get(task_id)
            assert (task.identifier, task.action, task.meta) == ("w", item["action"], item["data"])
            assert (task.priority, task.max_attempts, task.started_by, task.status) == (
                item["priority"],
                item["max_attempts"],
                item["user_id"],
                Status.PENDING,
            )
            assert task.concurrency_key == item["concurrency_key"]
            assert task.start_at == item["start_at"] or (
                item["start_at"] is None and task.start_at == task.created_at
            )
        small = [
            {"identifier": "w", "action": "x", "dedupe_key": "k"},
            {"identifier": "w", "action": "y", "dedupe_key": "k"},  # taken by the one before
            {"identifier": "w", "action": "z"},
        ]
        got = client.create_many(small, returning="ids")  # through INSERT: dedupe applies
        assert [client.get(i).action for i in got] == ["x", "z"]
        with pytest.raises(InvalidTaskError, match="returning must be"):
            client.create_many(small, returning="rows")  # type: ignore[call-overload]
        assert client.stats()["total"] == len(items) + 2


OK_ITEM = {"identifier": "w", "action": "ok"}


def test_a_copy_batch_returns_meta_as_jsonb_gives_it_back(settings: Settings) -> None:
    """jsonb stores numbers as numeric (1e23 comes back as an integer) and orders keys shorter
    first: the tasks a COPY batch returns must equal the stored rows, JSON output included."""
    data = {"bb": {"yy": 1, "x": 2}, "a": [1e23, 1e16, 1.5e-7, 150.0, -0.0, 1e308, 2.5, 10**30]}
    with Client(settings=settings) as client:
        via_insert = client.create_many([{**OK_ITEM, "data": data}])[0]
        via_copy = client.create_many([{**OK_ITEM, "data": data}] * COPY_FROM)[0]
        for task in (via_insert, via_copy):
            stored = client.get(task)
            assert stored == task
            assert json.dumps(stored.to_dict()["meta"]) == json.dumps(task.to_dict()["meta"])


@pytest.mark.parametrize("field", ["identifier", "action", "dedupe_key", "concurrency_key"])
@pytest.mark.parametrize(("text", "message"), [("a\x00b", "NUL"), ("caf\udce9", "lone surrogate")])
@pytest.mark.parametrize("n", [1, COPY_FROM + 1])
def test_text_a_column_cannot_store_is_named_with_its_task(
    settings: Settings, field: str, text: str, message: str, n: int
) -> None:
    with Client(settings=settings) as client:
        with pytest.raises(InvalidTaskError, match=rf"task #{n - 1}: {field} .*{message}"):
            client.create_many([*[OK_ITEM] * (n - 1), {**OK_ITEM, field: text}])
        assert client.stats()["total"] == 0


@pytest.mark.parametrize(
    "start_at",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=3))),
        dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
        # stored, each would be read back out of range in some time zone
        dt.datetime(1, 1, 1, 12, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 1, tzinfo=dt.UTC),
    ],
)
def test_a_start_at_out_of_range_is_refused_and_nothing_is_stored(
    settings: Settings, start_at: dt.datetime
) -> None:
    with Client(settings=settings) as client:
        with pytest.raises(
            InvalidTaskError, match="start_at must lie between 0001-01-02 and 9999-12-30 UTC"
        ):
            client.create("w", "a", start_at=start_at)
        with pytest.raises(
            InvalidTaskError, match="start_at must lie between 0001-01-02 and 9999-12-30 UTC"
        ):
            client.create_many([*[OK_ITEM] * COPY_FROM, {**OK_ITEM, "start_at": start_at}])
        assert client.list() == []


def _nested(depth: int) -> dict[str, Any]:
    """A dict with ``depth`` levels of containers (the dict itself is the first)."""
    inner: Any = 1
    for _ in range(depth - 1):
        inner = [inner]
    return {"x": inner}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_nested(101), "data is nested more than 100 levels deep"),
        (_nested(5000), "data is nested more than 100 levels deep"),
        ({"n": 10**400}, "data holds a number beyond a double's range"),
        ({"deep": [{"n": -(10**309)}]}, "data holds a number beyond a double's range"),
    ],
)
def test_data_that_could_not_be_read_back_is_refused(
    settings: Settings, data: dict[str, Any], message: str
) -> None:
    with Client(settings=settings) as client:
        with pytest.raises(InvalidTaskError, match=message):
            client.create("w", "a", data)
        with pytest.raises(InvalidTaskError, match=message):
            client.create_many([*[OK_ITEM] * COPY_FROM, {**OK_ITEM, "data": data}])
        assert client.list() == []
        accepted = client.create("w", "a", {**_nested(100), "n": 10**300})
        assert client.get(accepted).meta["n"] == 10**300


def test_an_unknown_field_that_is_not_a_string_is_named(settings: Settings) -> None:
    with (
        Client(settings=settings) as client,
        pytest.raises(InvalidTaskError, match="unknown field"),
    ):
        client.create_many([{**OK_ITEM, 1: "x"}])  # type: ignore[dict-item]


def test_a_role_without_the_sequence_still_creates_large_batches(settings: Settings) -> None:
    """An identity column's default needs only INSERT on the table, the COPY path's id
    reservation the sequence too: without it, create_many inserts the batch instead."""
    dsn = settings.dsn or ""
    role = f"pgstask_app_{secrets.token_hex(4)}"
    ident = sql.Identifier(role)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
        admin.execute(sql.SQL("GRANT SELECT, INSERT ON s_tasks TO {}").format(ident))
    try:
        app = settings.replace(dsn=make_conninfo(dsn, user=role))
        with Client(settings=app) as client, psycopg.connect(app.dsn or "") as conn:
            ids = client.create_many([OK_ITEM] * COPY_FROM, returning="ids")
            tasks = client.create_many([OK_ITEM] * COPY_FROM, conn=conn)
            conn.commit()
            assert len(ids) == len(tasks) == COPY_FROM
        with psycopg.connect(dsn) as admin:
            assert admin.execute("SELECT count(*) FROM s_tasks").fetchone() == (2 * COPY_FROM,)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            admin.execute(sql.SQL("DROP ROLE {}").format(ident))
