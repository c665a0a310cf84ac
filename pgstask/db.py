"""Connections, pools and the one place where psycopg errors become pgstask errors."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import psycopg
import psycopg.errors
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgstask.errors import DatabaseError, InvalidTaskError, PgstaskError, SchemaError

Conn = psycopg.Connection[Any]
#: The async connection of ``AsyncClient`` (``pgstask.async_client``) and of a caller's
#: transaction handed to it.
AsyncConn = psycopg.AsyncConnection[Any]
#: Run on each new connection of a pool or a ``Dedicated`` (session settings); whatever it
#: leaves in a transaction is committed.
OnConnect = Callable[[Conn], None]

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


#: A connection not handed out for longer than this is checked (an empty query, a round trip)
#: before it is handed out again; one handed out moments ago is not, so a burst of short
#: transactions (``Client.create`` in a loop, the API under load) pays no extra round trip each.
#: The time is taken at checkout, not at return: a pool ``reset`` callback would move every
#: return onto the pool's worker thread (a thread hand-off per statement), and the time since
#: the last checkout is never shorter than the time the connection sat unused.
CHECK_AFTER = 1.0
_handed_out: weakref.WeakKeyDictionary[Conn | AsyncConn, float] = weakref.WeakKeyDictionary()


def _stale(conn: Conn | AsyncConn) -> bool:
    """Whether ``conn``, handed out now, sat unused for more than ``CHECK_AFTER`` seconds."""
    now = time.monotonic()
    last, _handed_out[conn] = _handed_out.get(conn, 0.0), now
    return now - last > CHECK_AFTER


def _check(conn: Conn) -> None:
    if _stale(conn):
        ConnectionPool.check_connection(conn)


async def _check_async(conn: AsyncConn) -> None:
    if _stale(conn):
        await AsyncConnectionPool.check_connection(conn)


def _configure(conn: Conn, on_connect: OnConnect | None = None) -> None:
    conn.isolation_level = IsolationLevel.READ_COMMITTED
    if on_connect is not None:
        on_connect(conn)
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.commit()
    _handed_out[conn] = time.monotonic()  # just connected: no check at its first checkout


def make_pool(
    dsn: str, *, max_size: int, name: str = "pgstask", on_connect: OnConnect | None = None
) -> ConnectionPool[Conn]:
    """An open pool of connections like ``connect`` makes; one not handed out for more than
    ``CHECK_AFTER`` seconds is checked before use. ``on_connect`` runs on each new connection."""
    with translate_errors():
        # One direct connection first: an unreachable or misconfigured server then fails at
        # once with its own reason, not after the pool's open timeout with a generic one.
        psycopg.connect(dsn, application_name=name, **_CONNECT_ARGS).close()
        pool: ConnectionPool[Conn] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"application_name": name, "row_factory": dict_row, **_CONNECT_ARGS},
            configure=functools.partial(_configure, on_connect=on_connect),
            check=_check,
            open=False,
            name=name,
            reconnect_timeout=0,
        )
        pool.open(wait=True, timeout=10)
    return pool


async def _configure_async(conn: AsyncConn) -> None:
    await conn.set_isolation_level(IsolationLevel.READ_COMMITTED)
    _handed_out[conn] = time.monotonic()  # just connected: no check at its first checkout


async def make_async_pool(
    dsn: str, *, max_size: int, name: str = "pgstask"
) -> AsyncConnectionPool[AsyncConn]:
    """``make_pool`` for asyncio: an open ``AsyncConnectionPool`` of connections with the same
    settings (READ COMMITTED, keepalives, dict rows), checked by the same rule."""
    with translate_errors():
        # As in make_pool: an unreachable server fails at once with its own reason.
        await (
            await psycopg.AsyncConnection.connect(dsn, application_name=name, **_CONNECT_ARGS)
        ).close()
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"application_name": name, "row_factory": dict_row, **_CONNECT_ARGS},
            configure=_configure_async,
            check=_check_async,
            open=False,
            name=name,
            reconnect_timeout=0,
        )
        await pool.open(wait=True, timeout=10)
    return pool


class Connections(Protocol):
    """Where a loop gets its connection: a ``ConnectionPool`` or a ``Dedicated``."""

    def connection(self) -> contextlib.AbstractContextManager[Conn]:
        """A context that lends one connection for one unit of work."""
        ...


class Dedicated:
    """One long-lived autocommit connection for a loop that runs a statement every few
    milliseconds (the producer's claim, the completer's writes).

    A pooled connection costs a ``COMMIT`` round trip after the statement; a claim or a batch
    completion is one statement, so here it is its own transaction and costs one round trip.
    The connection is made on first use and checked like a pooled one (``_check``: only when it
    was not used for ``CHECK_AFTER`` seconds); after an error that left it broken or inside a
    transaction it is closed, and the next use makes a new one. Not thread-safe: each loop owns
    its own.
    """

    def __init__(self, dsn: str, *, name: str, on_connect: OnConnect | None = None) -> None:
        """``on_connect`` runs on each new connection (session settings)."""
        self.dsn = dsn
        self.name = name
        self._on_connect = on_connect
        self._conn: Conn | None = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[Conn]:
        """The loop's connection, made on first use and again after it was closed; checked first
        when it sat unused for ``CHECK_AFTER`` seconds, and closed when an error leaves it broken or
        inside a transaction."""
        conn = self._conn
        if conn is not None:
            try:
                _check(conn)
            except psycopg.Error:
                self.close()
                conn = None
        if conn is None or conn.closed:
            conn = connect(self.dsn, autocommit=True, name=self.name)
            if self._on_connect is not None:
                try:
                    self._on_connect(conn)
                except BaseException:
                    conn.close()
                    raise
            self._conn = conn
            _handed_out[conn] = time.monotonic()  # just connected: counts as handed out now
        try:
            yield conn
        except BaseException:
            if conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
                self.close()
            raise

    def close(self) -> None:
        """Close the connection, if there is one (its errors ignored); the next use makes a new
        one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


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


