"""``AsyncClient``: the caller's transaction, waiting on a real daemon, the same rules and
answers as ``Client``, the same named queries, and docs/asyncio.md's example run as written.

Each test drives its coroutine with ``asyncio.run`` (no async test plugin)."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgstask import (
    AsyncClient,
    Client,
    Status,
    TaskNotFoundError,
    _client_rules,
    _client_workflows,
    logs,
    queries,
    sql,
    task_spec,
)
from pgstask.queries import aio
from pgstask.settings import Settings
from pgstask.workflow import Workflow
from tests.daemons import running_daemon, start_daemon_process, stop_process

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _record_runs_in_storage(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sample actions run in this process record their executions in the test's storage."""
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        yield c


def run(settings: Settings, body: Callable[[AsyncClient], Awaitable[Any]]) -> Any:
    """``body(client)`` on a fresh event loop, with an ``AsyncClient`` opened and closed."""

    async def main() -> Any:
        async with AsyncClient(settings=settings) as client:
            return await body(client)

    return asyncio.run(main())


# --- the same SQL ------------------------------------------------------------------------------


def _twins() -> dict[str, Callable[..., Any]]:
    return {
        name: f
        for name, f in inspect.getmembers(aio, inspect.iscoroutinefunction)
        if f.__module__ == aio.__name__
    }


def _keywords(function: Callable[..., Any]) -> set[str]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_every_twin_runs_the_query_of_its_wrapper_with_its_parameters() -> None:
    twins = _twins()
    assert "task_insert_many" in twins and "task_await" in twins
    for name, twin in twins.items():
        wrapper = getattr(queries, name, None)
        assert wrapper is not None, f"queries.aio.{name} twins no wrapper of pgstask.queries"
        if _keywords(twin):
            assert _keywords(twin) == _keywords(wrapper), name
        named = set(re.findall(r'"([a-z_]+)"', inspect.getsource(twin))) & set(sql.queries())
        assert named == {name}, f"queries.aio.{name} runs {named}"


_NO_FILTER: dict[str, Any] = dict.fromkeys(
    ("status", "identifier", "action", "priority", "concurrency_key", "created_from")
) | {"created_to": None, "before_id": None}


@pytest.mark.parametrize(
    ("wrapper", "columns"),
    [
        # Both clients give the insert its trace context beside the columns (pgstask.telemetry).
        (queries.task_insert_many, {*task_spec.columns([]), "trace_context"}),
        (queries.task_replace_many, {*task_spec.columns([]), "trace_context"}),
        (queries.log_insert_many, set(logs.columns([]))),
        (queries.task_list, set(_client_rules.list_filters(**_NO_FILTER, limit=1))),
    ],
)
def test_shared_columns_are_the_parameters_of_the_wrapper(
    wrapper: Callable[..., Any], columns: set[str]
) -> None:
    """The twins that take ``**columns`` are given what the sync client gives the wrapper."""
    assert columns == _keywords(wrapper)


def test_linked_columns_are_the_parameters_of_task_insert_linked() -> None:
    flow = Workflow()
    flow.add("sample", "noop")
    columns = _client_workflows.linked_columns(flow, [0], [None])
    assert set(columns) == _keywords(queries.task_insert_linked)


# --- creating ------------------------------------------------------------------------------


def test_create_in_a_rolled_back_transaction_creates_nothing(
    settings: Settings, client: Client
) -> None:
    async def body(ac: AsyncClient) -> tuple[int, int]:
        async with await psycopg.AsyncConnection.connect(str(settings.dsn)) as conn:
            rolled_back = await ac.create("sample", "noop", conn=conn)
            await conn.rollback()
            kept = await ac.create("sample", "noop", {"k": 1}, conn=conn)
            await conn.commit()
        return rolled_back.id, kept.id

    rolled_back, kept = run(settings, body)
    with pytest.raises(TaskNotFoundError):
        client.get(rolled_back)
    assert client.get(kept).meta == {"k": 1}
    assert [t.id for t in client.list()] == [kept]


def test_a_workflow_in_a_rolled_back_transaction_creates_nothing(
    settings: Settings, client: Client
) -> None:
    async def body(ac: AsyncClient) -> None:
        async with await psycopg.AsyncConnection.connect(str(settings.dsn)) as conn:
            created = await ac.create_many(
                [
                    {"ref": "a", "identifier": "sample", "action": "noop"},
                    {"identifier": "sample", "action": "noop", "depends_on": ["a"]},
                ],
                conn=conn,
            )
            assert [t.status for t in created] == [Status.PENDING, Status.WAITING]
            await conn.rollback()

    run(settings, body)
    assert client.list() == []


