-- Queries of `pgstask migrate` and the schema check of daemons (outside alembic's own).

-- name: schema_version
-- The alembic revision the database is at; no row when pgstask was never migrated there.
SELECT version_num FROM alembic_version WHERE to_regclass('alembic_version') IS NOT NULL;

-- name: schema_has_version_table
SELECT to_regclass('alembic_version') IS NOT NULL AS present;

-- name: schema_lock
-- Session-scoped: concurrent `migrate` runs (several daemons starting at once) take turns.
SELECT pg_advisory_lock(%(key)s);

-- name: schema_unlock
SELECT pg_advisory_unlock(%(key)s);
