-- Revision 0010: dependencies between tasks (workflows), waiting for a task's end, and the
-- column of per-task notification targets (docs/workflows.md, docs/notifications.md).
--
-- A task with parents that have not finished is waiting (status 20). It is not in the claim
-- index (pending rows only), so nothing about the claim changes, however many tasks wait. The
-- completion that finishes its last parent makes it pending in the same transaction (the
-- trigger s_tasks_after_finish below) and wakes the daemons.
--
-- New columns, each nullable or with a constant default (no table rewrite):
-- - depends_on: the parents, as given at insert (a plain INSERT may set it; it cannot change
--   later). The edges are in s_task_deps.
-- - on_parent_failure: what a parent that failed or was cancelled does to this task: 'cancel'
--   (it is cancelled, with a message naming the parent) or 'run' (it runs once all parents
--   finished, whatever their outcome). NULL: the worker's setting, else 'cancel'.
-- - waiting_for: how many parents have not finished yet (while status is 20).
-- - has_children: some task depends on this one; its end releases them.
-- - awaited: someone waits for this task's end (Client.wait): it sends NOTIFY pgstask_finished.
-- - notify: the task's own notification targets (docs/notifications.md).
ALTER TABLE s_tasks
    ADD COLUMN depends_on bigint[],
    ADD COLUMN on_parent_failure text
        CONSTRAINT s_tasks_on_parent_failure_check CHECK (on_parent_failure IN ('cancel', 'run')),
    ADD COLUMN waiting_for integer NOT NULL DEFAULT 0,
    ADD COLUMN has_children boolean NOT NULL DEFAULT false,
    ADD COLUMN awaited boolean NOT NULL DEFAULT false,
    ADD COLUMN notify jsonb;

ALTER TABLE s_tasks DROP CONSTRAINT s_tasks_status_check;
ALTER TABLE s_tasks ADD CONSTRAINT s_tasks_status_check
    CHECK (status IN (10, 20, 30, 50, 80, 90, 100)) NOT VALID;
ALTER TABLE s_tasks VALIDATE CONSTRAINT s_tasks_status_check;
COMMENT ON TABLE s_tasks IS 'pgstask tasks. Status: 10 pending, 20 waiting (for its dependencies), 30 preparing, 50 running, 80 completed, 90 cancelled, 100 failed.';

-- A waiting task holds its dedupe_key as any task that has not finished does. The statements
-- that name the old predicate (status IN (10, 30, 50)) still infer this index: it is implied.
DROP INDEX s_tasks_dedupe_key_idx;
CREATE UNIQUE INDEX s_tasks_dedupe_key_idx ON s_tasks (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN (10, 20, 30, 50);

-- The edges: task_id depends on parent_id. parent_id < task_id: a task can only depend on a task
-- that existed before it, so no cycle can ever form. done: the parent's end was counted (each
-- edge once, however often the parent ends: a retried parent that ends again counts nothing).
CREATE TABLE s_task_deps (
    task_id   bigint  NOT NULL REFERENCES s_tasks (id) ON DELETE CASCADE,
    parent_id bigint  NOT NULL REFERENCES s_tasks (id) ON DELETE CASCADE,
    done      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (task_id, parent_id),
    CONSTRAINT s_task_deps_order_check CHECK (parent_id < task_id)
);
CREATE INDEX s_task_deps_parent_idx ON s_task_deps (parent_id);

-- A NOTIFY that never makes the transaction fail: skipped while the server's notification
-- queue is half full (a NOTIFY then fails at commit), as the insert trigger does. Whoever
-- listens also polls: daemons for due tasks, Client.wait every `poll` seconds.
CREATE FUNCTION pgstask_notify_if_room(channel text, payload text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_notification_queue_usage() < 0.5 THEN
        PERFORM pg_notify(channel, payload);
    END IF;
END
$$;

-- What a parent's failure does to task c: its own on_parent_failure, else its worker's
-- on_parent_failure setting (class default or live setting), else 'cancel'.
CREATE FUNCTION pgstask_parent_failure_policy(task s_tasks) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        task.on_parent_failure,
        (SELECT CASE WHEN (coalesce(w.defaults, '{}') || w.settings) ->> 'on_parent_failure'
                          IN ('cancel', 'run')
                     THEN (coalesce(w.defaults, '{}') || w.settings) ->> 'on_parent_failure' END
           FROM s_workers w WHERE w.identifier = task.identifier),
        'cancel');
