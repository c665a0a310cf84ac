"""Schema migrations: alembic configured in code.

The revisions live in the checkout's top-level ``migrations/`` directory; a wheel carries the
same files as ``pgstask/_migrations``. Each revision runs its ``.up.sql``/``.down.sql`` sidecar
unchanged through psycopg (no ``%`` escaping, no SQLAlchemy text parsing). Concurrent ``migrate``
runs serialise on an advisory lock, so starting several daemons at once is safe.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import psycopg

from pgstask import queries
from pgstask.db import connect, translate_errors
from pgstask.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

_LOCK_KEY = 0x70677374  # "pgst": serialises concurrent migrations
# A revision file's own identifiers, as alembic's templates write them: ``revision = "0004"``,
# ``revision: str = '0004'``, ``down_revision = None``, a tuple for a merge.
_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*['\"](\w+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=\n]*)?=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"](\w+)['\"]")


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
    # alembic (and SQLAlchemy under it) is imported only to migrate: a daemon checks the
    # revision without it and so stays some 25 MB smaller.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["dsn"] = dsn
    return config


def head_revision() -> str:
    """The newest revision this installation knows: the one no other revision revises, read
    from the revision files (the same answer as alembic's, which the tests check)."""
    return head_of(script_location() / "versions")


def head_of(versions: Path) -> str:
    """The head revision of the revision files in ``versions``."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in versions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            raise ConfigurationError(f"{path.name}: not a pgstask revision file")
        revisions.add(revision.group(1))
        revised.update(_QUOTED.findall(down.group(1)))
    heads = revisions - revised
    if len(heads) != 1:
        raise ConfigurationError(f"pgstask's migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


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
    from alembic import command

    with _migration_lock(dsn):
        command.upgrade(_config(dsn), revision)


def downgrade(dsn: str, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (``base`` drops everything pgstask created)."""
    from alembic import command

    with _migration_lock(dsn):
        command.downgrade(_config(dsn), revision)


def run_sql_file(revision_file: str, direction: Literal["up", "down"]) -> None:
    """Run ``<revision>.<direction>.sql`` beside ``revision_file`` on the migration connection."""
    from alembic import op

    path = Path(revision_file).with_suffix(f".{direction}.sql")
    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    driver.execute(path.read_text(encoding="utf-8").encode())
