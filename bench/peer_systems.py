"""procrastinate and PgQueuer as systems of the benchmark, in an environment of their own.

They are not dependencies of pgstask: ``PeerEnv`` makes a virtual environment under
``${XDG_CACHE_HOME:-~/.cache}/pgstask-bench/peers-<hash of the pins>`` and pip-installs the pinned
versions there once (reused while the pins and the Python version are the same). The harness
never imports them: it runs bench/peers/<peer>_bench.py with that environment's python, which
answers in JSON on stdout, and reads the peers' own tables with plain SQL to time and check
their drains. Each peer gets a database of its own, created afresh for every scenario, with its
schema applied by its own API (procrastinate's schema manager, PgQueuer's ``Queries.install``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from scenarios import Check, Setting
from server import Server, as_url

PINS = (
    "procrastinate==3.10.0",
    "pgqueuer==1.6.0",
    "psycopg[binary]==3.3.9",
    "psycopg-pool==3.3.3",
    "asyncpg==0.32.0",
)
SCRIPTS = Path(__file__).resolve().parent / "peers"
# A drain's action (scenarios.ACTIONS) as the peer scripts' task: their no-op is async already.
TASKS = {"noop": "noop", "async-noop": "noop", "async-sleep": "sleep"}


class PeerEnv:
    """The peers' virtual environment: ``python`` once ready, else ``problem`` says why not."""

    def __init__(self) -> None:
        key = "\n".join((*PINS, platform.python_version(), sys.executable))
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        self.root = (
            cache / "pgstask-bench" / f"peers-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        )
        self.python: Path | None = None
        self.problem = ""

    def ensure(self, say: Any) -> bool:
        python, marker = self.root / "bin" / "python", self.root / ".complete"
        if marker.exists() and python.exists():
            self.python = python
            return True
        say(f"building the peers' environment in {self.root} ({', '.join(PINS)})")
        shutil.rmtree(self.root, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(self.root)],
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *PINS],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.SubprocessError) as exc:
                self.problem = f"{step[2]} failed: {exc}"
                return False
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                self.problem = f"`{' '.join(step[1:4])}` failed (no network?): {' | '.join(tail)}"
                return False
        marker.write_text("\n".join(PINS) + "\n")
        self.python = python
        return True


