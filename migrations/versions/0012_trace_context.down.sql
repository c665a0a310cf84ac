-- Back to a schema without trace contexts (the stored contexts are dropped).
ALTER TABLE s_tasks DROP COLUMN IF EXISTS trace_context;
