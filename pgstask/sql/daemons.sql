-- Queries on s_daemons: one row per running daemon, kept alive by heartbeats.

-- name: daemon_register
-- Idempotent: a daemon declared dead registers again under the same id.
INSERT INTO s_daemons (id, hostname, pid, concurrency, identifiers, version)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(concurrency)s, %(identifiers)s, %(version)s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now();

-- name: daemon_heartbeat
-- 0 rows: this daemon was declared dead (its row was removed) and must re-register.
UPDATE s_daemons SET heartbeat_at = now() WHERE id = %(id)s RETURNING id;

-- name: daemon_deregister
DELETE FROM s_daemons WHERE id = %(id)s;

-- name: daemon_delete_stale
DELETE FROM s_daemons
 WHERE heartbeat_at < now() - make_interval(secs => %(stale_after)s)
RETURNING id, hostname, pid;

-- name: daemon_list
SELECT *, heartbeat_at > now() - make_interval(secs => %(stale_after)s) AS alive
  FROM s_daemons ORDER BY started_at;
