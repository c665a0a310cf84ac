"""pgstask's benchmark, side by side with procrastinate and PgQueuer (issue 4).

    python bench/run.py [--dsn DSN] [--quick] [--only SCENARIO,…] [--no-peers] [--drain N]

Without ``--dsn`` (or PGSTASK_BENCH_DSN / PGSTASK_DSN) a throwaway pgserver cluster is started
in a temporary directory and stopped at the end. The run only touches its own databases,
``pgstask_bench`` and ``pgstask_bench_<peer>``, which it drops and recreates. The peers run from
a virtual environment of their own (bench/peer_systems.py). Exit code 0 whatever the figures, 1
if a drain of any system breaks the exactly-once check or a progress state is not exact.
bench/README.md says what each figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import async_drains
import limits
import pgstask_only
import psycopg
import scenarios
from peer_systems import PINS, PeerEnv, PeerSystem, PgQueuer, Procrastinate
from pgstask_side import BATCH, PgstaskSystem
from report import LABELS, PEERS, Row, table
from server import Server

import pgstask
from pgstask import Settings, embedded

SCENARIOS = (
    "single",
    "bulk",
    "drain",
    "wake",
    "progress",
    "scale",
    "claim",
    "memory",
    "ceiling",
    "limits",
    "results",
    "async",
)
# The targets of issue 4 (2 cores, PostgreSQL on the same machine, fsync on).
SINGLE_TARGET = 80.0  # % of a plain psycopg INSERT + commit loop
BULK_TARGET = 150_000.0  # tasks/s
DRAIN_TARGET, DRAIN_PEER_FACTOR = 20_000.0, 4.0  # tasks/s; times the best peer
WAKE_P50_TARGET, WAKE_P99_TARGET = 3.0, 8.0  # ms, and below every peer
PROGRESS_TARGET = 0.5  # seconds added by 100,000 push_progress calls
SCALE_TARGET = 80.0  # % of one daemon's drain rate that 8 daemons reach
CLAIM_P99_TARGET = 5.0  # ms
PEAK_RSS_TARGET, RSS_GROWTH_TARGET = 60.0, 5.0  # MB


@dataclass(frozen=True, slots=True)
class Sizes:
    single: int
    bulk: int
    drain: int
    wake: int
    progress: int
    scale: tuple[int, ...]  # daemon processes
    claim: tuple[int, int]  # pending tasks: small, large
    memory: tuple[int, int]  # tasks: first reading, second reading
    cap: float  # seconds a drain may run before it is stopped and rated on what completed
    pgstask_c: tuple[int, ...]  # concurrency candidates besides the default
    procrastinate_c: tuple[int, ...]
    pgqueuer_batch: tuple[int, ...]
    rate: int  # tasks of the rate-limited drain (limits)
    repeats: int  # drains with no limit and with one never reached, alternated (limits)
    waits: int  # create + Client.wait, one after the other (results)
    chain: int  # tasks of a chain (results)
    group: int  # members of a group (results)


FULL = Sizes(
    single=10_000,
    bulk=100_000,
    drain=20_000,
    wake=200,
    progress=100_000,
    scale=(1, 2, 4, 8),
    claim=(10_000, 1_000_000),
    memory=(1_000, 100_000),
    cap=40.0,
    pgstask_c=(32, 64, 128, 256),
    procrastinate_c=(10, 50),
    pgqueuer_batch=(50, 200, 500),
    rate=2_500,
    waits=500,
    chain=500,
    group=1_000,
    repeats=3,
)
QUICK = Sizes(
    single=1_000,
    bulk=20_000,
    drain=3_000,
    wake=40,
    progress=100_000,
    scale=(1, 2),
    claim=(10_000, 100_000),
    memory=(1_000, 10_000),
    cap=10.0,
    pgstask_c=(64,),
    procrastinate_c=(10,),
    pgqueuer_batch=(100,),
    rate=1_000,
    waits=50,
    chain=50,
    group=200,
    repeats=1,
)


@dataclass(slots=True)
class Bench:
    sizes: Sizes
    ours: PgstaskSystem
    peers: dict[str, PeerSystem]
    unavailable: dict[str, str]  # peer → why it is not run
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def na(self) -> dict[str, str]:
        """Notes for the cells of peers that do not run."""
        return {p: f"n/a ({why})" for p, why in self.unavailable.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pgstask benchmark (see bench/README.md)")
    parser.add_argument("--dsn", help="PostgreSQL server (default: PGSTASK_BENCH_DSN, PGSTASK_DSN)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--drain", type=int, metavar="N", help="tasks per drain (default 20000)")
    parser.add_argument(
        "--only", metavar="SCENARIO,…", help=f"run only these scenarios: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--no-peers", action="store_true", help="run pgstask alone")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (worker logs)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.drain:
        sizes = Sizes(**{**{f: getattr(sizes, f) for f in Sizes.__slots__}, "drain": args.drain})
    only = [s.strip() for s in (args.only or ",".join(SCENARIOS)).split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {SCENARIOS}")
    server_dsn = args.dsn or os.environ.get("PGSTASK_BENCH_DSN") or os.environ.get("PGSTASK_DSN")
    tmp = Path(tempfile.mkdtemp(prefix="pgstask-bench-"))
    pgdata = tmp / "pgdata"
    server: Server | None = None
    try:
        if not server_dsn:
            say(f"starting a throwaway pgserver cluster in {pgdata}")
            server_dsn = embedded.start(pgdata)
        server = Server(server_dsn)
        bench = prepare(server, tmp, sizes, no_peers=args.no_peers)
        header(bench, server, only)
        for name in only:
            say(f"\n== {name}")
            RUNNERS[name](bench)
        say("\n" + table(bench.rows))
        say(f"\n1-minute load average at the end: {os.getloadavg()[0]:.2f}")
        say(NOTES)
        for failure in bench.failures:
            say(f"FAILED: {failure}")
        return 1 if bench.failures else 0
    finally:
        if server is not None:
            server.drop_peer_databases()
        if (pgdata / "postmaster.pid").exists():
            embedded.stop(pgdata)
        if args.keep:
            say(f"worker logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def prepare(server: Server, tmp: Path, sizes: Sizes, *, no_peers: bool) -> Bench:
    ours = PgstaskSystem(server, tmp)
    peers: dict[str, PeerSystem] = {}
    unavailable: dict[str, str] = {}
    if no_peers:
        unavailable = dict.fromkeys(PEERS, "--no-peers")
    else:
        env = PeerEnv()
        if env.ensure(say) and env.python is not None:
            for cls in (Procrastinate, PgQueuer):
                peer = cls(env.python, server, tmp)
                try:
                    peer.version()
                    peers[peer.name] = peer
                except (RuntimeError, OSError, ValueError) as exc:
                    unavailable[peer.name] = "broken"
                    say(f"PEER {peer.label} NOT RUN: {exc}")
        else:
            say(f"PEERS NOT RUN: their environment could not be built: {env.problem}")
            unavailable = dict.fromkeys(PEERS, "no venv")
    return Bench(sizes, ours, peers, unavailable)


def header(bench: Bench, server: Server, only: list[str]) -> None:
    ours, s = bench.ours, bench.sizes
    settings = Settings.from_env(ours.env)
    versions = ", ".join(f"{p.label} {p.version()}" for p in bench.peers.values())
    drivers = ", ".join(pin for pin in PINS if not pin.startswith(("procrastinate", "pgqueuer")))
    lines = [
        f"pgstask benchmark, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"  command     {shlex.join([Path(sys.executable).name, *sys.argv])}",
        f"  machine     {os.cpu_count()} cores, {platform.platform()}",
        f"  load        {os.getloadavg()[0]:.2f} (1-minute load average at start)",
        f"  versions    Python {platform.python_version()}, PostgreSQL {server.version()},",
        f"              pgstask {pgstask.__version__}, psycopg {psycopg.__version__}",
        f"  peers       {versions or 'not run'}"
        + (f" (their venv: {drivers})" if versions else ""),
        f"  server      {server.described()}; databases pgstask_bench[_<peer>]",
        f"  pgstask     {ours.daemon_kind} subprocess, concurrency {settings.concurrency}"
        f" (default), async {settings.async_concurrency} (default loop slots),"
        f" poll_interval {settings.poll_interval}s, create_many batch {BATCH:,}",
        "  peers' defaults  procrastinate: async task, concurrency 1; PgQueuer: async"
        " entrypoint, asyncpg, batch_size 10, no concurrency cap",
        f"  sizes       single {s.single:,}, bulk {s.bulk:,}, drain {s.drain:,} (cap {s.cap:.0f}s),"
        f" wake {s.wake}, progress {s.progress:,}, scale {'/'.join(map(str, s.scale))} daemons,",
        f"              claim {s.claim[0]:,}/{s.claim[1]:,}, memory {s.memory[0]:,}/"
        f"{s.memory[1]:,}, limits {s.drain:,} (rate {s.rate:,}, {s.repeats}x no limit),",
        f"              async {s.drain:,} no-ops and {async_drains.IO_TASKS:,} x sleep"
        f" {async_drains.SLEEP} s; scenarios {', '.join(only)}",
    ]
    for peer, why in bench.unavailable.items():
        lines.append(f"  NOTE        {LABELS[peer]} not run: {why}")
    say("\n".join(lines))


def say(line: str) -> None:
    print(line, flush=True)


def peer_call(peer: PeerSystem, what: str, row: Row, call: Callable[[], float]) -> None:
    """Run a peer's part of a scenario; a peer that breaks gets "n/a (error)" in ``row``."""
    try:
        row.values[peer.name] = call()
    except (RuntimeError, OSError, ValueError, psycopg.Error) as exc:
        row.notes[peer.name] = "n/a (error)"
        say(f"  {peer.label} {what} failed: {exc}")


