"""Wrappers of ``sql/schema.sql``."""

from __future__ import annotations

from pgstask.db import Conn
from pgstask.queries._execute import rows_of


def schema_has_version_table(conn: Conn) -> bool:
    return bool(rows_of(conn, "schema_has_version_table", {})[0]["present"])


def schema_version(conn: Conn) -> str | None:
    """Call only when ``schema_has_version_table``: the query reads that table."""
    rows = rows_of(conn, "schema_version", {})
    return str(rows[0]["version_num"]) if rows else None


def schema_lock(conn: Conn, *, key: int) -> None:
    rows_of(conn, "schema_lock", {"key": key})


def schema_unlock(conn: Conn, *, key: int) -> bool:
    """False when the lock was not held."""
    return bool(rows_of(conn, "schema_unlock", {"key": key})[0]["pg_advisory_unlock"])
