-- Queries on s_tasks. Every state change after the claim is a compare-and-set on
-- (status, attempts, daemon_id): 0 rows means the task is no longer ours.

-- name: task_insert_many
-- Bulk and single enqueue in one form: parallel arrays through unnest (one round trip, one
-- trigger call and one NOTIFY per statement). metas are JSON texts, encoded once by the client;
-- the client sends the arrays in binary (no array quoting on either side).
INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts, started_by,
                     dedupe_key, concurrency_key, message, trace_context)
SELECT i, a, m, p, coalesce(s, now()), x, u, d, k, 'Task queued', %(trace_context)s::jsonb
  FROM unnest(%(identifiers)b::text[], %(actions)b::text[], %(metas)b::text[]::jsonb[],
              %(priorities)b::text[], %(start_ats)b::timestamptz[], %(max_attempts)b::int[],
              %(started_by)b::bigint[], %(dedupe_keys)b::text[], %(concurrency_keys)b::text[])
       AS n(i, a, m, p, s, x, u, d, k)
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN (10, 20, 30, 50) DO NOTHING
RETURNING *;

-- name: task_replace_many
-- task_insert_many with replace (debounce, docs/dedupe.md): an item whose dedupe_key a pending
-- (or waiting) task holds gives that task its meta, priority, start_at, max_attempts and
-- concurrency_key (the updated row is returned); one whose key a preparing or running task holds is skipped. A
-- statement of its own: DO UPDATE locks the conflicting row even when its WHERE is false, which
-- a plain create must not do to a running task (its completion would wait for the creator's
-- transaction). The NOTIFY: a replaced start_at may be due sooner (no insert trigger fires).
WITH upserted AS (
    INSERT INTO s_tasks AS t (identifier, action, meta, priority, start_at, max_attempts,
                              started_by, dedupe_key, concurrency_key, message, trace_context)
    SELECT i, a, m, p, coalesce(s, now()), x, u, d, k, 'Task queued', %(trace_context)s::jsonb
      FROM unnest(%(identifiers)b::text[], %(actions)b::text[], %(metas)b::text[]::jsonb[],
                  %(priorities)b::text[], %(start_ats)b::timestamptz[], %(max_attempts)b::int[],
                  %(started_by)b::bigint[], %(dedupe_keys)b::text[], %(concurrency_keys)b::text[])
           AS n(i, a, m, p, s, x, u, d, k)
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN (10, 20, 30, 50)
    DO UPDATE SET meta = excluded.meta, priority = excluded.priority,
                  start_at = excluded.start_at, max_attempts = excluded.max_attempts,
                  concurrency_key = excluded.concurrency_key, updated_at = now(),
                  trace_context = coalesce(excluded.trace_context, t.trace_context),
                  message = 'Task queued (replaced by a later create)'
            WHERE t.status IN (10, 20)
    RETURNING t.*
)
SELECT upserted.* FROM upserted, (SELECT pg_notify('pgstask_tasks', '')) AS woken;

-- name: task_reserve_ids
-- The bulk path (COPY, which has no RETURNING): ids for n new tasks, in order, and the server's
-- now(), which the COPY sends for the columns whose default is now(). ids is NULL when the role
-- may not take values from the sequence (an identity column's default needs only INSERT on the
-- table): the client then inserts with an INSERT, and no error aborts the caller's transaction.
SELECT now() AS now,
       CASE WHEN has_sequence_privilege(seq.name, 'USAGE,UPDATE')
            THEN array(SELECT nextval(seq.name) AS id FROM generate_series(1, %(n)s) ORDER BY id)
       END AS ids
  FROM (SELECT pg_get_serial_sequence('s_tasks', 'id') AS name) AS seq;

-- name: task_copy
-- The rows of task_reserve_ids's transaction; the statement trigger validates them and sends
-- one NOTIFY, as for an INSERT. Binary: the client formats a row in a third of the time text
-- takes (the column types are in queries.task_copy).
COPY s_tasks (id, identifier, action, meta, priority, start_at, max_attempts, started_by,
              concurrency_key, message, created_at, updated_at, trace_context)
