DROP TABLE IF EXISTS s_schedule_runs;
DROP TABLE IF EXISTS s_schedules;
DROP FUNCTION IF EXISTS s_schedules_after_change();
