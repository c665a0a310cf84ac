-- Revision 0011: webhook and email notifications (docs/notifications.md).
--
-- A webhook is a named URL with a secret; a worker's notify setting and a task's notify column
-- name webhooks by name, and email addresses. When a task completes or fails for good, the
-- statement that writes the outcome is followed, in its transaction, by one that inserts a
-- delivery task per target (of the built-in workers pgstask.webhook and pgstask.email).
CREATE TABLE s_webhooks (
    name        text        PRIMARY KEY
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND length(name) <= 100),
    url         text        NOT NULL
                CHECK (url ~* '^https?://[^/?#[:space:]]+' AND length(url) <= 2000
                       AND url !~ '[[:space:][:cntrl:]]'),
    secret      text        NOT NULL CHECK (secret ~ '^[!-~]{16,200}$'),
    events      text[]      NOT NULL DEFAULT ARRAY['completed', 'failed']
                CHECK (cardinality(events) > 0 AND events <@ ARRAY['completed', 'failed']),
    active      boolean     NOT NULL DEFAULT true,
    description text        NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Whether a notify value has the shape pgstask reads: an object of at most the keys webhooks
-- and emails (arrays of strings) and on (an array of completed and/or failed). Which webhooks
-- exist is not checked here (one may be added later, or removed: its deliveries are then not
-- made).
-- PL/pgSQL, not SQL: a SQL function in a CHECK is inlined (parsed and analysed again) each time
-- a statement on s_tasks prepares its constraints, which cost every INSERT and UPDATE of a task
-- 12 % (measured), NULL notify or not.
CREATE FUNCTION pgstask_notify_valid(notify jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN jsonb_typeof($1) = 'object'
           AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys($1) AS k
                            WHERE k NOT IN ('webhooks', 'emails', 'on'))
           AND coalesce(jsonb_typeof($1 -> 'webhooks'), 'array') = 'array'
           AND coalesce(jsonb_typeof($1 -> 'emails'), 'array') = 'array'
           AND coalesce(jsonb_typeof($1 -> 'on'), 'array') = 'array'
           AND NOT EXISTS (SELECT 1
                             FROM jsonb_array_elements(coalesce($1 -> 'webhooks', '[]')
                                                       || coalesce($1 -> 'emails', '[]')) AS e
                            WHERE jsonb_typeof(e) <> 'string')
           AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce($1 -> 'on', '[]')) AS e
                            WHERE e NOT IN ('"completed"', '"failed"'));
END
$$;

-- NOT VALID: the column is new (revision 0010), every row holds NULL, so the table is not read
-- through; the check holds for every row inserted or updated from now on.
ALTER TABLE s_tasks ADD CONSTRAINT s_tasks_notify_check
    CHECK (notify IS NULL OR pgstask_notify_valid(notify)) NOT VALID;
