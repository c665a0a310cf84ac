"""The ``pgstask`` command, end to end: real subprocesses against a fresh database per test.

Tasks run on the example worker ``demo`` (installed through pgstask's entry points): ``noop``
succeeds, ``fail`` raises, ``count`` reports progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import psycopg.conninfo
import pytest

from pgstask import embedded
from pgstask.cli._output import describe_outcomes
from pgstask.cli.db import find_psql
from pgstask.errors import ConfigurationError
from pgstask.task import Status
from tests.daemons import scalar, wait_for

if TYPE_CHECKING:
    from tests.conftest import Server

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = [
    [],
    ["migrate"],
    ["daemon"],
    ["run-once"],
    ["create"],
    ["stats"],
    ["clean"],
    ["logs"],
    ["serve"],
    ["tokens"],
    ["tokens", "create"],
    ["tasks"],
    *(["tasks", c] for c in ("list", "show", "cancel", "retry", "watch", "workflow")),
    ["workers"],
    *(
        ["workers", c]
        for c in ("list", "discover", "rescan", "clean", "activate", "deactivate", "settings")
    ),
    ["db"],
    *(["db", c] for c in ("status", "stop", "psql")),
]

Result = subprocess.CompletedProcess[str]


def base_env() -> dict[str, str]:
    """This process's environment without any ``PGSTASK_*`` setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PGSTASK_")}


