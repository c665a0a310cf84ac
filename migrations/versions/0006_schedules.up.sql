-- Schedules: a cron expression in a time zone that enqueues a task of a worker's action at each
-- slot. The expression is checked by pgstask (a scheduler disables a schedule whose expression
-- or zone it cannot read, with last_error); the table checks what SQL can.
CREATE TABLE s_schedules (
    name                 text        PRIMARY KEY
                         CHECK (name <> '' AND length(name) <= 200 AND name = btrim(name)
                                AND name !~ '[[:cntrl:]]'),
    identifier           text        NOT NULL CHECK (identifier <> '' AND length(identifier) <= 200),
    action               text        NOT NULL CHECK (action <> '' AND length(action) <= 200),
    cron                 text        NOT NULL CHECK (cron <> '' AND length(cron) <= 200),
    timezone             text        NOT NULL DEFAULT 'UTC'
                         CHECK (timezone <> '' AND length(timezone) <= 100),
    data                 jsonb       NOT NULL DEFAULT '{}'::jsonb
                         CHECK (jsonb_typeof(data) = 'object'),
    priority             text        NOT NULL DEFAULT 'normal'
                         CHECK (priority IN ('low', 'normal', 'high')),
    max_attempts         integer     NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 1000),
    misfire              text        NOT NULL DEFAULT 'skip' CHECK (misfire IN ('skip', 'run_once')),
    active               boolean     NOT NULL DEFAULT true,
    origin               text        NOT NULL DEFAULT 'api' CHECK (origin IN ('code', 'api')),
    -- The slot the schedule fires next (UTC); NULL until a scheduler computes it (a row inserted
    -- by SQL, a schedule resumed or changed).
    next_run_at          timestamptz,
    last_run_at          timestamptz,
    last_task_id         bigint,
    last_error           text,
    missing_from_code_at timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX s_schedules_next_run_at_idx ON s_schedules (next_run_at) WHERE active;

-- One row per slot a schedule fired: the primary key makes a second task for one slot
-- impossible, whatever a scheduler does; the cleaner keeps the recent ones.
CREATE TABLE s_schedule_runs (
    schedule_name text        NOT NULL REFERENCES s_schedules (name) ON DELETE CASCADE
                              ON UPDATE CASCADE,
    slot          timestamptz NOT NULL,
    task_id       bigint      NOT NULL,
    fired_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_name, slot)
);

-- A schedule added or changed wakes the daemons' schedulers.
CREATE FUNCTION s_schedules_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgstask_schedules', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER s_schedules_after_change
    AFTER INSERT OR UPDATE OF cron, timezone, active ON s_schedules
    FOR EACH STATEMENT EXECUTE FUNCTION s_schedules_after_change();
