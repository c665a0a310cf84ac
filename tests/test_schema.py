"""The schema as a plain SQL client sees it: tables, defaults, rejections, wake-ups, the claim plan.

Rejections are checked by SQLSTATE and message, because other systems enqueue with plain SQL and
read nothing else; the ``psql`` tests run the real client that ships with pgserver.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg.abc import Params

from pgstask.db import Conn
from pgstask.sql import query

PLAIN_INSERT = (
    "INSERT INTO s_tasks (identifier, action, meta, priority) "
    """VALUES ('product', 'import', '{"file": "a.csv"}', 'high');"""
)
SENTINEL = "sentinel"


def _rejected(
    conn: Conn, statement: LiteralString | sql.Composed, params: Params | None = None
) -> psycopg.Error:
    """The error ``statement`` raises; the surrounding transaction stays usable (savepoint)."""
    with pytest.raises(psycopg.Error) as caught, conn.transaction():
        conn.execute(statement, params)
    return caught.value


def _count(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM s_tasks").fetchone()
    assert row is not None
    return int(row["n"])


# --- objects --------------------------------------------------------------------------------


def test_migrations_create_the_tables(conn: Conn) -> None:
    rows = conn.execute(
        """
        SELECT c.relname, c.relpersistence
          FROM pg_class c
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
           AND c.relname LIKE 's\\_%'
        """
    ).fetchall()
    persistence = {r["relname"]: r["relpersistence"] for r in rows}
    assert persistence == {
        "s_tasks": "p",
        "s_workers": "p",
        "s_task_progress": "u",  # UNLOGGED: emptied by a crash, absent on standbys
        "s_task_logs": "p",
        "s_daemons": "p",
        "s_task_files": "p",  # results and uploads, readable from every host
        "s_task_file_chunks": "p",
        "s_schedules": "p",  # cron schedules
        "s_schedule_runs": "p",  # one row per fired slot
        "s_task_starts": "p",  # the window of each rate limit: survives a crash
        "s_flow_cursors": "p",  # where each worker's key rotation stopped
        "s_presets": "p",  # named task templates
        "s_task_deps": "p",  # the dependencies of workflows (revision 0010)
        "s_webhooks": "p",  # notification targets (revision 0011)
    }


def test_claim_index_is_partial_on_pending_tasks(conn: Conn) -> None:
    row = conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 's_tasks_claim_idx'"
    ).fetchone()
    assert row is not None
    assert row["indexdef"].endswith(
        "s_tasks USING btree (identifier, priority_rank, start_at, id) WHERE (status = 10)"
    )


def test_insert_trigger_is_statement_level(conn: Conn) -> None:
    rows = conn.execute(
        """
        SELECT tgname, pg_get_triggerdef(oid) AS definition
          FROM pg_trigger
         WHERE tgrelid = 's_tasks'::regclass AND NOT tgisinternal
        """
    ).fetchall()
    definitions = {r["tgname"]: r["definition"] for r in rows}
    # Besides it: the row triggers of revision 0010, each with a WHEN that leaves out every
    # update without the column they watch (no function call on the hot path).
    assert set(definitions) == {
        "s_tasks_after_insert",
        "s_tasks_after_finish",
        "s_tasks_release_ended",
        "s_tasks_depends_on_fixed",
    }
    assert "AFTER UPDATE OF status" in definitions["s_tasks_release_ended"]
    assert "FOR EACH STATEMENT" in definitions["s_tasks_release_ended"]
    assert "AFTER UPDATE OF status" in definitions["s_tasks_after_finish"]
    assert "WHEN (((new.has_children OR new.awaited)" in definitions["s_tasks_after_finish"]
    assert "BEFORE UPDATE OF depends_on" in definitions["s_tasks_depends_on_fixed"]
    definition = definitions["s_tasks_after_insert"]
    assert "AFTER INSERT" in definition
    assert "FOR EACH STATEMENT" in definition


def test_enqueue_function_exists(conn: Conn) -> None:
    row = conn.execute(
        "SELECT to_regprocedure('pgstask_enqueue(text, text, jsonb, text, timestamptz, integer,"
        " bigint, text, text, float8, boolean, bigint[], text, jsonb)') IS NOT NULL AS found,"
        " (SELECT count(*) FROM pg_proc WHERE proname = 'pgstask_enqueue') AS versions"
    ).fetchone()
    assert row == {"found": True, "versions": 1}  # the ones before revisions 0007, 0010 are gone


# --- the plain INSERT -----------------------------------------------------------------------


def test_plain_insert_uses_defaults(conn: Conn) -> None:
    conn.execute(PLAIN_INSERT)
    row = conn.execute(
        "SELECT *, start_at <= now() AS due FROM s_tasks WHERE identifier = 'product'"
    ).fetchone()
    assert row is not None
    assert row["action"] == "import"
    assert row["meta"] == {"file": "a.csv"}
    assert row["priority"] == "high"
    assert row["status"] == 10
    assert row["attempts"] == 0
    assert row["max_attempts"] == 3
    assert row["progress"] == 0
    assert row["due"] is True
    assert row["daemon_id"] is None


def test_plain_insert_sets_a_concurrency_key(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, meta, concurrency_key)"
        " VALUES ('w', 'a', '{}', 'tenant-1'), ('w', 'b', '{}', NULL)"
    )
    rows = conn.execute("SELECT action, concurrency_key FROM s_tasks ORDER BY action").fetchall()
    assert rows == [
        {"action": "a", "concurrency_key": "tenant-1"},
        {"action": "b", "concurrency_key": None},
    ]


def test_minimal_insert_defaults_meta_and_priority(conn: Conn) -> None:
    conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('product', 'export')")
    row = conn.execute("SELECT meta, priority, status FROM s_tasks").fetchone()
    assert row == {"meta": {}, "priority": "normal", "status": 10}


# --- rejections -----------------------------------------------------------------------------


def test_unknown_priority_is_rejected(conn: Conn) -> None:
    error = _rejected(
        conn, "INSERT INTO s_tasks (identifier, action, priority) VALUES ('w', 'a', 'urgent')"
    )
    assert error.sqlstate == "23514"
    assert error.diag.constraint_name == "s_tasks_priority_check"
    assert "s_tasks_priority_check" in str(error)


@pytest.mark.parametrize("meta", ["[1]", '"x"', "42", "null"])
def test_meta_that_is_not_an_object_is_rejected(conn: Conn, meta: str) -> None:
    # A Python str is sent untyped, so the server parses it as jsonb, like a SQL literal.
    error = _rejected(
        conn, "INSERT INTO s_tasks (identifier, action, meta) VALUES ('w', 'a', %s)", (meta,)
    )
    assert error.sqlstate == "23514"
    assert error.diag.constraint_name == "s_tasks_meta_object_check"
    assert "s_tasks_meta_object_check" in str(error)


def test_meta_that_is_not_json_is_rejected(conn: Conn) -> None:
    error = _rejected(
        conn, "INSERT INTO s_tasks (identifier, action, meta) VALUES ('w', 'a', '{bad')"
    )
    assert error.sqlstate == "22P02"
    assert "invalid input syntax for type json" in str(error)


@pytest.mark.parametrize("status", [30, 50, 80, 90, 100])
def test_a_new_task_must_be_pending(conn: Conn, status: int) -> None:
    error = _rejected(
        conn, "INSERT INTO s_tasks (identifier, action, status) VALUES ('w', 'a', %s)", (status,)
    )
    assert error.sqlstate == "23514"
    assert "must have status 10 (pending)" in str(error)
    assert error.diag.message_hint and "Leave status out" in error.diag.message_hint


def test_unknown_status_is_rejected(conn: Conn) -> None:
    error = _rejected(conn, "INSERT INTO s_tasks (identifier, action, status) VALUES ('w', 'a', 7)")
    assert error.sqlstate == "23514"
    assert error.diag.constraint_name == "s_tasks_status_check"


def test_one_bad_row_rejects_the_whole_statement(conn: Conn) -> None:
    before = _count(conn)
    error = _rejected(
        conn,
        "INSERT INTO s_tasks (identifier, action, status)"
        " VALUES ('w', 'a', 10), ('w', 'b', 80), ('w', 'c', 10)",
    )
    assert error.sqlstate == "23514"
    assert "must have status 10" in str(error)
    assert _count(conn) == before


@pytest.mark.parametrize(
    ("identifier", "action", "constraint"),
    [
        ("", "a", "s_tasks_identifier_check"),
        ("   ", "a", "s_tasks_identifier_check"),
        ("w", "", "s_tasks_action_check"),
        ("w", " \t\n ", "s_tasks_action_check"),
        ("\r\n", "a", "s_tasks_identifier_check"),
    ],
)
def test_blank_identifier_or_action_is_rejected(
    conn: Conn, identifier: str, action: str, constraint: str
) -> None:
    error = _rejected(
        conn, "INSERT INTO s_tasks (identifier, action) VALUES (%s, %s)", (identifier, action)
    )
    assert error.sqlstate == "23514"
    assert error.diag.constraint_name == constraint
    assert constraint in str(error)


@pytest.mark.parametrize("key", ["", " ", "\t\n", "k" * 256])
def test_a_blank_or_too_long_concurrency_key_is_rejected(conn: Conn, key: str) -> None:
    error = _rejected(
        conn,
        "INSERT INTO s_tasks (identifier, action, concurrency_key) VALUES ('w', 'a', %s)",
        (key,),
    )
    assert error.sqlstate == "23514"
    assert error.diag.constraint_name == "s_tasks_concurrency_key_check"
    assert 'violates check constraint "s_tasks_concurrency_key_check"' in str(error)
    conn.execute(  # the longest key is accepted
        "INSERT INTO s_tasks (identifier, action, concurrency_key) VALUES ('w', 'a', %s)",
        ("é" * 255,),
    )


@pytest.mark.parametrize("column", ["identifier", "action"])
def test_null_identifier_or_action_is_rejected(conn: Conn, column: str) -> None:
    values = (None, "a") if column == "identifier" else ("w", None)
    error = _rejected(conn, "INSERT INTO s_tasks (identifier, action) VALUES (%s, %s)", values)
    assert error.sqlstate == "23502"
    assert error.diag.column_name == column
    assert f'column "{column}"' in str(error)


def test_oversize_meta_is_rejected(conn: Conn) -> None:
    error = _rejected(
        conn,
        "INSERT INTO s_tasks (identifier, action, meta)"
        " VALUES ('w', 'a', jsonb_build_object('x', repeat('a', 1100000)))",
    )
    assert error.sqlstate == "23514"
    assert error.diag.constraint_name == "s_tasks_meta_size_check"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("start_at", "infinity"),
        ("start_at", "-infinity"),
        ("start_at", "0044-03-15 12:00:00+00 BC"),
        ("start_at", "10000-01-01 00:00:00+00"),
        ("start_at", "9999-12-31 00:00:00+00"),  # year 10000 in a time zone east of UTC
        ("start_at", "0001-01-01 12:00:00+00"),  # year 0 west of UTC
        ("created_at", "infinity"),
        ("updated_at", "-infinity"),
        ("started_at", "infinity"),
        ("finished_at", "infinity"),
    ],
)
def test_a_timestamp_python_cannot_read_back_is_rejected(
    conn: Conn, column: str, value: str
) -> None:
    statement = sql.SQL("INSERT INTO s_tasks (identifier, action, {}) VALUES ('w', 'a', %s)")
    error = _rejected(conn, statement.format(sql.Identifier(column)), (value,))
    assert error.sqlstate == "22008"
    assert "must lie between 0001-01-02 and 9999-12-30 UTC" in str(error)
    assert _count(conn) == 0


def test_the_last_readable_timestamps_are_accepted(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, start_at) VALUES "
        "('w', 'a', '0001-01-02 00:00:00+00'), ('w', 'a', '9999-12-30 23:59:59+00')"
    )
    assert _count(conn) == 2


def test_meta_nested_too_deeply_is_rejected(conn: Conn) -> None:
    deep = "INSERT INTO s_tasks (identifier, action, meta) VALUES ('w', 'a', jsonb_build_object("
    error = _rejected(conn, deep + "'x', (repeat('[', 10000) || repeat(']', 10000))::jsonb))")
    assert error.sqlstate == "23514"
    assert "nested at most 100 levels deep" in str(error)
    # 100 levels (the object, then 99 arrays around a number) are fine
    conn.execute(deep + "'x', (repeat('[', 99) || '1' || repeat(']', 99))::jsonb))")
    assert _count(conn) == 1


@pytest.mark.parametrize("number", ["1e309", "-1e309", "9" * 5000])
def test_a_number_beyond_a_double_is_rejected(conn: Conn, number: str) -> None:
    error = _rejected(
        conn,
        "INSERT INTO s_tasks (identifier, action, meta)"
        " VALUES ('w', 'a', jsonb_build_object('n', %s::numeric))",
        (number,),
    )
    assert error.sqlstate == "22003"
    assert "beyond a double's range" in str(error)
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, meta)"
        """ VALUES ('w', 'a', '{"n": 1.7976931348623157e308, "s": "1e999", "t": -1e300}')"""
    )
    assert _count(conn) == 1


def test_oversize_meta_that_arrives_compressed_is_rejected(conn: Conn) -> None:
    # A value copied from a table stays compressed, so its stored size is small (here ~35 kB
    # for 3 MB of JSON) and the CHECK constraint alone would let it in.
    conn.execute(
        "CREATE TEMP TABLE big (m jsonb) ON COMMIT DROP;"
        " INSERT INTO big SELECT jsonb_build_object('x', repeat('a', 3000000));"
        " INSERT INTO big SELECT jsonb_build_object('x', repeat('a', 300000))"
    )
    error = _rejected(
        conn, "INSERT INTO s_tasks (identifier, action, meta) SELECT 'w', 'a', m FROM big"
    )
    assert error.sqlstate == "23514"
    assert "at most 1 MiB" in str(error)
    # The smaller one (also compressed) is fine.
    conn.execute(
        "INSERT INTO s_tasks (identifier, action, meta)"
        " SELECT 'w', 'a', m FROM big WHERE octet_length(m::text) < 1000000"
    )
    assert _count(conn) == 1


# --- the real psql --------------------------------------------------------------------------


def _psql_binary() -> Path:
    """pgserver's psql (a system psql may not exist on a user's machine)."""
    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.origin is not None
    binary = Path(spec.origin).parent / "pginstall" / "bin" / "psql"
    assert binary.is_file(), binary
    return binary


def _psql(dsn: str, *commands: str) -> subprocess.CompletedProcess[str]:
    args = [str(_psql_binary()), "-X", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"]
    for command in commands:
        args += ["-c", command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        [*args, "-d", dsn], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_psql_plain_insert(dsn: str) -> None:
    done = _psql(dsn, PLAIN_INSERT)
    assert done.returncode == 0, done.stderr
    assert "INSERT 0 1" in done.stdout
    with psycopg.connect(dsn) as check:
        row = check.execute(
            "SELECT identifier, action, meta, priority, status, attempts, max_attempts FROM s_tasks"
        ).fetchall()
    assert row == [("product", "import", {"file": "a.csv"}, "high", 10, 0, 3)]


def test_psql_shows_the_rejection(dsn: str) -> None:
    done = _psql(
        dsn, "INSERT INTO s_tasks (identifier, action, priority) VALUES ('w', 'a', 'urgent')"
    )
    assert done.returncode == 1
    assert "ERROR:  23514:" in done.stderr
    assert 'violates check constraint "s_tasks_priority_check"' in done.stderr


def test_psql_enqueue_function(dsn: str) -> None:
    done = _psql(
        dsn,
        """SELECT pgstask_enqueue('product', 'import', '{"file": "a.csv"}', priority => 'high')""",
    )
    assert done.returncode == 0, done.stderr
    assert "(1 row)" in done.stdout


# --- wake-ups -------------------------------------------------------------------------------


@pytest.fixture
def listener(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection that LISTENs on ``pgstask_tasks``."""
    with psycopg.connect(dsn, autocommit=True) as listening:
        listening.execute("LISTEN pgstask_tasks")
        yield listening


