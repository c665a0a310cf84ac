-- Queries on the unlogged s_task_progress table (live progress; may be empty after a crash).

-- name: progress_upsert_many
INSERT INTO s_task_progress AS p (task_id, status, progress, processed, total, eta, message,
                                  updated_at)
SELECT * , now()
  FROM unnest(%(task_ids)s::bigint[], %(statuses)s::smallint[], %(progress)s::smallint[],
              %(processed)s::bigint[], %(totals)s::bigint[], %(etas)s::float8[],
              %(messages)s::text[])
ON CONFLICT (task_id) DO UPDATE
   SET status = excluded.status, progress = excluded.progress, processed = excluded.processed,
       total = excluded.total, eta = excluded.eta, message = excluded.message,
       updated_at = excluded.updated_at;

-- name: progress_get
SELECT task_id, status, progress, processed, total, eta, message, updated_at
  FROM s_task_progress WHERE task_id = %(task_id)s;

-- name: progress_delete_many
-- After this daemon's outcomes, (task id, claims) each: never the row of a task that another
-- run now holds (an outcome whose compare-and-set lost, e.g. after a rescue or a retry).
DELETE FROM s_task_progress p
 USING unnest(%(task_ids)s::bigint[], %(claims)s::int[]) AS d(id, claims)
 WHERE p.task_id = d.id
   AND NOT EXISTS (SELECT 1 FROM s_tasks t
                    WHERE t.id = p.task_id AND t.status IN (30, 50)
                      AND (t.daemon_id IS DISTINCT FROM %(daemon_id)s OR t.claims <> d.claims));

-- name: progress_delete_orphaned
-- Rows of tasks that are finished or deleted.
DELETE FROM s_task_progress p
 WHERE NOT EXISTS (SELECT 1 FROM s_tasks t WHERE t.id = p.task_id AND t.status IN (10, 30, 50));
