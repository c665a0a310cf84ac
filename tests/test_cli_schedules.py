"""``pgstask schedules …`` end to end: real subprocesses against a fresh database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgstask.task import Status
from tests.test_cli import base_env, cli, ok


@pytest.fixture
def env(dsn: str, tmp_path: Path) -> dict[str, str]:
    return {
        **base_env(),
        "PGSTASK_DSN": dsn,
        "PGSTASK_STORAGE": str(tmp_path / "storage"),
        "PGSTASK_WORKERS": "tests.sample_workers",
    }


def test_add_list_pause_resume_run_remove(env: dict[str, str]) -> None:
    out = ok(
        env,
        *("schedules", "add", "nightly", "sample", "noop", "0 3 * * *"),
        *("--timezone", "Europe/Kyiv", "--data", '{"n": 1}', "--priority", "high"),
    )
    assert "schedule nightly added (active)" in out
    listed = json.loads(ok(env, "schedules", "list", "--json"))
    [row] = listed
    assert (row["name"], row["cron"], row["timezone"], row["data"]) == (
        "nightly",
        "0 3 * * *",
        "Europe/Kyiv",
        {"n": 1},
    )
    assert (row["priority"], row["origin"], row["active"]) == ("high", "api", True)
    table = ok(env, "schedules", "list")
    assert "nightly" in table and "Europe/Kyiv" in table and "active" in table

    assert "paused" in ok(env, "schedules", "pause", "nightly")
    assert json.loads(ok(env, "schedules", "list", "--json"))[0]["active"] is False
    assert "resumed" in ok(env, "schedules", "resume", "nightly")
    assert json.loads(ok(env, "schedules", "list", "--json"))[0]["active"] is True

    task = json.loads(ok(env, "schedules", "run", "nightly", "--json"))
    assert (task["identifier"], task["action"], task["meta"], task["priority"]) == (
        "sample",
        "noop",
        {"n": 1},
        "high",
    )
    assert task["status"] in (Status.PENDING, "pending")

    assert "removed" in ok(env, "schedules", "remove", "nightly")
    assert json.loads(ok(env, "schedules", "list", "--json")) == []
    assert "no schedules" in ok(env, "schedules", "list")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0 25 * * *",), "bad hour"),
        (("0 3 * * *", "--timezone", "Mars/Base"), "unknown time zone 'Mars/Base'"),
        (("0 3 * * * * *",), "has 7 fields"),
        (("@reboot",), "unknown cron alias"),
        (("0 3 * * *", "--max-attempts", "0"), "max_attempts"),
    ],
)
def test_a_bad_schedule_exits_2_with_the_reason(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = cli(env, "schedules", "add", "bad", "sample", "noop", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert json.loads(ok(env, "schedules", "list", "--json")) == []


def test_an_unknown_action_of_an_installed_worker_exits_2(env: dict[str, str]) -> None:
    result = cli(env, "schedules", "add", "bad", "sample", "nope", "@daily")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "has no action 'nope'" in result.stderr


@pytest.mark.parametrize("command", ["pause", "resume", "remove", "run"])
def test_an_unknown_schedule_exits_4(env: dict[str, str], command: str) -> None:
    result = cli(env, "schedules", command, "nope")
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "nope" in result.stderr
