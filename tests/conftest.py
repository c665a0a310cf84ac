"""Fixtures for pgstask's tests: one real PostgreSQL server per session, used in two tiers.

The server is found once per session, in this order:

1. ``PGSTASK_TEST_DSN``: any libpq URI or key/value string for a role that may create
   databases (CI with a service container, a developer's own server);
2. a ``testcontainers`` PostgreSQL container, when a Docker engine answers a quick ping;
3. a throwaway cluster of the ``pgserver`` package (PostgreSQL 16 binaries from PyPI, a dependency
   of pgstask) on a Unix socket in a temporary directory, tuned for speed (fsync off).

When none of them works every database test errors; it never skips. The header of the run says
which server is used and its version.

The tiers (see ``STYLE.md``):

- ``conn``: a connection to one session database, inside a transaction rolled back after the test
  (query tests);
- ``dsn`` / ``settings``: a fresh database cloned from a migrated template and dropped after the
  test (several connections, NOTIFY, SKIP LOCKED contention, daemons).

Two guards hold for every test: a thread or child process named ``pgstask…`` that outlives its
test fails it, and with ``CI`` set a skipped test fails the run.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import itertools
import multiprocessing
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgstask import migrate
from pgstask.db import Conn, connect
from pgstask.settings import Settings

_THREAD_PREFIX = "pgstask"
_THREAD_JOIN_WINDOW = 2.0


# --- the server -----------------------------------------------------------------------------


class Server:
    """The PostgreSQL server of this test session.

    Every database a test session creates is named ``pgstask_test_<token>_…``; only connections
    to those databases are ever terminated, so a shared server given by ``PGSTASK_TEST_DSN`` keeps
    its other sessions.
    """

    source = "?"
    description = "?"

    def __init__(self) -> None:
        self.prefix = f"pgstask_test_{secrets.token_hex(4)}"
        self._names = itertools.count(1)

    @property
    def admin_dsn(self) -> str:
        """A DSN for the server's maintenance database (creating and dropping databases)."""
        raise NotImplementedError

    def dsn(self, dbname: str) -> str:
        """A libpq DSN for database ``dbname`` on this server."""
        return make_conninfo(self.admin_dsn, dbname=dbname)

    def restart(self) -> None:
        """Restart the server: every connection to it is cut."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the server if this session started it."""

    def describe(self) -> str:
        """Where the server comes from and its version, for the header of the run."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            version = admin.execute("SHOW server_version").fetchone()
        return f"{self.source}, PostgreSQL {version[0] if version else '?'}"

    def new_name(self, label: str) -> str:
        """A database name no other database of this session has."""
        return f"{self.prefix}_{label}_{next(self._names)}"

    def create_database(self, label: str, *, template: str = "template0") -> str:
        """Create a database (a copy of ``template``) and return its name."""
        name = self.new_name(label)
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database of this session, cutting its connections; no error if it is gone."""
        ident = sql.Identifier(name)
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                return
            admin.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(ident))
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))

    def terminate_backends(self, application_name_prefix: str | None = None) -> int:
        """Terminate the client connections to this session's databases; return how many.

        With ``application_name_prefix`` only connections whose ``application_name`` starts with
        it. Each termination waits (up to 5 s) until the backend has exited.
        """
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            row = admin.execute(
                """
                SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))
                  FROM pg_stat_activity
                 WHERE pid <> pg_backend_pid()
                   AND backend_type = 'client backend'
                   AND starts_with(datname, %(prefix)s)
                   AND (%(app)s::text IS NULL OR starts_with(application_name, %(app)s::text))
                """,
                {"prefix": self.prefix, "app": application_name_prefix},
            ).fetchone()
        return int(row[0]) if row else 0


class ExternalServer(Server):
    """The server of ``PGSTASK_TEST_DSN``.

    This session cannot restart a server it did not start: ``restart()`` instead terminates every
    other client connection to the databases this session created (``pg_terminate_backend``),
    which is what a restart does to the code under test.
    """

    source = "PGSTASK_TEST_DSN"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        params = conninfo_to_dict(dsn)
        where = params.get("host") or "local socket"
        if params.get("port"):
            where = f"{where}:{params['port']}"
        self.source = f"PGSTASK_TEST_DSN ({where})"

    @property
    def admin_dsn(self) -> str:
        return self._dsn

    def restart(self) -> None:
        """Cannot restart an external server: terminate this session's other backends instead."""
        self.terminate_backends()


