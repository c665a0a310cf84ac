"""Where a Django enqueue writes its task, and when.

pgstask's database is the Django database ``DATABASE`` (default ``"default"``) unless the
backend's ``DSN`` names another. When it is that Django database and Django reaches it through
psycopg 3, the task is inserted on Django's own connection, in its current transaction: a view
whose transaction rolls back enqueues nothing, and a task is never run before the rows it was
enqueued for are committed. Otherwise (another database, psycopg2, SQLite, …) the insert is made
on pgstask's own pool by ``transaction.on_commit`` of ``DATABASE``: at once outside a
transaction, after the commit inside one, never after a rollback (docs/django.md). ``read``
(``get_result``) reads where the insert is made: in Django's transaction, which then sees its own
enqueues, or on the pool.

Django's psycopg connection is made for Django: its cursors bind parameters on the client and
it reads ``jsonb`` as text. ``plain`` gives pgstask psycopg's defaults for the duration of
pgstask's statements and puts Django's back; a Django connection belongs to one thread, so no
other code uses it meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from django.db import connections, transaction
from psycopg.conninfo import make_conninfo
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.json import JsonbLoader, JsonLoader

from pgstask.client import Client
from pgstask.contrib.django.config import BackendConfig
from pgstask.db import Conn, translate_errors
from pgstask.errors import ConfigurationError

# Keys of Django's connection parameters that are not libpq's.
_NOT_LIBPQ = frozenset(
    {"context", "cursor_factory", "prepare_threshold", "isolation_level", "server_side_binding"}
)
T = TypeVar("T")
_clients: dict[str, Client] = {}
_lock = threading.Lock()


def is_postgresql(alias: str) -> bool:
    """Whether the Django database ``alias`` is PostgreSQL (through psycopg 2 or 3)."""
    return connections[alias].vendor == "postgresql"


def dsn_of(config: BackendConfig) -> str:
    """pgstask's database: ``DSN``, or the Django database ``DATABASE`` when it is PostgreSQL."""
    if config.dsn is not None:
        return config.dsn
    if config.database not in connections.settings:
        raise ConfigurationError(
            f"TASKS[{config.alias!r}]['OPTIONS']['DATABASE'] is {config.database!r}, which is "
            "not in DATABASES"
        )
    if not is_postgresql(config.database):
        raise ConfigurationError(
            f"the Django database {config.database!r} is not PostgreSQL: set "
            f"TASKS[{config.alias!r}]['OPTIONS']['DSN'] to pgstask's database"
        )
    params = connections[config.database].get_connection_params()
    kept = {k: v for k, v in params.items() if k not in _NOT_LIBPQ and isinstance(v, str | int)}
    return make_conninfo("", **kept)


def client_for(config: BackendConfig) -> Client:
    """The ``Client`` (one pool per DSN, shared by every thread) of the backend's database."""
    dsn = dsn_of(config)
    with _lock:
        client = _clients.get(dsn)
        if client is None:
            client = _clients[dsn] = Client(dsn)
        return client


def close_clients() -> None:
    """Close the pools of every backend's client (a later enqueue opens them again): at the
    end of a process, or in a child after a fork."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def shared_connection(config: BackendConfig) -> Conn | None:
    """Django's psycopg 3 connection to pgstask's database, when an enqueue can join its
    transaction; None when it must wait for ``on_commit``."""
    if config.dsn is not None or not is_postgresql(config.database):
        return None
    wrapper = connections[config.database]
    wrapper.ensure_connection()
    raw: Any = wrapper.connection
    return raw if isinstance(raw, psycopg.Connection) else None  # psycopg2: on_commit


@contextlib.contextmanager
def plain(conn: Conn) -> Iterator[Conn]:
    """``conn`` (Django's) with psycopg's own cursors and JSON and timestamp loaders, Django's
    put back on exit."""
    adapters = conn.adapters
    saved = []
    for name, loader in (
        ("jsonb", JsonbLoader),
        ("json", JsonLoader),
        ("timestamptz", TimestamptzLoader),
    ):
        oid = adapters.types[name].oid
        saved.append((oid, adapters.get_loader(oid, Format.TEXT)))
        adapters.register_loader(oid, loader)
    factory = conn.cursor_factory
    conn.cursor_factory = psycopg.Cursor
    try:
        yield conn
    finally:
        conn.cursor_factory = factory
        for oid, previous in saved:
            if previous is not None:
                adapters.register_loader(oid, previous)


@contextlib.contextmanager
def joined(config: BackendConfig) -> Iterator[Conn | None]:
    """Django's connection to pgstask's database, ``plain``, in its current transaction; None
    when there is none to join (another database, psycopg2)."""
    conn = shared_connection(config)
    if conn is None:
        yield None
        return
    try:
        with translate_errors(), plain(conn):
            yield conn
    except Exception:
        # What Django's own error wrapper does: its next close_old_connections() (the end
        # of the request) checks the connection and closes it if it is broken, rather than
        # keeping a dead persistent connection (CONN_MAX_AGE) for every later enqueue.
        connections[config.database].errors_occurred = True
        raise


def write(
    config: BackendConfig,
    insert: Callable[[Client, Conn | None], object],
    *,
    then: Callable[[], object],
) -> None:
    """Run ``insert(client, conn)``: on Django's connection in its transaction when it can,
    else on the client's pool once ``DATABASE``'s transaction commits (at once outside one);
    then ``then()``, once Django's connection has its own cursors and loaders back."""
    client = client_for(config)
    with joined(config) as conn:
        if conn is not None:
            insert(client, conn)
    if conn is not None:
        then()
        return

    def on_commit() -> None:
        insert(client, None)
        then()

    transaction.on_commit(on_commit, using=config.database)


def read(config: BackendConfig, query: Callable[[Conn], T]) -> T:
    """``query(conn)`` on the connection an enqueue writes on: Django's, in its current
    transaction (so it sees that transaction's enqueues, as in a ``TestCase``), else one of the
    client's pool."""
    with joined(config) as conn:
        if conn is not None:
            return query(conn)
    with client_for(config).connection() as pooled:
        return query(pooled)