def scenario_single(bench: Bench) -> None:
    n = bench.sizes.single
    ours, plain = bench.ours.enqueue_single(n)
    say(f"  pgstask Client.create {ours:,.0f}/s; plain psycopg INSERT + commit {plain:,.0f}/s")
    row = Row(f"enqueue single, {n:,} x 1/transaction", "tasks/s", {"pgstask": ours}, bench.na())
    row.compare = True
    for _, peer in bench.peers.items():
        peer_call(peer, "single enqueue", row, partial(peer.enqueue_single, n))
        say(f"  {peer.label}: {row.cell(peer.name)}/s")
    ratio = 100 * ours / plain
    bench.rows += [
        row,
        Row("  plain psycopg INSERT + commit", "tasks/s", {"pgstask": plain}),
        Row(
            "  pgstask / plain INSERT",
            "%",
            {"pgstask": ratio},
            target=f">= {SINGLE_TARGET:.0f} %",
            met=ratio >= SINGLE_TARGET,
        ),
    ]


def scenario_bulk(bench: Bench) -> None:
    n = bench.sizes.bulk
    ours, with_tasks = bench.ours.enqueue_bulk(n)
    say(
        f"  pgstask create_many(returning='ids') {ours:,.0f}/s; returning tasks {with_tasks:,.0f}/s"
    )
    row = Row(f"enqueue bulk, {n:,} in batches of {BATCH:,}", "tasks/s", {"pgstask": ours})
    row.notes, row.compare = bench.na(), True
    row.target, row.met = f">= {BULK_TARGET:,.0f}/s", ours >= BULK_TARGET
    for _, peer in bench.peers.items():
        peer_call(peer, "bulk enqueue", row, partial(peer.enqueue_bulk, n))
        say(f"  {peer.label}: {row.cell(peer.name)}/s")
    tasks_row = Row("  returning Task objects", "tasks/s", {"pgstask": with_tasks})
    bench.rows += [row, tasks_row]


