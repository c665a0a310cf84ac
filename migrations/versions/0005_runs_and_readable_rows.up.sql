-- Revision 0005: the identity of a run, and rows pgstask can always read back.
--
-- claims: how many times a daemon has claimed the task. Unlike attempts it is never reset (a
-- retry) nor taken back (a shutdown), so (id, claims) names one run for ever: every later write
-- of a run (completion, failure, give-back, phase change) is a compare-and-set on it, and the
-- outcome of an earlier run can never complete a later one. A constant default: no table rewrite.
ALTER TABLE s_tasks ADD COLUMN claims integer NOT NULL DEFAULT 0;

-- The statement trigger also refuses what pgstask could not read back: a timestamp a Python
-- datetime cannot hold in every time zone (infinity, a BC date, year 10000: only 0001-01-02 to
-- 9999-12-30 UTC), meta nested more than 100 levels deep, or a number in meta beyond a double's
-- range (an integer of thousands of digits). Checked once per inserted row (about 1.3 µs of
-- server time for a small meta); a CHECK constraint would be evaluated
-- again on every claim and completion of the row. Rows stored before this revision, or changed
-- later by a plain UPDATE, are read leniently instead (pgstask/_task_rows.py) and a daemon that
-- claims one fails it with a message.
-- In the jsonpath's strict mode a comparison with a non-number is not true.
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
