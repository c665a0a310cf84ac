-- pgstask_enqueue as revision 0001 made it, without concurrency_key, throttle and replace, its
-- privileges kept (see
-- the up file).
CREATE FUNCTION pgstask_enqueue(
    identifier   text,
    action       text,
    meta         jsonb DEFAULT '{}'::jsonb,
    priority     text DEFAULT 'normal',
    start_at     timestamptz DEFAULT NULL,
    max_attempts integer DEFAULT 3,
    started_by   bigint DEFAULT NULL,
    dedupe_key   text DEFAULT NULL
) RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts, started_by,
                         dedupe_key, message)
    VALUES ($1, $2, coalesce($3, '{}'::jsonb), coalesce($4, 'normal'), coalesce($5, now()),
            coalesce($6, 3), $7, $8, 'Task queued')
    RETURNING id;
$$;
DO $$
DECLARE
    source_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text, text, float8, boolean)';
    target_fn regprocedure := 'pgstask_enqueue(text, text, jsonb, text, timestamptz, integer, bigint, text)';
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
DROP FUNCTION IF EXISTS pgstask_claim_task(uuid, bigint);
DROP INDEX IF EXISTS s_tasks_dedupe_finished_idx;
DROP FUNCTION IF EXISTS pgstask_notify_ended(text[]);
DROP FUNCTION IF EXISTS pgstask_claim_limited(uuid, text[], integer, float8);
DROP FUNCTION IF EXISTS pgstask_claimable_limited(text, jsonb, integer, float8);
DROP FUNCTION IF EXISTS pgstask_claimable_of_key(text, smallint, text, integer, timestamptz, bigint[]);
DROP TABLE IF EXISTS s_flow_cursors;
DROP TABLE IF EXISTS s_task_starts;
ALTER TABLE s_workers DROP COLUMN IF EXISTS flow;
ALTER TABLE s_workers DROP COLUMN IF EXISTS defaults;
DROP FUNCTION IF EXISTS pgstask_worker_flow(jsonb);
DROP INDEX IF EXISTS s_tasks_running_key_idx;
DROP INDEX IF EXISTS s_tasks_worker_claim_idx;
DROP INDEX IF EXISTS s_tasks_claim_idx;
CREATE INDEX s_tasks_claim_idx ON s_tasks (priority_rank, start_at, id) WHERE status = 10;
ALTER TABLE s_tasks DROP COLUMN IF EXISTS concurrency_key;
