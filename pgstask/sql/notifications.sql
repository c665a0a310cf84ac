-- Deliveries of notifications (docs/notifications.md): tasks of the built-in workers
-- pgstask.webhook (action deliver) and pgstask.email (action send).

-- name: notification_enqueue
-- The deliveries of the outcomes just written to tasks %(ids)s, inserted in the transaction that
-- wrote them (the completer's, the rescuer's): one delivery per outcome and target. A task
-- completed (80) or failed for good (100) is delivered to the targets of its own notify column
-- and of its worker's notify setting (s_workers.settings over the class's, s_workers.defaults)
-- whose "on" lists the outcome (no "on": both), once per target; a webhook only if it exists, is
-- active and takes that event. The built-in workers' own tasks notify nobody (no loop). Shapes
-- that are not what pgstask writes (an UPDATE from SQL) give no target rather than an error:
-- nothing here may fail the outcome's transaction. Returns the ids of the deliveries.
WITH finished AS MATERIALIZED (
    SELECT t.id, CASE t.status WHEN 80 THEN 'completed' ELSE 'failed' END AS event,
           t.notify AS own,
           CASE WHEN w.settings ? 'notify' THEN w.settings -> 'notify'
                ELSE w.defaults -> 'notify' END AS inherited
      FROM s_tasks t
      LEFT JOIN s_workers w ON w.identifier = t.identifier
     WHERE t.id = ANY(%(ids)s::bigint[]) AND t.status IN (80, 100)
       AND t.identifier NOT IN ('pgstask.webhook', 'pgstask.email')
), wanted AS (
    SELECT f.id, f.event, n.value
      FROM finished f
     CROSS JOIN LATERAL (VALUES (f.own), (f.inherited)) AS n(value)
     WHERE jsonb_typeof(n.value) = 'object'
       AND (NOT n.value ? 'on'
            OR (jsonb_typeof(n.value -> 'on') = 'array' AND n.value -> 'on' ? f.event))
), targets AS (
    SELECT DISTINCT w.id, w.event, 'webhook' AS kind, e.target
      FROM wanted w
     CROSS JOIN LATERAL jsonb_array_elements_text(
           CASE WHEN jsonb_typeof(w.value -> 'webhooks') = 'array' THEN w.value -> 'webhooks'
                ELSE '[]' END) AS e(target)
      JOIN s_webhooks h ON h.name = e.target AND h.active AND w.event = ANY(h.events)
    UNION
    SELECT w.id, w.event, 'email', e.target
      FROM wanted w
     CROSS JOIN LATERAL jsonb_array_elements_text(
           CASE WHEN jsonb_typeof(w.value -> 'emails') = 'array' THEN w.value -> 'emails'
                ELSE '[]' END) AS e(target)
     WHERE e.target LIKE '_%%@_%%' AND length(e.target) <= 254
)
INSERT INTO s_tasks (identifier, action, meta, max_attempts, message)
SELECT CASE kind WHEN 'webhook' THEN 'pgstask.webhook' ELSE 'pgstask.email' END,
       CASE kind WHEN 'webhook' THEN 'deliver' ELSE 'send' END,
       jsonb_build_object('task_id', id, 'event', event,
                          CASE kind WHEN 'webhook' THEN 'webhook' ELSE 'to' END, target),
       10,
       'Notification queued: task ' || id || ' ' || event
  FROM targets
 ORDER BY id, kind, target
RETURNING id;

-- name: task_set_notify_many
-- The notify targets of tasks just created (Client.create/create_many with notify), in the
-- transaction that created them: a statement of its own, so that task_insert_many and the COPY
-- of a bulk load stay as they are for the tasks without targets.
UPDATE s_tasks t
   SET notify = d.notify
  FROM unnest(%(ids)s::bigint[], %(notifies)s::jsonb[]) AS d(id, notify)
 WHERE t.id = d.id;
