-- Revision 0007: flow control, enforced in the claim across every daemon (docs/limits.md).
--
-- concurrency_key: the key per-key limits and fair sharing group tasks by (NULL: none). Set by
-- Client.create, the HTTP API, pgstask_enqueue or a plain INSERT. Adding a nullable column with
-- no default rewrites nothing; its CHECK is validated in the same pass.
ALTER TABLE s_tasks ADD COLUMN concurrency_key text
    CONSTRAINT s_tasks_concurrency_key_check
    CHECK (concurrency_key ~ '\S' AND length(concurrency_key) <= 255);

-- The claim index: one range per worker and priority (it was one per priority for all workers),
-- so that a claim never walks past the pending tasks of workers it does not take: those of
-- other daemons, inactive ones, and those a limit holds back, which are the normal state of a
-- limited worker with a backlog.
DROP INDEX s_tasks_claim_idx;
CREATE INDEX s_tasks_claim_idx ON s_tasks (identifier, priority_rank, start_at, id)
    WHERE status = 10;

-- The claim of a worker with per-key limits or fair sharing walks its pending tasks key by key,
-- one index descent per key (a loose index scan), in each priority: (identifier, priority_rank,
-- concurrency_key) leads, and (start_at, id) orders a key's own tasks. Pending rows only (a
-- claimed row leaves it); tasks without a key are in it too (NULLs sort last), so that such a
-- worker's unkeyed tasks are found without walking past its keyed ones.
CREATE INDEX s_tasks_worker_claim_idx ON s_tasks (identifier, priority_rank, concurrency_key,
                                                  start_at, id)
    WHERE status = 10;
-- Running tasks per key: what max_running_per_key counts, one descent per key. Keyed rows only,
-- so a task without a key costs nothing more when it is claimed.
CREATE INDEX s_tasks_running_key_idx ON s_tasks (identifier, concurrency_key)
    WHERE status IN (30, 50) AND concurrency_key IS NOT NULL;

