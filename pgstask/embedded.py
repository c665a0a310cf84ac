"""The embedded PostgreSQL: what pgstask uses when no ``PGSTASK_DSN`` is configured.

The ``pgserver`` package ships PostgreSQL 16 binaries in a wheel. pgstask starts a server on a
Unix socket for a local data directory (``PGSTASK_DATA_DIR``, default ``.pgstask/pgdata``), or
reuses the one already running there, and leaves it running for the next command. It also works
as root (pgserver runs the server as a dedicated system user).
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path

from pgstask.errors import DatabaseError

_log = logging.getLogger(__name__)


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


def stop(data_dir: Path) -> None:
    """Stop the embedded server of ``data_dir`` if it runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in start()
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    path = data_dir.expanduser().resolve()
    if not (path / "postmaster.pid").exists():
        return
    user = "pgserver" if _running_as_root() else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=path, user=user)


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
