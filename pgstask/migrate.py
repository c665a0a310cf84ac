"""Schema migrations: alembic configured in code.

The revisions live in the checkout's top-level ``migrations/`` directory; a wheel carries the
same files as ``pgstask/_migrations``. Each revision runs its ``.up.sql``/``.down.sql`` sidecar
unchanged through psycopg (no ``%`` escaping, no SQLAlchemy text parsing). Concurrent ``migrate``
runs serialise on an advisory lock, so starting several daemons at once is safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import psycopg
from alembic import command, op
from alembic.config import Config
from alembic.script import ScriptDirectory

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
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None


def upgrade(dsn: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``; idempotent."""
    with psycopg.connect(dsn, autocommit=True) as lock_conn:
        lock_conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            command.upgrade(_config(dsn), revision)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def downgrade(dsn: str, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (``base`` drops everything pgstask created)."""
    with psycopg.connect(dsn, autocommit=True) as lock_conn:
        lock_conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            command.downgrade(_config(dsn), revision)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def run_sql_file(revision_file: str, direction: Literal["up", "down"]) -> None:
    """Run ``<revision>.<direction>.sql`` beside ``revision_file`` on the migration connection."""
    path = Path(revision_file).with_suffix(f".{direction}.sql")
    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    driver.execute(path.read_text(encoding="utf-8").encode())
