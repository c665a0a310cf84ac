-- Revision 0012: the trace context of the code that created a task (docs/opentelemetry.md).
--
-- A W3C Trace Context carrier, {"traceparent": "00-<trace id>-<span id>-<flags>", "tracestate":
-- "…"}, written by the clients and the HTTP API when OpenTelemetry is on, or by a plain INSERT;
-- the daemon's span of the run continues it. NULL: none (the run's span starts a trace).
-- No CHECK: a value the daemon cannot read is ignored (the span starts a trace), never an error,
-- and a check would cost every INSERT. Adding a nullable column without a default rewrites
-- nothing.
ALTER TABLE s_tasks ADD COLUMN trace_context jsonb;
