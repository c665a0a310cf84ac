"""Connections, pools and the one place where psycopg errors become pgstask errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.errors
from psycopg import IsolationLevel
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pgstask.errors import DatabaseError, InvalidTaskError, PgstaskError, SchemaError

Conn = psycopg.Connection[Any]

# TCP keepalives so a half-open connection is noticed in about 25 s instead of the OS's 2 h;
# libpq ignores them on Unix sockets.
_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def connect(dsn: str, *, autocommit: bool = False, name: str = "pgstask") -> Conn:
    """One connection with pgstask's settings (READ COMMITTED, keepalives, dict rows)."""
    with translate_errors():
        conn = psycopg.connect(
            dsn, autocommit=autocommit, application_name=name, row_factory=dict_row, **_CONNECT_ARGS
        )
    conn.isolation_level = IsolationLevel.READ_COMMITTED
    return conn


def _configure(conn: Conn) -> None:
    conn.isolation_level = IsolationLevel.READ_COMMITTED


def make_pool(dsn: str, *, max_size: int, name: str = "pgstask") -> ConnectionPool[Conn]:
    """An open pool of connections like ``connect`` makes; checked before each use."""
    with translate_errors():
        # One direct connection first: an unreachable or misconfigured server then fails at
        # once with its own reason, not after the pool's open timeout with a generic one.
        psycopg.connect(dsn, application_name=name, **_CONNECT_ARGS).close()
        pool: ConnectionPool[Conn] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"application_name": name, "row_factory": dict_row, **_CONNECT_ARGS},
            configure=_configure,
            check=ConnectionPool.check_connection,
            open=False,
            name=name,
            reconnect_timeout=0,
        )
        pool.open(wait=True, timeout=10)
    return pool


@contextlib.contextmanager
def translate_errors(invalid: type[PgstaskError] = InvalidTaskError) -> Iterator[None]:
    """Re-raise psycopg errors as pgstask errors; ``invalid`` is used for rejected input."""
    try:
        yield
    except (
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedFunction,
        psycopg.errors.UndefinedColumn,
    ) as exc:
        raise SchemaError(
            f"the pgstask schema is missing or out of date ({exc.diag.message_primary}); "
            "run `pgstask migrate`"
        ) from exc
    except (psycopg.IntegrityError, psycopg.DataError) as exc:
        raise invalid(describe(exc)) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot use PostgreSQL: {str(exc).strip()}") from exc
    except psycopg.Error as exc:
        raise DatabaseError(describe(exc)) from exc


def describe(exc: psycopg.Error) -> str:
    """A one-line account of a PostgreSQL error: message, failing constraint, hint."""
    diag = exc.diag
    parts = [diag.message_primary or str(exc).strip()]
    if diag.constraint_name:
        parts.append(f"(constraint {diag.constraint_name})")
    if diag.message_hint:
        parts.append(f"hint: {diag.message_hint}")
    if exc.sqlstate:
        parts.append(f"[SQLSTATE {exc.sqlstate}]")
    return " ".join(parts)
