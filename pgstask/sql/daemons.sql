-- Queries on s_daemons: one row per running daemon, kept alive by heartbeats.

-- name: daemon_register
-- Idempotent: a daemon declared dead registers again under the same id.
INSERT INTO s_daemons (id, hostname, pid, concurrency, identifiers, version)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(concurrency)s, %(identifiers)s, %(version)s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now();

-- name: daemon_heartbeat
-- 0 rows: this daemon was declared dead (its row was removed) and must re-register.
UPDATE s_daemons SET heartbeat_at = now() WHERE id = %(id)s RETURNING id;

-- name: daemon_lost_tasks
-- Of the runs this daemon has, (task id, claims) each, those it no longer holds: cancelled,
-- rescued, or already replaced by a later run.
SELECT u.id, u.claims
  FROM unnest(%(ids)s::bigint[], %(claims)s::int[]) AS u(id, claims)
 WHERE NOT EXISTS (SELECT 1 FROM s_tasks t
                    WHERE t.id = u.id AND t.claims = u.claims AND t.status IN (30, 50)
                      AND t.daemon_id = %(id)s);

-- name: daemon_deregister
DELETE FROM s_daemons WHERE id = %(id)s;

-- name: daemon_delete_stale
DELETE FROM s_daemons
 WHERE heartbeat_at < now() - make_interval(secs => %(stale_after)s)
RETURNING id, hostname, pid;

-- name: daemon_list
SELECT *, heartbeat_at > now() - make_interval(secs => %(stale_after)s) AS alive
  FROM s_daemons ORDER BY started_at;

-- name: daemon_try_lock
-- Transaction-scoped: one rescue/cleanup pass at a time across all daemons.
SELECT pg_try_advisory_xact_lock(%(key)s) AS locked;

-- name: daemon_listen
-- The listener's channels: new tasks, cancellations, worker changes.
LISTEN pgstask_tasks; LISTEN pgstask_cancel; LISTEN pgstask_workers;

-- name: daemon_now
-- The database clock (all scheduling is judged by it); also the listener's liveness probe.
SELECT now() AS now;