def _received(listening: psycopg.Connection[Any], dsn: str) -> list[str]:
    """Payloads of the notifications sent before this call, in order.

    A sentinel sent now arrives after every notification committed earlier (PostgreSQL
    delivers in commit order), so no time window is needed to be sure nothing else is coming.
    """
    with psycopg.connect(dsn, autocommit=True) as sender:
        sender.execute("SELECT pg_notify('pgstask_tasks', %s)", (SENTINEL,))
    payloads: list[str] = []
    for notify in listening.notifies(timeout=10):
        if notify.payload == SENTINEL:
            return payloads
        payloads.append(notify.payload)
    pytest.fail(f"the sentinel notification did not arrive in 10 s (got {payloads})")


def test_a_bulk_insert_notifies_once(dsn: str, listener: psycopg.Connection[Any]) -> None:
    with psycopg.connect(dsn) as writer:
        writer.execute(
            "INSERT INTO s_tasks (identifier, action, meta)"
            " SELECT 'w', 'a', jsonb_build_object('n', n) FROM generate_series(1, 1000) n"
        )
    assert _received(listener, dsn) == [""]


def test_each_statement_notifies(dsn: str, listener: psycopg.Connection[Any]) -> None:
    with psycopg.connect(dsn, autocommit=True) as writer:
        writer.execute("INSERT INTO s_tasks (identifier, action) VALUES ('w', 'a')")
        writer.execute("INSERT INTO s_tasks (identifier, action) VALUES ('w', 'b')")
    assert _received(listener, dsn) == ["", ""]


