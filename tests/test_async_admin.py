"""``AsyncClient``'s workflow reads, files, presets, schedules, workers, daemons and webhooks:
each against the real database, its answer compared with ``Client``'s for the same state, and
each bad call refused with the same error and message as ``Client``'s."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgstask import AsyncClient, Client, files
from pgstask.errors import TaskFileNotFoundError
from pgstask.settings import Settings
from pgstask.workflow import Workflow
from tests.test_async_client import assert_same_error, run

#: A result file of two full chunks and a part of a third.
BYTES = bytes(range(256)) * (files.CHUNK_SIZE * 5 // 2 // 256)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        c.discover_workers(["tests.sample_workers"])
        yield c


class State:
    """What the tests read, made through ``Client``."""

    def __init__(self, client: Client, settings: Settings) -> None:
        flow = Workflow()
        head = flow.add("sample", "noop")
        flow.add("sample", "noop", depends_on=[head])
        self.head, self.tail = client.create_workflow(flow)
        client.log(self.head, "info", "one")
        client.log(self.head, "error", "two", step=2)
        self.file = client.store_file(self.tail, io.BytesIO(BYTES), filename="report.bin")
        client.add_preset("export", "sample", "noop", {"a": 1, "b": 2}, priority="high")
        client.add_preset("gone", "sample", "noop")
        client.add_schedule("nightly", "sample", {"action": "noop", "cron": "0 3 * * *"})
        client.add_schedule("of-preset", None, {"preset": "export", "cron": "@hourly"})
        client.add_schedule("orphan", None, {"preset": "gone", "cron": "@hourly"})
        client.remove_preset("gone")
        client.add_schedule("coded", "sample", {"action": "noop", "cron": "@daily"})
        with psycopg.connect(str(settings.dsn), autocommit=True) as conn:
            conn.execute("UPDATE s_schedules SET origin = 'code' WHERE name = 'coded'")
        client.add_webhook("ops", "https://hooks.example.com/ops", events=["failed"])


@pytest.fixture
def state(client: Client, settings: Settings) -> State:
    return State(client, settings)


# --- reading -----------------------------------------------------------------------------


def test_reads_answer_as_the_client_does(settings: Settings, client: Client, state: State) -> None:
    async def body(ac: AsyncClient) -> dict[str, Any]:
        return {
            "parents": await ac.parents(state.tail),
            "children": await ac.children(state.head.id),
            "workflow_of": await ac.workflow_of(state.tail),
            "presets": await ac.presets(),
            "preset": await ac.preset("export"),
            "schedules": await ac.schedules(),
            "schedule": await ac.schedule("of-preset"),
            "workers": await ac.workers(),
            "active": await ac.workers(active_only=True),
            "worker": await ac.worker("sample"),
            "daemons": await ac.daemons(),
            "webhooks": await ac.webhooks(),
            "webhook": await ac.webhook("ops"),
            "result_file": await ac.result_file(state.tail),
            "file": await ac.file(state.file.id),
        }

    got = run(settings, body)
    assert got == {
        "parents": client.parents(state.tail),
        "children": client.children(state.head.id),
        "workflow_of": client.workflow_of(state.tail),
        "presets": client.presets(),
        "preset": client.preset("export"),
        "schedules": client.schedules(),
        "schedule": client.schedule("of-preset"),
        "workers": client.workers(),
        "active": client.workers(active_only=True),
        "worker": client.worker("sample"),
        "daemons": client.daemons(),
        "webhooks": client.webhooks(),
        "webhook": client.webhook("ops"),
        "result_file": client.result_file(state.tail),
        "file": client.file(state.file.id),
    }
    assert got["parents"] == [state.head] and got["result_file"] == state.file
    assert [s["name"] for s in got["schedules"]] == ["coded", "nightly", "of-preset", "orphan"]


def test_read_file_streams_the_chunks_client_reads(
    settings: Settings, client: Client, state: State
) -> None:
    async def body(ac: AsyncClient) -> tuple[list[bytes], list[bytes]]:
        by_info = [chunk async for chunk in await ac.read_file(state.file)]
        by_id = [chunk async for chunk in await ac.read_file(state.file.id)]
        return by_info, by_id

    by_info, by_id = run(settings, body)
    assert by_info == by_id == list(client.read_file(state.file))
    assert len(by_info) == 3 and b"".join(by_info) == BYTES


def test_a_file_read_gives_its_connection_back_between_chunks(
    settings: Settings, client: Client, state: State
) -> None:
    """With a pool of one connection, other calls run while a stream is half read."""

    async def main() -> tuple[bytes, int]:
        async with AsyncClient(settings=settings, max_size=1) as ac:
            chunks = await ac.read_file(state.file)
            first = await anext(aiter(chunks))
            between = len(await ac.logs(state.head))
            rest = b"".join([chunk async for chunk in chunks])
            return first + rest, between

    read, between = asyncio.run(main())
    assert read == BYTES and between == 2


def test_a_file_deleted_while_it_is_read_raises_instead_of_ending_short(
    settings: Settings, client: Client, state: State, tmp_path: Path
) -> None:
    """The file (as with its task) deleted between two chunks: both clients raise
    ``TaskFileNotFoundError`` rather than end the stream with part of the bytes, and
    ``fetch_file`` leaves no file behind."""
    second = client.store_file(state.tail, io.BytesIO(BYTES), filename="second.bin")

    def delete(file: files.FileInfo) -> None:
        with psycopg.connect(str(settings.dsn), autocommit=True) as conn:
            conn.execute("DELETE FROM s_task_files WHERE id = %s", (file.id,))

    chunks = client.read_file(state.file)
    assert next(chunks) == BYTES[: files.CHUNK_SIZE]
    delete(state.file)
    with pytest.raises(TaskFileNotFoundError, match=f"file {state.file.id} was deleted"):
        next(chunks)

    async def body(ac: AsyncClient) -> None:
        stream = aiter(await ac.read_file(second))
        assert await anext(stream) == BYTES[: files.CHUNK_SIZE]
        delete(second)
        with pytest.raises(TaskFileNotFoundError, match=f"file {second.id} was deleted"):
            await anext(stream)

    run(settings, body)
    with pytest.raises(TaskFileNotFoundError):
        client.fetch_file(state.file, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


# --- writing -----------------------------------------------------------------------------


def test_presets_are_added_started_and_removed_as_by_the_client(
    settings: Settings, client: Client, state: State
) -> None:
    async def body(ac: AsyncClient) -> dict[str, Any]:
        added = await ac.add_preset("weekly", "sample", "noop", {"k": 1}, description="d")
        replaced = await ac.add_preset("weekly", "sample", "noop", {"k": 2})
        started = await ac.create_from_preset("export", {"b": 3}, dedupe_key="x")
        again = await ac.create_from_preset("export", {"b": 4}, dedupe_key="x")
        async with await psycopg.AsyncConnection.connect(str(settings.dsn)) as conn:
            rolled_back = await ac.create_from_preset("export", conn=conn)
            await conn.rollback()
        left = await ac.remove_preset("export")
        return {"added": added, "replaced": replaced, "started": started, "again": again,
                "rolled_back": rolled_back, "left": left}  # fmt: skip

    got = run(settings, body)
    assert got["added"]["inserted"] and not got["replaced"]["inserted"]
    assert {k: v for k, v in got["replaced"].items() if k != "inserted"} == client.preset("weekly")
    started = client.get(got["started"])
    assert got["started"] == started and got["again"] == started
    assert (started.identifier, started.action, started.priority) == ("sample", "noop", "high")
    assert started.meta == {"a": 1, "b": 3}
    twin = client.create_from_preset("weekly")  # the same statement, through Client
    assert twin.meta == client.get(twin).meta == {"k": 2}
    assert got["rolled_back"].id not in [t.id for t in client.list(limit=100)]
    assert got["left"] == ["of-preset"]
    assert [p["name"] for p in client.presets()] == ["weekly"]


def test_schedules_are_added_paused_resumed_run_and_removed_as_by_the_client(
    settings: Settings, client: Client, state: State
) -> None:
    fields = {"action": "noop", "cron": "*/5 * * * *", "data": {"n": 1}}

    async def body(ac: AsyncClient) -> dict[str, Any]:
        added = await ac.add_schedule("five", "sample", fields)
        paused = await ac.pause_schedule("five")
        resumed = await ac.resume_schedule("five")
        ran = await ac.run_schedule("of-preset")
        inactive = await ac.add_schedule("later", "sample", {**fields, "active": False})
        await ac.remove_schedule("nightly")
        return {"added": added, "paused": paused, "resumed": resumed, "ran": ran,
                "inactive": inactive}  # fmt: skip

    got = run(settings, body)
    assert got["added"]["inserted"] and got["added"]["origin"] == "api"
    assert got["paused"]["active"] is False and got["resumed"]["active"] is True
    assert got["resumed"] == client.schedule("five")
    assert got["inactive"]["active"] is False
    assert {k: v for k, v in got["inactive"].items() if k != "inserted"} == client.schedule("later")
    ran = client.get(got["ran"])
    twin = client.run_schedule("of-preset")
    assert (ran.identifier, ran.action, ran.meta, ran.priority) == (
        twin.identifier,
        twin.action,
        twin.meta,
        twin.priority,
    )
    assert "nightly" not in [s["name"] for s in client.schedules()]


def test_workers_are_switched_and_their_settings_updated_as_by_the_client(
    settings: Settings, client: Client, state: State
) -> None:
    async def body(ac: AsyncClient) -> dict[str, Any]:
        off = await ac.deactivate_worker("sample")
        on = await ac.activate_worker("sample")
        updated = await ac.update_worker_settings(
            "sample", {"greeting": "hi", "notify": {"webhooks": ["ops"]}}
        )
        await ac.reload_workers("sample")
        return {"off": off, "on": on, "updated": updated}

    got = run(settings, body)
    assert got["off"]["active"] is False and got["on"]["active"] is True
    assert got["updated"] == client.worker("sample")
    assert got["updated"]["settings"]["greeting"] == "hi"


def test_webhooks_are_added_and_removed_as_by_the_client(
    settings: Settings, client: Client, state: State
) -> None:
    async def body(ac: AsyncClient) -> dict[str, Any]:
        added = await ac.add_webhook("audit", "https://hooks.example.com/audit")
        kept = await ac.add_webhook("audit", "https://hooks.example.com/v2", description="v2")
        rotated = await ac.add_webhook("audit", "https://hooks.example.com/v2", rotate_secret=True)
        await ac.remove_webhook("ops")
        return {"added": added, "kept": kept, "rotated": rotated}

    got = run(settings, body)
    assert got["added"]["inserted"] and got["added"]["secret"]
    assert got["kept"]["secret"] is None and got["kept"]["url"].endswith("/v2")
    assert got["rotated"]["secret"] not in (None, got["added"]["secret"])
    shown = {k: v for k, v in got["rotated"].items() if k not in ("inserted", "secret")}
    assert shown == client.webhook("audit")
    assert [w["name"] for w in client.webhooks()] == ["audit"]


def test_clear_logs_deletes_the_rows_and_the_file(
    settings: Settings, client: Client, state: State
) -> None:
    log_file = settings.storage / f"{state.head.id}.log" if settings.storage else None

    async def body(ac: AsyncClient) -> int:
        return await ac.clear_logs(state.head)

    assert log_file is not None and log_file.exists()
    assert run(settings, body) == 2
    assert client.logs(state.head) == [] and not log_file.exists()
    assert client.clear_logs(state.head) == 0


# --- the same errors -----------------------------------------------------------------------

_CRON = {"action": "noop", "cron": "@hourly"}

#: (method, args, kwargs): calls both clients refuse, with the same error and message.
BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("parents", ("7",), {}),
    ("children", (None,), {}),
    ("workflow_of", (10**6,), {}),
    ("preset", ("nope",), {}),
    ("preset", ("",), {}),
    ("create_from_preset", ("nope",), {}),
    ("create_from_preset", ("export",), {"priority": "urgent"}),
    ("create_from_preset", ("export", "not an object"), {}),
    ("create_from_preset", ("export",), {"max_attempts": 0}),
    ("add_preset", ("p2", "sample", "no_such_action"), {}),
    ("add_preset", ("", "sample", "noop"), {}),
    ("add_preset", ("x" * 300, "sample", "noop"), {}),
    ("add_preset", ("p2", "sample", "noop"), {"priority": "urgent"}),
    ("remove_preset", ("nope",), {}),
    ("worker", ("nobody",), {}),
    ("activate_worker", ("nobody",), {}),
    ("deactivate_worker", ("nobody",), {}),
    ("update_worker_settings", ("sample", {"max_running": -1}), {}),
    ("update_worker_settings", ("sample", {"notify": {"webhooks": ["nobody"]}}), {}),
    ("update_worker_settings", ("sample", "not a mapping"), {}),
    ("update_worker_settings", ("sample", {"retry_base_delay": -1}), {}),
    ("update_worker_settings", ("nobody", {}), {}),
    ("schedule", ("nope",), {}),
    ("schedule", (7,), {}),
    ("run_schedule", ("nope",), {}),
    ("run_schedule", ("orphan",), {}),
    ("pause_schedule", ("nope",), {}),
    ("resume_schedule", ("nope",), {}),
    ("remove_schedule", ("nope",), {}),
    ("add_schedule", ("s2", "sample", {"action": "noop", "cron": "not cron"}), {}),
    ("add_schedule", ("s2", "sample", {"action": "no_such_action", "cron": "@hourly"}), {}),
    ("add_schedule", ("s2", None, {"preset": "nope", "cron": "@hourly"}), {}),
    ("add_schedule", ("s2", "other", {"preset": "export", "cron": "@hourly"}), {}),
    ("add_schedule", ("coded", "sample", _CRON), {}),
    ("add_schedule", ("s2", "sample", {**_CRON, "bogus": 1}), {}),
    ("webhook", ("nope",), {}),
    ("remove_webhook", ("nope",), {}),
    ("add_webhook", ("w", "ftp://hooks.example.com"), {}),
    (
        "add_webhook",
        ("w", "https://hooks.example.com"),
        {"secret": "s" * 32, "rotate_secret": True},
    ),
    ("add_webhook", ("w", "https://hooks.example.com"), {"events": ["exploded"]}),
    ("result_file", (10**6,), {}),
    ("result_file", ("7",), {}),
    ("file", (10**6,), {}),
    ("read_file", (10**6,), {}),
    ("clear_logs", ("x",), {}),
]


@pytest.mark.parametrize(("method", "args", "kwargs"), BAD_CALLS)
def test_bad_input_raises_the_same_error_as_the_client(
    settings: Settings,
    client: Client,
    state: State,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    assert_same_error(settings, client, method, args, kwargs)
