CREATE OR REPLACE FUNCTION s_tasks_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE status <> 10) THEN
        RAISE EXCEPTION 'pgstask: a new task must have status 10 (pending)'
            USING ERRCODE = 'check_violation',
                  HINT = 'Leave status out of the INSERT; it defaults to 10.';
    END IF;
    IF EXISTS (SELECT 1 FROM new_rows
                WHERE pg_column_compression(meta) IS NOT NULL
                  AND octet_length(meta::text) > 1048576) THEN
        RAISE EXCEPTION 'pgstask: a task''s meta must be at most 1 MiB'
            USING ERRCODE = 'check_violation',
                  HINT = 'Store large inputs in a file or table and put a reference in meta.';
    END IF;
    IF coalesce(current_setting('pgstask.notify', true), '') <> 'off'
       AND pg_notification_queue_usage() < 0.5 THEN
        PERFORM pg_notify('pgstask_tasks', '');
    END IF;
    RETURN NULL;
END
$$;
ALTER TABLE s_tasks DROP COLUMN IF EXISTS claims;
