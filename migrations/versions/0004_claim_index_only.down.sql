CREATE INDEX IF NOT EXISTS s_tasks_pending_start_at_idx ON s_tasks (start_at) WHERE status = 10;
