-- Queries on s_presets, and the task a start of one inserts. A preset's data and the data a
-- start is given merge with jsonb || (a shallow merge: a key given replaces the preset's whole),
-- as in pgstask_enqueue_preset() (revision 0009) and a schedule that names a preset.

-- name: preset_upsert
-- Add preset %(name)s or replace its fields; the row, with whether it was inserted.
INSERT INTO s_presets AS p (name, identifier, action, data, priority, max_attempts, description)
VALUES (%(name)s, %(identifier)s, %(action)s, %(data)s, %(priority)s, %(max_attempts)s,
        %(description)s)
ON CONFLICT (name) DO UPDATE
   SET identifier = excluded.identifier, action = excluded.action, data = excluded.data,
       priority = excluded.priority, max_attempts = excluded.max_attempts,
       description = excluded.description, updated_at = now()
RETURNING p.*, (xmax = 0) AS inserted;

-- name: preset_get
-- With the names of the schedules that start it.
SELECT p.*, array(SELECT s.name FROM s_schedules s WHERE s.preset = p.name ORDER BY s.name)
            AS schedules
  FROM s_presets p
 WHERE p.name = %(name)s;

-- name: preset_list
-- As preset_get, every preset.
SELECT p.*, array(SELECT s.name FROM s_schedules s WHERE s.preset = p.name ORDER BY s.name)
            AS schedules
  FROM s_presets p
 ORDER BY p.name;

-- name: preset_delete
-- Delete preset %(name)s; its name and the schedules that still name it (the scheduler disables
-- them at their next pass). No row when there was none.
WITH gone AS (DELETE FROM s_presets WHERE name = %(name)s RETURNING name)
SELECT g.name,
       array(SELECT s.name FROM s_schedules s WHERE s.preset = g.name ORDER BY s.name)
           AS schedules
  FROM gone g;

-- name: preset_enqueue
-- One task of preset %(name)s, %(data)s merged over its data; NULL priority or max_attempts are
-- the preset's, a NULL start_at now(). With a dedupe_key held by an incomplete task nothing is
-- inserted; neither when there is no such preset. One statement: the preset is read in the
-- snapshot that inserts the task.
INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts, started_by,
                     dedupe_key, message)
SELECT p.identifier, p.action, p.data || %(data)s::jsonb, coalesce(%(priority)s, p.priority),
       coalesce(%(start_at)s::timestamptz, now()),
       coalesce(%(max_attempts)s::integer, p.max_attempts), %(user_id)s::bigint,
       %(dedupe_key)s, 'Task queued from preset ' || p.name
  FROM s_presets p
 WHERE p.name = %(name)s
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN (10, 20, 30, 50) DO NOTHING
RETURNING *;
