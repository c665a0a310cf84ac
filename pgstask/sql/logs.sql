-- Queries on s_task_logs: per-task log records, readable from any host.

-- name: log_insert_many
-- Records of tasks deleted meanwhile are skipped: one of them must never fail (and so block)
-- the batch of outcomes it is written with.
INSERT INTO s_task_logs (task_id, level, message, context)
SELECT n.task_id, n.level, n.message, n.context
  FROM unnest(%(task_ids)s::bigint[], %(levels)s::text[], %(messages)s::text[],
              %(contexts)s::jsonb[]) WITH ORDINALITY AS n(task_id, level, message, context, nr)
 WHERE EXISTS (SELECT 1 FROM s_tasks t WHERE t.id = n.task_id)
 ORDER BY n.nr;  -- ids follow the order given

-- name: log_list
-- All records of a task, or its last N (limit), oldest first; errors_only keeps level error.
SELECT id, task_id, level, message, context, created_at
  FROM (SELECT * FROM s_task_logs
         WHERE task_id = %(task_id)s
           AND (NOT %(errors_only)s OR level IN ('error', 'critical'))
         ORDER BY id DESC
         LIMIT %(limit)s) last
 ORDER BY id;

-- name: log_delete_for_task
DELETE FROM s_task_logs WHERE task_id = %(task_id)s;

-- name: log_delete_older_than
WITH old AS (
    SELECT id FROM s_task_logs
     WHERE created_at < now() - %(days)s::float8 * interval '1 day'
     ORDER BY id LIMIT %(limit)s
)
DELETE FROM s_task_logs l USING old WHERE l.id = old.id;
