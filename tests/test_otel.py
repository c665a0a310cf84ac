"""OpenTelemetry (docs/opentelemetry.md) with the real SDK: the enqueuing code's span is the
parent of the action's ``process`` span, in a real daemon process and in-process; the HTTP API
continues a caller's ``traceparent``; failures, timeouts and cancels are told apart; metrics;
log records carry the trace id; a missing or unreadable stored context starts a trace; and off,
nothing is stored."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider, export
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from pgstask import AsyncClient, Client, Status, Task, telemetry
from pgstask.settings import Settings
from tests.daemons import ROOT, daemon_env, running_daemon, stop_process, wait_for
from tests.http_support import api
from tests.otel_workers import read_lines, span_line
from tests.test_async_client import python_blocks

MODULES = ("tests.otel_workers",)


class Telemetry:
    """The SDK of the test process: spans in memory, metrics read on demand."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("tests")

    def finished(self, name: str | None = None) -> list[dict[str, Any]]:
        """The spans ended so far (named ``name``), as ``span_line`` shows them."""
        found: tuple[ReadableSpan, ...] = self.spans.get_finished_spans()
        return [span_line(s) for s in found if name is None or s.name == name]

    def metrics(self) -> dict[str, list[Any]]:
        """Each metric's data points."""
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    """Telemetry on, with the test's own providers; back to the default after the test."""
    sdk = Telemetry()
    assert telemetry.enable(tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider)
    try:
        yield sdk
    finally:
        telemetry.enable()
        sdk.tracer_provider.shutdown()
        sdk.meter_provider.shutdown()


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings=settings) as c:
        yield c


def _ids(span: Any) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _traceparent(task: Task) -> str:
    """``trace id-span id`` of the task's stored ``traceparent`` (the flags left out: the SDK
    may set the random-trace-id flag)."""
    assert isinstance(task.trace_context, dict), task.trace_context
    value = task.trace_context["traceparent"]
    assert isinstance(value, str) and value.startswith("00-")
    return "-".join(value.split("-")[1:3])


def _process_span(otel: Telemetry, task_id: int) -> dict[str, Any]:
    wait_for(lambda: any(_is_run(s, task_id) for s in otel.finished()))
    return next(s for s in otel.finished() if _is_run(s, task_id))


def _is_run(span: dict[str, Any], task_id: int) -> bool:
    attributes = span["attributes"]
    return attributes.get("messaging.operation.type") == "process" and attributes.get(
        "messaging.message.id"
    ) == str(task_id)


def test_the_enqueuers_span_is_the_parent_of_the_run_in_a_real_daemon(
    otel: Telemetry, settings: Settings, client: Client, tmp_path: Path
) -> None:
    with otel.tracer.start_as_current_span("request handler") as parent:
        task = client.create("traced", "ok", {"n": 1})
    trace_id, parent_id = _ids(parent)
    (create,) = otel.finished("create traced")
    assert create["kind"] == "PRODUCER" and create["parent_span_id"] == parent_id
    assert create["trace_id"] == trace_id
    assert create["attributes"] == {
        "messaging.system": "pgstask",
        "messaging.operation.type": "create",
        "messaging.operation.name": "create",
        "messaging.destination.name": "traced",
        "messaging.message.id": str(task.id),
    }
    # What is stored is the create span's context, in W3C form.
    assert _traceparent(task) == f"{trace_id}-{create['span_id']}"
    assert client.get(task).trace_context == task.trace_context

    out = tmp_path / "telemetry"
    out.mkdir()
    spans = out / "spans.jsonl"
    env = {**daemon_env(settings), "PGSTASK_WORKERS": "tests.otel_workers"}
    env["PGSTASK_TEST_TELEMETRY"] = str(out)
    settings.storage.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgstask", "daemon"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: client.get(task).status == Status.COMPLETED, timeout=30)
        wait_for(
            lambda: any(s["name"] == "process traced" for s in read_lines(out / "spans.jsonl"))
        )
    finally:
        assert stop_process(proc) == 0
    (run,) = [s for s in read_lines(spans) if s["name"] == "process traced"]
    assert run["kind"] == "CONSUMER" and run["status"] == "UNSET"
    assert (run["trace_id"], run["parent_span_id"]) == (trace_id, create["span_id"])
    assert run["attributes"] == {
        "messaging.system": "pgstask",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "traced",
        "messaging.message.id": str(task.id),
        "pgstask.action": "ok",
        "pgstask.attempt": 1,
        "pgstask.priority": "normal",
        "pgstask.outcome": "completed",
    }
    # Inside the action the span is current: its ids, a task log record's, a logging record's.
    ids = {"trace_id": trace_id, "span_id": run["span_id"]}
    assert client.get(task).result == ids
    (hello,) = [r for r in client.logs(task) if r.message == "hello from the action"]
    assert {k: hello.context[k] for k in ids} == ids
    assert {**ids, "message": f"inside task {task.id}"} in read_lines(out / "logs.jsonl")


