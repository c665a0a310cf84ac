"""``pgstask presets …`` and ``pgstask schedules add --preset`` end to end: real subprocesses
against a fresh database, and a real daemon running what they start."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.daemons import wait_for
from tests.test_cli import base_env, cli, daemon, ok, status


@pytest.fixture
def env(dsn: str, tmp_path: Path) -> dict[str, str]:
    return {
        **base_env(),
        "PGSTASK_DSN": dsn,
        "PGSTASK_STORAGE": str(tmp_path / "storage"),
        "PGSTASK_WORKERS": "tests.sample_workers",
        "PGSTASK_POLL_INTERVAL": "0.5",
        "PGSTASK_HEARTBEAT_INTERVAL": "0.2",
        "PGSTASK_STALE_AFTER": "2",
        "PGSTASK_SHUTDOWN_GRACE": "5",
    }


def _add_export(env: dict[str, str]) -> str:
    return ok(
        env,
        *("presets", "add", "nightly-export", "sample", "noop"),
        *("--data", '{"format": "csv", "filters": {"year": 2026}, "rows": 10}'),
        *("--priority", "high", "--max-attempts", "5", "--description", "The nightly CSV"),
    )


def test_add_list_show_start_remove(env: dict[str, str]) -> None:
    assert _add_export(env) == "preset nightly-export added\n"
    [row] = json.loads(ok(env, "presets", "list", "--json"))
    assert (row["name"], row["identifier"], row["action"], row["priority"]) == (
        "nightly-export",
        "sample",
        "noop",
        "high",
    )
    assert (row["data"], row["max_attempts"], row["description"], row["schedules"]) == (
        {"format": "csv", "filters": {"year": 2026}, "rows": 10},
        5,
        "The nightly CSV",
        [],
    )
    listed = ok(env, "presets", "list")
    assert "nightly-export" in listed and '"format": "csv"' in listed
    shown = ok(env, "presets", "show", "nightly-export")
    assert "The nightly CSV" in shown and "max attempts" in shown
    assert json.loads(ok(env, "presets", "show", "nightly-export", "--json"))["name"] == (
        "nightly-export"
    )

    task_id = int(ok(env, "presets", "start", "nightly-export", "--data", '{"format": "xlsx"}'))
    task = json.loads(ok(env, "tasks", "show", str(task_id), "--json"))["task"]
    assert task["meta"] == {"format": "xlsx", "filters": {"year": 2026}, "rows": 10}
    assert (task["priority"], task["max_attempts"]) == ("high", 5)
    started = json.loads(
        ok(
            env,
            *("presets", "start", "nightly-export", "--priority", "low", "--max-attempts", "1"),
            *("--delay", "3600", "--json"),
        )
    )
    assert (started["priority"], started["max_attempts"], started["meta"]["format"]) == (
        "low",
        1,
        "csv",
    )
    assert started["start_at"] > task["start_at"]

    assert _add_export(env) == "preset nightly-export replaced\n"
    assert ok(env, "presets", "remove", "nightly-export") == "preset nightly-export removed\n"
    assert json.loads(ok(env, "presets", "list", "--json")) == []
    assert "no presets" in ok(env, "presets", "list")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "p", "sample", "fly"), "preset 'p': worker 'sample' has no action 'fly'"),
        (("add", " p", "sample", "noop"), "without blanks around it"),
        (("add", "p", "sample", "noop", "--data", "[1]"), "must be a JSON object"),
        (("add", "p", "sample", "noop", "--data", "{bad"), "not valid JSON"),
        (("add", "p", "sample", "noop", "--priority", "urgent"), "invalid choice: 'urgent'"),
        (("add", "p", "sample", "noop", "--max-attempts", "0"), "--max-attempts"),
        (("add", "p", "sample", "noop", "--description", "d" * 1001), "longer than 1000"),
        (("start", "p", "--data", '"x"'), "must be a JSON object"),
        (("start", "p", "--max-attempts", "1001"), "--max-attempts"),
        (("start", "p", "--start-at", "soon"), "not an ISO 8601 time"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = cli(env, "presets", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert json.loads(ok(env, "presets", "list", "--json")) == []


@pytest.mark.parametrize("command", ["show", "remove", "start"])
def test_an_unknown_preset_exits_4(env: dict[str, str], command: str) -> None:
    result = cli(env, "presets", command, "nope")
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "no preset is named 'nope'" in result.stderr


def test_a_schedule_that_starts_a_preset(env: dict[str, str]) -> None:
    _add_export(env)
    out = ok(
        env,
        *("schedules", "add", "nightly", "--preset", "nightly-export", "0 3 * * *"),
        *("--data", '{"rows": 1}', "--timezone", "Europe/Kyiv"),
    )
    assert "schedule nightly added (active)" in out
    [row] = json.loads(ok(env, "schedules", "list", "--json"))
    assert (row["preset"], row["identifier"], row["action"], row["data"]) == (
        "nightly-export",
        None,
        None,
        {"rows": 1},
    )
    assert (row["priority"], row["max_attempts"]) == (None, None)
    assert "noop (preset nightly-export)" in ok(env, "schedules", "list")
    task = json.loads(ok(env, "schedules", "run", "nightly", "--json"))
    assert task["meta"] == {"format": "csv", "filters": {"year": 2026}, "rows": 1}
    assert task["priority"] == "high"

    removed = cli(env, "presets", "remove", "nightly-export")
    assert removed.returncode == 0, removed.stderr
    assert "schedule(s) nightly start preset nightly-export" in removed.stderr
    gone = cli(env, "schedules", "run", "nightly")
    assert gone.returncode == 4, gone.stderr
    assert "starts preset 'nightly-export', which does not exist" in gone.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("n", "--preset", "nope", "@daily"), "no preset is named 'nope'"),
        (("n", "sample", "noop", "@daily", "--preset", "p"), "with --preset, give NAME and CRON"),
        (("n", "sample", "@daily"), "give NAME IDENT ACTION CRON, or NAME --preset PRESET CRON"),
        (("n", "--preset", " p", "@daily"), "a preset's name is non-empty text"),
    ],
)
def test_a_bad_schedule_of_a_preset_exits_2(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = cli(env, "schedules", "add", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert json.loads(ok(env, "schedules", "list", "--json")) == []


def test_a_daemon_runs_the_tasks_started_from_the_cli_and_from_sql(
    env: dict[str, str], dsn: str, tmp_path: Path
) -> None:
    _add_export(env)
    with daemon(env, dsn, tmp_path / "daemon.log"):
        from_cli = int(ok(env, "presets", "start", "nightly-export"))
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pgstask_enqueue_preset('nightly-export', '{\"rows\": 2}')"
            ).fetchone()
        assert row is not None
        for task_id in (from_cli, row[0]):
            wait_for(lambda task_id=task_id: status(dsn, task_id) == "completed", timeout=30)


def test_help_of_every_presets_command_exits_0() -> None:
    for args in ([], ["list"], ["show"], ["add"], ["remove"], ["start"]):
        result = cli(base_env(), "presets", *args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith("usage: pgstask presets"), args
    usage = cli(base_env(), "schedules", "add", "--help").stdout
    assert "NAME --preset PRESET CRON" in usage