-- The flow-control settings of a worker, normalised: max_running, max_running_per_key,
-- rate_limit {limit, per, per_key} and fair_share, each only when set; NULL when the worker has
-- none (its tasks are claimed by the plain claim). An invalid value raises, so that neither an
-- UPDATE of s_workers.settings from SQL nor a daemon's class defaults can store a limit that
-- the claim could not read.
CREATE FUNCTION pgstask_worker_flow(settings jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    flow jsonb := '{}'::jsonb;
    name text;
    value jsonb;
    rate jsonb;
BEGIN
    IF jsonb_typeof(settings) IS DISTINCT FROM 'object' THEN
        RETURN NULL;  -- s_workers_settings_object_check reports it
    END IF;
    FOREACH name IN ARRAY ARRAY['max_running', 'max_running_per_key'] LOOP
        value := settings -> name;
        CONTINUE WHEN value IS NULL OR jsonb_typeof(value) = 'null';
        IF jsonb_typeof(value) <> 'number' OR value::numeric <> trunc(value::numeric)
           OR value::numeric < 1 OR value::numeric > 1000000 THEN
            RAISE EXCEPTION 'pgstask: worker setting % must be a whole number from 1 to 1000000, not %',
                            name, value
                USING ERRCODE = 'check_violation',
                      HINT = 'Set it to null for no limit; deactivate the worker to stop its tasks.';
        END IF;
        flow := flow || jsonb_build_object(name, value::numeric::integer);
    END LOOP;
    rate := settings -> 'rate_limit';
    IF rate IS NOT NULL AND jsonb_typeof(rate) <> 'null' THEN
        IF jsonb_typeof(rate) <> 'object'
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(rate) AS k
                       WHERE k NOT IN ('limit', 'per', 'per_key'))
           OR jsonb_typeof(rate -> 'limit') IS DISTINCT FROM 'number'
           OR jsonb_typeof(rate -> 'per') IS DISTINCT FROM 'number'
           OR coalesce(jsonb_typeof(rate -> 'per_key'), 'boolean') NOT IN ('boolean', 'null') THEN
            RAISE EXCEPTION 'pgstask: worker setting rate_limit must be an object {"limit": N, "per": seconds} with an optional "per_key": true|false, not %',
                            rate
                USING ERRCODE = 'check_violation',
                      HINT = 'Example: {"limit": 10, "per": 1} allows 10 task starts a second.';
        END IF;
        IF (rate ->> 'limit')::numeric <> trunc((rate ->> 'limit')::numeric)
           OR (rate ->> 'limit')::numeric < 1 OR (rate ->> 'limit')::numeric > 1000000 THEN
            RAISE EXCEPTION 'pgstask: rate_limit.limit must be a whole number from 1 to 1000000, not %',
                            rate -> 'limit'
                USING ERRCODE = 'check_violation';
        END IF;
        IF (rate ->> 'per')::numeric < 0.001 OR (rate ->> 'per')::numeric > 604800 THEN
            RAISE EXCEPTION 'pgstask: rate_limit.per must be a number of seconds from 0.001 to 604800 (a week), not %',
                            rate -> 'per'
                USING ERRCODE = 'check_violation';
        END IF;
        flow := flow || jsonb_build_object('rate_limit', jsonb_build_object(
            'limit', (rate ->> 'limit')::numeric::integer,
            'per', (rate ->> 'per')::float8,
            'per_key', coalesce((rate ->> 'per_key')::boolean, false)));
    END IF;
    value := settings -> 'fair_share';
    IF value IS NOT NULL AND jsonb_typeof(value) NOT IN ('boolean', 'null') THEN
        RAISE EXCEPTION 'pgstask: worker setting fair_share must be true or false, not %', value
            USING ERRCODE = 'check_violation';
    END IF;
    IF value = 'true'::jsonb THEN
        flow := flow || '{"fair_share": true}'::jsonb;
    END IF;
    RETURN nullif(flow, '{}'::jsonb);
END
$$;

-- defaults: the flow-control settings of the worker's class (written by a daemon that runs it);
-- settings, edited live, override them key by key. flow is what the claim reads.
ALTER TABLE s_workers ADD COLUMN defaults jsonb NOT NULL DEFAULT '{}'::jsonb
    CONSTRAINT s_workers_defaults_object_check CHECK (jsonb_typeof(defaults) = 'object');
ALTER TABLE s_workers ADD COLUMN flow jsonb
    GENERATED ALWAYS AS (pgstask_worker_flow(defaults || settings)) STORED;

-- The starts of rate-limited workers within their window (a sliding log: at most limit rows per
-- worker, or per key, younger than per). The claim that records starts deletes its worker's
-- expired ones; the cleaner removes what a worker that lost its rate limit left.
CREATE TABLE s_task_starts (
    identifier      text        NOT NULL,
    concurrency_key text,
    started_at      timestamptz NOT NULL
);
CREATE INDEX s_task_starts_idx ON s_task_starts (identifier, started_at);
CREATE INDEX s_task_starts_key_idx ON s_task_starts (identifier, concurrency_key, started_at)
    WHERE concurrency_key IS NOT NULL;

-- Where the key rotation of a worker stopped: the next claim starts after this key ('' : after
-- the unkeyed tasks, which come after the last key), so that no key is always served last.
CREATE TABLE s_flow_cursors (
    identifier text PRIMARY KEY,
    key_cursor text NOT NULL
);

