"""OpenTelemetry: the trace context stored with a task, the spans of its creation and of its
runs, the run metrics, and trace ids on log records (docs/opentelemetry.md).

pgstask calls only the OpenTelemetry API (``pip install 'pgstask[otel]'``), as a natively
instrumented library does: the application brings the SDK and its exporters, and without an
SDK every call is the API's no-op. Telemetry is on when ``opentelemetry-api`` can be imported
and ``PGSTASK_OTEL`` is not ``0``/``false``/``no``/``off``; ``enable()`` decides it in code.
Off, or not installed, each hook costs a global read and a call: nothing of OpenTelemetry is
imported.

The hooks, each used by one layer above:

- ``creating(identifiers)``: the ``create`` span (PRODUCER) around the statement that inserts
  tasks; its context, a W3C Trace Context carrier as JSON text, is what the statement stores in
  ``s_tasks.trace_context`` (both clients; the HTTP API through the client).
- ``processing(task)``: the ``process`` span (CONSUMER) of a run, the child of the stored
  context (a value that is not a carrier is ignored: the span starts a trace), current while
  the action runs; with the ``pgstask.tasks.started``/``finished`` counters and the
  ``pgstask.task.duration`` histogram (the runner).
- ``incoming(headers)``: an HTTP request's ``traceparent`` as the current context while the
  request is handled, unless a span is already current (the HTTP API's middleware).
- ``log_ids()``: the current trace and span ids, for a task's log record (``logs``);
  ``stamp_log_records()`` puts them on every Python ``logging`` record (``pgstask daemon``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pgstask._version import __version__
from pgstask.task import Task

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Status

ENV = "PGSTASK_OTEL"
_OFF = frozenset({"0", "false", "no", "off"})
SYSTEM = "pgstask"
#: The keys of a carrier (W3C Trace Context), and a bound on what is read of a stored one.
CARRIER_KEYS = ("traceparent", "tracestate")
_MAX_CARRIER = 1024
#: Seconds between two looks for an SDK's provider set by the application (``_Otel.in_use``).
LOOK_EVERY = 1.0


class _Otel:
    """The API's objects pgstask uses, made once when telemetry is turned on."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        # Imported here, not at the top: without the extra there is nothing to import, and
        # with PGSTASK_OTEL=0 nothing is.
        from opentelemetry import context, metrics, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.context = context
        self.trace = trace
        self.metrics = metrics
        # Given providers are in use; the global ones only once the application set an SDK's.
        self._in_use = tracer_provider is not None or meter_provider is not None
        self._defaults = _default_providers()
        self._looked: float | None = None  # time.monotonic() of the last look at the globals
        self.kinds = trace.SpanKind
        self.tracer = trace.get_tracer("pgstask", __version__, tracer_provider=tracer_provider)
        # Always W3C Trace Context, whatever the application's global propagator: the stored
        # column has one format, which SQL writers and readers can rely on.
        self.propagator = TraceContextTextMapPropagator()
        meter = metrics.get_meter("pgstask", __version__, meter_provider=meter_provider)
        self.started = meter.create_counter(
            "pgstask.tasks.started", unit="{task}", description="Runs of tasks started"
        )
        self.finished = meter.create_counter(
            "pgstask.tasks.finished",
            unit="{task}",
            description="Runs of tasks ended, by outcome (pgstask.outcome)",
        )
        self.duration = meter.create_histogram(
            "pgstask.task.duration", unit="s", description="How long runs of tasks took"
        )

    def in_use(self) -> bool:
        """An SDK's tracer or meter provider is in use (given to ``enable``, or set globally
        by the application, before or after pgstask started). Until then every span and
        instrument is the API's no-op, and the hooks skip them: a daemon with the API installed
        but no SDK runs its tasks as with telemetry off. The globals are looked at once every
        ``LOOK_EVERY`` seconds at most (a look costs more than a run's other hooks together);
        once true, it stays true (the API sets a global provider once)."""
        if self._in_use:
            return True
        now = time.monotonic()
        if self._looked is not None and now - self._looked < LOOK_EVERY:
            return False
        self._looked = now
        tracing, metering = self._defaults
        self._in_use = not (
            isinstance(self.trace.get_tracer_provider(), tracing)
            and isinstance(self.metrics.get_meter_provider(), metering)
        )
        return self._in_use

    def failed(self, description: str) -> Status:
        """The ERROR status of a span, with ``description``."""
        return self.trace.Status(self.trace.StatusCode.ERROR, description)

    def parent_of(self, stored: Any) -> Context:
        """The context a run continues: the stored carrier's, or an empty one (a new trace)
        when there is none or it cannot be read."""
        carrier = carrier_of(stored)
        if carrier is None:
            return self.context.Context()
        return self.propagator.extract(carrier, context=self.context.Context())


def _default_providers() -> tuple[type, type]:
    """The classes of the providers the API hands out while no SDK is set: its proxies. A
    version of the API without them (a private module moved): nothing, and every provider
    counts as an SDK's."""
    try:
        from opentelemetry.metrics._internal import _ProxyMeterProvider
        from opentelemetry.trace import ProxyTracerProvider
    except ImportError:

        class _Never:
            pass

        return _Never, _Never
    return ProxyTracerProvider, _ProxyMeterProvider