class PeerSystem:
    """A peer's worker script, database and tables; subclasses give the SQL."""

    name = ""
    label = ""
    script = ""
    left_sql: LiteralString = ""
    times_sql: LiteralString = ""
    running_sql: LiteralString = ""
    wake_sql: LiteralString = ""
    check_sql: LiteralString = ""

    def __init__(self, python: Path, server: Server, log_dir: Path) -> None:
        self.python, self.server, self.log_dir = python, server, log_dir
        self.dsn = ""
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PGSTASK_") and k != "PYTHONPATH"
        }

    def run(self, *args: str, timeout: float = 600) -> dict[str, Any]:
        cmd = [str(self.python), str(SCRIPTS / self.script), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = " | ".join(done.stderr.strip().splitlines()[-2:])
            raise RuntimeError(f"{self.script} {args[0]} exited with {done.returncode}: {tail}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def version(self) -> str:
        return str(self.run("version")["version"])

    def reset(self) -> str:
        self.dsn = self.server.database(self.name)
        self.run("schema", "--dsn", as_url(self.dsn))
        return self.dsn

    def enqueue_single(self, n: int) -> float:
        self.reset()
        return float(self.run("enqueue-single", "--dsn", as_url(self.dsn), "--n", str(n))["rate"])

    def enqueue_bulk(self, n: int) -> float:
        self.reset()
        return float(self.run("enqueue-bulk", "--dsn", as_url(self.dsn), "--n", str(n))["rate"])

    def fill(self, n: int, *, keys: int = 0, action: str = "noop") -> None:
        args = ["--dsn", as_url(self.dsn), "--n", str(n), "--warm-up", "0"]
        args += ["--task", TASKS[action]]
        self.run("enqueue-bulk", *args, *(("--keys", str(keys)) if keys else ()))

    def worker(self, setting: Setting, wake_file: Path | None) -> tuple[list[str], dict[str, str]]:
        if setting.limits or setting.env:
            given = setting.limits or setting.env
            raise ValueError(f"{self.label} takes its settings as options, not {given}")
        cmd = [str(self.python), str(SCRIPTS / self.script), "worker", "--dsn", as_url(self.dsn)]
        cmd += list(setting.args)
        if wake_file is not None:
            cmd += ["--wake-file", str(wake_file)]
        return cmd, self.env

    def counts(self) -> tuple[Any, ...]:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(self.check_sql).fetchone()
        assert row is not None
        return tuple(row)

    def settings(self, candidates: list[int]) -> tuple[Setting, list[Setting]]:
        """The default setting and the candidates to try."""
        raise NotImplementedError

    def check(self, n: int, invocations: int, distinct: int, finished: bool) -> Check:
        """Exactly-once after a drain of ``n`` tasks, from the peer's tables and its report."""
        raise NotImplementedError


class Procrastinate(PeerSystem):
    name = label = "procrastinate"
    script = "procrastinate_bench.py"
    left_sql = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
    times_sql = (
        "SELECT extract(epoch FROM min(at) FILTER (WHERE type = 'started'))::float8,"
        " extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded'))::float8"
        " FROM procrastinate_events"
    )
    # A job with a lock runs alone among the jobs of its lock (a unique index on the doing ones).
    running_sql = (
        "SELECT coalesce(sum(n), 0), coalesce(max(n) FILTER (WHERE k IS NOT NULL), 0)"
        " FROM (SELECT lock AS k, count(*) AS n FROM procrastinate_jobs"
        " WHERE status = 'doing' GROUP BY lock) AS g"
    )
    # procrastinate's defer (task.defer) calls this function; its insert trigger sends NOTIFY.
    wake_sql = (
        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('default', 'wake', 0, NULL, NULL,"
        " jsonb_build_object('seq', %(seq)s::int), NULL)::procrastinate_job_to_defer_v1])"
    )
    check_sql = (
        "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
        " count(*) FILTER (WHERE status::text NOT IN ('succeeded', 'todo', 'doing')),"
        " count(*) FILTER (WHERE status = 'doing'), count(*) FILTER (WHERE status = 'todo'),"
        " count(*),"
        " (SELECT count(*) FROM procrastinate_events WHERE type = 'started'),"
        " (SELECT count(DISTINCT job_id) FROM procrastinate_events WHERE type = 'started')"
        " FROM procrastinate_jobs"
    )

    def settings(self, candidates: list[int]) -> tuple[Setting, list[Setting]]:
        default = Setting("c=1 (default)")
        return default, [Setting(f"c={c}", ("--concurrency", str(c))) for c in candidates]

    def check(self, n: int, invocations: int, distinct: int, finished: bool) -> Check:
        done, failed, doing, todo, total, started, started_jobs = self.counts()
        ok = (
            failed == 0
            and doing == 0
            and total == n
            and done + todo == n
            and started == started_jobs == done
            and invocations == distinct == done
            and (done == n or not finished)
        )
        text = (
            f"{done:,} succeeded, {failed} failed/cancelled/aborted, {doing} doing, {todo:,} todo,"
            f" {total:,} jobs; {started:,} 'started' events for {started_jobs:,} jobs;"
            f" task ran {invocations:,} times for {distinct:,} jobs"
        )
        return Check(ok, done, ("OK: " if ok else "FAILED: ") + text)


class PgQueuer(PeerSystem):
    name = "pgqueuer"
    label = "PgQueuer"
    script = "pgqueuer_bench.py"
    # A finished job leaves the queue table in the statement that logs it (a failed one stays,
    # as 'failed').
    left_sql = "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')"
    times_sql = (
        "SELECT extract(epoch FROM min(created) FILTER (WHERE status = 'picked'))::float8,"
        " extract(epoch FROM max(created) FILTER (WHERE status = 'successful'))::float8"
        " FROM pgqueuer_log"
    )
    # Picked: claimed by a worker and not finished (no keys in PgQueuer).
    running_sql = "SELECT count(*), 0 FROM pgqueuer WHERE status = 'picked'"
    # What PgQueuer's enqueue does for one job: the queue row and its 'queued' log row, in one
    # statement; its statement-level trigger on the queue table sends NOTIFY.
    wake_sql = (
        "WITH job AS (INSERT INTO pgqueuer (priority, entrypoint, payload, execute_after, status)"
        " VALUES (0, 'wake', convert_to(%(seq)s::text, 'UTF8'), now(), 'queued')"
        " RETURNING id, entrypoint, priority)"
        " INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority)"
        " SELECT id, 'queued', entrypoint, priority FROM job"
    )
    check_sql = (
        "SELECT (SELECT count(*) FROM pgqueuer WHERE status = 'queued'),"
        " (SELECT count(*) FROM pgqueuer WHERE status <> 'queued'),"
        " count(*) FILTER (WHERE status = 'queued'),"
        " count(*) FILTER (WHERE status = 'successful'),"
        " count(DISTINCT job_id) FILTER (WHERE status = 'successful'),"
        " count(*) FILTER (WHERE status = 'picked'),"
        " count(DISTINCT job_id) FILTER (WHERE status = 'picked'),"
        " count(*) FILTER (WHERE status IN ('exception', 'failed', 'canceled', 'deleted'))"
        " FROM pgqueuer_log"
    )

    def fill(self, n: int, *, keys: int = 0, action: str = "noop") -> None:
        if keys:
            raise ValueError("PgQueuer has no concurrency key")
        super().fill(n, action=action)

    def settings(self, candidates: list[int]) -> tuple[Setting, list[Setting]]:
        default = Setting("batch=10 (default)")
        return default, [Setting(f"batch={b}", ("--batch-size", str(b))) for b in candidates]

    def check(self, n: int, invocations: int, distinct: int, finished: bool) -> Check:
        left, other, queued, done, done_jobs, picked, picked_jobs, bad = self.counts()
        ok = (
            bad == 0
            and other == 0
            and queued == n
            and done + left == n
            and done == done_jobs == picked == picked_jobs
            and invocations == distinct == done
            and (done == n or not finished)
        )
        text = (
            f"{done:,} successful ({done_jobs:,} jobs), {bad} exception/failed/canceled,"
            f" {left:,} still queued, {other} picked, {queued:,} enqueued; {picked:,} picks of"
            f" {picked_jobs:,} jobs; entrypoint ran {invocations:,} times for {distinct:,} jobs"
        )
        return Check(ok, done, ("OK: " if ok else "FAILED: ") + text)
