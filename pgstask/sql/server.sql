-- Queries on the server itself rather than on a table of pgstask: its clock, a session setting,
-- advisory locks and pgstask's notification channels.

-- name: server_end_idle_transactions
-- This session's transactions left idle longer than %(seconds)s (at least a millisecond: 0 would
-- turn the limit off) are ended by the server, which closes the session and releases its locks:
-- a daemon that hangs inside a transaction (a frozen host, a network that drops packets without
-- an error) keeps neither the rescuer's lock nor a task row's lock past its staleness.
SELECT set_config('idle_in_transaction_session_timeout',
                  greatest(1, round(%(seconds)s::float8 * 1000))::bigint::text, false) AS value;

-- name: server_now
-- The database clock (all scheduling is judged by it); also the listener's liveness probe.
SELECT now() AS now;

-- name: lock_try_acquire
-- Transaction-scoped: one rescue/cleanup pass at a time across all daemons.
SELECT pg_try_advisory_xact_lock(%(key)s) AS locked;

-- name: channel_listen
-- The listener's channels: new tasks, cancellations, worker changes, schedule changes.
LISTEN pgstask_tasks; LISTEN pgstask_cancel; LISTEN pgstask_workers; LISTEN pgstask_schedules;