_otel: _Otel | None = None
_decided = False


def _state() -> _Otel | None:
    if not _decided:
        enable(os.environ.get(ENV, "").strip().lower() not in _OFF)
    return _otel


def enable(on: bool = True, *, tracer_provider: Any = None, meter_provider: Any = None) -> bool:
    """Turn telemetry on or off in this process, over ``PGSTASK_OTEL``; on, with the given
    providers instead of the global ones (as an instrumentor's ``instrument()`` takes them).
    Returns whether it is on (False when ``opentelemetry-api`` is not installed)."""
    global _otel, _decided
    _otel = None
    if on:
        try:
            _otel = _Otel(tracer_provider, meter_provider)
        except ImportError:
            _otel = None
    _decided = True
    return _otel is not None


def active() -> bool:
    """Whether telemetry is on in this process."""
    return _state() is not None


def carrier_of(stored: Any) -> dict[str, str] | None:
    """The W3C carrier in a stored ``trace_context`` value (a dict, or its JSON text), or None
    when it is not one: anything else is ignored, never an error."""
    if isinstance(stored, str) and len(stored) <= _MAX_CARRIER:
        try:
            stored = json.loads(stored)
        except (ValueError, RecursionError):  # nested deeper than the interpreter's limit
            return None
    if not isinstance(stored, dict):
        return None
    carrier = {k: stored[k] for k in CARRIER_KEYS if isinstance(stored.get(k), str)}
    if "traceparent" not in carrier or sum(map(len, carrier.values())) > _MAX_CARRIER:
        return None
    return carrier


# --- creating --------------------------------------------------------------------------------


class Creation:
    """What an insert of tasks stores (``carrier``: JSON text, or None) and tells its span.
    This class is the no-op one; ``creating`` returns it when telemetry is off."""

    carrier: str | None = None

    def __enter__(self) -> Creation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def created(self, tasks: Sequence[Task]) -> None:
        """The tasks the insert created (the message id of a single one)."""


_NO_CREATION = Creation()


class _Creating(Creation):
    def __init__(self, otel: _Otel, items: Sequence[Any]) -> None:
        self._otel = otel
        names = {_identifier(item) for item in items}
        self._destination = names.pop() if len(names) == 1 else None
        self._count = len(items)

    def __enter__(self) -> Creation:
        otel = self._otel
        attributes: dict[str, str | int] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "create",
            "messaging.operation.name": "create",
        }
        name = "create"
        if self._destination is not None:
            attributes["messaging.destination.name"] = self._destination
            name = f"create {self._destination}"
        if self._count != 1:
            attributes["messaging.batch.message_count"] = self._count
        self._span = otel.tracer.start_span(name, kind=otel.kinds.PRODUCER, attributes=attributes)
        context = otel.trace.set_span_in_context(self._span)
        self._token = otel.context.attach(context)
        carrier: dict[str, str] = {}
        otel.propagator.inject(carrier, context=context)
        self.carrier = json.dumps(carrier, separators=(",", ":")) if carrier else None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self._span.record_exception(exc)
            self._span.set_status(self._otel.failed(str(exc)))
            self._span.set_attribute("error.type", type(exc).__qualname__)
        self._otel.context.detach(self._token)
        self._span.end()

    def created(self, tasks: Sequence[Task]) -> None:
        if len(tasks) == 1:
            self._span.set_attribute("messaging.message.id", str(tasks[0].id))


def creating(items: Sequence[Any]) -> Creation:
    """The ``create`` span of an insert of ``items`` (the tasks' specs, or ``create_many``'s
    mappings: what has an ``identifier``), current inside the ``with``; its ``carrier`` is what
    the insert stores (None when off)."""
    otel = _state()
    if otel is None or not otel.in_use():
        return _NO_CREATION
    return _Creating(otel, items)


def _identifier(item: Any) -> str | None:
    if isinstance(item, Mapping):
        found = item.get("identifier")
    else:
        found = getattr(item, "identifier", None)
    return found if isinstance(found, str) else None


# --- processing ------------------------------------------------------------------------------


class Processing:
    """The ``process`` span and metrics of one run. This class is the no-op one;
    ``processing`` returns it when telemetry is off."""

    def __enter__(self) -> Processing:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def raised(self, names: Sequence[str], message: str | None, stacktrace: str | None) -> None:
        """The action raised: an ``exception`` event (the exception's class ``names``, most
        derived first, its text and its traceback)."""

    def ended(
        self, outcome: str, *, error: str | None = None, stop_reason: str | None = None
    ) -> None:
        """How the run ended: ``outcome`` (completed, failed, retry, snoozed, cancelled, lost,
        given_back), ``error`` (the span's status is then ERROR, with it as description) and
        ``stop_reason`` (timeout, cancelled, shutdown, …) when it was asked to stop."""


_NO_PROCESSING = Processing()


