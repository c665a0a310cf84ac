"""Wrappers of ``sql/schema.sql``."""

from __future__ import annotations

from pgstask.db import Conn
from pgstask.queries._execute import rows_of


def schema_has_version_table(conn: Conn) -> bool:
    """Whether the database has alembic's version table (it has once pgstask was migrated there)."""
    return bool(rows_of(conn, "schema_has_version_table", {})[0]["present"])


def schema_version(conn: Conn) -> str | None:
    """The alembic revision the database is at, or None. Call only when
    ``schema_has_version_table``: the query reads that table."""
    rows = rows_of(conn, "schema_version", {})
    return str(rows[0]["version_num"]) if rows else None


def schema_lock(conn: Conn, *, key: int) -> None:
    """Wait for the session-scoped advisory lock ``key``: concurrent migrations take turns."""
    rows_of(conn, "schema_lock", {"key": key})


def schema_unlock(conn: Conn, *, key: int) -> bool:
    """Release the lock ``schema_lock`` took; False when it was not held."""
    return bool(rows_of(conn, "schema_unlock", {"key": key})[0]["pg_advisory_unlock"])