@pytest.fixture
def env(dsn: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a ``pgstask`` process using the test's database."""
    return {
        **base_env(),
        "PGSTASK_DSN": dsn,
        "PGSTASK_STORAGE": str(tmp_path / "storage"),
        "PGSTASK_POLL_INTERVAL": "0.5",
        "PGSTASK_HEARTBEAT_INTERVAL": "0.2",
        "PGSTASK_STALE_AFTER": "2",
        "PGSTASK_SHUTDOWN_GRACE": "5",
    }


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgstask", *args]


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> Result:
    return subprocess.run(
        command(*args),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(env: dict[str, str], *args: str) -> str:
    """Run a command that must succeed; its stdout."""
    result = cli(env, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def create(env: dict[str, str], *args: str) -> int:
    return int(ok(env, "create", *args).strip())


def status(dsn: str, task_id: int) -> str:
    code = scalar(dsn, "SELECT status FROM s_tasks WHERE id = %s", (task_id,))
    assert isinstance(code, int), code
    return Status(code).text


def count_tasks(dsn: str, where: str = "true") -> int:
    count = scalar(dsn, f"SELECT count(*) FROM s_tasks WHERE {where}")  # noqa: S608
    assert isinstance(count, int)
    return count


@contextlib.contextmanager
def daemon(env: dict[str, str], dsn: str, log: Path) -> Iterator[subprocess.Popen[str]]:
    """``pgstask daemon`` as a child process, registered in s_daemons; killed if still running."""
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            command("daemon"), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_for(
                lambda: (
                    proc.poll() is not None or scalar(dsn, "SELECT count(*) FROM s_daemons") == 1
                )
            )
            assert proc.poll() is None, log.read_text()
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


# --- help and configuration ------------------------------------------------------------------


# Every command's --help in one child process (a process per command would cost ~25 starts).
HELP_SCRIPT = """
import contextlib, io, json, sys
from pgstask.cli import main
for args in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*args, "--help"])
            code = None
        except SystemExit as exc:
            code = exc.code
    print(json.dumps([args, code, out.getvalue()]))
"""


def test_help_of_every_command_exits_0() -> None:
    top = subprocess.run(
        command("--help"), env=base_env(), capture_output=True, text=True, check=False
    )
    assert top.returncode == 0, top.stderr
    assert "exit codes:" in top.stdout and "4  not found" in top.stdout
    result = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, json.dumps(COMMANDS)],
        env=base_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = [json.loads(line) for line in result.stdout.splitlines()]
    assert [args for args, _, _ in seen] == COMMANDS
    for args, code, text in seen:
        assert code == 0, (args, code)
        assert text.startswith("usage: pgstask"), (args, text)


def test_a_bad_environment_variable_is_a_usage_error_naming_it(env: dict[str, str]) -> None:
    result = cli({**env, "PGSTASK_POLL_INTERVAL": "abc"}, "stats")
    assert result.returncode == 2
    assert "PGSTASK_POLL_INTERVAL" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(env: dict[str, str]) -> None:
    result = cli(env, "run-once", "--concurrency", "0")
    assert result.returncode == 2
    assert "--concurrency" in result.stderr


@pytest.mark.parametrize(
    ("dsn", "why"),
    [
        ("garbage", 'is not a valid PostgreSQL connection string (missing "=" after "garbage"'),
        ("postgresql://[::1/x", "is not a valid PostgreSQL connection string"),
        ("postgresql://app:secret@db:fivefour/app", "has the port 'fivefour'"),
        ("host=a,b port=5432,x", "has the port 'x'"),
    ],
)
def test_a_malformed_dsn_is_a_usage_error_naming_its_setting(dsn: str, why: str) -> None:
    for env, args, source in (
        ({**base_env(), "PGSTASK_DSN": dsn}, ["tasks", "list"], "PGSTASK_DSN"),
        (base_env(), ["--dsn", dsn, "stats"], "--dsn"),
        ({**base_env(), "PGSTASK_DSN": "dbname=ok"}, ["stats", "--dsn", dsn], "--dsn"),
    ):
        result = cli(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"pgstask: error: {source} {why}"), result.stderr
        assert "secret" not in result.stderr  # the DSN may hold a password: not repeated
        assert len(result.stderr.splitlines()) == 1


def test_an_unreachable_database_exits_3_with_a_clear_message() -> None:
    env = {**base_env(), "PGSTASK_DSN": "postgresql://postgres@127.0.0.1:1/x"}
    for args in (["stats"], ["run-once"], ["daemon"], ["db", "status"]):
        result = cli(env, *args)
        assert result.returncode == 3, (args, result.stderr)
        last = result.stderr.splitlines()[-1]
        assert last.startswith("pgstask: error: cannot use PostgreSQL"), result.stderr
        assert "PGSTASK_DSN" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_database_without_the_schema_says_to_migrate(pg: Server, tmp_path: Path) -> None:
    name = pg.create_database("empty")
    try:
        env = {**base_env(), "PGSTASK_DSN": pg.dsn(name), "PGSTASK_STORAGE": str(tmp_path)}
        result = cli(env, "tasks", "list")
        assert result.returncode == 3
        assert "run `pgstask migrate`" in result.stderr
        assert cli(env, "migrate", "--check").returncode == 3
        assert "migrated from revision none" in ok(env, "migrate")
        assert "nothing to do" in ok(env, "migrate")
        assert ok(env, "tasks", "list").strip() == "no tasks"
    finally:
        pg.drop_database(name)


def test_the_embedded_postgresql_is_announced_when_started_and_managed_with_db(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "pgdata"
    where = str(data_dir.resolve())
    env = {**base_env(), "PGSTASK_DATA_DIR": str(data_dir), "PGSTASK_STORAGE": str(tmp_path)}
    try:
        status = ok(env, "db", "status")
        assert "not created yet" in status and where in status
        assert not data_dir.exists()  # status never starts it

        result = cli(env, "stats", timeout=120)
        assert result.returncode == 0, result.stderr
        assert "pending" in result.stdout, result.stdout
        assert result.stderr.startswith(
            f"pgstask: creating and starting the embedded PostgreSQL in {where} "
        ), result.stderr
        assert "`pgstask db stop` stops it" in result.stderr
        assert "migrating the embedded database" in result.stderr, result.stderr

        again = cli(env, "stats")  # it runs: nothing to say
        assert again.returncode == 0 and again.stderr == "", again.stderr

        running = json.loads(ok(env, "db", "status", "--json"))
        assert running["running"] is True and running["data_dir"] == where
        assert running["dsn"].startswith("postgresql://") and isinstance(running["pid"], int)
        assert f"data:     {where}" in ok(env, "db", "status")

        counted = cli(env, "db", "psql", "--", "-tAc", "SELECT count(*) FROM s_tasks")
        assert (counted.returncode, counted.stdout, counted.stderr) == (0, "0\n", "")

        assert ok(env, "db", "stop") == f"stopped the embedded PostgreSQL in {where}\n"
        assert not json.loads(ok(env, "db", "status", "--json"))["running"]
        assert "not running (the next pgstask command starts it)" in ok(env, "db", "status")
        assert ok(env, "db", "stop") == f"the embedded PostgreSQL in {where} is not running\n"

        restarted = cli(env, "tasks", "list")
        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stderr.startswith(
            f"pgstask: starting the embedded PostgreSQL in {where} "
        ), restarted.stderr
        assert "migrating" not in restarted.stderr
    finally:
        embedded.stop(data_dir)


def test_db_commands_with_a_configured_dsn(env: dict[str, str], dsn: str, tmp_path: Path) -> None:
    status = ok(env, "db", "status")
    assert "configured by PGSTASK_DSN" in status and "reachable (PostgreSQL " in status
    assert "(current)" in status
    shown = json.loads(ok(env, "db", "status", "--json"))
    assert shown["database"] == "PGSTASK_DSN" and shown["schema_current"] is True
    with_password = psycopg.conninfo.make_conninfo(dsn, password="hunter2")
    hidden = json.loads(ok({**env, "PGSTASK_DSN": with_password}, "db", "status", "--json"))
    assert "hunter2" not in hidden["dsn"] and "password=***" in hidden["dsn"]

    refused = cli(env, "db", "stop")
    assert refused.returncode == 2 and "does not manage it" in refused.stderr

    create(env, "demo", "noop")
    counted = cli(env, "db", "psql", "--", "-tAc", "SELECT count(*) FROM s_tasks")
    assert (counted.returncode, counted.stdout) == (0, "1\n"), counted.stderr

    # The psql on PATH comes first for a configured database, with the DSN and the arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "psql"
    fake.write_text('#!/bin/sh\necho "psql $*"\n')
    fake.chmod(0o755)
    path_env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    assert (
        ok(path_env, "db", "psql", "--", "-c", "TABLE s_tasks") == f"psql {dsn} -c TABLE s_tasks\n"
    )


def test_without_any_psql_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^psql is not installed: install PostgreSQL's"):
        find_psql(prefer_bundled=True, search_path=str(tmp_path), bundled=tmp_path / "psql")
    (tmp_path / "psql").write_text("#!/bin/sh\n")
    (tmp_path / "psql").chmod(0o755)
    assert find_psql(prefer_bundled=False, search_path="", bundled=tmp_path / "psql") == (
        tmp_path / "psql"
    )


# --- creating tasks and statistics -----------------------------------------------------------


def test_create_prints_the_new_task_id(env: dict[str, str], dsn: str, tmp_path: Path) -> None:
    first = create(env, "demo", "count", "--data", '{"to": 3}', "--priority", "high")
    assert scalar(dsn, "SELECT meta->>'to' || priority FROM s_tasks WHERE id = %s", (first,)) == (
        "3high"
    )
    data = tmp_path / "data.json"
    data.write_text('{"from": "file"}')
    second = json.loads(ok(env, "create", "demo", "noop", "--data-file", str(data), "--json"))
    assert second["meta"] == {"from": "file"} and second["status_text"] == "pending"
    delayed = create(env, "demo", "noop", "--delay", "3600", "--max-attempts", "1")
    assert scalar(
        dsn,
        "SELECT start_at > now() + interval '59 minutes' AND max_attempts = 1 "
        "FROM s_tasks WHERE id = %s",
        (delayed,),
    )


def test_create_sets_a_concurrency_key_that_show_and_list_give(
    env: dict[str, str], dsn: str
) -> None:
    keyed = create(env, "demo", "noop", "--concurrency-key", "tenant 1")
    other = json.loads(ok(env, "create", "demo", "noop", "--concurrency-key", "t2", "--json"))
    plain = create(env, "demo", "noop")
    assert other["concurrency_key"] == "t2"
    assert scalar(dsn, "SELECT concurrency_key FROM s_tasks WHERE id = %s", (keyed,)) == "tenant 1"
    # "concurrency key" is the longest name of the block: its value follows after one space.
    assert "\nconcurrency key: tenant 1\n" in ok(env, "tasks", "show", str(keyed))
    assert "\nconcurrency key: -\n" in ok(env, "tasks", "show", str(plain))
    listed = json.loads(ok(env, "tasks", "list", "--concurrency-key", "tenant 1", "--json"))
    assert [t["id"] for t in listed] == [keyed]
    everything = json.loads(ok(env, "tasks", "list", "--json"))
    assert {t["id"]: t["concurrency_key"] for t in everything} == {
        keyed: "tenant 1",
        other["id"]: "t2",
        plain: None,
    }


@pytest.mark.parametrize(
    "args",
    [
        ["--data", "{not json"],
        ["--data", "[1, 2]"],
        ["--priority", "urgent"],
        ["--max-attempts", "0"],
        ["--max-attempts", "1001"],  # refused by the flag, as 0 is (task_spec's rule)
        ["--start-at", "yesterday"],
        ["--concurrency-key", ""],
        ["--concurrency-key", " \t"],
        ["--concurrency-key", "k" * 256],
    ],
)
def test_create_rejects_bad_input_with_exit_2_and_creates_nothing(
    env: dict[str, str], dsn: str, args: list[str]
) -> None:
    result = cli(env, "create", "demo", "noop", *args)
    assert result.returncode == 2, result.stderr
    assert args[0] in result.stderr
    assert count_tasks(dsn) == 0


def test_create_refuses_an_action_the_installed_worker_does_not_have(
    env: dict[str, str], dsn: str
) -> None:
    result = cli(env, "create", "demo", "unknown_action")
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "pgstask: error: worker 'demo' has no action 'unknown_action' "
        "(its actions: count, fail, noop)\n"
    )
    assert count_tasks(dsn) == 0
    assert create(env, "demo", "Noop") > 0  # another spelling of an action it has
    assert create(env, "not-installed-here", "anything") > 0  # another host may have it


def test_a_worker_with_an_async_generator_action_stops_the_daemon_from_starting(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "eager_workers.py").write_text(
        "from pgstask import BaseWorker\n\n"
        "class EagerWorker(BaseWorker):\n"
        "    identifier = 'eager'\n\n"
        "    async def task_fetch(self, task, options):\n"
        "        yield 1\n"
    )
    env = {**env, "PYTHONPATH": str(tmp_path), "PGSTASK_WORKERS": "eager_workers"}
    for args in (["daemon"], ["run-once"]):
        result = cli(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        message = result.stderr.splitlines()[-1]
        assert message.startswith("pgstask: error: cannot import worker module 'eager_workers'")
        assert "worker 'eager' (eager_workers.EagerWorker): action method task_fetch" in message
        assert "is an async generator function" in message


def test_run_once_runs_async_actions_beside_sync_ones(env: dict[str, str], dsn: str) -> None:
    env = {**env, "PYTHONPATH": str(ROOT), "PGSTASK_WORKERS": "tests.async_workers"}
    fancy, plain = create(env, "mixed", "fancy"), create(env, "mixed", "plain")
    waited = create(env, "asyncs", "wait", "--data", '{"seconds": 0.05}')
    out = ok(env, "run-once", "--async-concurrency", "5")
    assert out.endswith("run-once: processed 3 tasks: 3 completed, 0 failed\n"), out
    assert [status(dsn, t) for t in (fancy, plain, waited)] == ["completed"] * 3


def test_run_once_runs_every_due_task_when_loop_slots_free_up_during_a_claim(
    env: dict[str, str], dsn: str
) -> None:
    """One loop slot and 50 async no-ops: a claim made while the slot is taken claims nothing
    (the sync lane has nothing due), and by the time it returns the no-op has ended and every
    slot is free. That is not "nothing is due": run-once ends only after a claim made with
    every slot free finds nothing."""
    env = {**env, "PYTHONPATH": str(ROOT), "PGSTASK_WORKERS": "tests.async_workers"}
    ok(env, "workers", "discover")
    # The async workers in a lane of their own, beside the built-in sync ones (a worker with
    # both kinds of action is claimed for only as far as both kinds have room).
    ok(env, "workers", "deactivate", "mixed")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO s_tasks (identifier, action) "
            "SELECT 'asyncs', 'nothing' FROM generate_series(1, 50)"
        )
    out = ok(env, "run-once", "--async-concurrency", "1")
    assert out.endswith("run-once: processed 50 tasks: 50 completed, 0 failed\n"), out
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE status = 80) FROM s_tasks").fetchone()
    assert row == (50,)


def test_stats_shows_tasks_waiting_for_an_unknown_worker(env: dict[str, str]) -> None:
    ok(env, "workers", "discover")
    create(env, "ghost", "haunt")
    create(env, "demo", "noop")
    text = ok(env, "stats")
    assert "waiting for a worker: 1 pending task" in text
    assert "ghost" in text and "no worker registered" in text
    stats = json.loads(ok(env, "stats", "--json"))
    assert stats["pending"] == 2 and stats["total"] == 2
    assert stats["waiting_for_worker"] == {"ghost": {"count": 1, "registered": False}}
    assert stats["live_daemons"] == 0 and stats["active_workers"] >= 1


# --- tasks and logs --------------------------------------------------------------------------


def test_tasks_list_show_cancel_retry_and_their_exit_codes(env: dict[str, str], dsn: str) -> None:
    done = create(env, "demo", "noop")
    assert ok(env, "run-once") == (
        f"task {done} demo.noop: completed\nrun-once: processed 1 task: 1 completed, 0 failed\n"
    )
    waiting = create(env, "demo", "noop", "--delay", "3600")

    listed = ok(env, "tasks", "list")
    assert listed.splitlines()[0].split()[:4] == ["id", "worker", "action", "status"]
    assert [t["id"] for t in json.loads(ok(env, "tasks", "list", "--json"))] == [waiting, done]
    only = json.loads(ok(env, "tasks", "list", "--status", "completed", "--json"))
    assert [t["id"] for t in only] == [done]
    assert cli(env, "tasks", "list", "--status", "sleeping").returncode == 2

    shown = ok(env, "tasks", "show", str(done))
    assert "completed (80)" in shown and "progress" in shown
    detail = json.loads(ok(env, "tasks", "show", str(done), "--json"))
    assert detail["task"]["id"] == done and detail["progress"]["progress"] == 100

    for args in (["show"], ["cancel"], ["retry"], ["watch"]):
        missing = cli(env, "tasks", *args, "999999")
        assert missing.returncode == 4, (args, missing.stderr)
        assert "task 999999 does not exist" in missing.stderr
    assert cli(env, "logs", "999999").returncode == 4

    refused = cli(env, "tasks", "cancel", str(done))
    assert refused.returncode == 5 and "already completed" in refused.stderr
    assert cli(env, "tasks", "retry", str(waiting)).returncode == 5

    assert f"task {waiting} cancelled" in ok(env, "tasks", "cancel", str(waiting))
    assert status(dsn, waiting) == "cancelled"
    assert "queued again" in ok(env, "tasks", "retry", str(waiting))
    assert status(dsn, waiting) == "pending"


def test_logs_of_a_failed_task(env: dict[str, str]) -> None:
    failing = create(env, "demo", "fail", "--max-attempts", "1")
    assert cli(env, "run-once").returncode == 1
    text = ok(env, "logs", str(failing), "--errors")
    assert "ERROR" in text and "failing on purpose" in text and "Traceback" in text
    records = json.loads(ok(env, "logs", str(failing), "--last", "1", "--json"))
    assert len(records) == 1 and records[0]["task_id"] == failing
    assert "deleted" in ok(env, "logs", str(failing), "--clear")
    assert json.loads(ok(env, "logs", str(failing), "--json")) == []


# --- workers ---------------------------------------------------------------------------------


def test_workers_discover_list_activate_deactivate_settings_clean(
    env: dict[str, str], dsn: str
) -> None:
    assert "no workers registered" in ok(env, "workers", "list")
    assert "registered: demo, report" in ok(env, "workers", "discover")
    assert "no new workers" in ok(env, "workers", "discover")
    assert {w["identifier"] for w in json.loads(ok(env, "workers", "list", "--json"))} == {
        "demo",
        "report",
    }

    assert "worker demo deactivated" in ok(env, "workers", "deactivate", "demo")
    assert scalar(dsn, "SELECT active FROM s_workers WHERE identifier = 'demo'") is False
    ok(env, "workers", "activate", "demo")
    assert scalar(dsn, "SELECT active FROM s_workers WHERE identifier = 'demo'") is True
    missing = cli(env, "workers", "activate", "nobody")
    assert missing.returncode == 4 and "nobody" in missing.stderr

    assert json.loads(ok(env, "workers", "settings", "demo")) == {"timeout": 600}
    merged = json.loads(ok(env, "workers", "settings", "demo", "--set", '{"timeout": 5}'))
    assert merged == {"timeout": 5}
    assert cli(env, "workers", "settings", "demo", "--set", "[]").returncode == 2

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO s_workers (identifier, class) VALUES ('gone', 'no_such_module:Gone')"
        )
    assert "removed orphaned workers: gone" in ok(env, "workers", "clean")
    assert "no orphaned workers" in ok(env, "workers", "clean")
    assert "up to date: demo, report" in ok(env, "workers", "rescan")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE s_workers SET title = 'old' WHERE identifier = 'demo'")
    assert "refreshed: demo" in ok(env, "workers", "rescan")
    assert scalar(dsn, "SELECT title FROM s_workers WHERE identifier = 'demo'") == "Demo"


