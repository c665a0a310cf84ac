-- Back to a schema without presets. A schedule that starts a preset cannot be kept (a schedule
-- needs its own worker and action there): it is deleted, with its runs; its tasks stay.
DELETE FROM s_schedules WHERE preset IS NOT NULL;
UPDATE s_schedules SET priority = coalesce(priority, 'normal'),
                       max_attempts = coalesce(max_attempts, 3)
 WHERE priority IS NULL OR max_attempts IS NULL;
DROP INDEX IF EXISTS s_schedules_preset_idx;
ALTER TABLE s_schedules
    DROP CONSTRAINT IF EXISTS s_schedules_target_check,
    DROP COLUMN IF EXISTS preset,
    ALTER COLUMN identifier SET NOT NULL,
    ALTER COLUMN action SET NOT NULL,
    ALTER COLUMN priority SET DEFAULT 'normal',
    ALTER COLUMN priority SET NOT NULL,
    ALTER COLUMN max_attempts SET DEFAULT 3,
    ALTER COLUMN max_attempts SET NOT NULL;
DROP FUNCTION IF EXISTS pgstask_enqueue_preset(text, jsonb, text, timestamptz, integer, bigint,
                                               text);
DROP TABLE IF EXISTS s_presets;