def test_create_many_dedupe_and_workflow_answer_as_the_client_does(
    settings: Settings, client: Client
) -> None:
    async def body(ac: AsyncClient) -> dict[str, Any]:
        first = await ac.create("sample", "noop", dedupe_key="k")
        again = await ac.create("sample", "noop", dedupe_key="k")
        many = await ac.create_many(
            [{"identifier": "sample", "action": "noop", "data": {"i": i}} for i in range(3)],
            returning="ids",
        )
        flow = Workflow()
        head = flow.add("sample", "noop")
        flow.add("sample", "noop", depends_on=[head])
        linked = await ac.create_workflow(flow)
        child = await ac.create("sample", "noop", depends_on=[linked[1]])
        return {"first": first, "again": again, "many": many, "linked": linked, "child": child}

    got = run(settings, body)
    assert got["again"].id == got["first"].id
    assert [client.get(i).meta for i in got["many"]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert [t.status for t in got["linked"]] == [Status.PENDING, Status.WAITING]
    assert client.parents(got["linked"][1]) == [client.get(got["linked"][0])]
    assert got["child"].status == Status.WAITING
    assert got["child"].depends_on == [got["linked"][1].id]


def test_notify_targets_are_written_with_the_tasks(settings: Settings, client: Client) -> None:
    client.add_webhook("ops", "https://hooks.example.com/x")
    targets = {"webhooks": ["ops"], "on": ["failed"]}

    async def body(ac: AsyncClient) -> list[Any]:
        one = await ac.create("sample", "noop", notify=targets)
        linked = await ac.create("sample", "noop", depends_on=[one], notify=targets)
        many = await ac.create_many(
            [
                {"identifier": "sample", "action": "noop", "notify": targets},
                {"identifier": "sample", "action": "noop"},
            ]
        )
        return [one, linked, *many]

    created = run(settings, body)
    assert [client.get(t).notify for t in created] == [t.notify for t in created]
    assert [t.notify is not None for t in created] == [True, True, True, False]


# --- the same rules -------------------------------------------------------------------------

_ITEM = {"identifier": "sample", "action": "noop"}

#: (method, args, kwargs): calls both clients refuse, with the same error and message.
BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("create", ("sample", "noop"), {"priority": "urgent"}),
    ("create", ("sample", "noop"), {"max_attempts": 0}),
    ("create", ("sample", "noop", "not an object"), {}),
    ("create", ("", "noop"), {}),
    ("create", ("sample", "noop"), {"throttle": 5}),
    ("create", ("sample", "noop"), {"depends_on": [1], "replace": True, "dedupe_key": "k"}),
    ("create", ("sample", "noop"), {"depends_on": [10**6]}),
    ("create", ("sample", "noop"), {"on_parent_failure": "explode", "depends_on": []}),
    ("create", ("sample", "noop"), {"notify": {"webhooks": ["nobody"]}}),
    ("create", ("sample", "noop"), {"notify": {"nonsense": 1}}),
    ("create_many", ([{"identifier": "sample", "action": "noop"}],), {"returning": "rows"}),
    ("create_many", ([{"identifier": "sample"}],), {}),
    ("create_many", ([{"identifier": "sample", "action": "noop", "depends_on": ["x"]}],), {}),
    ("create_workflow", ([{"ref": "a", **_ITEM, "depends_on": ["a"]}],), {}),
    ("list", (), {"status": "sleeping"}),
    ("list", (), {"limit": 0}),
    ("list", (), {"priority": "urgent"}),
    ("get", ("7",), {}),
    ("get", (10**6,), {}),
    ("cancel", (10**6,), {}),
    ("retry", (10**6,), {}),
    ("wait", (1,), {"timeout": -1}),
    ("wait", (1,), {"poll": 0}),
    ("wait", (10**6,), {"timeout": 5}),
    ("logs", (1,), {"limit": -1}),
]


