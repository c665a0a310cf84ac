"""Alembic environment for pgstask.

pgstask keeps its DDL in ``versions/*.up.sql`` / ``*.down.sql`` files run unchanged through the
psycopg connection underneath SQLAlchemy. The DSN comes from ``pgstask.migrate`` through
``config.attributes["dsn"]``; nothing here reads the environment.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
dsn: str = config.attributes["dsn"]


def _connect() -> psycopg.Connection[object]:
    return psycopg.connect(dsn)


def run_migrations_online() -> None:
    engine = create_engine("postgresql+psycopg://", creator=_connect, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("pgstask migrations run online only: use `pgstask migrate`.")
run_migrations_online()
