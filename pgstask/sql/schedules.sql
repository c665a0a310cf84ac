-- Queries on s_schedules and s_schedule_runs. A slot is fired by one statement: the
-- compare-and-set on next_run_at, the run's row and the task's insert; a scheduler that lost the
-- race to another daemon changes nothing.

-- name: schedule_upsert
-- A schedule declared in code (origin 'code') or added through the API, CLI or SQL ('api'). A
-- change of the expression or the zone, or a resumed schedule, clears next_run_at: the next
-- scheduler pass computes it. Returns the row and whether it was inserted.
INSERT INTO s_schedules AS s (name, identifier, action, preset, cron, timezone, data, priority,
                              max_attempts, misfire, active, origin)
VALUES (%(name)s, %(identifier)s, %(action)s, %(preset)s, %(cron)s, %(timezone)s, %(data)s,
        %(priority)s, %(max_attempts)s, %(misfire)s, %(active)s, %(origin)s)
ON CONFLICT (name) DO UPDATE
   SET identifier = excluded.identifier, action = excluded.action, preset = excluded.preset,
       cron = excluded.cron, timezone = excluded.timezone, data = excluded.data,
       priority = excluded.priority, max_attempts = excluded.max_attempts,
       misfire = excluded.misfire, origin = excluded.origin, missing_from_code_at = NULL,
       last_error = NULL,
       next_run_at = CASE WHEN (s.cron, s.timezone) IS DISTINCT FROM (excluded.cron, excluded.timezone)
                          THEN NULL ELSE s.next_run_at END,
       updated_at = now()
 WHERE (s.identifier, s.action, s.preset, s.cron, s.timezone, s.data, s.priority, s.max_attempts,
        s.misfire, s.origin, s.missing_from_code_at, s.last_error)
       IS DISTINCT FROM (excluded.identifier, excluded.action, excluded.preset, excluded.cron,
                         excluded.timezone, excluded.data, excluded.priority,
                         excluded.max_attempts, excluded.misfire, excluded.origin,
                         NULL::timestamptz, NULL::text)
RETURNING s.*, (xmax = 0) AS inserted;

-- name: schedule_get
-- With the status of the task of its last slot (NULL when none, or deleted since), and for one
-- that starts a preset the preset's worker and action now (NULL when it does not exist).
SELECT s.*, t.status AS last_task_status, p.identifier AS preset_identifier,
       p.action AS preset_action
  FROM s_schedules s
       LEFT JOIN s_tasks t ON t.id = s.last_task_id
       LEFT JOIN s_presets p ON p.name = s.preset
 WHERE s.name = %(name)s;

-- name: schedule_list
-- As schedule_get, every schedule.
SELECT s.*, t.status AS last_task_status, p.identifier AS preset_identifier,
       p.action AS preset_action
  FROM s_schedules s
       LEFT JOIN s_tasks t ON t.id = s.last_task_id
       LEFT JOIN s_presets p ON p.name = s.preset
 ORDER BY s.name;

-- name: schedule_due
-- The active schedules whose slot has come, or whose next slot is not computed yet, with the
-- server's now() (the only clock that says what is due), and preset_missing: the schedule starts
-- a preset that does not exist (any more).
SELECT s.*, now() AS now,
       (s.preset IS NOT NULL
        AND NOT EXISTS (SELECT FROM s_presets p WHERE p.name = s.preset)) AS preset_missing
  FROM s_schedules s
 WHERE s.active AND (s.next_run_at IS NULL OR s.next_run_at <= now())
 ORDER BY s.next_run_at NULLS FIRST, s.name
 LIMIT %(limit)s;

-- name: schedule_next_run_at
-- Seconds until the earliest slot of an active schedule (NULL when none): the scheduler's timed
-- wake-up.
SELECT extract(epoch FROM min(next_run_at) - now())::float8 AS delay
  FROM s_schedules WHERE active AND next_run_at IS NOT NULL;