# --- running tasks ---------------------------------------------------------------------------


def test_run_once_exit_codes(env: dict[str, str], dsn: str) -> None:
    assert ok(env, "run-once").strip() == "run-once: processed 0 tasks: 0 completed, 0 failed"
    create(env, "demo", "noop")
    create(env, "demo", "noop")
    summary = json.loads(ok(env, "run-once", "--json"))
    assert summary["processed"] == 2 and summary["completed"] == 2 and summary["ok"]

    failing = create(env, "demo", "fail", "--max-attempts", "1")
    fine = create(env, "demo", "noop")
    result = cli(env, "run-once")
    assert result.returncode == 1, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "run-once: processed 2 tasks: 1 completed, 1 failed",
        f"task {failing} demo.fail: failed for good (attempt 1 of 1): "
        "Failed: RuntimeError: failing on purpose",
        f"task {fine} demo.noop: completed",
    ]
    assert status(dsn, failing) == "failed"

    # --quiet: only the tasks that did not complete; silent when all went well.
    retried = create(env, "demo", "fail", "--max-attempts", "2")
    create(env, "demo", "noop")
    later = {"PGSTASK_RETRY_BASE_DELAY": "3600", "PGSTASK_RETRY_MAX_DELAY": "3600"}
    quiet = cli({**env, **later}, "run-once", "--quiet")
    assert quiet.returncode == 1, quiet.stderr
    assert quiet.stdout.startswith(f"task {retried} demo.fail: failed, will be retried in "), (
        quiet.stdout
    )
    assert quiet.stdout.endswith("s (attempt 1 of 2): Failed: RuntimeError: failing on purpose\n")
    assert len(quiet.stdout.splitlines()) == 1
    create(env, "demo", "noop")
    assert ok(env, "run-once", "-q") == ""


