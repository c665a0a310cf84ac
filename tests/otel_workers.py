"""Workers and an OpenTelemetry set-up for tests/test_otel.py.

A real ``pgstask daemon`` imports this module (``PGSTASK_WORKERS=tests.otel_workers``). When
``PGSTASK_TEST_TELEMETRY`` names a directory, the import configures the OpenTelemetry SDK of the
daemon's process, as an application's worker module does (docs/opentelemetry.md): every span
that ends is written as one JSON line to ``spans.jsonl`` there (``FileSpanExporter``), and every
Python ``logging`` record of the logger ``tests.otel`` to ``logs.jsonl``, with the ``trace_id``
and ``span_id`` that ``pgstask daemon`` stamps on records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from pgstask import BaseWorker, Task, telemetry

ENV = "PGSTASK_TEST_TELEMETRY"
_log = logging.getLogger("tests.otel")


def span_line(span: ReadableSpan) -> dict[str, Any]:
    """A span as plain JSON: what the tests compare."""
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": None if parent is None else format(parent.span_id, "016x"),
        "status": span.status.status_code.name,
        "description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
    }


class FileSpanExporter(SpanExporter):
    """Appends each span as a JSON line to a file (another process reads them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_line(s)) + "\n" for s in spans)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class _JsonLines(logging.Handler):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        line = {
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
        }
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` (none before it exists)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _configure(directory: Path) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(directory / "spans.jsonl")))
    trace.set_tracer_provider(provider)
    _log.addHandler(_JsonLines(directory / "logs.jsonl"))
    _log.setLevel(logging.INFO)


if os.environ.get(ENV):
    _configure(Path(os.environ[ENV]))


class TracedWorker(BaseWorker):
    """Actions that say what trace context they ran in."""

    identifier = "traced"
    scope = "tests"

    def task_ok(self, task: Task, options: dict[str, Any]) -> None:
        _log.info("inside task %s", task.id)
        self.log(task, "info", "hello from the action")
        self.mark_finished(task, result=telemetry.log_ids())

    def task_fail(self, task: Task, options: dict[str, Any]) -> None:
        raise ValueError(options.get("error", "boom"))

    def task_wait(self, task: Task, options: dict[str, Any]) -> None:
        """Reports progress until it is stopped (a cancel or its timeout)."""
        for i in range(1, 1000):
            self.push_progress(task, processed=i, total=1000)
            time.sleep(0.02)

    async def task_async_ok(self, task: Task, options: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        await self.log(task, "info", "hello from the async action")
        self.mark_finished(task, result=telemetry.log_ids())


class ImpatientWorker(BaseWorker):
    """Times out after 0.3 s."""

    identifier = "impatient"
    scope = "tests"
    settings = {"timeout": 0.3}

    def task_wait(self, task: Task, options: dict[str, Any]) -> None:
        for i in range(1, 1000):
            self.push_progress(task, processed=i, total=1000)
            time.sleep(0.02)


class IsolatedWorker(BaseWorker):
    """Runs its actions in a child process."""

    identifier = "isolated_traced"
    scope = "tests"
    settings = {"isolation": "process"}

    def task_ok(self, task: Task, options: dict[str, Any]) -> None:
        self.log(task, "info", "hello from the child")
        self.mark_finished(task, result=telemetry.log_ids())