def scenario_drain(bench: Bench) -> None:
    s = bench.sizes
    default = Row(f"drain {s.drain:,} no-ops, 1 process, default", "tasks/s", notes=bench.na())
    best = Row("drain, best setting tried", "tasks/s", notes=bench.na())
    rss = Row("  peak RSS of that process (default)", "MB", notes=bench.na())
    default.compare = best.compare = rss.compare = True
    systems: list[tuple[str, scenarios.System, tuple[scenarios.Setting, list[scenarios.Setting]]]]
    systems = [("pgstask", bench.ours, bench.ours.settings(list(s.pgstask_c)))]
    for name, peer in bench.peers.items():
        candidates = s.procrastinate_c if name == "procrastinate" else s.pgqueuer_batch
        systems.append((name, peer, peer.settings(list(candidates))))
    for name, system, (first, others) in systems:
        results: list[scenarios.Drain] = []
        for setting in [first, *others]:
            try:
                got = scenarios.drain(system, s.drain, setting, cap=s.cap)
            except (RuntimeError, OSError, ValueError, psycopg.Error) as exc:
                say(f"  {LABELS[name]} drain {setting.label} failed: {exc}")
                continue
            say(got.line(LABELS[name], s.drain))
            for problem in got.problems:
                say(f"      {problem}")
            if not got.check.ok:
                bench.failures.append(f"{LABELS[name]} drain {setting.label}: {got.check.text}")
            results.append(got)
        if results and results[0].setting == first:
            d = results[0]
            default.values[name] = d.rate
            default.notes[name] = f"({first.label.split()[0]})" if d.rate else "FAILED"
            rss.values[name] = d.peak_rss_kb / 1024 if d.peak_rss_kb else None
        rated = [r for r in results if r.rate]
        if rated:
            top = max(rated, key=lambda r: r.rate or 0.0)
            best.values[name], best.notes[name] = top.rate, f"({top.setting.label.split()[0]})"
    ours_default, ours_best = default.values.get("pgstask"), best.values.get("pgstask")
    default.target = f">= {DRAIN_TARGET:,.0f}/s"
    default.met = bool(ours_default and ours_default >= DRAIN_TARGET)
    peer_best = max([v for p, v in best.values.items() if p != "pgstask" and v] or [0.0])
    best.target = f">= {DRAIN_TARGET:,.0f}/s, >= {DRAIN_PEER_FACTOR:.0f}x best peer"
    best.met = bool(
        ours_best and ours_best >= DRAIN_TARGET and ours_best >= DRAIN_PEER_FACTOR * peer_best
    )
    peak = rss.values.get("pgstask")
    rss.target, rss.met = f"<= {PEAK_RSS_TARGET:.0f} MB", bool(peak and peak <= PEAK_RSS_TARGET)
    bench.rows += [default, best, rss]


