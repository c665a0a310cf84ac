"""The PgQueuer side of pgstask's benchmark (bench/run.py runs it; see bench/README.md).

Run by the python of the peers' environment, never imported by the harness: it uses only
PgQueuer's public API (with asyncpg, its recommended driver) and answers with one JSON object on
stdout.

    pgqueuer_bench.py version
    pgqueuer_bench.py schema --dsn DSN
    pgqueuer_bench.py enqueue-single --dsn DSN --n N       # one enqueue call (transaction) each
    pgqueuer_bench.py enqueue-bulk --dsn DSN --n N [--batch B] [--warm-up W] [--task noop|sleep]
    pgqueuer_bench.py worker --dsn DSN [--batch-size B] [--max-concurrent C] [--wake-file PATH]
                             [--concurrency-limit L]

``--concurrency-limit`` is the no-op entrypoint's ``concurrency_limit`` (PgQueuer's limit of its
jobs picked at once, across every worker). ``--task sleep`` enqueues jobs of the entrypoint that
awaits ``asyncio.sleep(SLEEP)`` (the I/O-bound drain) instead of the no-op.

The worker runs until SIGTERM, which sets the queue manager's shutdown event (its graceful stop:
running jobs finish, buffered statuses are flushed), then reports how many times its no-op and
sleep entrypoints ran, for how many distinct jobs, and the ``[start, end]`` (``time.time()``) of
each sleep (``intervals``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from importlib.metadata import version
from typing import Any

import asyncpg
from pgqueuer import AsyncpgDriver, Job, QueueManager
from pgqueuer.queries import Queries

WARM_UP = 200
SLEEP = 0.05  # seconds the sleep entrypoint awaits


async def queries_for(dsn: str) -> tuple[asyncpg.Connection, Queries]:
    conn = await asyncpg.connect(dsn)
    return conn, Queries(AsyncpgDriver(conn))


async def schema(dsn: str) -> dict[str, Any]:
    conn, queries = await queries_for(dsn)
    try:
        await queries.install()
    finally:
        await conn.close()
    return {"ok": True}


async def enqueue_single(dsn: str, n: int) -> dict[str, Any]:
    conn, queries = await queries_for(dsn)
    try:
        start = 0.0
        for i in range(-WARM_UP, n):
            start = time.perf_counter() if i == 0 else start
            await queries.enqueue("noop", b'{"n": %d}' % i)
        return {"rate": n / (time.perf_counter() - start)}
    finally:
        await conn.close()


async def enqueue_bulk(
    dsn: str, n: int, batch: int, warm_up: int, name: str = "noop"
) -> dict[str, Any]:
    conn, queries = await queries_for(dsn)
    try:
        if warm_up:
            await queries.enqueue(["noop"] * warm_up, [b"{}"] * warm_up, [0] * warm_up)
        start = time.perf_counter()
        for lo in range(0, n, batch):
            size = min(batch, n - lo)
            payloads: list[bytes | None] = [b'{"n": %d}' % i for i in range(lo, lo + size)]
            await queries.enqueue([name] * size, payloads, [0] * size)
        return {"rate": n / (time.perf_counter() - start)}
    finally:
        await conn.close()


async def worker(
    dsn: str,
    batch_size: int | None,
    max_concurrent: int | None,
    wake_path: str | None,
    concurrency_limit: int,
) -> dict[str, Any]:
    conn, queries = await queries_for(dsn)
    qm = QueueManager(queries)
    invoked: list[int] = []
    intervals: list[tuple[float, float]] = []
    wake_file = open(wake_path, "a", encoding="utf-8") if wake_path else None  # noqa: SIM115

    @qm.entrypoint("noop", concurrency_limit=concurrency_limit)
    async def noop(job: Job) -> None:
        invoked.append(int(job.id))

    @qm.entrypoint("sleep")
    async def sleep(job: Job) -> None:
        started = time.time()
        await asyncio.sleep(SLEEP)
        intervals.append((started, time.time()))
        invoked.append(int(job.id))

    @qm.entrypoint("wake")
    async def wake(job: Job) -> None:
        started = time.time()
        if wake_file is not None:
            wake_file.write(f"{int(job.payload or b'0')} {started!r}\n")
            wake_file.flush()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, qm.shutdown.set)
    options: dict[str, Any] = {}
    if batch_size is not None:
        options["batch_size"] = batch_size
    if max_concurrent is not None:
        options["max_concurrent_tasks"] = max_concurrent
    try:
        await qm.run(**options)
    finally:
        await conn.close()
    return {"invocations": len(invoked), "distinct": len(set(invoked)), "intervals": intervals}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--dsn", default="")
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--warm-up", type=int, default=100)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-concurrent", type=int)
    parser.add_argument("--wake-file")
    parser.add_argument("--concurrency-limit", type=int, default=0)
    parser.add_argument("--task", default="noop", choices=("noop", "sleep"))
    args = parser.parse_args()
    if args.command == "version":
        out: dict[str, Any] = {"name": "pgqueuer", "version": version("pgqueuer")}
    elif args.command == "schema":
        out = asyncio.run(schema(args.dsn))
    elif args.command == "enqueue-single":
        out = asyncio.run(enqueue_single(args.dsn, args.n))
    elif args.command == "enqueue-bulk":
        out = asyncio.run(enqueue_bulk(args.dsn, args.n, args.batch, args.warm_up, args.task))
    elif args.command == "worker":
        run = worker(
            args.dsn, args.batch_size, args.max_concurrent, args.wake_file, args.concurrency_limit
        )
        out = asyncio.run(run)
    else:
        parser.error(f"unknown command {args.command!r}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
