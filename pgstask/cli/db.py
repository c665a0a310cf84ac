"""``pgstask db status|stop|psql``: the database pgstask uses, embedded or configured.

``status`` never starts the embedded server: it says whether it runs, where its data lives and
its DSN. With ``PGSTASK_DSN`` (or ``--dsn``) it connects and reports the server and the schema
revision instead; a server it cannot reach is exit 3. ``stop`` stops the embedded server cleanly
(``pg_ctl stop -m fast``: open connections are closed, nothing written is lost); a configured
server is not pgstask's to stop (exit 2). ``psql`` replaces this process with ``psql`` connected
to the database pgstask uses (the embedded one is started and migrated first); arguments after
``--`` go to psql.

Which ``psql``: for the embedded server the one pgserver ships with it (the same major version),
else the first on ``PATH``; for a configured database the first on ``PATH``, else pgserver's.
Neither: a usage error that says how to install one (exit 2).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgstask import embedded
from pgstask.cli._app import EXIT_OK, Context
from pgstask.cli._options import Subparsers, add_common, add_json
from pgstask.cli._output import fields, print_json, when
from pgstask.db import translate_errors
from pgstask.errors import ConfigurationError


def register(commands: Subparsers) -> None:
    """Add the ``db`` command and its ``status``, ``stop`` and ``psql`` to ``commands``."""
    p = commands.add_parser(
        "db",
        help="status, stop or psql: the database pgstask uses",
        description="The database pgstask uses: the embedded PostgreSQL (no PGSTASK_DSN) or "
        "the one PGSTASK_DSN names.",
    )
    sub = p.add_subparsers(dest="db_command", metavar="COMMAND", required=True)

    status = sub.add_parser(
        "status",
        help="which database, where, whether it runs (never starts it)",
        description="Embedded: running or not, its data directory and DSN (it is not started). "
        "PGSTASK_DSN: the DSN (password hidden), the server's version and the schema revision; "
        "exit 3 if it cannot be reached.",
    )
    add_common(status, top=False)
    add_json(status)
    status.set_defaults(handler=cmd_status)

    stop = sub.add_parser(
        "stop",
        help="stop the embedded PostgreSQL",
        description="Stop the embedded PostgreSQL cleanly (its clients are disconnected, its data "
        "is kept; the next pgstask command starts it again). Stop daemons and `serve` first. "
        "Exit 2 with PGSTASK_DSN set: pgstask does not manage that server.",
    )
    add_common(stop, top=False)
    stop.set_defaults(handler=cmd_stop)

    psql = sub.add_parser(
        "psql",
        help="run psql on the database pgstask uses",
        description="Run psql connected to the embedded PostgreSQL (started and migrated first) "
        "or to PGSTASK_DSN. Arguments after -- go to psql: pgstask db psql -- -c 'TABLE s_tasks'.",
    )
    add_common(psql, top=False)
    psql.add_argument("psql_args", nargs="*", metavar="-- PSQL_ARG", help="passed to psql")
    psql.set_defaults(handler=cmd_psql)


def cmd_status(ctx: Context) -> int:
    """``pgstask db status``: which database pgstask uses, and whether it runs or answers
    (the embedded one is never started)."""
    if ctx.embedded:
        found = embedded.state(ctx.settings.data_dir)
        info: dict[str, Any] = {
            "database": "embedded",
            "data_dir": str(found.data_dir),
            "created": found.created,
            "running": found.running,
            "pid": found.pid,
            "started_at": found.started_at,
            "dsn": found.uri,
        }
        if ctx.args.json:
            print_json(info, ctx.out)
            return EXIT_OK
        if found.running:
            running = f"running (pid {found.pid}, since {when(found.started_at)})"
        elif found.created:
            running = "not running (the next pgstask command starts it)"
        else:
            running = "not created yet (the next pgstask command creates and starts it)"
        fields(
            [
                ("database", "embedded PostgreSQL (PGSTASK_DSN is not set)"),
                ("status", running),
                ("data", found.data_dir),
                ("dsn", found.uri),
            ],
            ctx.out,
        )
        return EXIT_OK
    from pgstask import migrate  # alembic: only for this command

    dsn = ctx.dsn()
    with translate_errors(), ctx.client().connection() as conn:
        number = conn.info.server_version  # e.g. 160002
        revision, head = migrate.current_revision(dsn), migrate.head_revision()
    server = f"{number // 10000}.{number % 10000}"
    schema = f"revision {revision or 'none'}" + (
        " (current)" if revision == head else f" (this pgstask needs {head}: run `pgstask migrate`)"
    )
    if ctx.args.json:
        print_json(
            {
                "database": ctx.dsn_source,
                "dsn": hide_password(dsn),
                "running": True,
                "server_version": server,
                "schema_revision": revision,
                "schema_current": revision == head,
            },
            ctx.out,
        )
        return EXIT_OK
    fields(
        [
            ("database", f"configured by {ctx.dsn_source}"),
            ("status", f"reachable (PostgreSQL {server})"),
            ("schema", schema),
            ("dsn", hide_password(dsn)),
        ],
        ctx.out,
    )
    return EXIT_OK


def cmd_stop(ctx: Context) -> int:
    """``pgstask db stop``: stop the embedded PostgreSQL (a configured server is not
    pgstask's to stop)."""
    if not ctx.embedded:
        raise ConfigurationError(
            f"{ctx.dsn_source} is set: pgstask uses that server and does not manage it; "
            "`pgstask db stop` stops the embedded PostgreSQL (PGSTASK_DSN unset)"
        )
    path = ctx.settings.data_dir.expanduser().resolve()
    if embedded.stop(path):
        ctx.out.write(f"stopped the embedded PostgreSQL in {path}\n")
    else:
        ctx.out.write(f"the embedded PostgreSQL in {path} is not running\n")
    return EXIT_OK


def cmd_psql(ctx: Context) -> int:
    """``pgstask db psql``: replace this process with ``psql`` on the database pgstask uses."""
    dsn = ctx.ready_dsn()
    psql = find_psql(prefer_bundled=ctx.embedded)
    args: list[str] = list(ctx.args.psql_args)
    ctx.out.flush()
    ctx.err.flush()
    ctx.close()
    os.execv(psql, [str(psql), dsn, *args])


def find_psql(
    *,
    prefer_bundled: bool,
    search_path: str | None = None,
    bundled: Path | None = None,
) -> Path:
    """The ``psql`` to run (see the module docstring); ``ConfigurationError`` if none is found.
    ``search_path`` defaults to ``PATH``, ``bundled`` to pgserver's copy."""
    shipped = bundled if bundled is not None else embedded.psql_path()
    on_path = shutil.which("psql", path=search_path)
    candidates = [shipped, on_path] if prefer_bundled else [on_path, shipped]
    for candidate in candidates:
        if candidate is not None and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return Path(candidate)
    raise ConfigurationError(
        "psql is not installed: install PostgreSQL's client (Debian/Ubuntu: apt-get install "
        "postgresql-client; Fedora: dnf install postgresql; macOS: brew install libpq) or put "
        "psql on PATH"
    )


def hide_password(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***`` (as key=value pairs if it had one)."""
    if not conninfo_to_dict(dsn).get("password"):
        return dsn
    return make_conninfo(dsn, password="***")
