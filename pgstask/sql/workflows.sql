-- Queries of workflows: tasks with dependencies (docs/workflows.md) and waiting for tasks to end.
-- The dependency rules themselves (links, release, cancellation of children) are in the
-- database (revision 0010: pgstask_link, pgstask_release), so that SQL inserts follow them too.

-- name: task_insert_linked
-- task_insert_many for tasks that may depend on others: depends_on is one array literal per
-- item ('{4,7}'; NULL: none). The insert trigger links them; the rows returned are as inserted
-- (status 10): read them again for the status the trigger gave (waiting, or cancelled when a
-- parent had already failed). An item whose dedupe_key an unfinished task holds is skipped.
INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts, started_by,
                     dedupe_key, concurrency_key, depends_on, on_parent_failure, message,
                     trace_context)
SELECT i, a, m, p, coalesce(s, now()), x, u, d, k, dep::bigint[], f, 'Task queued',
       %(trace_context)s::jsonb
  FROM unnest(%(identifiers)s::text[], %(actions)s::text[], %(metas)s::text[]::jsonb[],
              %(priorities)s::text[], %(start_ats)s::timestamptz[], %(max_attempts)s::int[],
              %(started_by)s::bigint[], %(dedupe_keys)s::text[], %(concurrency_keys)s::text[],
              %(depends_on)s::text[], %(on_parent_failure)s::text[])
       AS n(i, a, m, p, s, x, u, d, k, dep, f)
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN (10, 20, 30, 50) DO NOTHING
RETURNING id, dedupe_key;

-- name: task_get_many
SELECT * FROM s_tasks WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id;

-- name: task_parents
-- The tasks task id depends on, by id.
SELECT p.* FROM s_task_deps d JOIN s_tasks p ON p.id = d.parent_id
 WHERE d.task_id = %(id)s ORDER BY p.id;

-- name: task_children
-- The tasks that depend on task id, by id.
SELECT c.* FROM s_task_deps d JOIN s_tasks c ON c.id = d.task_id
 WHERE d.parent_id = %(id)s ORDER BY c.id;

-- name: task_workflow_ids
-- The workflow of task id: every task joined to it by dependencies, in either direction, at most
-- limit of them (the lowest ids: the roots come first). One descent of an index per edge.
WITH RECURSIVE reach(id) AS (
    SELECT %(id)s::bigint
    UNION
    SELECT CASE WHEN d.task_id = r.id THEN d.parent_id ELSE d.task_id END
      FROM reach r JOIN s_task_deps d ON d.task_id = r.id OR d.parent_id = r.id
)
SELECT id FROM reach ORDER BY id LIMIT %(limit)s;

-- name: task_edges
-- The dependencies among tasks ids: (task_id, parent_id, done).
SELECT task_id, parent_id, done FROM s_task_deps
 WHERE task_id = ANY(%(ids)s::bigint[]) AND parent_id = ANY(%(ids)s::bigint[])
 ORDER BY task_id, parent_id;

-- name: task_await
-- Client.wait: the tasks ids that have not ended send NOTIFY pgstask_finished when they do
-- (revision 0010's trigger). A row another transaction has locked is left unmarked (SKIP
-- LOCKED: the caller marks it again soon): a wait neither waits for that transaction (a
-- caller's that linked a child to the task holds its lock until it commits) nor deadlocks with
-- a completion that releases the tasks. Marking a row locks it for a moment, and a daemon's
-- claim skips a locked row: a wake-up follows, so that the claim is tried again at once.
WITH target AS (
    SELECT id FROM s_tasks
     WHERE id = ANY(%(ids)s::bigint[]) AND NOT awaited AND status NOT IN (80, 90, 100)
     ORDER BY id
       FOR NO KEY UPDATE SKIP LOCKED
), marked AS (
    UPDATE s_tasks t SET awaited = true
      FROM target
     WHERE t.id = target.id
    RETURNING t.status
)
SELECT count(*) AS marked, pgstask_notify_if_room('pgstask_tasks', '')::text AS woken
  FROM marked HAVING bool_or(status = 10);
