-- Revision 0010 undone. Waiting tasks become pending (their dependencies are forgotten), the
-- old dedupe index, insert trigger and pgstask_enqueue come back (its privileges kept).
DROP TRIGGER IF EXISTS s_tasks_release_ended ON s_tasks;
DROP FUNCTION IF EXISTS s_tasks_release_ended();
DROP TRIGGER IF EXISTS s_tasks_after_finish ON s_tasks;
DROP FUNCTION IF EXISTS s_tasks_after_finish();
DROP TRIGGER IF EXISTS s_tasks_depends_on_fixed ON s_tasks;
DROP FUNCTION IF EXISTS s_tasks_depends_on_fixed();
CREATE OR REPLACE FUNCTION s_tasks_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE status <> 10) THEN
        RAISE EXCEPTION 'pgstask: a new task must have status 10 (pending)'
            USING ERRCODE = 'check_violation',
                  HINT = 'Leave status out of the INSERT; it defaults to 10.';
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
    IF coalesce(current_setting('pgstask.notify', true), '') <> 'off'
       AND pg_notification_queue_usage() < 0.5 THEN
        PERFORM pg_notify('pgstask_tasks', '');
    END IF;
    RETURN NULL;
END
$$;
DROP FUNCTION IF EXISTS pgstask_link(bigint[]);
DROP FUNCTION IF EXISTS pgstask_release(bigint[]);
DROP FUNCTION IF EXISTS pgstask_parent_failed_message(bigint);
DROP FUNCTION IF EXISTS pgstask_notify_if_room(text, text);
DROP TABLE IF EXISTS s_task_deps;
UPDATE s_tasks SET status = 10, message = 'Task queued (its dependencies were removed by a downgrade)'
 WHERE status = 20;
DROP INDEX s_tasks_dedupe_key_idx;
CREATE UNIQUE INDEX s_tasks_dedupe_key_idx ON s_tasks (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN (10, 30, 50);
ALTER TABLE s_tasks DROP CONSTRAINT s_tasks_status_check;
ALTER TABLE s_tasks ADD CONSTRAINT s_tasks_status_check
    CHECK (status IN (10, 30, 50, 80, 90, 100)) NOT VALID;
ALTER TABLE s_tasks VALIDATE CONSTRAINT s_tasks_status_check;
COMMENT ON TABLE s_tasks IS 'pgstask tasks. Status: 10 pending, 30 preparing, 50 running, 80 completed, 90 cancelled, 100 failed.';
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
    source_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text, text, float8, boolean, bigint[], text, jsonb)';
    target_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text, text, float8, boolean)';
    acl aclitem[] := (SELECT p.proacl FROM pg_proc p WHERE p.oid = source_fn);
    item record;
BEGIN
    IF acl IS NOT NULL THEN
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
DROP FUNCTION IF EXISTS pgstask_parent_failure_policy(s_tasks);
ALTER TABLE s_tasks
    DROP COLUMN IF EXISTS notify,
    DROP COLUMN IF EXISTS awaited,
    DROP COLUMN IF EXISTS has_children,
    DROP COLUMN IF EXISTS waiting_for,
    DROP COLUMN IF EXISTS on_parent_failure,
    DROP COLUMN IF EXISTS depends_on;