-- name: schedule_fire
-- Fire slot %(slot)s: move next_run_at from it to %(next_run_at)s (compare-and-set), take the
-- task's id, record the run and insert the task, in one statement. No row comes back when
-- another scheduler moved the schedule first (or it was paused or changed meanwhile), nor when
-- it starts a preset that does not exist. A schedule that starts a preset gives the preset's
-- worker and action, its own data merged over the preset's (||), and its own priority and
-- max_attempts where it has them; every part of the statement reads the preset in one snapshot.
WITH fired AS (
    UPDATE s_schedules s
       SET next_run_at = %(next_run_at)s, last_run_at = %(slot)s, last_error = NULL,
           last_task_id = nextval(pg_get_serial_sequence('s_tasks', 'id')), updated_at = now()
     WHERE s.name = %(name)s AND s.active AND s.next_run_at = %(slot)s
       AND (s.preset IS NULL OR EXISTS (SELECT FROM s_presets p WHERE p.name = s.preset))
 RETURNING s.name, s.identifier, s.action, s.preset, s.data, s.priority, s.max_attempts,
           s.last_task_id
), source AS (
    SELECT f.name, f.last_task_id, coalesce(p.identifier, f.identifier) AS identifier,
           coalesce(p.action, f.action) AS action, coalesce(p.data, '{}'::jsonb) || f.data AS data,
           coalesce(f.priority, p.priority, 'normal') AS priority,
           coalesce(f.max_attempts, p.max_attempts, 3) AS max_attempts,
           'Task queued by schedule ' || f.name || coalesce(' from preset ' || f.preset, '')
               AS message
      FROM fired f LEFT JOIN s_presets p ON p.name = f.preset
), run AS (
    INSERT INTO s_schedule_runs (schedule_name, slot, task_id)
    SELECT name, %(slot)s, last_task_id FROM fired
    ON CONFLICT DO NOTHING
 RETURNING task_id
), task AS (
    INSERT INTO s_tasks (id, identifier, action, meta, priority, max_attempts, message)
    SELECT run.task_id, o.identifier, o.action, o.data, o.priority, o.max_attempts, o.message
      FROM run CROSS JOIN source o
 RETURNING id
)
SELECT f.name, (SELECT id FROM task) AS task_id FROM fired f;

-- name: schedule_move
-- Move next_run_at from %(slot)s (NULL: not computed yet) to %(next_run_at)s without a task: a
-- first computation, or a missed slot skipped. A compare-and-set like schedule_fire's.
UPDATE s_schedules
   SET next_run_at = %(next_run_at)s, updated_at = now()
 WHERE name = %(name)s AND active AND next_run_at IS NOT DISTINCT FROM %(slot)s::timestamptz
RETURNING name;

-- name: schedule_disable
-- A schedule pgstask cannot read (its expression or zone, inserted by SQL) stops, with the reason.
UPDATE s_schedules SET active = false, last_error = %(error)s, updated_at = now()
 WHERE name = %(name)s
RETURNING name;

-- name: schedule_set_active
-- Pause or resume; resuming clears next_run_at, so the schedule starts at its next slot, not at
-- the ones it missed while paused.
UPDATE s_schedules
   SET active = %(active)s, next_run_at = CASE WHEN %(active)s THEN NULL ELSE next_run_at END,
       last_error = CASE WHEN %(active)s THEN NULL ELSE last_error END, updated_at = now()
 WHERE name = %(name)s
RETURNING *;

-- name: schedule_run_now
-- One task of schedule %(name)s now, with its fields (and its preset's, as schedule_fire takes
-- them), beside its slots: next_run_at, last_run_at, last_task_id and the runs stay as they are.
-- No row when there is no such schedule, or it starts a preset that does not exist.
INSERT INTO s_tasks (identifier, action, meta, priority, max_attempts, message)
SELECT coalesce(p.identifier, s.identifier), coalesce(p.action, s.action),
       coalesce(p.data, '{}'::jsonb) || s.data, coalesce(s.priority, p.priority, 'normal'),
       coalesce(s.max_attempts, p.max_attempts, 3),
       'Task queued by schedule ' || s.name || coalesce(' from preset ' || s.preset, '')
           || ', run now'
  FROM s_schedules s LEFT JOIN s_presets p ON p.name = s.preset
 WHERE s.name = %(name)s AND (s.preset IS NULL OR p.name IS NOT NULL)
RETURNING *;

-- name: schedule_delete
DELETE FROM s_schedules WHERE name = %(name)s RETURNING name;

-- name: schedule_mark_missing_from_code
-- Code schedules no longer declared by the workers of %(identifiers)s (the daemon's): marked, not
-- deleted, while they have history. A code schedule that starts a preset is its worker's (a
-- worker declares only presets of its own).
UPDATE s_schedules s
   SET missing_from_code_at = coalesce(s.missing_from_code_at, now()), updated_at = now()
 WHERE s.origin = 'code'
   AND coalesce(s.identifier, (SELECT p.identifier FROM s_presets p WHERE p.name = s.preset))
       = ANY(%(identifiers)s::text[])
   AND NOT s.name = ANY(%(declared)s::text[]) AND s.missing_from_code_at IS NULL
RETURNING s.name;

-- name: schedule_runs_delete_before
-- The cleaner: runs older than the cutoff, except each schedule's latest.
DELETE FROM s_schedule_runs r
 WHERE r.fired_at < now() - %(days)s::float8 * interval '1 day'
   AND r.slot < (SELECT max(slot) FROM s_schedule_runs l WHERE l.schedule_name = r.schedule_name);
