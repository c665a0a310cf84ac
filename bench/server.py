"""The PostgreSQL server of a benchmark run, and the databases the run creates on it.

Each system gets a database of its own, dropped (``WITH (FORCE)``) and created again whenever a
scenario wants a clean start; the run never touches any other database.
"""

from __future__ import annotations

from typing import Any, LiteralString
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PREFIX = "pgstask_bench"


class Server:
    """A server DSN (any database on it) and the run's databases ``pgstask_bench[_<name>]``."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        on_ours = str(conninfo_to_dict(dsn).get("dbname") or "").startswith(PREFIX)
        self.admin_dsn = make_conninfo(dsn, dbname="postgres") if on_ours else dsn
        self.created: set[str] = set()

    def database(self, name: str = "") -> str:
        """Drop and create the database of ``name`` (pgstask's when empty); return its DSN."""
        dbname = f"{PREFIX}_{name}" if name else PREFIX
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            ident = sql.Identifier(dbname)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        self.created.add(dbname)
        return make_conninfo(self.dsn, dbname=dbname)

    def drop_peer_databases(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for dbname in sorted(self.created - {PREFIX}):
                ident = sql.Identifier(dbname)
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))

    def version(self) -> str:
        with psycopg.connect(self.admin_dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def described(self) -> str:
        info: dict[str, Any] = conninfo_to_dict(self.dsn)
        return " ".join(f"{k}={'***' if k == 'password' else v}" for k, v in info.items())


def as_url(dsn: str) -> str:
    """``dsn`` as a postgresql:// URL (asyncpg, PgQueuer's driver, takes no key=value form)."""
    info = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    user, password = info.pop("user", ""), info.pop("password", "")
    host, port, dbname = info.pop("host", ""), info.pop("port", ""), info.pop("dbname", "")
    netloc = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc += "@" if netloc else ""
    if host and not host.startswith("/"):
        netloc += host + (f":{port}" if port else "")
    else:
        info.update({k: v for k, v in (("host", host), ("port", port)) if v})
    query = "?" + urlencode(info) if info else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{query}"


class Watch:
    """One autocommit connection for polling (a new connection per poll would cost the server a
    backend start each time, on the machine being measured)."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def row(self, query: sql.Composable | str) -> tuple[Any, ...]:
        got = self.conn.execute(query).fetchone()  # type: ignore[arg-type]
        return tuple(got) if got else ()

    def value(self, query: sql.Composable | str) -> Any:
        got = self.row(query)
        return got[0] if got else None

    def count_at(self, query: LiteralString) -> tuple[int, float]:
        """The value of a count query, and the database clock when it ran (epoch seconds)."""
        timed = sql.SQL("SELECT ({}), extract(epoch FROM clock_timestamp())::float8").format(
            sql.SQL(query)
        )
        got = self.row(timed)
        return int(got[0]), float(got[1])

    def sample(self, query: LiteralString, running: LiteralString) -> tuple[int, float, int, int]:
        """``count_at`` and, in the same statement (one snapshot), the two integers of
        ``running``: tasks running now, and the most of them of one key."""
        timed = sql.SQL(
            "SELECT ({}), extract(epoch FROM clock_timestamp())::float8, r.* FROM ({}) AS r"
        ).format(sql.SQL(query), sql.SQL(running))
        got = self.row(timed)
        return int(got[0]), float(got[1]), int(got[2] or 0), int(got[3] or 0)


def vacuum(dsn: str) -> None:
    """The same starting state for every drain: fresh statistics, visibility map set."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
