"""Schema migrations: alembic configured in code.

The revisions live in the checkout's top-level ``migrations/`` directory; a wheel carries the
same files as ``pgstask/_migrations``. Each revision runs its ``.up.sql``/``.down.sql`` sidecar
unchanged through psycopg (no ``%`` escaping, no SQLAlchemy text parsing). Concurrent ``migrate``
runs serialise on an advisory lock, so starting several daemons at once is safe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import psycopg
from alembic import command, op
from alembic.config import Config
from alembic.script import ScriptDirectory

from pgstask import queries
from pgstask.db import connect, translate_errors
from pgstask.errors import ConfigurationError

_LOCK_KEY = 0x70677374  # "pgst": serialises concurrent migrations


def script_location() -> Path:
    """Where the revisions are: inside the installed package, else the checkout."""
    packaged = Path(__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).parent.parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise ConfigurationError("pgstask's migrations are missing from this installation")


def _config(dsn: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["dsn"] = dsn
    return config


def head_revision() -> str:
    """The newest revision this installation knows."""
    head = ScriptDirectory.from_config(_config("")).get_current_head()
    assert head is not None
    return head


def current_revision(dsn: str) -> str | None:
    """The revision the database is at, or None when pgstask was never migrated there."""
    with connect(dsn, autocommit=True, name="pgstask-migrate") as conn, translate_errors():
        if not queries.schema_has_version_table(conn):
            return None
        return queries.schema_version(conn)


@contextlib.contextmanager
def _migration_lock(dsn: str) -> Iterator[None]:
    with connect(dsn, autocommit=True, name="pgstask-migrate") as conn, translate_errors():
        queries.schema_lock(conn, key=_LOCK_KEY)
        try:
            yield
        finally:
            queries.schema_unlock(conn, key=_LOCK_KEY)


def upgrade(dsn: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``; idempotent."""
    with _migration_lock(dsn):
        command.upgrade(_config(dsn), revision)


def downgrade(dsn: str, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (``base`` drops everything pgstask created)."""
    with _migration_lock(dsn):
        command.downgrade(_config(dsn), revision)


def run_sql_file(revision_file: str, direction: Literal["up", "down"]) -> None:
    """Run ``<revision>.<direction>.sql`` beside ``revision_file`` on the migration connection."""
    path = Path(revision_file).with_suffix(f".{direction}.sql")
    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    driver.execute(path.read_text(encoding="utf-8").encode())