# A NUL escape in JSON text: ``\\u0000`` after an even number of backslashes (after an odd
# number the backslash itself is escaped, and the text is the six characters ``\\u0000``).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: object) -> str:
    """``value`` as text a PostgreSQL ``text`` column can hold: NUL characters (which it cannot
    store) become U+FFFD, and so do lone surrogates (not Unicode, e.g. a file name read with
    ``surrogateescape``). For texts pgstask writes on a task's behalf (messages, errors, log
    lines), where refusing the text would lose the outcome that carries it."""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def text_problem(text: str) -> str | None:
    """Why a ``text`` column would refuse ``text``, or None."""
    if "\x00" in text:
        return "it contains a NUL character, which PostgreSQL cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it contains a lone surrogate (text that is not valid Unicode)"
    return None


def json_problem(text: str) -> str | None:
    """Why ``jsonb`` would refuse ``text`` (JSON made with ``ensure_ascii=False``), or None."""
    if "\\u0000" in text and _JSON_NUL.search(text):
        return "it contains a NUL character (\\u0000), which PostgreSQL cannot store"
    return text_problem(text)  # (JSON escapes a NUL character itself)


# One encoder for json_text: json.dumps with any option set builds a new one on every call.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def json_text(value: object) -> str:
    """``value`` as JSON text that ``jsonb`` accepts; ``ValueError`` saying why it cannot be."""
    try:
        text = _JSON.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    problem = json_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def storable_json(text: str) -> str:
    """JSON ``text`` (``ensure_ascii=False``) with what ``jsonb`` refuses replaced by U+FFFD."""
    if "\\u0000" in text:
        text = _JSON_NUL.sub(lambda m: m.group(1) + "\\ufffd", text)
    return storable(text)


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
