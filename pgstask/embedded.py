"""The embedded PostgreSQL: what pgstask uses when no ``PGSTASK_DSN`` is configured.

The ``pgserver`` package ships PostgreSQL 16 binaries in a wheel. pgstask starts a server on a
Unix socket for a local data directory (``PGSTASK_DATA_DIR``, default ``.pgstask/pgdata``), or
reuses the one already running there, and leaves it running for the next command. It also works
as root (pgserver runs the server as a dedicated system user). ``state`` says whether it runs
without starting it; ``stop`` stops it (``pgstask db status|stop``).
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from pgstask.errors import DatabaseError

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class State:
    """What a data directory holds, read without starting anything."""

    data_dir: Path
    created: bool  # initdb ran there (PG_VERSION exists)
    running: bool
    pid: int | None = None
    started_at: dt.datetime | None = None
    uri: str | None = None  # while it runs


def state(data_dir: Path) -> State:
    """Whether the server of ``data_dir`` runs, from its ``postmaster.pid`` and process."""
    path = data_dir.expanduser().resolve()
    created = (path / "PG_VERSION").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in start()
        from pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(path)
    except (OSError, ValueError, AssertionError):  # unreadable, or half-written by a start
        info = None
    if info is None or not info.is_running():
        return State(path, created, running=False)
    return State(
        path,
        created,
        running=True,
        pid=int(info.pid),
        started_at=info.start_time.astimezone(),
        uri=str(info.get_uri()),
    )


def psql_path() -> Path:
    """The ``psql`` that pgserver ships with its server (the same major version)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in start()
        from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / "psql"


def start(data_dir: Path, *, keep_running: bool = True) -> str:
    """Start (or reuse) the server for ``data_dir``; return its libpq URI.

    With ``keep_running`` false the server stops when this process exits (tests use that).
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns on import when XDG_RUNTIME_DIR is unset (cron, containers).
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - a dependency of pgstask
        raise DatabaseError("the embedded PostgreSQL needs the pgserver package") from exc
    path = data_dir.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(path, cleanup_mode=None if keep_running else "stop")
    except (subprocess.SubprocessError, OSError, AssertionError) as exc:
        raise DatabaseError(f"could not start the embedded PostgreSQL in {path}: {exc}") from exc
    uri: str = server.get_uri()
    _log.debug("embedded PostgreSQL in %s at %s", path, uri)
    return uri


def stop(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir`` if it runs (its clients are disconnected, its
    data is kept); False if it was not running."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in start()
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    path = data_dir.expanduser().resolve()
    if not state(path).running:
        return False
    user = "pgserver" if _running_as_root() else None
    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=path, user=user, timeout=60)
    except (subprocess.SubprocessError, OSError) as exc:
        raise DatabaseError(f"could not stop the embedded PostgreSQL in {path}: {exc}") from exc
    return True


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