def test_a_run_in_process_and_an_async_run_continue_the_stored_context(
    otel: Telemetry, settings: Settings, client: Client
) -> None:
    with otel.tracer.start_as_current_span("enqueue") as parent:
        sync_task = client.create("traced", "ok")
        async_task = client.create("traced", "async_ok")
    trace_id, _ = _ids(parent)
    with running_daemon(settings, modules=MODULES):
        spans = [_process_span(otel, t.id) for t in (sync_task, async_task)]
    creates = {s["attributes"]["messaging.message.id"]: s for s in otel.finished("create traced")}
    for task, span in zip((sync_task, async_task), spans, strict=True):
        assert span["trace_id"] == trace_id
        assert span["parent_span_id"] == creates[str(task.id)]["span_id"]
        assert client.get(task).result == {"trace_id": trace_id, "span_id": span["span_id"]}
    (hello,) = [r for r in client.logs(async_task) if r.message == "hello from the async action"]
    assert hello.context["span_id"] == spans[1]["span_id"]


def test_client_execute_and_a_process_isolated_action(
    otel: Telemetry, settings: Settings, client: Client
) -> None:
    client.discover_workers(list(MODULES))
    with otel.tracer.start_as_current_span("enqueue"):
        task = client.create("isolated_traced", "ok")
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(task).status == Status.COMPLETED)
    span = _process_span(otel, task.id)
    assert span["parent_span_id"] == _traceparent(task).split("-")[1]
    # The child process ran the action inside the parent's process span.
    assert client.get(task).result == {"trace_id": span["trace_id"], "span_id": span["span_id"]}

    executed = client.create("traced", "ok")  # no parent: the create span is a root
    with Client(settings=settings.replace(worker_modules=MODULES)) as here:
        assert here.execute(executed)
    run = _process_span(otel, executed.id)
    assert run["parent_span_id"] == _traceparent(executed).split("-")[1]


def test_http_create_continues_the_callers_traceparent(
    otel: Telemetry, settings: Settings, client: Client
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    header = {"traceparent": f"00-{caller_trace}-{caller_span}-01", "tracestate": "vendor=1"}
    with api(settings) as http:
        answer = http.post(
            "/stask/task", json={"identifier": "traced", "action": "ok"}, headers=header
        )
        assert answer.status_code == 201, answer.text
        plain = http.post("/stask/task", json={"identifier": "traced", "action": "ok"})
    task = client.get(answer.json()["task"]["id"])
    (create,) = [s for s in otel.finished("create traced") if s["trace_id"] == caller_trace]
    assert create["parent_span_id"] == caller_span
    assert task.trace_context == {
        "traceparent": f"00-{caller_trace}-{create['span_id']}-01",
        "tracestate": "vendor=1",
    }
    # Without the header the create span starts a trace of its own.
    other = client.get(plain.json()["task"]["id"])
    assert caller_trace not in _traceparent(other)
    with running_daemon(settings, modules=MODULES):
        span = _process_span(otel, task.id)
    assert (span["trace_id"], span["parent_span_id"]) == (caller_trace, create["span_id"])


def test_a_failure_is_recorded_on_the_span_and_counted(
    otel: Telemetry, settings: Settings, client: Client
) -> None:
    retried = client.create("traced", "fail", {"error": "first"}, max_attempts=2)
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(retried).status == Status.FAILED)
        ok = client.create("traced", "ok")
        wait_for(lambda: client.get(ok).status == Status.COMPLETED)
    runs = [s for s in otel.finished() if _is_run(s, retried.id)]
    assert [s["attributes"]["pgstask.outcome"] for s in runs] == ["retry", "failed"]
    assert [s["attributes"]["pgstask.attempt"] for s in runs] == [1, 2]
    for span in runs:
        assert span["status"] == "ERROR" and span["description"] == "Failed: ValueError: first"
        assert span["attributes"]["error.type"] == "ValueError"
        (event,) = span["events"]
        assert event["name"] == "exception"
        assert event["attributes"]["exception.type"] == "ValueError"
        assert event["attributes"]["exception.message"] == "ValueError: first"
        assert "raise ValueError" in event["attributes"]["exception.stacktrace"]

    metrics = otel.metrics()
    started = {p.attributes["pgstask.action"]: p.value for p in metrics["pgstask.tasks.started"]}
    assert started == {"fail": 2, "ok": 1}
    finished = {
        (p.attributes["pgstask.action"], p.attributes["pgstask.outcome"]): p.value
        for p in metrics["pgstask.tasks.finished"]
    }
    assert finished == {("fail", "retry"): 1, ("fail", "failed"): 1, ("ok", "completed"): 1}
    durations = {p.attributes["pgstask.outcome"]: p.count for p in metrics["pgstask.task.duration"]}
    assert durations == {"retry": 1, "failed": 1, "completed": 1}
    assert all(
        p.attributes["messaging.destination.name"] == "traced" for v in metrics.values() for p in v
    )


