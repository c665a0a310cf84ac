-- Queries on s_webhooks (revision 0011). A secret is read by the delivery worker only
-- (webhook_get_for_delivery); the other reads leave it out, and webhook_upsert returns it only
-- when it was set (a new webhook, or a secret given or rotated).

-- name: webhook_upsert
-- Add webhook %(name)s or replace its fields; keep_secret keeps the stored secret of an existing
-- one (its new secret is ignored). The row, with whether it was inserted and the secret when it
-- was set by this statement.
INSERT INTO s_webhooks AS w (name, url, secret, events, active, description)
VALUES (%(name)s, %(url)s, %(secret)s, %(events)s::text[], %(active)s, %(description)s)
ON CONFLICT (name) DO UPDATE
   SET url = excluded.url,
       secret = CASE WHEN %(keep_secret)s THEN w.secret ELSE excluded.secret END,
       events = excluded.events, active = excluded.active, description = excluded.description,
       updated_at = now()
RETURNING w.name, w.url, w.events, w.active, w.description, w.created_at, w.updated_at,
          (xmax = 0) AS inserted,
          CASE WHEN xmax = 0 OR NOT %(keep_secret)s THEN w.secret END AS secret;

-- name: webhook_get
SELECT name, url, events, active, description, created_at, updated_at
  FROM s_webhooks WHERE name = %(name)s;

-- name: webhook_list
SELECT name, url, events, active, description, created_at, updated_at
  FROM s_webhooks ORDER BY name;

-- name: webhook_names
-- Of the names given, those no webhook has.
SELECT n.name FROM unnest(%(names)s::text[]) AS n(name)
 WHERE NOT EXISTS (SELECT 1 FROM s_webhooks w WHERE w.name = n.name);

-- name: webhook_delete
DELETE FROM s_webhooks WHERE name = %(name)s RETURNING name;

-- name: webhook_get_for_delivery
-- What the delivery worker needs, its secret included.
SELECT name, url, secret, events, active FROM s_webhooks WHERE name = %(name)s;
