-- With it, the planner could serve a claim's "priority_rank = k AND start_at <= now() ORDER BY
-- start_at" from (start_at) and walk every due task of the other priorities; the claim index
-- (priority_rank, start_at, id) answers both the claim and the earliest start_at per priority.
-- One index fewer to write on every claim and completion.
DROP INDEX IF EXISTS s_tasks_pending_start_at_idx;