def scenario_wake(bench: Bench) -> None:
    n = bench.sizes.wake
    rows = {q: Row(f"wake latency {q}", "ms", notes=bench.na()) for q in ("p50", "p95", "p99")}
    systems: list[tuple[str, scenarios.System, scenarios.Setting]] = [
        ("pgstask", bench.ours, bench.ours.settings([])[0])
    ]
    systems += [(name, peer, peer.settings([])[0]) for name, peer in bench.peers.items()]
    for name, system, setting in systems:
        try:
            got = scenarios.wake(system, n, setting)
        except (RuntimeError, OSError, ValueError, psycopg.Error) as exc:
            say(f"  {LABELS[name]} wake failed: {exc}")
            continue
        for problem in got.problems:
            say(f"      {problem}")
        if len(got.latencies_ms) < max(2, n):
            say(f"  {LABELS[name]}: only {len(got.latencies_ms)} of {n} wake tasks started")
            for row in rows.values():
                row.notes[name] = f"FAILED ({len(got.latencies_ms)}/{n})"
            continue
        q = statistics.quantiles(got.latencies_ms, n=100, method="inclusive")
        values = {"p50": q[49], "p95": q[94], "p99": q[98]}
        say(
            f"  {LABELS[name]}: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms,"
            f" max {max(got.latencies_ms):.1f} ms ({n} tasks, commit returned -> action started)"
        )
        for key, row in rows.items():
            row.values[name], row.compare = values[key], True
    for key, limit in (("p50", WAKE_P50_TARGET), ("p99", WAKE_P99_TARGET)):
        row = rows[key]
        ours = row.values.get("pgstask")
        peers = [v for p, v in row.values.items() if p != "pgstask" and v is not None]
        row.target = f"<= {limit:.0f} ms, < every peer"
        row.met = bool(ours is not None and ours <= limit and all(ours < v for v in peers))
    bench.rows += list(rows.values())