class ContainerServer(Server):
    """A PostgreSQL container started through testcontainers; removed at the end of the session."""

    image = "postgres:16-alpine"

    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                from testcontainers.community.postgres import PostgresContainer
            except ImportError:  # testcontainers before 4.10
                from testcontainers.postgres import PostgresContainer
            container = PostgresContainer(self.image, driver=None).with_command(
                "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            container.start()
        self._container: Any = container
        self.source = f"testcontainers ({self.image})"

    @property
    def admin_dsn(self) -> str:
        # Computed each time: a restarted container may publish its port elsewhere.
        url: str = self._container.get_connection_url()  # driver=None at construction
        return url

    def restart(self) -> None:
        """Restart the container and wait until PostgreSQL accepts connections again."""
        self._container.get_wrapped_container().restart(timeout=10)
        _wait_until_ready(self)

    def close(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._container.stop()


class EmbeddedServer(Server):
    """A throwaway ``pgserver`` cluster in a temporary directory, deleted at the end.

    As root, pgserver runs PostgreSQL as its own system user ``pgserver``; ``pg_ctl`` must run as
    that user too.
    """

    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR when pgserver is imported.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

        self._root = Path(tempfile.mkdtemp(prefix="pgstask-test-"))
        self.pgdata = self._root / "pgdata"
        self._user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        try:
            self._handle: Any = get_server(self.pgdata, cleanup_mode="delete")
        except BaseException:
            shutil.rmtree(self._root, ignore_errors=True)
            raise
        self._uri: str = self._handle.get_uri()
        with psycopg.connect(self._uri, autocommit=True) as admin:
            # Durability is worthless for a cluster deleted at the end of the run.
            admin.execute("ALTER SYSTEM SET fsync = off")
            admin.execute("ALTER SYSTEM SET synchronous_commit = off")
            admin.execute("ALTER SYSTEM SET full_page_writes = off")
            admin.execute("SELECT pg_reload_conf()")
        self.source = f"pgserver (throwaway cluster in {self.pgdata})"

    @property
    def admin_dsn(self) -> str:
        return self._uri

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        pg_ctl(list(args), pgdata=self.pgdata, user=self._user, timeout=60)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: the server stops (cutting every connection) and comes back
        on the same socket."""
        self._pg_ctl("-w", "-l", str(self.pgdata / "log"), "restart", "-m", "fast")
        _wait_until_ready(self)

    def close(self) -> None:
        # pgserver's own clean-up (left registered with atexit for a run that dies) knows only
        # the first postmaster, not the one a restart started: stop and delete it here instead.
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._pg_ctl("-w", "stop", "-m", "fast")
        atexit.unregister(self._handle._cleanup)
        shutil.rmtree(self._root, ignore_errors=True)


def _wait_until_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.admin_dsn, connect_timeout=2) as probe:
                probe.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling for readiness, not waiting for time to pass


def _docker_answers() -> bool:
    """Whether a Docker engine answers a ping within 2 s (no engine: False, silently)."""
    answered = False
    with warnings.catch_warnings():
        # docker-py leaves the socket of a failed ping unclosed: collect it while warnings are
        # off, or filterwarnings=error turns its ResourceWarning into a failure of a later test.
        warnings.simplefilter("ignore")
        try:
            docker = importlib.import_module("docker")
            client = docker.from_env(timeout=2)
            try:
                answered = bool(client.ping())
            finally:
                client.close()
        except Exception:
            answered = False
        gc.collect()
    return answered


def _start_server() -> Server:
    dsn = os.environ.get("PGSTASK_TEST_DSN", "").strip()
    if dsn:
        return ExternalServer(dsn)
    if _docker_answers():
        return ContainerServer()
    return EmbeddedServer()


_SERVER_KEY = pytest.StashKey[Server | BaseException]()


def _server(config: pytest.Config) -> Server:
    """The session's server, started on first use; the error of a failed start is kept."""
    found = config.stash.get(_SERVER_KEY, None)
    if found is None:
        try:
            found = _start_server()
        except Exception as exc:
            found = exc
        else:
            try:
                found.description = found.describe()  # also proves that it answers
            except Exception as exc:
                found.close()
                found = exc
        config.stash[_SERVER_KEY] = found
    if isinstance(found, BaseException):
        why = f"{type(found).__name__}: {found}".strip()
        if os.environ.get("PGSTASK_TEST_DSN", "").strip():
            raise RuntimeError(
                f"PGSTASK_TEST_DSN is set but its server cannot be used ({why})"
            ) from found
        raise RuntimeError(
            "no PostgreSQL server for the tests: no Docker engine answered and the pgserver "
            f"cluster did not start ({why}); set PGSTASK_TEST_DSN to a server you have"
        ) from found
    return found


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        return [f"postgres: {_server(config).description}"]
    except Exception as exc:
        return [f"postgres: UNAVAILABLE: {exc}"]


def pytest_unconfigure(config: pytest.Config) -> None:
    found = config.stash.get(_SERVER_KEY, None)
    if isinstance(found, Server):
        found.close()


# --- the CI guard ---------------------------------------------------------------------------


def _skip_fails_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped while CI is set ({reason}): CI must run every test"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _skip_fails_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _skip_fails_ci(report)
    return report


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg(pytestconfig: pytest.Config) -> Server:
    """The session's PostgreSQL server (``.dsn(name)``, ``.admin_dsn``, ``.restart()``,
    ``.terminate_backends()``, ``.create_database()``, ``.drop_database()``)."""
    return _server(pytestconfig)


@pytest.fixture(scope="session")
def template_db(pg: Server) -> Iterator[str]:
    """Name of a database migrated to head once per session and marked as a template."""
    name = pg.create_database("template")
    migrate.upgrade(pg.dsn(name))
    with psycopg.connect(pg.admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            )
        )
    yield name
    pg.drop_database(name)


@pytest.fixture(scope="session")
def query_dsn(pg: Server, template_db: str) -> Iterator[str]:
    """DSN of the one migrated database that the ``conn`` tier shares for the whole session."""
    name = pg.create_database("queries", template=template_db)
    yield pg.dsn(name)
    pg.drop_database(name)


@pytest.fixture
def dsn(pg: Server, template_db: str) -> Iterator[str]:
    """DSN of a fresh migrated database of this test alone, dropped after it."""
    name = pg.create_database("db", template=template_db)
    yield pg.dsn(name)
    pg.drop_database(name)


@pytest.fixture
def conn(query_dsn: str) -> Iterator[Conn]:
    """A pgstask connection (dict rows) in a transaction that is rolled back after the test."""
    connection = connect(query_dsn, name="pytest")
    try:
        # Inside this block conn.transaction() makes savepoints and conn.commit() raises, so
        # nothing a test does reaches the shared database.
        with connection.transaction(force_rollback=True):
            yield connection
    except psycopg.Error:
        pass  # only the rollback can raise here: the test broke or closed the connection
    finally:
        connection.close()


@pytest.fixture
def settings(dsn: str, tmp_path: Path) -> Settings:
    """Settings for the fresh database of ``dsn``, with intervals short enough for tests."""
    return Settings(
        dsn=dsn,
        storage=tmp_path / "storage",
        poll_interval=0.5,
        heartbeat_interval=0.2,
        stale_after=1.5,
        shutdown_grace=2.0,
        retry_base_delay=0.05,
        retry_max_delay=0.2,
    )


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    """Fail the test if a ``pgstask…`` thread or child process (a process-isolated action) it
    started is alive 2 s after it ended."""
    before = set(threading.enumerate())
    children_before = set(multiprocessing.active_children())
    yield
    deadline = time.monotonic() + _THREAD_JOIN_WINDOW
    stray: list[str] = []
    for thread in threading.enumerate():
        if thread in before or not thread.name.startswith(_THREAD_PREFIX):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            stray.append(thread.name)
    if stray:
        pytest.fail(f"threads outlived the test (stop every service it started): {stray}")
    for child in multiprocessing.active_children():
        if child in children_before or not (child.name or "").startswith(_THREAD_PREFIX):
            continue
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            stray.append(f"{child.name} (pid {child.pid})")
    if stray:
        pytest.fail(f"child processes outlived the test: {stray}")
