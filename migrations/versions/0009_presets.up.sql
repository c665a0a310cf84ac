-- Revision 0009: presets, named task templates that the API, the CLI, SQL and schedules start.
--
-- A preset holds what a task of it gets unless the caller says otherwise: the worker and the
-- action, the data (the action's options), the priority and max_attempts. Starting one inserts a
-- task with the given data shallow-merged over the preset's (jsonb ||: a key given replaces the
-- preset's key whole), through the same insert trigger as any other task.
CREATE TABLE s_presets (
    name         text        PRIMARY KEY
                 CHECK (name <> '' AND length(name) <= 200 AND name = btrim(name)
                        AND name !~ '[[:cntrl:]]'),
    identifier   text        NOT NULL CHECK (identifier ~ '\S' AND length(identifier) <= 255),
    action       text        NOT NULL CHECK (action ~ '\S' AND length(action) <= 255),
    data         jsonb       NOT NULL DEFAULT '{}'::jsonb
                 CHECK (jsonb_typeof(data) = 'object' AND pg_column_size(data) <= 1048576),
    priority     text        NOT NULL DEFAULT 'normal'
                 CHECK (priority IN ('low', 'normal', 'high')),
    max_attempts integer     NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 1000),
    description  text        NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One task of preset `name`, `overrides` merged over its data; the new task's id. NULL
-- arguments are "not given": the preset's priority and max_attempts, start_at now().
--   SELECT pgstask_enqueue_preset('nightly-export', '{"format": "xlsx"}', priority => 'high');
-- Parameters are referred to by position: their names are also columns of s_tasks.
CREATE FUNCTION pgstask_enqueue_preset(
    name         text,
    overrides    jsonb       DEFAULT '{}'::jsonb,
    priority     text        DEFAULT NULL,
    start_at     timestamptz DEFAULT NULL,
    max_attempts integer     DEFAULT NULL,
    started_by   bigint      DEFAULT NULL,
    dedupe_key   text        DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    IF $2 IS NOT NULL AND jsonb_typeof($2) <> 'object' THEN
        RAISE EXCEPTION 'pgstask: the overrides of preset % must be a JSON object, not %',
                        quote_nullable($1), jsonb_typeof($2)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object such as ''{"file": "b.csv"}'', or ''{}'' for none.';
    END IF;
    INSERT INTO s_tasks (identifier, action, meta, priority, start_at, max_attempts, started_by,
                         dedupe_key, message)
    SELECT p.identifier, p.action, p.data || coalesce($2, '{}'::jsonb), coalesce($3, p.priority),
           coalesce($4, now()), coalesce($5, p.max_attempts), $6, $7,
           'Task queued from preset ' || p.name
      FROM s_presets p
     WHERE p.name = $1
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'pgstask: no preset is named %', quote_nullable($1)
            USING ERRCODE = 'no_data_found',
                  HINT = 'SELECT name FROM s_presets lists them; pgstask presets add makes one.';
    END IF;
    RETURN new_id;
END
$$;

-- A schedule starts either a worker's action (identifier and action) or a preset (preset; the
-- preset gives the worker and the action at each slot, and the schedule's data is merged over
-- the preset's). priority and max_attempts lose their defaults: NULL is "not set", which is the
-- preset's for a preset schedule and normal and 3 for the others (what they were by default).
-- No foreign key: a preset may be removed while schedules name it; the scheduler then disables
-- those schedules with the reason in last_error.
ALTER TABLE s_schedules
    ADD COLUMN preset text CHECK (preset <> '' AND length(preset) <= 200),
    ALTER COLUMN identifier DROP NOT NULL,
    ALTER COLUMN action DROP NOT NULL,
    ALTER COLUMN priority DROP NOT NULL,
    ALTER COLUMN priority DROP DEFAULT,
    ALTER COLUMN max_attempts DROP NOT NULL,
    ALTER COLUMN max_attempts DROP DEFAULT,
    ADD CONSTRAINT s_schedules_target_check CHECK (
        (preset IS NULL AND identifier IS NOT NULL AND action IS NOT NULL)
        OR (preset IS NOT NULL AND identifier IS NULL AND action IS NULL));
CREATE INDEX s_schedules_preset_idx ON s_schedules (preset) WHERE preset IS NOT NULL;
