"""Chaos run: PostgreSQL crashed, or daemons killed, under load; do tasks get stranded?

Starts a throwaway pgserver cluster, migrates it, starts ``--daemons`` ``pgstask daemon``
processes (the bench worker's ``noop``) and enqueues ``--rate`` tasks a second for ``--seconds``
seconds. Meanwhile, with ``--fault restart`` (the default), it restarts the server with
``pg_ctl restart -m immediate`` every ``--every`` seconds (a crash: every connection cut, claims
and replies lost mid-flight); with ``--fault kill`` it sends SIGKILL to a random daemon every
``--every`` seconds and starts a new one in its place. Then it waits until nothing is pending or
running (or ``--drain`` seconds pass) and prints one JSON line:

- ``created``: tasks whose INSERT committed;
- ``completed``, ``pending``, ``running`` (stranded when > 0 after the drain), ``failed``;
- ``invocations`` / ``distinct``: executions the daemons still alive at the end counted (more
  invocations than distinct ids means an action ran again: at-least-once, e.g. its outcome was
  lost in a crash), and ``claimed_more_than_once`` from the database;
- ``claims_not_counted``: tasks claimed more often than their attempts count (a claim given back
  by the give-back check, or by a graceful stop), ``outcomes_discarded``, and ``faults``.

    python bench/chaos.py                      # 4 daemons, 300/s, 60 s, a restart every 10 s
    python bench/chaos.py --fault kill --every 2 --seconds 120
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pgstask import migrate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=90.0)
    parser.add_argument("--fault", choices=["restart", "kill"], default="restart")
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
        from pgserver.postgres_server import get_server

    root = Path(tempfile.mkdtemp(prefix="pgstask-chaos-"))
    pgdata = root / "pgdata"
    user = "pgserver" if os.geteuid() == 0 else None
    handle: Any = get_server(pgdata, cleanup_mode="delete")
    dsn: str = handle.get_uri()
    migrate.upgrade(dsn)
    log_dir = root / "logs"
    log_dir.mkdir()
    env = dict(os.environ)
    env.update(
        PGSTASK_DSN=dsn,
        PGSTASK_STORAGE=str(root / "storage"),
        PGSTASK_WORKERS="bench_worker",
        PYTHONPATH=f"{ROOT / 'bench' / 'workers'}:{ROOT}",
        PGSTASK_HEARTBEAT_INTERVAL="1",
        PGSTASK_STALE_AFTER="10",
        PGSTASK_POLL_INTERVAL="1",
    )
    daemons: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start_daemon() -> subprocess.Popen[bytes]:
        path = log_dir / f"daemon-{len(logs)}.out"
        logs.append(path)
        with open(path, "wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "pgstask", "daemon"], env=env, stdout=out, stderr=out
            )

    daemons = [start_daemon() for _ in range(args.daemons)]
    killed: list[subprocess.Popen[bytes]] = []
    created = 0
    stop = threading.Event()

    def produce() -> None:
        nonlocal created
        period = 1.0 / args.rate
        next_at = time.monotonic()
        conn: psycopg.Connection[Any] | None = None
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(dsn, autocommit=True, connect_timeout=2)
                conn.execute("INSERT INTO s_tasks (identifier, action) VALUES ('bench', 'noop')")
                created += 1
            except psycopg.Error:
                conn = None
                time.sleep(0.05)
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    faults = 0
    producer = threading.Thread(target=produce, daemon=True)
    time.sleep(3.0)  # the daemons start
    producer.start()
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        time.sleep(args.every)
        if args.fault == "restart":
            pg_ctl(
                ["-w", "-l", str(pgdata / "log"), "restart", "-m", "immediate"],
                pgdata=pgdata,
                user=user,
                timeout=60,
            )
        else:
            victim = daemons.pop(random.randrange(len(daemons)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed.append(victim)
            daemons.append(start_daemon())
        faults += 1
    stop.set()
    producer.join(10)
    deadline = time.monotonic() + args.drain
    counts: dict[int, int] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn) as conn:
            counts = dict(
                conn.execute("SELECT status, count(*) FROM s_tasks GROUP BY 1").fetchall()
            )
        if not counts.get(10) and not counts.get(30) and not counts.get(50):
            break
        time.sleep(1.0)
    with psycopg.connect(dsn) as conn:
        given_back = conn.execute(
            "SELECT count(*) FROM s_task_logs WHERE message LIKE 'Outcome%discarded%'"
        ).fetchone()
        back = conn.execute("SELECT count(*) FROM s_tasks WHERE claims > attempts").fetchone()
        again = conn.execute("SELECT count(*) FROM s_tasks WHERE claims > 1").fetchone()
    invocations = distinct = 0
    for proc in daemons:
        proc.send_signal(signal.SIGTERM)
    for proc in daemons:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)
    for path in logs:  # a killed daemon printed no report: its executions are not counted
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and "invocations" in line:
                report = json.loads(line)
                invocations += report["invocations"]
                distinct += report["distinct"]
    print(
        json.dumps(
            {
                "daemons": args.daemons,
                "rate": args.rate,
                "seconds": args.seconds,
                "fault": args.fault,
                "faults": faults,
                "created": created,
                "completed": counts.get(80, 0),
                "pending": counts.get(10, 0),
                "running": counts.get(30, 0) + counts.get(50, 0),
                "failed": counts.get(100, 0),
                "invocations": invocations,
                "distinct": distinct,
                "claims_not_counted": back[0] if back else 0,
                "claimed_more_than_once": again[0] if again else 0,
                "outcomes_discarded": given_back[0] if given_back else 0,
            }
        )
    )
    with contextlib.suppress(Exception):
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user, timeout=60)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