$$;

-- The message of a task cancelled because parent_id failed or was cancelled.
CREATE FUNCTION pgstask_parent_failed_message(parent_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'Cancelled: its parent task ' || p.id || ' (' || p.identifier || '/' || p.action || ') '
           || CASE p.status WHEN 90 THEN 'was cancelled' ELSE 'failed' END
      FROM s_tasks p WHERE p.id = parent_id;
$$;

-- The children of tasks that ended: each edge from an ended parent is counted once, a child
-- whose last parent ended becomes pending, one whose parent failed or was cancelled is
-- cancelled unless its policy is 'run'. A cancelled child ends in turn: the loop goes on with
-- its children (iteratively, however long the chain). Row locks on the children serialise
-- parents that end at once in several transactions: each decrement reads the latest count, so
-- exactly one of them releases the child. Returns how many tasks became pending, and wakes the
-- daemons when any did. While it runs, pgstask.releasing is 'on' (for this transaction, then
-- as it was): the ends it makes itself do not fire s_tasks_after_finish.
-- A generic plan, always: with custom plans (PL/pgSQL's default for a statement with a
-- parameter) the statement below was planned again at every call, three quarters of the call's
-- time (0.8 ms a parent, measured; 0.2 ms with the generic plan). The generic plan finds the
-- edges by parent_id and each child by its id.
CREATE FUNCTION pgstask_release(parents bigint[]) RETURNS integer
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ended bigint[] := parents;
    cancelled_ids bigint[];
    awaited_ids bigint[];
    released integer := 0;
    n integer;
    item bigint;
    releasing text := current_setting('pgstask.releasing', true);
BEGIN
    PERFORM set_config('pgstask.releasing', 'on', true);
    LOOP
        WITH edges AS (
            UPDATE s_task_deps d SET done = true
              FROM s_tasks p
             WHERE d.parent_id = ANY(ended) AND NOT d.done
               AND p.id = d.parent_id AND p.status IN (80, 90, 100)
            RETURNING d.task_id, d.parent_id, p.status
        ), per AS (
            SELECT e.task_id, count(*)::integer AS n,
                   min(e.parent_id) FILTER (WHERE e.status <> 80) AS failed_parent
              FROM edges e
             GROUP BY e.task_id
        ), changed AS (
            UPDATE s_tasks c
               SET waiting_for = greatest(c.waiting_for - per.n, 0),
                   status = CASE
                       WHEN per.failed_parent IS NOT NULL
                            AND pgstask_parent_failure_policy(c) = 'cancel' THEN 90
                       WHEN c.waiting_for - per.n <= 0 THEN 10
                       ELSE 20 END,
                   finished_at = CASE
                       WHEN per.failed_parent IS NOT NULL
                            AND pgstask_parent_failure_policy(c) = 'cancel' THEN now() END,
                   message = CASE
                       WHEN per.failed_parent IS NOT NULL
                            AND pgstask_parent_failure_policy(c) = 'cancel'
                           THEN pgstask_parent_failed_message(per.failed_parent)
                       WHEN c.waiting_for - per.n <= 0 THEN 'Task queued: its dependencies finished'
                       ELSE 'Waiting for ' || (c.waiting_for - per.n) || ' more task(s)' END,
                   updated_at = now()
              FROM per
             -- status + 0: not a condition the status index can serve, so the child is found
             -- by its id (with a generic plan, status = 20 led to a walk of every waiting task
             -- for each ended parent).
             WHERE c.id = per.task_id AND c.status + 0 = 20
            RETURNING c.id, c.status, c.awaited
        )
        SELECT array_agg(id) FILTER (WHERE status = 90), count(*) FILTER (WHERE status = 10),
               array_agg(id) FILTER (WHERE status = 90 AND awaited)
          INTO cancelled_ids, n, awaited_ids
          FROM changed;
        released := released + n;
        FOREACH item IN ARRAY coalesce(awaited_ids, '{}') LOOP
            PERFORM pgstask_notify_if_room('pgstask_finished', item::text);
        END LOOP;
        EXIT WHEN cancelled_ids IS NULL;
        ended := cancelled_ids;
    END LOOP;
    IF released > 0 THEN
        PERFORM pgstask_notify_if_room('pgstask_tasks', '');
    END IF;
    PERFORM set_config('pgstask.releasing', coalesce(releasing, ''), true);
    RETURN released;
END
$$;

-- The dependencies of newly inserted tasks (those of children with depends_on set), called by
-- the insert trigger once per statement. The parents are locked (NO KEY UPDATE, in id order):
-- a parent's end waits for this transaction, and the status read after the lock is final, so
-- no end is missed between the read and the edge. Refuses a malformed list, a parent that does
-- not exist, and a parent that is not older than the child (which is what makes a cycle
-- impossible). The children it cancels are handled here (pgstask.releasing 'on' while it
-- updates them, as in pgstask_release).
CREATE FUNCTION pgstask_link(children bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
    cancelled_ids bigint[];
    item bigint;
    releasing text := current_setting('pgstask.releasing', true);
BEGIN
    SELECT c.id, cardinality(c.depends_on) AS n INTO bad FROM s_tasks c
     WHERE c.id = ANY(children)
       AND (cardinality(c.depends_on) NOT BETWEEN 1 AND 10000
            OR array_position(c.depends_on, NULL) IS NOT NULL)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pgstask: depends_on of a task must list 1 to 10000 task ids and no null (task %: % given)',
                        bad.id, bad.n
            USING ERRCODE = 'check_violation',
                  HINT = 'Leave depends_on out (NULL) for a task without dependencies.';
    END IF;
    PERFORM 1 FROM s_tasks p
     WHERE p.id IN (SELECT d.parent FROM s_tasks c CROSS JOIN LATERAL unnest(c.depends_on) AS d(parent)
                     WHERE c.id = ANY(children))
     ORDER BY p.id
       FOR NO KEY UPDATE;
    SELECT c.identifier, c.action, d.parent INTO bad
      FROM s_tasks c CROSS JOIN LATERAL unnest(c.depends_on) AS d(parent)
     WHERE c.id = ANY(children) AND NOT EXISTS (SELECT 1 FROM s_tasks p WHERE p.id = d.parent)
     ORDER BY c.id, d.parent
     LIMIT 1;
    IF FOUND THEN
        -- Named by worker and action: the new task's id is rolled back with the insert.
        RAISE EXCEPTION 'pgstask: a new task (%/%) depends on task %, which does not exist',
                        bad.identifier, bad.action, bad.parent
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'A dependency must name an existing task (a finished one counts as finished).';
    END IF;
    SELECT c.id AS child, d.parent INTO bad
      FROM s_tasks c CROSS JOIN LATERAL unnest(c.depends_on) AS d(parent)
     WHERE c.id = ANY(children) AND d.parent >= c.id
     ORDER BY c.id, d.parent
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pgstask: task % cannot depend on task %: a task can only depend on tasks created before it',
                        bad.child, bad.parent
            USING ERRCODE = 'check_violation',
                  HINT = 'Create the parents first (no cycle can form that way); a workflow in one statement lists its tasks parents first.';
    END IF;
    INSERT INTO s_task_deps (task_id, parent_id, done)
    SELECT DISTINCT c.id, p.id, p.status IN (80, 90, 100)
      FROM s_tasks c CROSS JOIN LATERAL unnest(c.depends_on) AS d(parent)
      JOIN s_tasks p ON p.id = d.parent
     WHERE c.id = ANY(children);
    UPDATE s_tasks p SET has_children = true
     WHERE p.id IN (SELECT d.parent_id FROM s_task_deps d WHERE d.task_id = ANY(children))
       AND NOT p.has_children;
    PERFORM set_config('pgstask.releasing', 'on', true);
    WITH state AS (
        SELECT d.task_id, (count(*) FILTER (WHERE NOT d.done))::integer AS open,
               min(p.id) FILTER (WHERE d.done AND p.status <> 80) AS failed_parent
          FROM s_task_deps d JOIN s_tasks p ON p.id = d.parent_id
         WHERE d.task_id = ANY(children)
         GROUP BY d.task_id
    ), changed AS (
        UPDATE s_tasks c
           SET status = CASE
                   WHEN s.failed_parent IS NOT NULL AND pgstask_parent_failure_policy(c) = 'cancel'
                       THEN 90
                   WHEN s.open > 0 THEN 20
                   ELSE 10 END,
               waiting_for = s.open,
               finished_at = CASE
                   WHEN s.failed_parent IS NOT NULL AND pgstask_parent_failure_policy(c) = 'cancel'
                       THEN now() END,
               message = CASE
                   WHEN s.failed_parent IS NOT NULL AND pgstask_parent_failure_policy(c) = 'cancel'
                       THEN pgstask_parent_failed_message(s.failed_parent)
                   WHEN s.open > 0 THEN 'Waiting for ' || s.open || ' task(s)'
                   ELSE c.message END
          FROM state s
         WHERE c.id = s.task_id
        RETURNING c.id, c.status, c.awaited
    )
    SELECT array_agg(id) FILTER (WHERE status = 90) INTO cancelled_ids FROM changed;
    PERFORM set_config('pgstask.releasing', coalesce(releasing, ''), true);
    IF cancelled_ids IS NOT NULL THEN
        FOREACH item IN ARRAY cancelled_ids LOOP
            IF (SELECT awaited FROM s_tasks WHERE id = item) THEN
                PERFORM pgstask_notify_if_room('pgstask_finished', item::text);
            END IF;
        END LOOP;
        PERFORM pgstask_release(cancelled_ids);
    END IF;
END
$$;

-- The insert trigger of revision 0005, plus: the dependencies of the new rows that have them.
CREATE OR REPLACE FUNCTION s_tasks_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE status <> 10) THEN
        RAISE EXCEPTION 'pgstask: a new task must have status 10 (pending)'
            USING ERRCODE = 'check_violation',
                  HINT = 'Leave status out of the INSERT; it defaults to 10 (a task with depends_on becomes waiting by itself).';
    END IF;
    -- s_tasks_meta_size_check sees the stored size: a value that arrives already compressed
    -- (INSERT ... SELECT from a table) passes it however large it is, so measure those here.
    IF EXISTS (SELECT 1 FROM new_rows
                WHERE pg_column_compression(meta) IS NOT NULL
                  AND octet_length(meta::text) > 1048576) THEN
        RAISE EXCEPTION 'pgstask: a task''s meta must be at most 1 MiB'
            USING ERRCODE = 'check_violation',
                  HINT = 'Store large inputs in a file or table and put a reference in meta.';
    END IF;
    IF EXISTS (SELECT 1 FROM new_rows
                WHERE NOT (start_at >= '0001-01-02 00:00:00+00' AND start_at < '9999-12-31 00:00:00+00'
                           AND created_at >= '0001-01-02 00:00:00+00'
                           AND created_at < '9999-12-31 00:00:00+00'
                           AND updated_at >= '0001-01-02 00:00:00+00'
                           AND updated_at < '9999-12-31 00:00:00+00'
                           AND coalesce(started_at >= '0001-01-02 00:00:00+00'
                                        AND started_at < '9999-12-31 00:00:00+00', true)
                           AND coalesce(finished_at >= '0001-01-02 00:00:00+00'
                                        AND finished_at < '9999-12-31 00:00:00+00', true))) THEN
        RAISE EXCEPTION 'pgstask: a task''s timestamps must lie between 0001-01-02 and 9999-12-30 UTC'
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'infinity, BC dates and year 10000 cannot be read back; leave start_at out to run now.';
    END IF;
    IF EXISTS (SELECT 1 FROM new_rows WHERE jsonb_path_exists(meta, 'strict $.**{101}')) THEN
        RAISE EXCEPTION 'pgstask: a task''s meta must be nested at most 100 levels deep'
            USING ERRCODE = 'check_violation',
                  HINT = 'Flatten the options; deeper JSON cannot be read back by every client.';
    END IF;
    IF EXISTS (SELECT 1 FROM new_rows
                WHERE jsonb_path_exists(meta, 'strict $.** ? (@ > 1.7976931348623157e308
                                                              || @ < -1.7976931348623157e308)')) THEN
        RAISE EXCEPTION 'pgstask: a number in a task''s meta is beyond a double''s range (±1.7976931348623157e308)'
            USING ERRCODE = 'numeric_value_out_of_range',
                  HINT = 'Send such a value as a string.';
    END IF;
    IF EXISTS (SELECT 1 FROM new_rows WHERE depends_on IS NOT NULL) THEN
        PERFORM pgstask_link(ARRAY(SELECT id FROM new_rows WHERE depends_on IS NOT NULL ORDER BY id));
    END IF;
    IF coalesce(current_setting('pgstask.notify', true), '') <> 'off'
       AND pg_notification_queue_usage() < 0.5 THEN
        PERFORM pg_notify('pgstask_tasks', '');
    END IF;
    RETURN NULL;
END
$$;

-- depends_on is what the task was created with: changing it later would not change the edges.
CREATE FUNCTION s_tasks_depends_on_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'pgstask: depends_on of task % cannot change after it was created', OLD.id
        USING ERRCODE = 'check_violation',
              HINT = 'Create a new task with the dependencies it needs.';
END
$$;
CREATE TRIGGER s_tasks_depends_on_fixed
    BEFORE UPDATE OF depends_on ON s_tasks
    FOR EACH ROW WHEN (NEW.depends_on IS DISTINCT FROM OLD.depends_on)
    EXECUTE FUNCTION s_tasks_depends_on_fixed();

-- A task ends (enters 80, 90 or 100), by whatever statement: its children are released, and
-- whoever waits for it is told. Only for tasks that need it (has_children, awaited): for any
-- other update the WHEN costs a few comparisons and no function call. Any trigger depth (a
-- task ended by a statement in an application's trigger counts), but not the ends that
-- pgstask_release and pgstask_link make themselves (pgstask.releasing 'on'): their cascades go
-- on in their own loop (a long chain is no deep recursion).
--
-- The release is per statement, not per row: the row trigger notes the ended parent's id in
-- the transaction's setting pgstask.ended, and the statement trigger after it releases all the
-- noted parents in one call. A completion batch that ends 350 members of a group then updates
-- the group's callback once, not 350 times (each update of a row already updated in the
-- transaction walks the row's chain of versions: a per-row release cost 0.6 ms a member at the
-- end of a group of 1,000, measured). A list that grows past 10,000 characters is released at
-- once, so that a mass UPDATE does not build a long text.
CREATE FUNCTION s_tasks_after_finish() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    noted text;
BEGIN
    IF NEW.awaited THEN
        PERFORM pgstask_notify_if_room('pgstask_finished', NEW.id::text);
    END IF;
    IF NEW.has_children THEN
        noted := coalesce(nullif(current_setting('pgstask.ended', true), '') || ',', '')
                 || NEW.id;
        IF length(noted) > 10000 THEN
            PERFORM set_config('pgstask.ended', '', true);
            PERFORM pgstask_release(string_to_array(noted, ',')::bigint[]);
        ELSE
            PERFORM set_config('pgstask.ended', noted, true);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER s_tasks_after_finish
    AFTER UPDATE OF status ON s_tasks
    FOR EACH ROW
    WHEN ((NEW.has_children OR NEW.awaited) AND NEW.status IN (80, 90, 100)
          AND OLD.status NOT IN (80, 90, 100)
          AND current_setting('pgstask.releasing', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION s_tasks_after_finish();

-- After the statement's row triggers: the parents they noted. (No WHEN: a statement trigger's
-- WHEN is evaluated before the row triggers run. The call returns at once when nothing was
-- noted: a few microseconds per statement that changes a status, measured below the noise of
-- a completion batch.)
CREATE FUNCTION s_tasks_release_ended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    noted text := current_setting('pgstask.ended', true);
BEGIN
    IF noted IS NULL OR noted = '' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('pgstask.ended', '', true);
    PERFORM pgstask_release(string_to_array(noted, ',')::bigint[]);
    RETURN NULL;
END
$$;
CREATE TRIGGER s_tasks_release_ended
    AFTER UPDATE OF status ON s_tasks
    FOR EACH STATEMENT
    EXECUTE FUNCTION s_tasks_release_ended();

-- pgstask_enqueue gains depends_on, on_parent_failure and notify (the way revision 0007 added
-- arguments: a new function, the old one's privileges, the old one dropped).
CREATE FUNCTION pgstask_enqueue(
    identifier        text,
    action            text,
    meta              jsonb DEFAULT '{}'::jsonb,
    priority          text DEFAULT 'normal',
    start_at          timestamptz DEFAULT NULL,
    max_attempts      integer DEFAULT 3,
    started_by        bigint DEFAULT NULL,
    dedupe_key        text DEFAULT NULL,
    concurrency_key   text DEFAULT NULL,
    throttle          float8 DEFAULT NULL,
    replace           boolean DEFAULT false,
    depends_on        bigint[] DEFAULT NULL,
    on_parent_failure text DEFAULT NULL,
    notify            jsonb DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- The dedupe windows (docs/dedupe.md) as Client.create has them: throttle (seconds) creates
-- nothing while a task with the key finished less than that long ago, replace gives a pending
-- task with the key the new meta, priority, start_at, max_attempts and concurrency_key. Either
-- returns the id of the task that holds the key instead of a new one (NULL: none holds it any
-- more); without them, the key of an incomplete task is a unique_violation, as before.
-- depends_on (docs/workflows.md): the new task waits until those tasks finished.
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
                              WHERE h.dedupe_key = $8 AND h.status IN (10, 20, 30, 50)), new_id);
        END IF;
    END IF;
    IF NOT coalesce(replace, false) AND throttle IS NULL THEN
        INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts,
                             started_by, dedupe_key, concurrency_key, depends_on,
                             on_parent_failure, notify, message)
        VALUES ($1, $2, coalesce($3, '{}'::jsonb), coalesce($4, 'normal'), coalesce($5, now()),
                coalesce($6, 3), $7, $8, $9, $12, $13, $14, 'Task queued')
        RETURNING id INTO new_id;
        RETURN new_id;
    END IF;
    INSERT INTO s_tasks AS t (identifier, action, meta, priority, start_at, max_attempts,
                              started_by, dedupe_key, concurrency_key, depends_on,
                              on_parent_failure, notify, message)
    VALUES ($1, $2, coalesce($3, '{}'::jsonb), coalesce($4, 'normal'), coalesce($5, now()),
            coalesce($6, 3), $7, $8, $9, $12, $13, $14, 'Task queued')
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN (10, 20, 30, 50)
    DO UPDATE SET meta = excluded.meta, priority = excluded.priority,
                  start_at = excluded.start_at, max_attempts = excluded.max_attempts,
                  concurrency_key = excluded.concurrency_key, updated_at = now(),
                  message = 'Task queued (replaced by a later create)'
            WHERE replace AND t.status IN (10, 20)
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN  -- the holder is running (or replace is off): it is the answer
        SELECT h.id INTO new_id FROM s_tasks h
         WHERE h.dedupe_key = $8 AND h.status IN (10, 20, 30, 50);
    ELSIF replace THEN
        PERFORM pg_notify('pgstask_tasks', '');  -- a replaced start_at may be due sooner
    END IF;
    RETURN new_id;
END
$$;
DO $$
DECLARE
    source_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text, text, float8, boolean)';
    target_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text, text, float8, boolean, bigint[], text, jsonb)';
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
