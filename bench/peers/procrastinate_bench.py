"""The procrastinate side of pgstask's benchmark (bench/run.py runs it; see bench/README.md).

Run by the python of the peers' environment, never imported by the harness: it uses only
procrastinate's public API and answers with one JSON object on stdout.

    procrastinate_bench.py version
    procrastinate_bench.py schema --dsn DSN
    procrastinate_bench.py enqueue-single --dsn DSN --n N       # defer, one transaction each
    procrastinate_bench.py enqueue-bulk --dsn DSN --n N [--batch B] [--warm-up W] [--keys K]
                                        [--task noop|sleep]
    procrastinate_bench.py worker --dsn DSN [--concurrency C] [--wake-file PATH]

With ``--keys K``, job i gets the lock ``k<i * K // N>``, so the jobs of a lock are enqueued
together (procrastinate's per-key limit: no two jobs of one lock run at once, on any worker).
``--task sleep`` enqueues jobs of the task that awaits ``asyncio.sleep(SLEEP)`` (the I/O-bound
drain) instead of the no-op.
The worker runs until SIGTERM (procrastinate's own signal handling stops it gracefully) and then
reports how many times its no-op and sleep tasks ran, for how many distinct jobs, and the
``[start, end]`` (``time.time()``) of each sleep (``intervals``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from importlib.metadata import version
from typing import Any

import procrastinate

WARM_UP = 200
SLEEP = 0.05  # seconds the sleep task awaits
invoked: list[int] = []
intervals: list[tuple[float, float]] = []
wake_file: Any = None


def make_app(connector: procrastinate.BaseConnector) -> procrastinate.App:
    app = procrastinate.App(connector=connector)

    @app.task(name="noop", pass_context=True)
    async def noop(context: procrastinate.JobContext, n: int = 0) -> None:
        assert context.job.id is not None
        invoked.append(context.job.id)

    @app.task(name="sleep", pass_context=True)
    async def sleep(context: procrastinate.JobContext, n: int = 0) -> None:
        started = time.time()
        await asyncio.sleep(SLEEP)
        intervals.append((started, time.time()))
        assert context.job.id is not None
        invoked.append(context.job.id)

    @app.task(name="wake")
    async def wake(seq: int) -> None:
        started = time.time()
        if wake_file is not None:
            wake_file.write(f"{seq} {started!r}\n")
            wake_file.flush()

    return app


def sync_app(dsn: str) -> procrastinate.App:
    # Sync callers defer through the sync connector, as procrastinate advises.
    return make_app(procrastinate.SyncPsycopgConnector(conninfo=dsn))


def schema(dsn: str) -> dict[str, Any]:
    with sync_app(dsn).open() as app:
        app.schema_manager.apply_schema()
    return {"ok": True}


def enqueue_single(dsn: str, n: int) -> dict[str, Any]:
    with sync_app(dsn).open() as app:
        task = app.tasks["noop"]
        start = 0.0
        for i in range(-WARM_UP, n):
            start = time.perf_counter() if i == 0 else start
            task.defer(n=i)
        return {"rate": n / (time.perf_counter() - start)}


def enqueue_bulk(
    dsn: str, n: int, batch: int, warm_up: int, keys: int, name: str = "noop"
) -> dict[str, Any]:
    with sync_app(dsn).open() as app:
        task = app.tasks[name]
        if warm_up:
            task.batch_defer(*({"n": i} for i in range(warm_up)))
        start = time.perf_counter()
        for lo in range(0, n, batch):
            if keys:
                # One batch of jobs with the locks of their keys, in the order of i.
                deferrers = [task.configure(lock=f"k{k:04d}") for k in range(keys)]
                jobs = [
                    deferrers[i * keys // n].make_new_job(n=i)
                    for i in range(lo, min(n, lo + batch))
                ]
                app.job_manager.batch_defer_jobs(jobs)
            else:
                task.batch_defer(*({"n": i} for i in range(lo, min(n, lo + batch))))
        return {"rate": n / (time.perf_counter() - start)}


async def worker(dsn: str, concurrency: int | None) -> dict[str, Any]:
    app = make_app(procrastinate.PsycopgConnector(conninfo=dsn))
    options: dict[str, Any] = {"wait": True, "install_signal_handlers": True}
    if concurrency is not None:
        options["concurrency"] = concurrency
    async with app.open_async():
        await app.run_worker_async(**options)
    return {"invocations": len(invoked), "distinct": len(set(invoked)), "intervals": intervals}


def main() -> None:
    global wake_file
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--dsn", default="")
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--warm-up", type=int, default=100)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--keys", type=int, default=0)
    parser.add_argument("--task", default="noop", choices=("noop", "sleep"))
    parser.add_argument("--wake-file")
    args = parser.parse_args()
    if args.command == "version":
        out = {"name": "procrastinate", "version": version("procrastinate")}
    elif args.command == "schema":
        out = schema(args.dsn)
    elif args.command == "enqueue-single":
        out = enqueue_single(args.dsn, args.n)
    elif args.command == "enqueue-bulk":
        out = enqueue_bulk(args.dsn, args.n, args.batch, args.warm_up, args.keys, args.task)
    elif args.command == "worker":
        if args.wake_file:
            wake_file = open(args.wake_file, "a", encoding="utf-8")  # noqa: SIM115
        out = asyncio.run(worker(args.dsn, args.concurrency))
    else:
        parser.error(f"unknown command {args.command!r}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