def scenario_progress(bench: Bench) -> None:
    n = bench.sizes.progress
    got = pgstask_only.progress_cost(bench.ours, n)
    say(
        f"  loop alone {fmt_list(got.loop)} s; with push_progress {fmt_list(got.with_progress)} s;"
        f" final state and snapshot exact: {'yes' if got.exact else 'NO'}"
    )
    for problem in got.problems:
        say(f"      {problem}")
    if not got.exact:
        bench.failures.append("progress: " + "; ".join(got.problems))
    row = Row(f"progress: {n:,} push_progress calls add", "s", {"pgstask": got.added})
    row.notes = {"pgstask": "" if got.exact else "(state NOT exact)"}
    row.target = f"<= {PROGRESS_TARGET} s, exact state"
    row.met = bool(got.exact and got.added is not None and got.added <= PROGRESS_TARGET)
    bench.rows.append(row)


def fmt_list(values: list[float]) -> str:
    return "/".join(f"{v:.3f}" for v in values) or "-"


def scenario_scale(bench: Bench) -> None:
    s = bench.sizes
    drains = pgstask_only.scale(bench.ours, s.drain, list(s.scale), s.cap)
    rates: dict[int, float | None] = {}
    for d in drains:
        say(d.line("pgstask", s.drain))
        for problem in d.problems:
            say(f"      {problem}")
        if not d.check.ok:
            bench.failures.append(f"pgstask scale drain x{d.processes}: {d.check.text}")
        rates[d.processes] = d.rate
        name = f"scale: drain, {d.processes} daemon" + ("s" if d.processes > 1 else "")
        bench.rows.append(Row(name, "tasks/s", {"pgstask": d.rate}))
    most = max(s.scale)
    one, many = rates.get(1), rates.get(most)
    ratio = 100 * many / one if one and many else None
    met = ratio is not None and ratio >= SCALE_TARGET
    row = Row(f"  {most} daemons / 1 daemon", "%", {"pgstask": ratio}, target=">= 80 %", met=met)
    bench.rows.append(row)


def scenario_claim(bench: Bench) -> None:
    small, large = bench.sizes.claim
    cases = [
        (f"{small:,} pending", small, 0),
        (f"{large:,} pending", large, 0),
        (f"{large:,} future + 20 due", 20, large),
    ]
    for label, pending, future in cases:
        got = pgstask_only.claim_latency(bench.ours, label, pending, future)
        say(f"  claim, {label}: p50 {got.p50:.2f} ms, p99 {got.p99:.2f} ms; {got.claimed} rows")
        row = Row(f"claim p99 (limit 10), {label}", "ms", {"pgstask": got.p99})
        row.notes = {"pgstask": f"(p50 {got.p50:.2f})"}
        row.target = f"<= {CLAIM_P99_TARGET:.0f} ms"
        row.met = got.p99 <= CLAIM_P99_TARGET and got.claimed == 10
        bench.rows.append(row)


def scenario_memory(bench: Bench) -> None:
    small, large = bench.sizes.memory
    got = pgstask_only.memory_growth(bench.ours, small, large)
    before, after, peak = (kb / 1024 if kb else None for kb in got.readings())
    say(
        f"  RSS after {small:,} tasks {before or 0:.1f} MB, after {large:,} {after or 0:.1f} MB,"
        f" peak {peak or 0:.1f} MB; exactly-once: {got.check.text}"
    )
    for problem in got.problems:
        say(f"      {problem}")
    if not got.check.ok:
        bench.failures.append(f"pgstask memory drain: {got.check.text}")
    growth = after - before if after is not None and before is not None else None
    row = Row(f"memory: RSS after {large:,} - after {small:,} tasks", "MB", {"pgstask": growth})
    row.target = f"<= {RSS_GROWTH_TARGET:.0f} MB"
    row.met = growth is not None and growth <= RSS_GROWTH_TARGET
    bench.rows.append(row)