def test_a_timeout_and_a_cancel_are_told_apart(
    otel: Telemetry, settings: Settings, client: Client
) -> None:
    timed = client.create("impatient", "wait", max_attempts=1)
    waiting = client.create("traced", "wait")
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(timed).status == Status.FAILED)
        wait_for(lambda: client.get(waiting).status == Status.RUNNING)
        client.cancel(waiting)
        cancelled = _process_span(otel, waiting.id)
    timeout = _process_span(otel, timed.id)
    assert timeout["status"] == "ERROR" and "timed out after 0.3s" in timeout["description"]
    assert timeout["attributes"]["error.type"] == "timeout"
    assert timeout["attributes"]["pgstask.stop_reason"] == "timeout"
    assert timeout["attributes"]["pgstask.outcome"] == "failed"
    assert cancelled["status"] == "UNSET"
    assert cancelled["attributes"]["pgstask.outcome"] == "cancelled"
    assert cancelled["attributes"]["pgstask.stop_reason"] == "cancelled"
    finished = {p.attributes["pgstask.outcome"] for p in otel.metrics()["pgstask.tasks.finished"]}
    assert finished == {"failed", "cancelled"}


@pytest.mark.parametrize(
    "stored",
    [
        None,
        '"garbage"',
        "[1, 2]",
        '{"traceparent": "not a traceparent"}',
        '{"traceparent": 7}',
        json.dumps("[" * 1000),  # JSON text nested deeper than Python's recursion limit
        '{"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"}',
    ],
)
def test_a_task_inserted_by_sql_without_a_readable_context_gets_a_root_span(
    otel: Telemetry, settings: Settings, client: Client, stored: str | None
) -> None:
    with psycopg.connect(str(settings.dsn), autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO s_tasks (identifier, action, trace_context) "
            "VALUES ('traced', 'ok', %s::jsonb) RETURNING id",
            (stored,),
        ).fetchone()
    assert row is not None
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: client.get(row[0]).status == Status.COMPLETED)
    span = _process_span(otel, row[0])
    assert span["parent_span_id"] is None and span["status"] == "UNSET"


