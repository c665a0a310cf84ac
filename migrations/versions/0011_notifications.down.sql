-- Back to a schema without webhooks. The delivery tasks stay (tasks of workers pgstask.webhook
-- and pgstask.email that no daemon of the older version runs).
ALTER TABLE s_tasks DROP CONSTRAINT IF EXISTS s_tasks_notify_check;
DROP FUNCTION IF EXISTS pgstask_notify_valid(jsonb);
DROP TABLE IF EXISTS s_webhooks;
