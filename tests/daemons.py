"""Starting daemons for tests: in-process (a thread) and as real ``pgstask daemon`` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from pgstask.client import Client
from pgstask.runtime.daemon import Daemon
from pgstask.settings import Settings
from pgstask.workers.registry import discover

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def scalar(dsn: str, sql: str, params: tuple[object, ...] = ()) -> object:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


@contextlib.contextmanager
def running_daemon(
    settings: Settings, *, modules: tuple[str, ...] = ("tests.sample_workers",), **kwargs: object
) -> Iterator[Daemon]:
    """A ``Daemon`` running in a thread with the workers of ``modules``; stopped on exit."""
    workers = discover(list(modules), entry_point_group="pgstask.none")
    assert settings.dsn
    daemon = Daemon(
        settings,
        dsn=settings.dsn,
        workers=workers,
        make_client=Client,
        **kwargs,  # type: ignore[arg-type]
    )
    errors: list[BaseException] = []

    def target() -> None:
        try:
            daemon.run()
        except BaseException as exc:
            errors.append(exc)

    previous = os.environ.get("PGSTASK_STORAGE")
    os.environ["PGSTASK_STORAGE"] = str(settings.storage)  # where sample actions record runs
    thread = threading.Thread(target=target, name="pgstask-test-daemon", daemon=True)
    thread.start()
    wait_for(lambda: daemon.producer is not None or bool(errors))
    try:
        yield daemon
    finally:
        daemon.request_stop()
        thread.join(30)
        if previous is None:
            os.environ.pop("PGSTASK_STORAGE", None)
        else:
            os.environ["PGSTASK_STORAGE"] = previous
        assert not thread.is_alive(), "daemon did not stop"
    if errors:
        raise errors[0]


def daemon_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PGSTASK_DSN=str(settings.dsn),
        PGSTASK_STORAGE=str(settings.storage),
        PGSTASK_WORKERS="tests.sample_workers",
        PGSTASK_POLL_INTERVAL=str(settings.poll_interval),
        PGSTASK_HEARTBEAT_INTERVAL=str(settings.heartbeat_interval),
        PGSTASK_STALE_AFTER=str(settings.stale_after),
        PGSTASK_SHUTDOWN_GRACE=str(settings.shutdown_grace),
        PGSTASK_RETRY_BASE_DELAY=str(settings.retry_base_delay),
        PGSTASK_RETRY_MAX_DELAY=str(settings.retry_max_delay),
        PYTHONPATH=str(ROOT),
    )
    return env


def start_daemon_process(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    """``pgstask daemon`` as a child process (its output goes to a log file in storage)."""
    settings.storage.mkdir(parents=True, exist_ok=True)
    log_path = settings.storage / f"daemon-{time.monotonic_ns()}.out"
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "pgstask", "daemon", *args],
            env=daemon_env(settings),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def racing_daemons(
    settings: Settings, count: int, workers: str, *, slots: int = 4
) -> list[subprocess.Popen[bytes]]:
    """``count`` ``pgstask daemon`` processes running ``workers`` (a PGSTASK_WORKERS value) with
    ``slots`` each, polling once a minute (only wake-ups start work in time), once every one of
    them has registered."""
    env = {
        **daemon_env(settings),
        "PGSTASK_WORKERS": workers,
        "PGSTASK_CONCURRENCY": str(slots),
        "PGSTASK_POLL_INTERVAL": "60",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pgstask", "daemon"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    with psycopg.connect(str(settings.dsn), autocommit=True) as conn:

        def registered() -> bool:
            row = conn.execute("SELECT count(*) FROM s_daemons").fetchone()
            return row is not None and row[0] == count

        wait_for(registered, timeout=30)
    return procs


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20
) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout)


def executions(settings: Settings) -> list[tuple[int, int, int]]:
    path = settings.storage / "executions.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        task_id, attempt, pid = line.split()
        out.append((int(task_id), int(attempt), int(pid)))
    return out