def test_notify_can_be_switched_off(dsn: str, listener: psycopg.Connection[Any]) -> None:
    with psycopg.connect(dsn) as writer:
        writer.execute("SET pgstask.notify = off")
        writer.execute(
            "INSERT INTO s_tasks (identifier, action) SELECT 'w', 'a' FROM generate_series(1, 1000)"
        )
    assert _received(listener, dsn) == []
    with psycopg.connect(dsn) as check:
        assert check.execute("SELECT count(*) FROM s_tasks").fetchone() == (1000,)


def test_a_rejected_insert_does_not_notify(dsn: str, listener: psycopg.Connection[Any]) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as writer,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        writer.execute("INSERT INTO s_tasks (identifier, action, status) VALUES ('w', 'a', 50)")
    assert _received(listener, dsn) == []


def test_enqueue_function_returns_the_id_and_notifies(
    dsn: str, listener: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(dsn) as writer:
        row = writer.execute(
            "SELECT pgstask_enqueue('w', 'a', '{}'::jsonb, priority => 'high')"
        ).fetchone()
        assert row is not None
        task_id = row[0]
        task = writer.execute(
            "SELECT identifier, action, priority, status, message FROM s_tasks WHERE id = %s",
            (task_id,),
        ).fetchone()
    assert isinstance(task_id, int)
    assert task == ("w", "a", "high", 10, "Task queued")
    assert _received(listener, dsn) == [""]


def test_enqueue_function_validates_like_insert(dsn: str) -> None:
    with psycopg.connect(dsn) as writer, pytest.raises(psycopg.errors.CheckViolation) as caught:
        writer.execute("SELECT pgstask_enqueue('w', 'a', '[1]'::jsonb)")
    assert caught.value.diag.constraint_name == "s_tasks_meta_object_check"
    with psycopg.connect(dsn) as writer, pytest.raises(psycopg.errors.CheckViolation) as caught:
        writer.execute("SELECT pgstask_enqueue('w', 'a', concurrency_key => ' ')")
    assert caught.value.diag.constraint_name == "s_tasks_concurrency_key_check"


def test_enqueue_function_takes_a_concurrency_key(dsn: str) -> None:
    with psycopg.connect(dsn) as writer:
        named = writer.execute(
            "SELECT pgstask_enqueue('w', 'a', concurrency_key => 'tenant-1')"
        ).fetchone()
        positional = writer.execute(
            "SELECT pgstask_enqueue('w', 'b', '{}', 'low', NULL, 3, NULL, 'k', 'tenant-2')"
        ).fetchone()
        plain = writer.execute("SELECT pgstask_enqueue('w', 'c', dedupe_key => 'k2')").fetchone()
        assert named and positional and plain
        rows = writer.execute(
            "SELECT id, concurrency_key, dedupe_key, priority, message FROM s_tasks ORDER BY id"
        ).fetchall()
    assert rows == [
        (named[0], "tenant-1", None, "normal", "Task queued"),
        (positional[0], "tenant-2", "k", "low", "Task queued"),
        (plain[0], None, "k2", "normal", "Task queued"),
    ]


# --- the claim ------------------------------------------------------------------------------


def test_claim_uses_the_partial_index(dsn: str) -> None:
    with psycopg.connect(dsn) as db:
        db.execute("INSERT INTO s_workers (identifier) VALUES ('w'), ('other')")
        db.execute(
            "INSERT INTO s_tasks (identifier, action, priority)"
            " SELECT CASE WHEN n % 10 = 0 THEN 'other' ELSE 'w' END, 'a',"
            "        (ARRAY['low', 'normal', 'high'])[1 + n % 3]"
            "   FROM generate_series(1, 5000) n"
        )
        # Finished tasks are not in the index at all.
        db.execute("UPDATE s_tasks SET status = 80 WHERE id % 2 = 0")
        db.execute("ANALYZE s_tasks")
        db.execute("ANALYZE s_workers")
        plan = db.execute(
            "EXPLAIN " + query("task_claim"),
            {"identifiers": ["w"], "limit": 10, "daemon_id": uuid.uuid4(), "age": None},
        ).fetchall()
        db.rollback()
    text = "\n".join(line for (line,) in plan)
    assert "s_tasks_claim_idx" in text, text