-- Due pending tasks of one key group of a worker in one priority, at most n, locked: the key's
-- (NULL: the unkeyed tasks), due at due_before, none of skip.
CREATE FUNCTION pgstask_claimable_of_key(worker text, rank smallint, key text, n integer,
                                         due_before timestamptz, skip bigint[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
BEGIN
    -- Two statements, not "IS NOT DISTINCT FROM key": each is one range of the worker claim
    -- index.
    IF key IS NULL THEN
        RETURN ARRAY(
            SELECT t.id FROM s_tasks t
             WHERE t.status = 10 AND t.identifier = worker AND t.priority_rank = rank
               AND t.concurrency_key IS NULL AND t.start_at <= due_before AND t.id <> ALL(skip)
             ORDER BY t.start_at, t.id
             LIMIT n
               FOR UPDATE SKIP LOCKED);
    END IF;
    RETURN ARRAY(
        SELECT t.id FROM s_tasks t
         WHERE t.status = 10 AND t.identifier = worker AND t.priority_rank = rank
           AND t.concurrency_key = key AND t.start_at <= due_before AND t.id <> ALL(skip)
         ORDER BY t.start_at, t.id
         LIMIT n
           FOR UPDATE SKIP LOCKED);
END
$$;

-- The tasks one limited worker may start now, at most room, chosen and locked (not yet
-- claimed). The caller holds the worker's row lock, so every other claim of this worker waits
-- for this transaction and the counts below are exact. Totals (max_running, a rate without
-- per_key) bound the batch; per-key limits and fair sharing walk the keys in rotation.
CREATE FUNCTION pgstask_claimable_limited(worker text, flow jsonb, room integer, age float8)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    per_key integer := (flow ->> 'max_running_per_key')::integer;
    rate integer := (flow -> 'rate_limit' ->> 'limit')::integer;
    rate_per_key boolean := coalesce((flow -> 'rate_limit' ->> 'per_key')::boolean, false);
    fair boolean := coalesce((flow ->> 'fair_share')::boolean, false);
    cap integer := room;
    picked bigint[] := '{}';
    ids bigint[];
    taken jsonb := '{}'::jsonb;  -- tasks picked per key in this call
    cursor_key text;
    last_key text;
    key text;
    wrapped boolean;
    unkeyed_done boolean;
    want integer;
    took integer;
    stage record;
BEGIN
    IF flow ? 'max_running' THEN
        cap := least(cap, (flow ->> 'max_running')::integer
                          - (SELECT count(*) FROM s_tasks
                              WHERE status IN (30, 50) AND identifier = worker)::integer);
    END IF;
    IF rate IS NOT NULL AND NOT rate_per_key THEN
        cap := least(cap, rate - (SELECT count(*) FROM s_task_starts WHERE identifier = worker)::integer);
    END IF;
    IF cap <= 0 THEN
        RETURN picked;
    END IF;
    IF per_key IS NULL AND NOT rate_per_key AND NOT fair THEN
        -- Totals only: the plain claim's order (aged tasks first, then by priority).
        RETURN ARRAY(
            SELECT c.id
              FROM (VALUES (1, true), (2, true), (0, false), (1, false), (2, false)) AS r(rank, aged)
             CROSS JOIN LATERAL (
                   SELECT t.id FROM s_tasks t
                    WHERE t.status = 10 AND t.priority_rank = r.rank AND t.identifier = worker
                      AND t.start_at <= CASE WHEN r.aged THEN now() - make_interval(secs => age)
                                             ELSE now() END
                      AND (r.aged OR age IS NULL OR r.rank = 0
                           OR t.start_at > now() - make_interval(secs => age))
                    ORDER BY t.start_at, t.id
                    LIMIT cap
                      FOR UPDATE SKIP LOCKED) AS c
             LIMIT cap);  -- no ORDER BY: the nested loop keeps the stages' order, pulls lazily
    END IF;
    cursor_key := (SELECT key_cursor FROM s_flow_cursors WHERE identifier = worker);
    -- Stages: tasks older than age in normal and low priority (when age is set), then each
    -- priority. In each, passes over every key with pending tasks and then the unkeyed tasks
    -- (one more key, after the last: NULLs sort last), starting after the cursor and wrapping
    -- around; fair sharing takes one task per key a pass and passes again while a pass took
    -- something. The unkeyed group takes its turn like a key: served first in every claim, a
    -- backlog of them would hold back every key whenever a claim has room for one task. Its
    -- place in the cursor is '' (no key can be blank: s_tasks_concurrency_key_check).
    FOR stage IN
        SELECT s.rank::smallint AS rank,
               CASE WHEN s.aged THEN now() - make_interval(secs => age) ELSE now() END AS due
          FROM (VALUES (1, 1, true), (2, 2, true), (3, 0, false), (4, 1, false), (5, 2, false))
               AS s(ord, rank, aged)
         WHERE NOT s.aged OR age IS NOT NULL
         ORDER BY s.ord
    LOOP
        -- An aged stage with no task old enough (the usual case: aging bounds a rare wait) is
        -- skipped after one descent of the claim index; walked, it would visit every key. The
        -- earliest start_at, not EXISTS (… start_at <= due): the generic plan PL/pgSQL settles
        -- on for that one is a sequential scan of s_tasks.
        CONTINUE WHEN stage.due < now() AND coalesce(
            (SELECT t.start_at FROM s_tasks t
              WHERE t.status = 10 AND t.identifier = worker AND t.priority_rank = stage.rank
              ORDER BY t.start_at
              LIMIT 1) > stage.due, true);
        LOOP  -- passes
            EXIT WHEN cap <= 0;
            took := 0;
            unkeyed_done := false;
            key := nullif(cursor_key, '');
            -- After the unkeyed group (or with no cursor): one round from the first key.
            wrapped := coalesce(cursor_key, '') = '';
            LOOP  -- keys
                EXIT WHEN cap <= 0;
                -- The next key: one descent of the worker claim index (a loose index scan).
                IF key IS NULL THEN
                    SELECT t.concurrency_key INTO key FROM s_tasks t
                     WHERE t.status = 10 AND t.identifier = worker AND t.priority_rank = stage.rank
                       AND t.concurrency_key IS NOT NULL
                     ORDER BY t.concurrency_key
                     LIMIT 1;
                ELSE
                    SELECT t.concurrency_key INTO key FROM s_tasks t
                     WHERE t.status = 10 AND t.identifier = worker AND t.priority_rank = stage.rank
                       AND t.concurrency_key > key
                     ORDER BY t.concurrency_key
                     LIMIT 1;
                END IF;
                IF NOT FOUND THEN
                    -- Past the last key: the unkeyed tasks' turn, limited by the totals only.
                    IF NOT unkeyed_done THEN
                        unkeyed_done := true;
                        want := CASE WHEN fair THEN 1 ELSE cap END;
                        ids := pgstask_claimable_of_key(worker, stage.rank, NULL, want, stage.due,
                                                        picked);
                        IF cardinality(ids) > 0 THEN
                            picked := picked || ids;
                            cap := cap - cardinality(ids);
                            took := took + cardinality(ids);
                            last_key := '';
                        END IF;
                    END IF;
                    EXIT WHEN wrapped;
                    wrapped := true;  -- on from the first key, up to the cursor
                    key := NULL;
                    CONTINUE;
                END IF;
                EXIT WHEN wrapped AND coalesce(cursor_key, '') <> '' AND key > cursor_key;
                want := CASE WHEN fair THEN 1 ELSE cap END;
                IF per_key IS NOT NULL THEN
                    want := least(want, per_key - coalesce((taken ->> key)::integer, 0)
                                        - (SELECT count(*) FROM s_tasks
                                            WHERE status IN (30, 50) AND identifier = worker
                                              AND concurrency_key = key)::integer);
                END IF;
                IF rate IS NOT NULL AND rate_per_key THEN
                    want := least(want, rate - coalesce((taken ->> key)::integer, 0)
                                        - (SELECT count(*) FROM s_task_starts
                                            WHERE identifier = worker AND concurrency_key = key)::integer);
                END IF;
                CONTINUE WHEN want <= 0;
                ids := pgstask_claimable_of_key(worker, stage.rank, key, want, stage.due, picked);
                CONTINUE WHEN cardinality(ids) = 0;
                picked := picked || ids;
                cap := cap - cardinality(ids);
                took := took + cardinality(ids);
                taken := taken || jsonb_build_object(key, coalesce((taken ->> key)::integer, 0)
                                                          + cardinality(ids));
                last_key := key;
            END LOOP;
            EXIT WHEN NOT fair OR took = 0;
            cursor_key := coalesce(last_key, cursor_key);
        END LOOP;
    END LOOP;
    IF last_key IS NOT NULL THEN
        INSERT INTO s_flow_cursors AS f (identifier, key_cursor) VALUES (worker, last_key)
        ON CONFLICT (identifier) DO UPDATE SET key_cursor = excluded.key_cursor;
    END IF;
    RETURN picked;
END
$$;

-- The claim of workers with flow control (s_workers.flow set), the counterpart of the
-- task_claim query for the others: each such worker among identifiers is locked (its s_workers
-- row, FOR NO KEY UPDATE, in identifier order so two claims never deadlock), then its tasks are
-- chosen by statements that each see every claim committed before the lock was granted (a
-- PL/pgSQL function takes a fresh snapshot per statement): a limit holds however many daemons
-- race. Completions need no lock: they only lower the counts. Rate windows are measured with
-- clock_timestamp() read under the lock, so the recorded starts of a worker are in order.
CREATE FUNCTION pgstask_claim_limited(daemon uuid, identifiers text[], batch integer,
                                      age float8 DEFAULT NULL)
RETURNS SETOF s_tasks LANGUAGE plpgsql AS $$
DECLARE
    w record;
    room integer := batch;
    ids bigint[];
    clock timestamptz;
    rate jsonb;
BEGIN
    FOR w IN SELECT s.identifier FROM s_workers s
              WHERE s.identifier = ANY(identifiers) AND s.active AND s.flow IS NOT NULL
              ORDER BY s.identifier
                FOR NO KEY UPDATE
    LOOP
        EXIT WHEN room <= 0;
        -- Read again under the lock: the flow of the row as it is now.
        SELECT s.flow INTO rate FROM s_workers s WHERE s.identifier = w.identifier AND s.active;
        CONTINUE WHEN rate IS NULL;
        clock := clock_timestamp();
        IF rate ? 'rate_limit' THEN
            DELETE FROM s_task_starts
             WHERE identifier = w.identifier
               AND started_at <= clock - make_interval(secs => (rate -> 'rate_limit' ->> 'per')::float8);
        END IF;
        ids := pgstask_claimable_limited(w.identifier, rate, room, age);
        CONTINUE WHEN cardinality(ids) = 0;
        room := room - cardinality(ids);
        RETURN QUERY
        WITH claimed AS (
            UPDATE s_tasks t
               SET status = 50, attempts = t.attempts + 1, claims = t.claims + 1, daemon_id = daemon,
                   started_at = now(), finished_at = NULL, updated_at = now(),
                   message = 'Task started'
             WHERE t.id = ANY(ids)
            RETURNING t.*
        ), starts AS (
            INSERT INTO s_task_starts (identifier, concurrency_key, started_at)
            SELECT c.identifier, c.concurrency_key, clock FROM claimed c
             WHERE rate ? 'rate_limit'
        )
        SELECT * FROM claimed;
    END LOOP;
END
$$;

-- Called by the statements that end running tasks (completion, failure, give-back, cancel,
-- rescue) with the workers of the tasks they ended: when one has flow control, its freed slot
-- may let a held-back task start, so the daemons are woken (task_next_start_at does not wake
-- them for due tasks a limit holds back). Workers without flow control cost one lookup.
CREATE FUNCTION pgstask_notify_ended(identifiers text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM s_workers w WHERE w.flow IS NOT NULL AND w.identifier = ANY(identifiers))
       AND pg_notification_queue_usage() < 0.5 THEN
        PERFORM pg_notify('pgstask_tasks', '');
    END IF;
END
$$;

-- Client.execute / pgstask execute: claim one pending task by id now, whatever its start_at, but
-- within its worker's limits like any claim (under the same lock): nothing is returned when a
-- limit is reached (or the task is not pending).
CREATE FUNCTION pgstask_claim_task(daemon uuid, task_id bigint)
RETURNS SETOF s_tasks LANGUAGE plpgsql AS $$
DECLARE
    worker text;
    key text;
    flow jsonb;
    per_key integer;
    rate integer;
    clock timestamptz;
BEGIN
    SELECT t.identifier, t.concurrency_key INTO worker, key FROM s_tasks t
     WHERE t.id = task_id AND t.status = 10;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT s.flow INTO flow FROM s_workers s WHERE s.identifier = worker FOR NO KEY UPDATE;
    IF flow IS NOT NULL THEN
        -- Fresh snapshots from here on: every claim of the worker before the lock is seen.
        -- The task again, locked: its key may have changed while this waited for the lock (a
        -- replace gives a pending task the new create's key), and the limit is counted for the
        -- key it is claimed with; the lock keeps it until the claim below.
        SELECT t.concurrency_key INTO key FROM s_tasks t
         WHERE t.id = task_id AND t.status = 10 AND t.identifier = worker
           FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        clock := clock_timestamp();
        per_key := (flow ->> 'max_running_per_key')::integer;
        rate := (flow -> 'rate_limit' ->> 'limit')::integer;
        IF (flow ? 'max_running'
            AND (SELECT count(*) FROM s_tasks WHERE status IN (30, 50) AND identifier = worker)
                >= (flow ->> 'max_running')::integer)
           OR (per_key IS NOT NULL AND key IS NOT NULL
               AND (SELECT count(*) FROM s_tasks WHERE status IN (30, 50) AND identifier = worker
                       AND concurrency_key = key) >= per_key)
           OR (rate IS NOT NULL
               AND (SELECT count(*) FROM s_task_starts s
                     WHERE s.identifier = worker
                       AND s.started_at > clock - make_interval(
                                              secs => (flow -> 'rate_limit' ->> 'per')::float8)
                       AND (NOT (flow -> 'rate_limit' ->> 'per_key')::boolean
                            OR s.concurrency_key IS NOT DISTINCT FROM key)) >= rate) THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
    WITH claimed AS (
        UPDATE s_tasks t
           SET status = 50, attempts = t.attempts + 1, claims = t.claims + 1, daemon_id = daemon,
               started_at = now(), finished_at = NULL, updated_at = now(), message = 'Task started'
         WHERE t.id = task_id AND t.status = 10
        RETURNING t.*
    ), starts AS (
        INSERT INTO s_task_starts (identifier, concurrency_key, started_at)
        SELECT c.identifier, c.concurrency_key, clock FROM claimed c WHERE flow ? 'rate_limit'
    )
    SELECT * FROM claimed;
END
$$;

-- pgstask_enqueue gains concurrency_key. An added argument makes another function (CREATE OR
-- REPLACE cannot add one, and an overload left beside the old one would make every call that
-- omits a defaulted argument ambiguous): the new one is created, the privileges granted on the
-- old one are granted on it (a role that may enqueue keeps it, PUBLIC stays revoked where it
-- was), and the old one is dropped.
CREATE FUNCTION pgstask_enqueue(
    identifier      text,
    action          text,
    meta            jsonb DEFAULT '{}'::jsonb,
    priority        text DEFAULT 'normal',
    start_at        timestamptz DEFAULT NULL,
    max_attempts    integer DEFAULT 3,
    started_by      bigint DEFAULT NULL,
    dedupe_key      text DEFAULT NULL,
    concurrency_key text DEFAULT NULL,
    throttle        float8 DEFAULT NULL,
    replace         boolean DEFAULT false
) RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- The dedupe windows (docs/dedupe.md) as Client.create has them: throttle (seconds) creates
-- nothing while a task with the key finished less than that long ago, replace gives a pending
-- task with the key the new meta, priority, start_at, max_attempts and concurrency_key. Either
-- returns the id of the task that holds the key instead of a new one (NULL: none holds it any
-- more); without them, the key of an incomplete task is a unique_violation, as before.
DECLARE
    new_id bigint;
BEGIN
    IF (throttle IS NOT NULL OR replace) AND $8 IS NULL THEN
        RAISE EXCEPTION 'pgstask: throttle and replace need a dedupe_key'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF throttle IS NOT NULL AND NOT (throttle > 0 AND throttle <= 31622400) THEN
        RAISE EXCEPTION 'pgstask: throttle must be a number of seconds from 0 to 31622400 (366 days), not %', throttle
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF throttle IS NOT NULL THEN
        SELECT f.id INTO new_id FROM s_tasks f
         WHERE f.dedupe_key = $8 AND f.status IN (80, 90, 100)
           AND f.finished_at > now() - make_interval(secs => throttle)
         ORDER BY f.finished_at DESC
         LIMIT 1;
        IF FOUND THEN  -- no new task, nothing replaced: the incomplete holder, else that one
            RETURN coalesce((SELECT h.id FROM s_tasks h
                              WHERE h.dedupe_key = $8 AND h.status IN (10, 30, 50)), new_id);
        END IF;
    END IF;
    IF NOT coalesce(replace, false) AND throttle IS NULL THEN
        INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts,
                             started_by, dedupe_key, concurrency_key, message)
        VALUES ($1, $2, coalesce($3, '{}'::jsonb), coalesce($4, 'normal'), coalesce($5, now()),
                coalesce($6, 3), $7, $8, $9, 'Task queued')
        RETURNING id INTO new_id;
        RETURN new_id;
    END IF;
    INSERT INTO s_tasks AS t (identifier, action, meta, priority, start_at, max_attempts,
                              started_by, dedupe_key, concurrency_key, message)
    VALUES ($1, $2, coalesce($3, '{}'::jsonb), coalesce($4, 'normal'), coalesce($5, now()),
            coalesce($6, 3), $7, $8, $9, 'Task queued')
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN (10, 30, 50)
    DO UPDATE SET meta = excluded.meta, priority = excluded.priority,
                  start_at = excluded.start_at, max_attempts = excluded.max_attempts,
                  concurrency_key = excluded.concurrency_key, updated_at = now(),
                  message = 'Task queued (replaced by a later create)'
            WHERE replace AND t.status = 10
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN  -- the holder is running (or replace is off): it is the answer
        SELECT h.id INTO new_id FROM s_tasks h
         WHERE h.dedupe_key = $8 AND h.status IN (10, 30, 50);
    ELSIF replace THEN
        PERFORM pg_notify('pgstask_tasks', '');  -- a replaced start_at may be due sooner
    END IF;
    RETURN new_id;
END
$$;
DO $$
DECLARE
    source_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text)';
    target_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text, text, float8, boolean)';
    acl aclitem[] := (SELECT p.proacl FROM pg_proc p WHERE p.oid = source_fn);
    item record;
BEGIN
    IF acl IS NOT NULL THEN  -- NULL: the default privileges, which the new function has too
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', target_fn);
        FOR item IN SELECT a.grantee, a.is_grantable FROM aclexplode(acl) AS a
                     WHERE a.privilege_type = 'EXECUTE' LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s', target_fn,
                           CASE WHEN item.grantee = 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                           CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END IF;
    EXECUTE format('DROP FUNCTION %s', source_fn);
END
$$;

-- The throttle window: the latest finished task of a dedupe key, one descent. Tasks without a
-- key are not in it.
CREATE INDEX s_tasks_dedupe_finished_idx ON s_tasks (dedupe_key, finished_at)
    WHERE dedupe_key IS NOT NULL AND status IN (80, 90, 100);