class _Processing(Processing):
    def __init__(self, otel: _Otel, task: Task) -> None:
        self._otel = otel
        self._task = task
        self._labels = {
            "messaging.destination.name": task.identifier,
            "pgstask.action": task.action,
        }
        self._outcome: str | None = None

    def __enter__(self) -> Processing:
        otel, task = self._otel, self._task
        parent = otel.parent_of(task.trace_context)
        self._span: Span = otel.tracer.start_span(
            f"process {task.identifier}",
            context=parent,
            kind=otel.kinds.CONSUMER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": task.identifier,
                "messaging.message.id": str(task.id),
                "pgstask.action": task.action,
                "pgstask.attempt": task.attempts,
                "pgstask.priority": task.priority,
            },
        )
        self._token = otel.context.attach(otel.trace.set_span_in_context(self._span))
        self._start = time.monotonic()
        otel.started.add(1, self._labels)
        return self

    def raised(self, names: Sequence[str], message: str | None, stacktrace: str | None) -> None:
        attributes = {"exception.type": names[0] if names else "Exception"}
        if message is not None:
            attributes["exception.message"] = message
        if stacktrace is not None:
            attributes["exception.stacktrace"] = stacktrace
        self._span.add_event("exception", attributes)
        self._span.set_attribute("error.type", attributes["exception.type"])

    def ended(
        self, outcome: str, *, error: str | None = None, stop_reason: str | None = None
    ) -> None:
        self._outcome = outcome
        self._span.set_attribute("pgstask.outcome", outcome)
        if stop_reason is not None:
            self._span.set_attribute("pgstask.stop_reason", stop_reason)
        if error is not None:
            self._span.set_status(self._otel.failed(error))
            if stop_reason == "timeout":
                self._span.set_attribute("error.type", "timeout")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        otel = self._otel
        if exc is not None and self._outcome is None:
            self._span.record_exception(exc)
            self.ended("failed", error=f"{type(exc).__name__}: {exc}")
        outcome = self._outcome or "failed"
        labels = {**self._labels, "pgstask.outcome": outcome}
        otel.finished.add(1, labels)
        otel.duration.record(time.monotonic() - self._start, labels)
        otel.context.detach(self._token)
        self._span.end()


def processing(task: Task) -> Processing:
    """The ``process`` span of a run of ``task``, current inside the ``with``."""
    otel = _state()
    if otel is None or not otel.in_use():
        return _NO_PROCESSING
    return _Processing(otel, task)


def current_carrier() -> str | None:
    """The current span's context as a carrier's JSON text (for a child process), or None."""
    otel = _state()
    if otel is None:
        return None
    carrier: dict[str, str] = {}
    otel.propagator.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


# --- context from elsewhere ------------------------------------------------------------------


class Continued:
    """A context made current for a ``with`` (no-op when off or when there is none)."""

    def __init__(self, otel: _Otel | None = None, parent: Context | None = None) -> None:
        self._otel = otel
        self._parent = parent

    def __enter__(self) -> Continued:
        if self._otel is not None and self._parent is not None:
            self._token = self._otel.context.attach(self._parent)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._otel is not None and self._parent is not None:
            self._otel.context.detach(self._token)


_NOT_CONTINUED = Continued()


def incoming(headers: Mapping[str, str]) -> Continued:
    """An HTTP request's ``traceparent``/``tracestate`` headers as the current context, unless
    a span is current already (a server instrumentation's, itself the header's child)."""
    otel = _state()
    if otel is None or "traceparent" not in headers:
        return _NOT_CONTINUED
    if otel.trace.get_current_span().get_span_context().is_valid:
        return _NOT_CONTINUED
    return Continued(otel, otel.parent_of({k: headers[k] for k in CARRIER_KEYS if k in headers}))


def continued(stored: Any) -> Continued:
    """A stored carrier (a ``process`` span's, handed to a child process) as the current
    context."""
    otel = _state()
    if otel is None or stored is None:
        return _NOT_CONTINUED
    return Continued(otel, otel.parent_of(stored))


# --- logs ------------------------------------------------------------------------------------


def log_ids() -> dict[str, str] | None:
    """``trace_id`` and ``span_id`` (hex) of the current span, or None (none, or off)."""
    otel = _state()
    if otel is None:
        return None
    found = otel.trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return {"trace_id": format(found.trace_id, "032x"), "span_id": format(found.span_id, "016x")}


_stamping = False


def stamp_log_records() -> None:
    """Give every Python ``logging`` record made from now on ``trace_id`` and ``span_id``
    attributes (the current span's, hex; empty strings outside a span), for formats such as
    ``%(trace_id)s``; the record factory in place is kept and called first. Idempotent; nothing
    when telemetry is off."""
    global _stamping
    if _stamping or _state() is None:
        return
    _stamping = True
    made = logging.getLogRecordFactory()

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = made(*args, **kwargs)
        ids = log_ids() or {"trace_id": "", "span_id": ""}
        record.trace_id = ids["trace_id"]
        record.span_id = ids["span_id"]
        return record

    logging.setLogRecordFactory(stamped)