def test_a_task_inserted_by_sql_with_a_context_continues_it(
    otel: Telemetry, settings: Settings, client: Client
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with psycopg.connect(str(settings.dsn), autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO s_tasks (identifier, action, trace_context) "
            "VALUES ('traced', 'ok', jsonb_build_object('traceparent', %s::text)) RETURNING id",
            (traceparent,),
        ).fetchone()
    assert row is not None
    with running_daemon(settings, modules=MODULES):
        span = _process_span(otel, row[0])
    assert [span["trace_id"], span["parent_span_id"]] == traceparent.split("-")[1:3]


def test_bulk_creates_workflows_and_the_async_client_store_the_context(
    otel: Telemetry, settings: Settings, client: Client
) -> None:
    items = [{"identifier": "traced", "action": "ok", "data": {"i": i}} for i in range(150)]
    with otel.tracer.start_as_current_span("enqueue") as parent:
        copied = client.create_many(items)  # COPY
        inserted = client.create_many(items[:3])
        flow = client.create_workflow(
            [{"ref": "a", **items[0]}, {"ref": "b", "depends_on": ["a"], **items[1]}]
        )
    trace_id, _ = _ids(parent)
    batches = otel.finished("create traced")
    assert [s["attributes"].get("messaging.batch.message_count") for s in batches] == [150, 3, 2]
    for tasks, span in zip((copied, inserted, flow), batches, strict=True):
        expected = f"{trace_id}-{span['span_id']}"
        assert {_traceparent(t) for t in tasks} == {expected}
        assert {_traceparent(client.get(t)) for t in tasks} == {expected}

    async def create_async() -> Task:
        async with AsyncClient(settings=settings) as aclient:
            with otel.tracer.start_as_current_span("async enqueue"):
                return await aclient.create("traced", "ok")

    created = asyncio.run(create_async())
    (span,) = [s for s in otel.finished("create traced") if s["trace_id"] not in (trace_id,)]
    assert _traceparent(created) == f"{span['trace_id']}-{span['span_id']}"


def test_off_nothing_is_stored_and_no_span_is_made(settings: Settings, client: Client) -> None:
    sdk = Telemetry()
    telemetry.enable(False)
    try:
        with sdk.tracer.start_as_current_span("enqueue"):
            task = client.create("traced", "ok")
            many = client.create_many([{"identifier": "traced", "action": "ok"}] * 120)
        with running_daemon(settings, modules=MODULES):
            wait_for(lambda: client.get(task).status == Status.COMPLETED)
        assert client.get(task).result is None  # no current span inside the action
        assert [r.context for r in client.logs(task) if r.message.startswith("hello")] == [{}]
    finally:
        telemetry.enable()
    assert task.trace_context is None and client.get(task).trace_context is None
    assert {client.get(t).trace_context for t in many[:3]} == {None}
    assert [s.name for s in sdk.spans.get_finished_spans()] == ["enqueue"]


def test_pgstask_otel_0_imports_nothing_of_opentelemetry(settings: Settings) -> None:
    """With ``PGSTASK_OTEL=0`` a process creates and runs tasks without importing
    OpenTelemetry (as a process without the extra does)."""
    script = (
        "import sys\n"
        "from pgstask import Client, telemetry\n"
        "with Client() as client:\n"
        "    task = client.create('demo', 'noop')\n"
        "    client.execute(task)\n"
        "    print(client.get(task).status_text, client.get(task).trace_context,\n"
        "          telemetry.active(), any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    env = {**daemon_env(settings), "PGSTASK_OTEL": "0", "PGSTASK_WORKERS": ""}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["completed", "None", "False", "False"]


def test_with_the_api_and_no_sdk_the_hooks_make_no_spans_until_one_is_set(
    settings: Settings,
) -> None:
    """The API installed, no SDK set: the create and process hooks are the no-op ones (no span,
    no instrument call, nothing stored), as with telemetry off; a provider set later, while the
    process runs, turns them on once the hooks look again (every ``LOOK_EVERY`` seconds)."""
    script = (
        "import time\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from pgstask import Client, telemetry\n"
        "with Client() as client:\n"
        "    task = client.get(client.create('demo', 'noop'))\n"
        "    before = (telemetry.active(),\n"
        "              telemetry.processing(task) is telemetry._NO_PROCESSING,\n"
        "              telemetry.creating([task]) is telemetry._NO_CREATION)\n"
        "    trace.set_tracer_provider(TracerProvider())\n"
        "    time.sleep(telemetry.LOOK_EVERY)  # the hooks look for a provider this often\n"
        "    with trace.get_tracer('app').start_as_current_span('app'):\n"
        "        stored = client.get(client.create('demo', 'noop')).trace_context\n"
        "    after = (telemetry.processing(task) is telemetry._NO_PROCESSING,)\n"
        "    print(*before, task.trace_context, *after, sorted(stored or {}))\n"
    )
    env = {**daemon_env(settings), "PGSTASK_WORKERS": ""}
    env.pop("PGSTASK_OTEL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "None", "False", "['traceparent']"]


def test_the_docs_example_runs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/opentelemetry.md's example, as written: an SDK printing spans, a span around the
    create, a run in process."""
    monkeypatch.setenv("PGSTASK_DSN", str(settings.dsn))
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))
    blocks = python_blocks("opentelemetry.md")
    assert blocks, "docs/opentelemetry.md has no python example"
    namespace: dict[str, Any] = {"__name__": "docs_opentelemetry"}
    printed_spans = io.StringIO()

    class Console(export.ConsoleSpanExporter):
        """The example's exporter, printing where the test reads (its default ``out`` is the
        ``sys.stdout`` of when the SDK was imported)."""

        def __init__(self) -> None:
            super().__init__(out=printed_spans)

    monkeypatch.setattr(export, "ConsoleSpanExporter", Console)
    try:
        exec(compile(blocks[0], "docs/opentelemetry.md", "exec"), namespace)
    finally:
        # The example sets the process's global tracer provider, which OpenTelemetry allows
        # once: back to none (as OpenTelemetry's own test utilities do), for the later tests.
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None
        telemetry.enable()
    printed = printed_spans.getvalue()
    spans, at, decoder = {}, 0, json.JSONDecoder()
    while printed[at:].strip():
        at += len(printed[at:]) - len(printed[at:].lstrip())
        span, at = decoder.raw_decode(printed, at)
        spans[span["name"]] = span
    assert set(spans) == {"checkout", "create demo", "process demo"}
    assert spans["create demo"]["parent_id"] == spans["checkout"]["context"]["span_id"]
    assert spans["process demo"]["parent_id"] == spans["create demo"]["context"]["span_id"]
    task = namespace["task"]
    assert capsys.readouterr().out == f"completed {task.trace_context}\n"
    assert _traceparent(task) == "-".join(
        s.removeprefix("0x") for s in spans["create demo"]["context"].values() if s.startswith("0x")
    )
