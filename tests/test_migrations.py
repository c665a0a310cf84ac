"""Migrations: up, down and up again; idempotence; concurrent runs; and the wheel carrying them."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgstask import migrate

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def blank_dsn(pg: Any) -> Iterator[str]:
    """DSN of an empty database (never migrated), dropped after the test."""
    name = pg.create_database("blank")
    yield pg.dsn(name)
    pg.drop_database(name)


def _objects(dsn: str) -> set[str]:
    """Every relation, function, trigger and type in the database's own schemas, except
    alembic's version table."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """
            SELECT 'relation ' || c.relname
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND c.relname NOT IN ('alembic_version', 'alembic_version_pkc')
            UNION ALL
            SELECT 'function ' || p.proname
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            UNION ALL
            SELECT 'trigger ' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal
            UNION ALL
            SELECT 'type ' || t.typname
              FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND t.typrelid = 0 AND t.typelem = 0
            """
        ).fetchall()
    return {name for (name,) in rows}


EXPECTED = {
    "relation s_tasks",
    "relation s_workers",
    "relation s_task_progress",
    "relation s_task_logs",
    "relation s_daemons",
    "relation s_tasks_claim_idx",
    "function pgstask_enqueue",
    "function s_tasks_after_insert",
    "function s_workers_after_change",
    "trigger s_tasks_after_insert",
    "trigger s_workers_after_change",
}


def test_upgrade_downgrade_upgrade(blank_dsn: str) -> None:
    assert migrate.current_revision(blank_dsn) is None
    assert _objects(blank_dsn) == set()

    migrate.upgrade(blank_dsn)
    created = _objects(blank_dsn)
    assert created >= EXPECTED
    assert migrate.current_revision(blank_dsn) == migrate.head_revision()

    migrate.downgrade(blank_dsn, "base")
    assert _objects(blank_dsn) == set()
    assert migrate.current_revision(blank_dsn) is None

    migrate.upgrade(blank_dsn)
    assert _objects(blank_dsn) == created
    assert migrate.current_revision(blank_dsn) == migrate.head_revision()


def test_worker_actions_revision_keeps_existing_rows(blank_dsn: str) -> None:
    migrate.upgrade(blank_dsn, "0001")
    with psycopg.connect(blank_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO s_workers (identifier, class) VALUES ('old', 'm:C')")
    migrate.upgrade(blank_dsn)
    with psycopg.connect(blank_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT actions FROM s_workers WHERE identifier = 'old'").fetchone()
    assert row == ([],)  # unknown until a daemon of this version registers the worker again
    migrate.downgrade(blank_dsn, "0001")
    assert migrate.current_revision(blank_dsn) == "0001"
    with psycopg.connect(blank_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM s_workers").fetchone() == (1,)


def _enqueue_grants(dsn: str) -> tuple[list[int], set[tuple[str, bool]]]:
    """The number of arguments of each ``pgstask_enqueue`` function, and who besides its owner
    may execute it (``PUBLIC``: everyone), with whether they may grant it on."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """
            SELECT p.pronargs,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
                   a.is_grantable
              FROM pg_proc p
              LEFT JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                ON a.grantee <> p.proowner
             WHERE p.proname = 'pgstask_enqueue'
            """
        ).fetchall()
    return sorted({r[0] for r in rows}), {(r[1], r[2]) for r in rows if r[1]}


def test_pgstask_enqueue_keeps_its_privileges_through_0007_and_0010(blank_dsn: str) -> None:
    """Revisions 0007 and 0010 replace pgstask_enqueue (added arguments): a role allowed to
    enqueue keeps it, and EXECUTE revoked from PUBLIC stays revoked, up and down."""
    role = f"pgstask_enqueuer_{secrets.token_hex(4)}"
    ident = sql.Identifier(role)
    migrate.upgrade(blank_dsn, "0006")
    assert _enqueue_grants(blank_dsn) == ([8], {("PUBLIC", False)})  # the defaults
    with psycopg.connect(blank_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {}").format(ident))
        admin.execute("REVOKE EXECUTE ON FUNCTION pgstask_enqueue FROM PUBLIC")
        admin.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION pgstask_enqueue TO {} WITH GRANT OPTION").format(
                ident
            )
        )
    try:
        granted = {(role, True)}
        assert _enqueue_grants(blank_dsn) == ([8], granted)
        migrate.upgrade(blank_dsn, "0009")
        assert _enqueue_grants(blank_dsn) == ([11], granted)
        migrate.upgrade(blank_dsn)  # revision 0010 replaces it again
        assert _enqueue_grants(blank_dsn) == ([14], granted)
        migrate.downgrade(blank_dsn, "0009")
        assert _enqueue_grants(blank_dsn) == ([11], granted)
        migrate.downgrade(blank_dsn, "0006")
        assert _enqueue_grants(blank_dsn) == ([8], granted)
    finally:
        with psycopg.connect(blank_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            admin.execute(sql.SQL("DROP ROLE {}").format(ident))


def test_presets_revision_keeps_plain_schedules_and_drops_those_of_presets(
    blank_dsn: str,
) -> None:
    migrate.upgrade(blank_dsn)
    with psycopg.connect(blank_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO s_presets (name, identifier, action) VALUES ('digest', 'mail', 'send')"
        )
        conn.execute(
            "INSERT INTO s_schedules (name, identifier, action, cron)"
            " VALUES ('plain', 'mail', 'send', '@daily')"
        )
        conn.execute(
            "INSERT INTO s_schedules (name, preset, cron) VALUES ('p', 'digest', '@daily')"
        )
    from alembic.script import ScriptDirectory

    before = ScriptDirectory(str(migrate.script_location())).get_revision("0009").down_revision
    assert isinstance(before, str)
    migrate.downgrade(blank_dsn, before)  # the revision before 0009, whichever it is
    with psycopg.connect(blank_dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT name, priority, max_attempts FROM s_schedules").fetchall()
        assert rows == [("plain", "normal", 3)]  # NULL was "the default": written out
        assert conn.execute("SELECT to_regclass('s_presets')").fetchone() == (None,)
    migrate.upgrade(blank_dsn)
    assert migrate.current_revision(blank_dsn) == migrate.head_revision()


def test_upgrade_is_idempotent(blank_dsn: str) -> None:
    migrate.upgrade(blank_dsn)
    created = _objects(blank_dsn)
    migrate.upgrade(blank_dsn)
    assert _objects(blank_dsn) == created
    assert migrate.current_revision(blank_dsn) == migrate.head_revision()


def test_concurrent_upgrades_serialise(blank_dsn: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(blank_dsn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, name=f"migrate-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert migrate.current_revision(blank_dsn) == migrate.head_revision()
    assert _objects(blank_dsn) >= EXPECTED


def test_head_is_the_revision_of_a_migrated_database(dsn: str) -> None:
    assert migrate.current_revision(dsn) == migrate.head_revision()


def test_head_read_from_the_files_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrate.script_location()))
    assert migrate.head_revision() == script.get_current_head()


def test_head_is_read_from_files_written_by_alembics_template(tmp_path: Path) -> None:
    """A revision made with ``alembic revision`` (single quotes, from the project's template)
    and a merge revision (a tuple) are read like the hand-written ones."""
    from alembic import command

    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.script_location(), scripts)
    versions = scripts / "versions"
    config = migrate._config("")
    config.set_main_option("script_location", str(scripts))
    head = migrate.head_revision()
    command.revision(config, "next", rev_id="9001", head=head)
    assert migrate.head_of(versions) == "9001"
    command.revision(config, "branch", rev_id="9002", head=head, splice=True)
    command.merge(config, ["9001", "9002"], message="merge", rev_id="9003")
    assert migrate.head_of(versions) == "9003"


def test_a_daemon_does_not_import_alembic_or_the_http_stack() -> None:
    """What ``pgstask daemon`` imports: every megabyte here is resident in every daemon."""
    probe = (
        "import sys, pgstask.cli, pgstask.runtime.daemon;"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"alembic", "sqlalchemy", "starlette", "uvicorn", "prometheus_client"}.isdisjoint(out)


def test_script_location_finds_the_checkout() -> None:
    location = migrate.script_location()
    assert (location / "env.py").is_file()
    assert (location / "versions" / "0001_initial.up.sql").is_file()
    if not (Path(migrate.__file__).parent / "_migrations").is_dir():
        assert location == REPO / "migrations"


def test_every_revision_has_both_sql_files() -> None:
    versions = migrate.script_location() / "versions"
    revisions = sorted(versions.glob("*.py"))
    assert revisions
    for revision in revisions:
        assert revision.with_suffix(".up.sql").is_file(), revision
        assert revision.with_suffix(".down.sql").is_file(), revision


# --- the wheel ------------------------------------------------------------------------------


def _build_wheel(out: Path) -> Path:
    """Build pgstask's wheel offline: the installed hatchling (the dev extra has it), no build
    isolation, no index, no dependencies, so nothing is downloaded."""
    assert importlib.util.find_spec("hatchling") is not None, "pip install -e .[dev] (hatchling)"
    command = [
        *(sys.executable, "-m", "pip", "wheel", "-q", "-w", str(out)),
        *("--no-deps", "--no-build-isolation", "--no-index"),
    ]
    done = subprocess.run(
        [*command, str(REPO)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"building the wheel failed:\n{done.stdout}\n{done.stderr}"
    (wheel,) = out.glob("pgstask-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_carries_and_runs_the_migrations(tmp_path: Path, blank_dsn: str) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in (
            "pgstask/_migrations/env.py",
            "pgstask/_migrations/versions/0001_initial.py",
            "pgstask/_migrations/versions/0001_initial.up.sql",
            "pgstask/_migrations/versions/0001_initial.down.sql",
            *(f"pgstask/sql/{p.name}" for p in (REPO / "pgstask" / "sql").glob("*.sql")),
        ):
            assert name in names, name
        assert "pgstask/sql/tasks.sql" in names
        archive.extractall(tmp_path / "site")

    # The unpacked wheel, first on the path, migrates a database with its own copy.
    script = (
        "import sys, pgstask.migrate as m\n"
        "print(m.__file__, m.script_location(), sep='\\n')\n"
        "m.upgrade(sys.argv[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, blank_dsn],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    assert done.returncode == 0, done.stderr
    module, location = done.stdout.splitlines()[:2]
    assert Path(module).is_relative_to(tmp_path / "site")
    assert Path(location) == tmp_path / "site" / "pgstask" / "_migrations"
    assert migrate.current_revision(blank_dsn) == migrate.head_revision()