def test_outcomes_are_described_in_words() -> None:
    assert describe_outcomes(Counter()) == "0 completed, 0 failed"
    assert describe_outcomes(
        Counter(dropped=1, given_back=2, failed=1, completed=3), retried=1
    ) == (
        "3 completed, 1 failed (1 will be retried), 2 given back (pending again), "
        "1 dropped (cancelled or taken over while running)"
    )


def test_run_once_tells_given_back_and_dropped_tasks(env: dict[str, str], dsn: str) -> None:
    counting = [
        create(env, "demo", "count", "--data", '{"to": 10000, "delay": 0.01}') for _ in "ab"
    ]
    proc = subprocess.Popen(
        command("run-once", "--shutdown-grace", "0"),
        env=env,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: all(status(dsn, t) == "running" for t in counting))
        ok(env, "tasks", "cancel", str(counting[0]))
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed as soon as the action stopped
        assert first == (
            f"task {counting[0]} demo.count: dropped (cancelled or taken over while running)\n"
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 1, err
    assert out.splitlines() == [
        f"task {counting[1]} demo.count: given back (pending again)",
        "run-once: processed 2 tasks: 0 completed, 0 failed, 1 given back (pending again), "
        "1 dropped (cancelled or taken over while running)",
    ], err
    assert [status(dsn, t) for t in counting] == ["cancelled", "pending"]


def test_two_concurrent_run_once_processes_run_each_task_once(
    env: dict[str, str], dsn: str
) -> None:
    ok(env, "workers", "discover")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO s_tasks (identifier, action) "
            "SELECT 'demo', 'noop' FROM generate_series(1, 200)"
        )
    procs = [
        subprocess.Popen(
            command("run-once", "--json"),
            env=env,
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        summaries.append(json.loads(out))
    assert sum(s["completed"] for s in summaries) == 200
    assert count_tasks(dsn, "status = 80 AND attempts = 1") == 200


def test_the_report_example_writes_into_the_storage_directory(
    env: dict[str, str], dsn: str, tmp_path: Path
) -> None:
    task = create(env, "report", "export", "--data", '{"rows": 250}')
    ok(env, "run-once")
    assert status(dsn, task) == "completed"
    path = Path(str(scalar(dsn, "SELECT result ->> 'path' FROM s_tasks WHERE id = %s", (task,))))
    assert path == tmp_path / "storage" / "results" / f"report-{task}.csv"
    assert len(path.read_text().splitlines()) == 251  # header + rows
    stored = scalar(
        dsn,
        "SELECT f.size FROM s_tasks t "
        "JOIN s_task_files f ON f.id = (t.result ->> 'file_id')::bigint "
        "WHERE t.id = %s AND f.complete AND f.kind = 'result'",
        (task,),
    )
    assert stored == path.stat().st_size  # in the database too: downloadable from any host


def test_run_once_rescues_the_tasks_of_a_dead_run_and_cleans(env: dict[str, str], dsn: str) -> None:
    """With cron's run-once as the only runner, it also rescues and cleans."""
    ok(env, "workers", "discover")
    dead = "00000000-0000-0000-0000-00000000dead"  # a run-once killed mid-way
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO s_daemons (id, hostname, pid, concurrency, heartbeat_at) "
            "VALUES (%s, 'gone', 1, 1, now() - '1 hour'::interval)",
            (dead,),
        )
        row = conn.execute(
            "INSERT INTO s_tasks (identifier, action) VALUES ('demo', 'noop') RETURNING id"
        ).fetchone()
        assert row is not None
        stuck = int(row[0])
        conn.execute(
            "UPDATE s_tasks SET status = 50, attempts = 1, daemon_id = %s, "
            "started_at = now() - '1 hour'::interval WHERE id = %s",
            (dead, stuck),
        )
        row = conn.execute(
            "INSERT INTO s_tasks (identifier, action) VALUES ('demo', 'noop') RETURNING id"
        ).fetchone()
        assert row is not None
        old = int(row[0])
        conn.execute(
            "UPDATE s_tasks SET status = 80, finished_at = now() - '90 days'::interval "
            "WHERE id = %s",
            (old,),
        )
    run_env = {**env, "PGSTASK_RETRY_BASE_DELAY": "0.01", "PGSTASK_RETRY_MAX_DELAY": "0.02"}
    ok(run_env, "run-once")
    cleaned = scalar(dsn, "SELECT count(*) FROM s_tasks WHERE id = %s", (old,))
    assert cleaned == 0  # finished 90 days ago, beyond the 30-day retention
    assert count_tasks(dsn, "identifier = 'demo'") == 1
    assert scalar(dsn, "SELECT count(*) FROM s_daemons") == 0
    assert "Rescued from a dead daemon" in ok(env, "logs", str(stuck))

    def completed_after_another_run() -> bool:  # the retry waits out its backoff
        ok(run_env, "run-once")
        return status(dsn, stuck) == "completed"

    wait_for(completed_after_another_run, timeout=30)
    assert scalar(dsn, "SELECT attempts FROM s_tasks WHERE id = %s", (stuck,)) == 2


def test_daemon_runs_a_sql_inserted_task_and_stops_on_sigterm(
    env: dict[str, str], dsn: str, tmp_path: Path
) -> None:
    log = tmp_path / "daemon.log"
    with daemon(env, dsn, log) as proc:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "INSERT INTO s_tasks (identifier, action) VALUES ('demo', 'noop') RETURNING id"
            ).fetchone()
        assert row is not None
        wait_for(lambda: status(dsn, row[0]) == "completed", step=0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert scalar(dsn, "SELECT count(*) FROM s_daemons") == 0
    text = log.read_text()
    # the installed workers and the built-in delivery workers (docs/notifications.md)
    assert "starting: workers demo, pgstask.webhook, report; concurrency 10" in text
    assert "SIGTERM: stopping" in text and "Traceback" not in text


def test_watch_and_create_wait_follow_tasks_to_their_end(
    env: dict[str, str], dsn: str, tmp_path: Path
) -> None:
    with daemon(env, dsn, tmp_path / "daemon.log") as proc:
        counting = create(env, "demo", "count", "--data", '{"to": 5, "delay": 0.05}')
        watched = cli(env, "tasks", "watch", str(counting), "--interval", "0.05")
        assert watched.returncode == 0, watched.stderr
        assert "100%" in watched.stdout and "completed" in watched.stdout.splitlines()[-1]

        waited = cli(env, "create", "demo", "fail", "--max-attempts", "1", "--wait")
        assert waited.returncode == 1, waited.stderr
        assert "failed" in waited.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_clean_prints_what_it_deleted(env: dict[str, str]) -> None:
    create(env, "demo", "noop")
    ok(env, "run-once")
    assert ok(env, "clean", "--days", "1") == (
        "deleted 0 finished tasks older than 1 day and 0 log records older than 30 days\n"
    )
    deleted = json.loads(ok(env, "clean", "--days", "0", "--logs-days", "0", "--json"))
    assert deleted["tasks"] == 1
