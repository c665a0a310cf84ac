-- Queries on s_workers: the registry of worker classes and their state.

-- name: worker_register_many
-- Insert workers a daemon found; refresh the metadata of known ones. active applies to new rows
-- only: an administrator's choice is never overwritten. actions: one JSON array of names each;
-- defaults: the flow-control settings of the class (pgstask.limits), under s_workers.settings.
-- In identifier order: rows are locked in the order the claim of limited workers locks them.
INSERT INTO s_workers AS w (identifier, class, scope, title, description, icon, actions, defaults,
                            active, position)
SELECT i, c, s, t, d, ic, ARRAY(SELECT jsonb_array_elements_text(a)), df, %(active)s,
       coalesce((SELECT max(position) FROM s_workers), 0) + n.ord
  FROM unnest(%(identifiers)s::text[], %(classes)s::text[], %(scopes)s::text[],
              %(titles)s::text[], %(descriptions)s::text[], %(icons)s::text[],
              %(actions)s::jsonb[], %(defaults)s::jsonb[])
       WITH ORDINALITY AS n(i, c, s, t, d, ic, a, df, ord)
 ORDER BY i
ON CONFLICT (identifier) DO UPDATE
   SET class = excluded.class, scope = excluded.scope, title = excluded.title,
       description = excluded.description, icon = excluded.icon, actions = excluded.actions,
       defaults = excluded.defaults, updated_at = now()
 WHERE (w.class, w.scope, w.title, w.description, w.icon, w.actions, w.defaults)
       IS DISTINCT FROM (excluded.class, excluded.scope, excluded.title, excluded.description,
                         excluded.icon, excluded.actions, excluded.defaults)
RETURNING w.identifier, (xmax = 0) AS inserted;

-- name: worker_list
SELECT * FROM s_workers
 WHERE (NOT %(active_only)s OR active)
 ORDER BY position, identifier;

-- name: worker_get
SELECT * FROM s_workers WHERE identifier = %(identifier)s;

-- name: worker_set_active
UPDATE s_workers SET active = %(active)s, updated_at = now()
 WHERE identifier = %(identifier)s
RETURNING *;

-- name: worker_update_settings
-- Shallow merge: given keys replace stored ones.
UPDATE s_workers SET settings = settings || %(settings)s::jsonb, updated_at = now()
 WHERE identifier = %(identifier)s
RETURNING *;

-- name: worker_delete_many
DELETE FROM s_workers WHERE identifier = ANY(%(identifiers)s::text[]) RETURNING identifier;

-- name: worker_states
-- What a daemon reloads when workers change: activity, settings, flow control (whether the
-- limited claim takes their tasks) and whether their outcomes notify anyone (notify in the
-- settings over the class's: the completer writes their outcomes with the deliveries) of its
-- identifiers.
SELECT identifier, active, settings, flow,
       coalesce(jsonb_typeof(CASE WHEN settings ? 'notify' THEN settings -> 'notify'
                                  ELSE defaults -> 'notify' END) = 'object', false) AS notifies
  FROM s_workers
 WHERE identifier = ANY(%(identifiers)s::text[]);

-- name: worker_count
SELECT count(*) AS total, count(*) FILTER (WHERE active) AS active FROM s_workers;

-- name: worker_notify
-- Tell running daemons to reload worker settings and activity now (the same channel the
-- s_workers trigger uses); identifier '' means all workers.
SELECT pg_notify('pgstask_workers', %(identifier)s);