FROM STDIN WITH (FORMAT binary);

-- name: task_get
SELECT * FROM s_tasks WHERE id = %(id)s;

-- name: task_get_by_dedupe_key
SELECT * FROM s_tasks WHERE dedupe_key = %(dedupe_key)s AND status IN (10, 20, 30, 50);

-- name: task_get_latest_by_dedupe_key
-- The task that holds dedupe_key, else the one that finished with it last, whatever its age
-- (a task found by a key of its own, as Django's result ids are: docs/django.md): one descent
-- of s_tasks_dedupe_key_idx, and of s_tasks_dedupe_finished_idx only when the first finds none.
SELECT * FROM (
    (SELECT * FROM s_tasks
      WHERE dedupe_key = %(dedupe_key)s AND status IN (10, 20, 30, 50))
    UNION ALL
    (SELECT * FROM s_tasks
      WHERE dedupe_key = %(dedupe_key)s AND status IN (80, 90, 100)
      ORDER BY finished_at DESC
      LIMIT 1)
) AS found
LIMIT 1;

-- name: task_get_throttled_many
-- Of the dedupe_keys, those a task finished with less than throttle seconds ago (the client
-- creates no task for them: docs/dedupe.md), with that task, the latest of each key; one descent
-- of s_tasks_dedupe_finished_idx per key.
SELECT f.*
  FROM unnest(%(dedupe_keys)s::text[]) AS k(key)
 CROSS JOIN LATERAL (
       SELECT * FROM s_tasks t
        WHERE t.dedupe_key = k.key AND t.status IN (80, 90, 100)
          AND t.finished_at > now() - make_interval(secs => %(throttle)s::float8)
        ORDER BY t.finished_at DESC
        LIMIT 1) AS f;

-- name: task_claim
-- The claim index leads with (identifier, priority_rank): one ordered range per worker and
-- priority, so a claim never walks past the tasks of workers it does not take (other daemons'
-- workers, inactive ones, those a limit holds back: the limited claim's). The ranges are read in
-- stage order: the aged ones (see below), then high, normal, low; within a stage, the workers in
-- the order given (the producer turns it by one at each claim, so the workers of a daemon take
-- turns within a priority); within a range, start_at then id. The nested loop runs only as far
-- as the outer LIMIT pulls, so a later range is not even looked at once earlier ones filled the
-- batch, and only pulled rows are locked: the work stays proportional to the batch however many
-- tasks wait. The materialised CTEs keep that order and LIMIT exact (a locking subquery under
-- IN/ANY can be re-run by a nested loop and lock more rows than asked).
-- Priority aging (age, seconds; NULL: off): normal and low tasks due for longer than age come
-- first; the later ranges leave them out, so no row is pulled twice. With age NULL there are no
-- such ranges.
-- Only workers given, active and without flow control right now (s_workers, read in the same
-- statement) are claimed here; those with it by task_claim_limited.
-- The attempt is counted here, so a task that kills its daemon every time still reaches
-- max_attempts; claims + 1 names the new run. The message says it started (not "Task queued",
-- nor the failure a retry left), until the action reports one.
WITH ranges AS MATERIALIZED (
    SELECT w.identifier, r.rank,
           CASE WHEN r.aged THEN now() - make_interval(secs => %(age)s::float8) ELSE now() END
               AS due_by,
           -- (after, after_id): the tasks of a normal range come after the aged range's
           -- (start_at > the cutoff), or all of them: ('-infinity', 0) keeps even a start_at of
           -- -infinity (stored before revision 0005). One row comparison: an index bound.
           coalesce(CASE WHEN NOT r.aged AND r.rank > 0 AND %(age)s::float8 IS NOT NULL
                         THEN now() - make_interval(secs => %(age)s::float8) END,
                    '-infinity') AS after,
           CASE WHEN NOT r.aged AND r.rank > 0 AND %(age)s::float8 IS NOT NULL
                THEN 9223372036854775807 ELSE 0 END AS after_id
      FROM (VALUES (1, 1, true), (2, 2, true), (3, 0, false), (4, 1, false), (5, 2, false))
           AS r(stage, rank, aged)
     CROSS JOIN unnest(%(identifiers)s::text[]) WITH ORDINALITY AS n(identifier, turn)
      JOIN s_workers w ON w.identifier = n.identifier AND w.active AND w.flow IS NULL
     WHERE NOT r.aged OR %(age)s::float8 IS NOT NULL
     ORDER BY r.stage, n.turn
), claimable AS MATERIALIZED (
    SELECT c.id
      FROM ranges
     CROSS JOIN LATERAL (
           SELECT t.id FROM s_tasks t
            WHERE t.status = 10 AND t.identifier = ranges.identifier
              AND t.priority_rank = ranges.rank AND t.start_at <= ranges.due_by
              AND (t.start_at, t.id) > (ranges.after, ranges.after_id)
            ORDER BY t.start_at, t.id
            LIMIT %(limit)s
              FOR UPDATE SKIP LOCKED) AS c
     LIMIT %(limit)s
)
UPDATE s_tasks t
   SET status = 50, attempts = t.attempts + 1, claims = t.claims + 1, daemon_id = %(daemon_id)s,
       started_at = now(), finished_at = NULL, updated_at = now(), message = 'Task started'
  FROM claimable
 WHERE t.id = claimable.id
RETURNING t.*;

-- name: task_claim_limited
-- The claim of this daemon's workers with flow control (max_running, max_running_per_key,
-- rate_limit, fair_share): pgstask_claim_limited (revision 0007) locks each such worker's row and
-- counts under the lock, so no limit is passed however many daemons race.
SELECT * FROM pgstask_claim_limited(%(daemon_id)s, %(identifiers)s::text[], %(limit)s,
                                    %(age)s::float8);

-- name: task_next_start_at
-- In how many seconds this daemon should claim again (None: nothing to wait for), from the
-- first entry of each worker's and priority's range of the claim index:
-- - workers without flow control: when their earliest pending task becomes due;
-- - workers with it: when their earliest task not yet due becomes due (a due one waits for its
--   limit: the end of a running task wakes the daemons with a NOTIFY), and, for a rate limit
--   that is reached, when its window lets the next start in: the limit-th latest start leaves it
--   (per key: the earliest such time of any key).
-- Seconds, not the timestamp: a start_at of infinity (stored before revision 0005) is a float,
-- not a value that a Python datetime cannot hold.
WITH workers AS MATERIALIZED (
    SELECT w.identifier, w.flow FROM s_workers w
     WHERE w.active AND w.identifier = ANY(%(identifiers)s::text[])
), due AS (
    SELECT (SELECT t.start_at FROM s_tasks t
             WHERE t.status = 10 AND t.identifier = w.identifier AND t.priority_rank = r.rank
             ORDER BY t.start_at
             LIMIT 1) AS start_at
      FROM workers w CROSS JOIN (VALUES (0), (1), (2)) AS r(rank)
     WHERE w.flow IS NULL
    UNION ALL
    -- "> now()" as a bound of the index range: the due tasks a limit holds back are not read.
    SELECT (SELECT t.start_at FROM s_tasks t
             WHERE t.status = 10 AND t.identifier = w.identifier AND t.priority_rank = r.rank
               AND t.start_at > now()
             ORDER BY t.start_at
             LIMIT 1)
      FROM workers w CROSS JOIN (VALUES (0), (1), (2)) AS r(rank)
     WHERE w.flow IS NOT NULL
    UNION ALL
    SELECT (SELECT min(k.nth)
              FROM (SELECT (array_agg(s.started_at ORDER BY s.started_at DESC))
                           [(w.flow -> 'rate_limit' ->> 'limit')::integer] AS nth
                      FROM s_task_starts s
                     WHERE s.identifier = w.identifier
                     GROUP BY CASE WHEN (w.flow -> 'rate_limit' ->> 'per_key')::boolean
                                   THEN s.concurrency_key END) AS k)
           + make_interval(secs => (w.flow -> 'rate_limit' ->> 'per')::float8)
      FROM workers w
     WHERE w.flow ? 'rate_limit'
       AND EXISTS (SELECT 1 FROM s_tasks t
                    WHERE t.status = 10 AND t.identifier = w.identifier AND t.start_at <= now())
)
SELECT greatest(extract(epoch FROM min(due.start_at)) - extract(epoch FROM now()), 0)::float8
       AS delay
  FROM due
HAVING min(due.start_at) IS NOT NULL;

-- name: task_complete_many
-- The batch is one JSON array of [id, claims, message, result, peak_memory]: encoding one JSON
-- text costs the daemon far less than one array parameter per column. Each row is a
-- compare-and-set on its run: (id, claims), still running on this daemon.
UPDATE s_tasks t
   SET status = 80, finished_at = now(), updated_at = now(), progress = 100,
       message = coalesce(d.message, 'Task completed successfully'), result = d.result,
       peak_memory = d.peak_memory
  FROM (SELECT (e->>0)::bigint AS id, (e->>1)::int AS claims, e->>2 AS message,
               e->3 AS result, (e->>4)::bigint AS peak_memory
          FROM jsonb_array_elements(%(outcomes)s::jsonb) AS e) AS d
 WHERE t.id = d.id AND t.status IN (30, 50) AND t.claims = d.claims
   AND t.daemon_id = %(daemon_id)s
RETURNING t.id, t.claims;

-- name: task_fail_many
-- A failure either schedules a retry (back to pending after its delay) or is final: when the
-- worker said so (retry_delay is NULL) or the attempts are used up.
UPDATE s_tasks t
   SET status = CASE WHEN d.retry_delay IS NULL OR t.attempts >= t.max_attempts THEN 100 ELSE 10 END,
       start_at = CASE WHEN d.retry_delay IS NULL OR t.attempts >= t.max_attempts THEN t.start_at
                       ELSE now() + make_interval(secs => d.retry_delay) END,
       finished_at = CASE WHEN d.retry_delay IS NULL OR t.attempts >= t.max_attempts THEN now() END,
       daemon_id = CASE WHEN d.retry_delay IS NULL OR t.attempts >= t.max_attempts THEN t.daemon_id END,
       message = d.message, last_error = d.error, peak_memory = d.peak_memory, updated_at = now()
  FROM unnest(%(ids)s::bigint[], %(claims)s::int[], %(messages)s::text[], %(errors)s::text[],
              %(retry_delays)s::float8[], %(peak_memory)s::bigint[])
       AS d(id, claims, message, error, retry_delay, peak_memory)
 WHERE t.id = d.id AND t.status IN (30, 50) AND t.claims = d.claims
   AND t.daemon_id = %(daemon_id)s
RETURNING t.id, t.claims, t.status;

-- name: task_give_back_many
-- Graceful shutdown (tasks whose actions did not finish in the grace period) and fencing (a
-- daemon that lost the database stopped them): back to pending, the interrupted attempt not
-- counted; a NULL message is the shutdown's.
UPDATE s_tasks t
   SET status = 10, attempts = greatest(t.attempts - 1, 0), daemon_id = NULL, started_at = NULL,
       start_at = now(), message = coalesce(d.message, 'Given back by a daemon that shut down'),
       updated_at = now()
  FROM unnest(%(ids)s::bigint[], %(claims)s::int[], %(messages)s::text[]) AS d(id, claims, message)
 WHERE t.id = d.id AND t.status IN (30, 50) AND t.claims = d.claims
   AND t.daemon_id = %(daemon_id)s
RETURNING t.id, t.claims;

-- name: task_snooze_many
-- Runs whose action raised Snooze: back to pending at now() + delay (the database clock), the
-- attempt not counted and the snooze counted. Not a failure: last_error and peak_memory stay as
-- they were. The message says until when, in UTC, then the action's own words if it gave any.
UPDATE s_tasks t
   SET status = 10, attempts = greatest(t.attempts - 1, 0), snoozes = t.snoozes + 1,
       daemon_id = NULL, started_at = NULL, start_at = d.until, updated_at = now(),
       message = 'Snoozed until ' || to_char(d.until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                 || ' UTC' || coalesce(': ' || d.message, '')
  FROM (SELECT u.id, u.claims, u.message, now() + make_interval(secs => u.delay) AS until
          FROM unnest(%(ids)s::bigint[], %(claims)s::int[], %(delays)s::float8[],
                      %(messages)s::text[]) AS u(id, claims, delay, message)) AS d
 WHERE t.id = d.id AND t.status IN (30, 50) AND t.claims = d.claims
   AND t.daemon_id = %(daemon_id)s
RETURNING t.id, t.claims;

-- name: task_give_back_unknown
-- What this daemon holds in the database but does not know it holds, whatever the cause: a
-- claim that committed but whose reply was lost (the connection died), a claim whose rows could
-- not be handed over. ``ids``/``claims`` are the runs it knows (running, or with an outcome not
-- written yet); it never started the others, so they go back to pending at once and the attempt
-- does not count. Uses the index of held tasks (s_tasks_daemon_idx).
UPDATE s_tasks t
   SET status = 10, attempts = greatest(t.attempts - 1, 0), daemon_id = NULL, started_at = NULL,
       start_at = now(), message = 'Given back: its daemon held it without running it',
       updated_at = now()
 WHERE t.daemon_id = %(daemon_id)s AND t.status IN (30, 50)
   AND NOT EXISTS (SELECT 1 FROM unnest(%(ids)s::bigint[], %(claims)s::int[]) AS k(id, claims)
                    WHERE k.id = t.id AND k.claims = t.claims)
RETURNING t.id, t.claims;

-- name: task_lost
-- Of the runs this daemon has, (task id, claims) each, those it no longer holds: cancelled,
-- rescued, or already replaced by a later run.
SELECT u.id, u.claims
  FROM unnest(%(ids)s::bigint[], %(claims)s::int[]) AS u(id, claims)
 WHERE NOT EXISTS (SELECT 1 FROM s_tasks t
                    WHERE t.id = u.id AND t.claims = u.claims AND t.status IN (30, 50)
                      AND t.daemon_id = %(daemon_id)s);

-- name: task_set_status
-- A worker's own phase change between preparing (30) and running (50).
UPDATE s_tasks
   SET status = %(status)s, updated_at = now()
 WHERE id = %(id)s AND status IN (30, 50) AND claims = %(claims)s AND daemon_id = %(daemon_id)s
RETURNING id;

-- name: task_rescue
-- Tasks held by daemons whose heartbeat is older than stale_after (or whose row is gone) go back
-- to pending after a backoff, or fail when their attempts are used up. Staleness is judged with
-- the database clock only, and re-checked inside the UPDATE (status still 30/50).
WITH orphaned AS MATERIALIZED (
    SELECT t.id
      FROM s_tasks t
     WHERE t.status IN (30, 50)
       AND NOT EXISTS (SELECT 1 FROM s_daemons d
                        WHERE d.id = t.daemon_id
                          AND d.heartbeat_at > now() - make_interval(secs => %(stale_after)s))
     ORDER BY t.id
     LIMIT %(limit)s
       -- NO KEY: a transaction that inserted a log row of the task holds a KEY SHARE lock on it
       -- (the foreign key); a hung one must not keep the task from being rescued.
       FOR NO KEY UPDATE SKIP LOCKED
), rescued AS (
    UPDATE s_tasks t
       SET status = CASE WHEN t.attempts >= t.max_attempts THEN 100 ELSE 10 END,
           start_at = CASE WHEN t.attempts >= t.max_attempts THEN t.start_at
                           ELSE now() + make_interval(secs => least(%(max_delay)s,
                                    %(base_delay)s * power(2, greatest(t.attempts - 1, 0)))) END,
           finished_at = CASE WHEN t.attempts >= t.max_attempts THEN now() END,
           last_error = 'daemon ' || coalesce(t.daemon_id::text, '?') || ' stopped heartbeating',
           message = CASE WHEN t.attempts >= t.max_attempts
                          THEN 'Failed: its daemon died and no attempts are left'
                          ELSE 'Rescued from a dead daemon; will be retried' END,
           daemon_id = NULL, updated_at = now()
      FROM orphaned
     WHERE t.id = orphaned.id AND t.status IN (30, 50)
    RETURNING t.id, t.status, t.attempts, t.identifier
), woken AS (
    SELECT pgstask_notify_ended(array_agg(DISTINCT identifier)) FROM rescued
)
SELECT r.id, r.status, r.attempts FROM rescued r, woken;

-- name: task_cancel
-- Pending, waiting, preparing or running tasks become cancelled at once (the children of one
-- with children are released or cancelled by revision 0010's trigger, in this statement); a running action is told through
-- NOTIFY pgstask_cancel with the payload '<id>:<claims>' (its run: a later run of the task, after
-- a retry, is not stopped by a late notification), and by its daemon's next heartbeat if the
-- notification is missed.
WITH target AS (
    SELECT id, status, claims FROM s_tasks WHERE id = %(id)s FOR UPDATE
), cancelled AS (
    UPDATE s_tasks t
       SET status = 90, finished_at = now(), updated_at = now(),
           message = %(message)s
      FROM target
     WHERE t.id = target.id AND target.status IN (10, 20, 30, 50)
    RETURNING t.id, target.status AS previous_status, target.claims, t.identifier
), woken AS (
    SELECT pgstask_notify_ended(array_agg(identifier) FILTER (WHERE previous_status IN (30, 50)))
      FROM cancelled
)
SELECT c.id, c.previous_status, pg_notify('pgstask_cancel', c.id || ':' || c.claims)::text AS notified
  FROM cancelled c, woken;

-- name: task_retry
-- A failed or cancelled task is queued again with a fresh set of attempts (and of snoozes). A
-- task with parents waits again (status 20) for those that have not finished now: one that is
-- pending or running (a parent retried too, or one the task was cancelled before) counts anew.
-- As at the insert (pgstask_link, revision 0010), the parents are locked before their status is
-- read, so a parent that ends meanwhile is counted by its own release, or here, never by both.
WITH target AS (
    SELECT id FROM s_tasks WHERE id = %(id)s AND status IN (90, 100) FOR UPDATE
), parents AS MATERIALIZED (
    SELECT p.id, p.status IN (80, 90, 100) AS ended
      FROM s_tasks p
     WHERE p.id IN (SELECT d.parent_id FROM s_task_deps d JOIN target ON d.task_id = target.id)
     ORDER BY p.id
       FOR NO KEY UPDATE
), edges AS (
    UPDATE s_task_deps d SET done = p.ended
      FROM parents p, target
     WHERE d.task_id = target.id AND d.parent_id = p.id
    RETURNING d.done
), open AS (
    SELECT (count(*) FILTER (WHERE NOT done))::integer AS n FROM edges
)
UPDATE s_tasks t
   SET status = CASE WHEN open.n > 0 THEN 20 ELSE 10 END, waiting_for = open.n,
       attempts = 0, snoozes = 0, start_at = now(), started_at = NULL, finished_at = NULL,
       daemon_id = NULL, progress = 0, updated_at = now(),
       message = CASE WHEN open.n > 0 THEN 'Queued for retry: waiting for ' || open.n || ' task(s)'
                      ELSE 'Task queued for retry' END
  FROM target, open
 WHERE t.id = target.id
RETURNING t.*;

-- name: task_notify
SELECT pg_notify('pgstask_tasks', '');

-- name: task_list
-- Keyset pagination on id (newest first). A NULL filter matches everything; the created range is
-- [created_from, created_to).
SELECT *
  FROM s_tasks
 WHERE (%(status)s::smallint IS NULL OR status = %(status)s::smallint)
   AND (%(identifier)s::text IS NULL OR identifier = %(identifier)s::text)
   AND (%(action)s::text IS NULL OR action = %(action)s::text)
   AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
   AND (%(concurrency_key)s::text IS NULL OR concurrency_key = %(concurrency_key)s::text)
   AND (%(created_from)s::timestamptz IS NULL OR created_at >= %(created_from)s::timestamptz)
   AND (%(created_to)s::timestamptz IS NULL OR created_at < %(created_to)s::timestamptz)
   AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
 ORDER BY id DESC
 LIMIT %(limit)s;

-- name: task_pending
-- Due pending tasks by priority, start_at and id. The claim index has one range per worker:
-- the workers that have pending tasks are found by a loose index scan (one descent each), the
-- first limit due tasks of each range are merged, so the work follows the number of workers,
-- not of pending tasks.
WITH RECURSIVE idents AS (
    (SELECT identifier FROM s_tasks WHERE status = 10 ORDER BY identifier LIMIT 1)
    UNION ALL
    SELECT (SELECT t.identifier FROM s_tasks t
             WHERE t.status = 10 AND t.identifier > idents.identifier
             ORDER BY t.identifier LIMIT 1)
      FROM idents
     WHERE idents.identifier IS NOT NULL
)
SELECT c.*
  FROM idents
 CROSS JOIN (VALUES (0), (1), (2)) AS r(rank)
 CROSS JOIN LATERAL (
       SELECT * FROM s_tasks t
        WHERE t.status = 10 AND t.identifier = idents.identifier AND t.priority_rank = r.rank
          AND t.start_at <= now()
        ORDER BY t.start_at, t.id
        LIMIT %(limit)s) AS c
 ORDER BY c.priority_rank, c.start_at, c.id
 LIMIT %(limit)s;

-- name: task_count_by_status
SELECT status, count(*) AS count FROM s_tasks GROUP BY status;

-- name: task_waiting_for_worker
-- Pending tasks whose worker no daemon registered (registered = false), or that is inactive.
SELECT t.identifier, w.identifier IS NOT NULL AS registered, count(*) AS count
  FROM s_tasks t
  LEFT JOIN s_workers w ON w.identifier = t.identifier
 WHERE t.status = 10 AND (w.identifier IS NULL OR NOT w.active)
 GROUP BY t.identifier, w.identifier
 ORDER BY t.identifier;

-- name: task_delete_finished_before
-- Retention, in batches so a large delete never holds many locks at once.
WITH old AS (
    SELECT id FROM s_tasks
     WHERE status IN (80, 90, 100)
       AND finished_at < now() - %(days)s::float8 * interval '1 day'
     ORDER BY id
     LIMIT %(limit)s
)
DELETE FROM s_tasks t USING old WHERE t.id = old.id
RETURNING t.id;

-- name: task_claim_by_id
-- Client.execute: claim one specific pending task now, whatever its start_at, within its
-- worker's limits (pgstask_claim_task, revision 0007: nothing when a limit is reached).
SELECT * FROM pgstask_claim_task(%(daemon_id)s, %(id)s);

-- name: task_merge_meta
-- Add keys to the options of a task that has not started (an upload attached to it).
UPDATE s_tasks
   SET meta = meta || %(patch)s, updated_at = now()
 WHERE id = %(id)s AND status IN (10, 30)
RETURNING *;

-- name: task_starts_delete_before
-- The starts of rate-limited workers older than any window (the cleaner): a worker whose rate
-- limit was removed leaves its last window's rows behind.
WITH old AS (
    SELECT ctid FROM s_task_starts
     WHERE started_at < now() - make_interval(secs => %(seconds)s::float8)
     LIMIT 10000
)
DELETE FROM s_task_starts s USING old WHERE s.ctid = old.ctid
RETURNING 1;