def scenario_ceiling(bench: Bench) -> None:
    s = bench.sizes
    batches = (128, 500)
    got = pgstask_only.ceiling(bench.ours, s.bulk, s.drain, batches)
    say(f"  COPY of ready-made rows into s_tasks: {got.copy_rate:,.0f} rows/s")
    bench.rows.append(
        Row(
            "ceiling: COPY of ready-made rows, no client work", "rows/s", {"pgstask": got.copy_rate}
        )
    )
    for batch in batches:
        rate, cpu = got.drain_rates[batch], got.server_us[batch]
        server = f"{cpu:.0f} µs of backend CPU per task" if cpu is not None else "backend CPU n/a"
        say(f"  claim + completion statements alone, batch {batch}: {rate:,.0f} tasks/s; {server}")
        row = Row(f"ceiling: claim + complete alone, batch {batch}", "tasks/s", {"pgstask": rate})
        if cpu is not None:
            row.notes = {"pgstask": f"({cpu:.0f} µs PG)"}
        bench.rows.append(row)
    for problem in got.problems:
        say(f"      {problem}")
        bench.failures.append(f"pgstask ceiling: {problem}")


def scenario_limits(bench: Bench) -> None:
    s = bench.sizes
    results = limits.run(
        bench.ours, bench.peers, s.drain, s.rate, cap=s.cap, repeats=s.repeats, say=say
    )
    say("  peers without a limit:\n" + limits.WHY)
    for name, outcomes in results.items():
        for case, outcome in outcomes.items():
            if not outcome.held:
                notes = "; ".join(dict.fromkeys(outcome.notes)) or "see its drains above"
                bench.failures.append(f"{LABELS[name]} limits {case}: {notes}")
    bench.rows += limits.rows(results, bench.na(), s.drain, s.rate)


def scenario_results(bench: Bench) -> None:
    s = bench.sizes
    got = pgstask_only.results(bench.ours, s.waits, s.chain, s.group)
    for problem in got.problems:
        say(f"      {problem}")
    for label, values in (("wait() after completion", got.wait_ms), ("chain hop", got.hop_ms)):
        if len(values) < 2:
            say(f"  {label}: too few figures ({len(values)})")
            continue
        q = statistics.quantiles(values, n=100, method="inclusive")
        say(
            f"  {label}: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms,"
            f" max {max(values):.1f} ms ({len(values)})"
        )
        for key, value in (("p50", q[49]), ("p95", q[94])):
            row = Row(f"{label} {key}", "ms", notes=bench.na())
            row.values["pgstask"] = value
            bench.rows.append(row)
    if got.callback_ms is not None:
        say(f"  group of {s.group}: last member's end -> callback's start {got.callback_ms:.1f} ms")
        row = Row(f"group of {s.group}: callback after the last member", "ms", notes=bench.na())
        row.values["pgstask"] = got.callback_ms
        bench.rows.append(row)


def scenario_async(bench: Bench) -> None:
    rows, failures = async_drains.run(
        bench.ours, bench.peers, bench.sizes.drain, cap=bench.sizes.cap, na=bench.na(), say=say
    )
    bench.rows += rows
    bench.failures += failures


RUNNERS = {
    "single": scenario_single,
    "bulk": scenario_bulk,
    "drain": scenario_drain,
    "wake": scenario_wake,
    "progress": scenario_progress,
    "scale": scenario_scale,
    "claim": scenario_claim,
    "memory": scenario_memory,
    "ceiling": scenario_ceiling,
    "limits": scenario_limits,
    "results": scenario_results,
    "async": scenario_async,
}
NOTES = """\
Ratios are pgstask's figure divided by the peer's (higher is better for tasks/s and for the most
actions running at once, lower for ms, s and MB). Drain rate = completed tasks / (all done -
first start), database clock: the first start as each system records it in its own tables, all
done = the first 20 ms poll (10 ms in the async I/O drain) that sees every task finished. Wake
latency = time.time() at the action's start minus time.time() right after the inserting COMMIT
returned. Other work on the machine skews every figure (see the load averages).
bench/README.md has the details."""


if __name__ == "__main__":
    sys.exit(main())