def assert_same_error(
    settings: Settings, client: Client, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """``client.<method>(*args, **kwargs)`` and the ``AsyncClient``'s raise the same error, with
    the same message."""
    with pytest.raises(Exception) as sync_raised:
        getattr(client, method)(*args, **kwargs)

    async def body(ac: AsyncClient) -> None:
        await getattr(ac, method)(*args, **kwargs)

    with pytest.raises(Exception) as async_raised:
        run(settings, body)
    assert type(async_raised.value) is type(sync_raised.value)
    assert str(async_raised.value) == str(sync_raised.value)


@pytest.mark.parametrize(("method", "args", "kwargs"), BAD_CALLS)
def test_bad_input_raises_the_same_error_as_the_client(
    settings: Settings,
    client: Client,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    assert_same_error(settings, client, method, args, kwargs)


def test_a_finished_task_is_refused_by_cancel_and_a_pending_one_by_retry_as_by_the_client(
    settings: Settings, client: Client
) -> None:
    pending = client.create("sample", "noop")
    cancelled = client.create("sample", "noop")
    client.cancel(cancelled)
    for method, task in (("cancel", cancelled), ("retry", pending)):
        with pytest.raises(Exception) as sync_raised:
            getattr(client, method)(task)

        async def body(ac: AsyncClient, method: str = method, task: Any = task) -> None:
            await getattr(ac, method)(task)

        with pytest.raises(Exception) as async_raised:
            run(settings, body)
        assert (type(async_raised.value), str(async_raised.value)) == (
            type(sync_raised.value),
            str(sync_raised.value),
        )


# --- reading, changing, waiting ------------------------------------------------------------


def test_reads_answer_as_the_client_does(settings: Settings, client: Client) -> None:
    task = client.create("sample", "noop", {"a": 1}, priority="high")
    client.log(task, "error", "went wrong", step=2)

    async def body(ac: AsyncClient) -> dict[str, Any]:
        return {
            "get": await ac.get(task.id),
            "list": await ac.list(priority="high", status="pending"),
            "stats": await ac.stats(),
            "progress": await ac.progress(task),
            "logs": await ac.logs(task),
            "errors": await ac.error_logs(task.id),
        }

    got = run(settings, body)
    assert got["get"] == client.get(task)
    assert got["list"] == client.list(priority="high", status="pending") == [got["get"]]
    assert got["stats"] == client.stats()
    assert got["progress"] == client.progress(task)
    assert got["logs"] == client.logs(task) == got["errors"]


def test_cancel_and_retry(settings: Settings, client: Client) -> None:
    task = client.create("sample", "noop")

    async def body(ac: AsyncClient) -> tuple[Any, Any]:
        return await ac.cancel(task, "no longer needed"), await ac.retry(task)

    cancelled, retried = run(settings, body)
    assert cancelled.status == Status.CANCELLED and cancelled.message == "no longer needed"
    assert retried.status == Status.PENDING
    record = client.logs(task)[-1]
    assert (record.level, record.message) == ("warning", "no longer needed")
    assert record.context == {"previous_status": "pending"}


def test_wait_returns_when_a_daemon_completes_the_task(settings: Settings, client: Client) -> None:
    async def body(ac: AsyncClient) -> list[Any]:
        one = await ac.create("sample", "noop")
        flow = Workflow()
        head = flow.add("sample", "noop")
        flow.add("sample", "give_up", depends_on=[head])
        more = await ac.create_workflow(flow)
        done = await ac.wait(one, timeout=60)
        return [done, *await ac.wait_many([more[1], more[0], one], timeout=60)]

    daemon = start_daemon_process(settings)  # a real `pgstask daemon`
    try:
        done, failed, head, one = run(settings, body)
    finally:
        stop_process(daemon)
    assert done.status == one.status == Status.COMPLETED
    assert head.status == Status.COMPLETED
    assert failed.status == Status.FAILED
    assert client.get(done).awaited


def test_wait_raises_timeout_error_for_a_task_nobody_runs(settings: Settings) -> None:
    async def body(ac: AsyncClient) -> None:
        task = await ac.create("sample", "noop")
        await ac.wait(task, timeout=0.2, poll=0.05)

    with pytest.raises(TimeoutError, match=r"1 task\(s\) did not end within 0.2 s .* pending"):
        run(settings, body)


def test_a_cancelled_wait_gives_its_connection_back(settings: Settings) -> None:
    async def main() -> Any:
        async with (
            AsyncClient(settings=settings, max_size=1) as ac,
            await psycopg.AsyncConnection.connect(str(settings.dsn), autocommit=True) as probe,
        ):
            task = await ac.create("sample", "noop")
            waiter = asyncio.create_task(ac.wait(task))

            async def awaited() -> bool:
                cur = await probe.execute("SELECT awaited FROM s_tasks WHERE id = %s", (task.id,))
                row = await cur.fetchone()
                return bool(row and row[0])

            while not await awaited():  # until the waiter holds the pool's one connection
                await asyncio.sleep(0.01)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            return await ac.get(task)  # the one connection is back in the pool

    assert asyncio.run(main()).status == Status.PENDING


# --- docs/asyncio.md -------------------------------------------------------------------------


def python_blocks(doc: str) -> list[str]:
    """The fenced ``python`` blocks of a page of docs/."""
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_asyncio_page_example_runs(
    settings: Settings, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSTASK_DSN", str(settings.dsn))
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    blocks = python_blocks("asyncio.md")
    assert blocks, "docs/asyncio.md has no python example"
    namespace: dict[str, Any] = {"__name__": "docs_asyncio"}
    exec(compile(blocks[0], "docs/asyncio.md", "exec"), namespace)
    with running_daemon(settings, modules=("pgstask.workers.examples",)):
        result = asyncio.run(namespace["main"]())
    assert result == "completed"
    assert {t.identifier for t in client.list()} == {"demo"}  # the rolled-back one is not there
