-- Queries on the server itself rather than on a table of pgstask: its clock, advisory locks and
-- pgstask's notification channels.

-- name: server_now
-- The database clock (all scheduling is judged by it); also the listener's liveness probe.
SELECT now() AS now;

-- name: lock_try_acquire
-- Transaction-scoped: one rescue/cleanup pass at a time across all daemons.
SELECT pg_try_advisory_xact_lock(%(key)s) AS locked;

-- name: channel_listen
-- The listener's channels: new tasks, cancellations, worker changes.
LISTEN pgstask_tasks; LISTEN pgstask_cancel; LISTEN pgstask_workers;
