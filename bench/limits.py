"""The limits scenario: drains of a worker with flow control (docs/limits.md) beside the plain
drain of the same tasks, for pgstask and for each peer that offers the same limit; and the
checks that every limit held.

Every drain has two worker processes of 16 slots each, as two hosts would run them, and is
checked for exactly-once like every other drain. pgstask drains the same N no-ops of 200
concurrency keys each time (a plain SQL INSERT; the tasks of a key enqueued together, as a
customer's batch would be, so that without a per-key limit many of one key run at once); only
the worker's settings differ:

- ``plain``: no limit (the claim of every drain so far);
- ``unbound``: ``max_running`` 1,000,000, which is never reached: the limited claim (a lock on
  the worker's row, the counts under it) with nothing held back, i.e. what the limit costs;
- ``max``: ``max_running`` 8, a quarter of the slots;
- ``per_key``: ``max_running_per_key`` 1 (a claim walks the keys and takes one of each);
- ``fair``: the same with ``fair_share`` (the keys take turns from claim to claim);
- ``rate``: ``rate_limit`` 50 per 0.1 s (500 starts/s), on fewer tasks.

How each limit is checked, with a figure of what was seen:

- every poll of the drain (20 ms) reads how many tasks run at that moment, in all and of the
  busiest key, in one snapshot (all systems);
- pgstask, exactly: a statement trigger that the bench adds to ``s_tasks`` (in every drain of
  the scenario, the plain ones too, so that they pay the same) counts, after each claim, the
  tasks running with the claim's own ones, in all and per key of the claimed tasks. A limited
  claim runs under its worker's row lock, so no other claim of the worker commits until it
  does, and completions only lower the count: the count at the commit of a claim is at most
  what the trigger saw, and the number running only rises at such commits. So "the trigger
  never saw more than the limit" proves the limit held at every moment;
- pgstask's rate limit, exactly: a trigger copies each start ``s_task_starts`` records (with the
  clock the claim read under the lock) so that none is lost to the claims' own cleanup; no
  window of ``per`` seconds, ending at any start, may hold more than ``limit`` starts.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import scenarios
from peer_systems import PeerSystem
from pgstask_side import PgstaskSystem
from report import LABELS, SYSTEMS, Row

KEYS = 200
CONCURRENCY = 16  # slots of each worker process
PROCESSES = 2
MAX_RUNNING = 8
UNBOUND = 1_000_000  # a max_running the drain never reaches
RATE_LIMIT, RATE_PER = 50, 0.1  # starts per period (seconds): 500 starts/s
CASES = ("plain", "unbound", "max", "per_key", "fair", "rate")
# Why a peer does not run a case: its pinned version has no such limit in its public API.
UNAVAILABLE = {
    ("procrastinate", "unbound"): "no total limit",
    ("procrastinate", "max"): "no total limit",
    ("procrastinate", "fair"): "no fair sharing",
    ("procrastinate", "rate"): "no rate limit",
    ("pgqueuer", "per_key"): "no per-key limit",
    ("pgqueuer", "fair"): "no per-key limit",
    ("pgqueuer", "rate"): "no rate limit",
}
WHY = """\
  procrastinate 3.10 limits the jobs of a lock (one running at a time: its per-key limit, run
    here with a lock per key; it has no fair sharing) but not a task's running jobs in total,
    and has no rate limit.
  PgQueuer 1.6.0 limits an entrypoint's picked jobs across workers (concurrency_limit, run here)
    and a worker's own (max_concurrent_tasks), but its jobs have no key, and its entrypoint
    takes no requests_per_second (earlier versions had one)."""

_AUDIT = """
CREATE TABLE bench_claim_audit (claimed integer, running integer, of_key integer);
CREATE TABLE bench_start_audit (started_at timestamptz, concurrency_key text);
CREATE FUNCTION bench_audit_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A claim sets tasks running (50); completions and other updates leave no row here.
    IF EXISTS (SELECT 1 FROM new_rows WHERE status = 50) THEN
        INSERT INTO bench_claim_audit (claimed, running, of_key)
        SELECT (SELECT count(*) FROM new_rows WHERE status = 50),
               (SELECT count(*) FROM s_tasks WHERE status IN (30, 50) AND identifier = 'bench'),
               (SELECT coalesce(max(n), 0)
                  FROM (SELECT count(*) AS n FROM s_tasks
                         WHERE status IN (30, 50) AND identifier = 'bench'
                           AND concurrency_key IN (SELECT concurrency_key FROM new_rows
                                                    WHERE status = 50)
                         GROUP BY concurrency_key) AS k);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_audit_claim AFTER UPDATE ON s_tasks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_audit_claim();
CREATE FUNCTION bench_audit_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_start_audit SELECT started_at, concurrency_key FROM new_rows;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_audit_start AFTER INSERT ON s_task_starts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_audit_start();
"""
_UNAUDIT = """
DROP TRIGGER IF EXISTS bench_audit_claim ON s_tasks;
DROP TRIGGER IF EXISTS bench_audit_start ON s_task_starts;
DROP FUNCTION IF EXISTS bench_audit_claim(), bench_audit_start();
DROP TABLE IF EXISTS bench_claim_audit, bench_start_audit;
"""
# The most starts in a window (t - per, t] ending at a start t: the window the claim counts
# (it forgets the starts at or before clock - per).
_WINDOWS = """
SELECT count(*), max(started_at) - min(started_at),
       (SELECT coalesce(max(n), 0) FROM (
            SELECT (SELECT count(*) FROM bench_start_audit s
                     WHERE s.started_at > t.started_at - make_interval(secs => %(per)s)
                       AND s.started_at <= t.started_at) AS n
              FROM (SELECT DISTINCT started_at FROM bench_start_audit) AS t) AS w)
  FROM bench_start_audit
"""


@dataclass(slots=True)
class Audit:
    """pgstask's exact record of a drain: the claims (and what ran after each) and the starts."""

    claims: int = 0
    running: int = 0  # the most running after a claim, its own tasks included
    of_key: int = 0  # the most running of one key after a claim
    starts: int = 0
    starts_span: float | None = None  # seconds from the first start to the last
    starts_in_window: int = 0  # the most starts in one window of the rate limit


class Auditor:
    """The audit triggers on pgstask's tables while the scenario runs (see the docstring)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def clear(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE bench_claim_audit, bench_start_audit")

    def read(self) -> Audit:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            claims = conn.execute(
                "SELECT count(*), coalesce(max(running), 0), coalesce(max(of_key), 0)"
                " FROM bench_claim_audit"
            ).fetchone()
            starts = conn.execute(_WINDOWS, {"per": RATE_PER}).fetchone()
        assert claims is not None and starts is not None
        span = starts[1].total_seconds() if starts[1] is not None else None
        return Audit(claims[0], claims[1], claims[2], starts[0], span, starts[2])


@contextmanager
def auditing(dsn: str) -> Iterator[Auditor]:
    """The audit triggers installed in pgstask's bench database, and dropped again."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_UNAUDIT)
        conn.execute(_AUDIT)
    try:
        yield Auditor(dsn)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(_UNAUDIT)


@dataclass(slots=True)
class Outcome:
    """One case of one system: its drains (several when repeated), the limit's check, and for
    pgstask its audit."""

    drains: list[scenarios.Drain] = field(default_factory=list)
    audits: list[Audit] = field(default_factory=list)
    held: bool = True  # the limit was never passed (and every drain was exactly-once)
    reached: bool = True  # a poll saw the limit reached (it bound)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """The median drain rate (None if a drain failed)."""
        rates = [d.rate for d in self.drains]
        if not rates or any(r is None for r in rates):
            return None
        return statistics.median(r for r in rates if r is not None)


def settings(system: str, case: str) -> tuple[scenarios.Setting, int]:
    """The worker setting of ``case`` for ``system``, and the keys its tasks get."""
    if system == "pgstask":
        by_case: dict[str, dict[str, Any]] = {
            "plain": {},
            "unbound": {"max_running": UNBOUND},
            "max": {"max_running": MAX_RUNNING},
            "per_key": {"max_running_per_key": 1},
            "fair": {"max_running_per_key": 1, "fair_share": True},
            "rate": {"rate_limit": {"limit": RATE_LIMIT, "per": RATE_PER}},
        }
        label = f"{case} c={CONCURRENCY}"
        return scenarios.Setting(label, ("--concurrency", str(CONCURRENCY)), by_case[case]), KEYS
    args: tuple[str, ...]
    if system == "procrastinate":
        args = ("--concurrency", str(CONCURRENCY))
        keys = KEYS if case == "per_key" else 0
        return scenarios.Setting(f"{case} c={CONCURRENCY}", args), keys
    # PgQueuer: a worker's picked jobs capped as pgstask's slots are (it wants twice the batch).
    args = ("--batch-size", str(CONCURRENCY // 2), "--max-concurrent", str(CONCURRENCY))
    limit = {"unbound": UNBOUND, "max": MAX_RUNNING}.get(case)
    if limit is not None:
        args += ("--concurrency-limit", str(limit))
    return scenarios.Setting(f"{case} max_concurrent_tasks={CONCURRENCY}", args), 0


def run_case(
    system: scenarios.System,
    case: str,
    n: int,
    *,
    cap: float,
    auditor: Auditor | None,
    outcome: Outcome,
) -> scenarios.Drain:
    """One drain of ``case``; its checks are added to ``outcome``."""
    setting, keys = settings(system.name, case)
    if auditor is not None:
        auditor.clear()
    got = scenarios.drain(system, n, setting, cap=cap, processes=PROCESSES, keys=keys, sample=True)
    outcome.drains.append(got)
    outcome.held = outcome.held and got.check.ok
    audit = auditor.read() if auditor is not None else None
    if audit is not None:
        outcome.audits.append(audit)
        mean = got.completed / audit.claims if audit.claims else 0.0
        outcome.notes.append(f"{audit.claims:,} claims of {mean:.1f} tasks on average")
    limit = {"max": MAX_RUNNING, "per_key": 1, "fair": 1}.get(case)
    if limit is not None:
        seen = got.most_running if case == "max" else got.most_of_key
        exact = None if audit is None else audit.running if case == "max" else audit.of_key
        what = "running" if case == "max" else "running of one key"
        if (seen or 0) > limit or (exact or 0) > limit:
            outcome.held = False
            outcome.notes.append(f"LIMIT PASSED: {what}: polls saw {seen}, claims {exact}")
        if (seen or 0) < limit:
            outcome.reached = False
            outcome.notes.append(f"the limit did not bind: polls saw at most {seen} {what}")
        if exact is not None:
            outcome.notes.append(f"after each claim at most {exact} {what} (limit {limit})")
    if case == "rate" and audit is not None:
        # A start for every completed task (more only when a capped drain gave some back).
        missed = audit.starts < got.completed or (got.completed == n and audit.starts != n)
        if missed or audit.starts_in_window > RATE_LIMIT:
            outcome.held = False
        outcome.notes.append(
            f"{audit.starts:,} starts recorded for {got.completed:,} tasks; at most"
            f" {audit.starts_in_window} in a window of {RATE_PER} s (limit {RATE_LIMIT})"
        )
    return got


def run(
    ours: PgstaskSystem,
    peers: dict[str, PeerSystem],
    n: int,
    rate_n: int,
    *,
    cap: float,
    repeats: int,
    say: Callable[[str], None],
) -> dict[str, dict[str, Outcome]]:
    """Every case each system offers, system by system; ``plain`` and ``unbound`` alternate
    ``repeats`` times (their ratio is the cost of the limited claim), the rest run once."""
    results: dict[str, dict[str, Outcome]] = {}
    with auditing(ours.dsn) as auditor:
        systems: list[tuple[str, scenarios.System, Auditor | None]] = [("pgstask", ours, auditor)]
        systems += [(name, peer, None) for name, peer in peers.items()]
        for name, system, audit in systems:
            cases = [c for c in CASES if (name, c) not in UNAVAILABLE]
            pair: list[str] = [c for c in ("plain", "unbound") if c in cases]
            order = pair * (repeats if "unbound" in pair else 1)
            order += [c for c in cases if c not in pair]
            for case in order:
                outcome = results.setdefault(name, {}).setdefault(case, Outcome())
                size = rate_n if case == "rate" else n
                try:
                    got = run_case(system, case, size, cap=cap, auditor=audit, outcome=outcome)
                except (RuntimeError, OSError, ValueError, psycopg.Error) as exc:
                    outcome.held = False
                    outcome.notes.append(f"{case} drain failed: {exc}")
                    say(f"  {LABELS[name]} {case} drain failed: {exc}")
                    continue
                say(got.line(LABELS[name], size))
                for problem in got.problems:
                    say(f"      {problem}")
    for name, outcomes in results.items():
        for case, outcome in outcomes.items():
            for note in dict.fromkeys(outcome.notes):
                say(f"  {LABELS[name]} {case}: {note}")
    return results


def sustained(audit: Audit) -> float | None:
    """Starts per second after the first window: (starts - limit) / (last - first start). The
    first ``limit`` starts find an empty window and the others wait for their turn, so this is
    at most limit / per when the limit holds."""
    if not audit.starts_span or audit.starts <= RATE_LIMIT:
        return None
    return (audit.starts - RATE_LIMIT) / audit.starts_span


def rows(
    results: dict[str, dict[str, Outcome]], na: dict[str, str], n: int, rate_n: int
) -> list[Row]:
    """The scenario's rows of the table: a figure per case, what was seen of each limit, the
    cost of the limited claim; a peer without the limit is n/a with the reason."""

    def row(name: str, unit: str, case: str, value: Callable[[Outcome], float | None]) -> Row:
        r = Row(name, unit, notes=dict(na))
        for system in SYSTEMS:
            if system in na:
                continue
            if (system, case) in UNAVAILABLE:
                r.notes[system] = f"n/a ({UNAVAILABLE[system, case]})"
            elif (got := results.get(system, {}).get(case)) is not None:
                r.values[system] = value(got) if got.drains else None
                r.notes[system] = "" if got.held and r.values[system] is not None else "FAILED"
        return r

    def most(attr: str) -> Callable[[Outcome], float | None]:
        return lambda o: max(getattr(d, attr) or 0 for d in o.drains)

    def rate(o: Outcome) -> float | None:
        return o.rate

    plain = row(
        f"limits: {n:,} no-ops, {PROCESSES} x {CONCURRENCY} slots, no limit",
        "tasks/s",
        "plain",
        rate,
    )
    unbound = row(f"  max_running {UNBOUND:,} (never reached)", "tasks/s", "unbound", rate)
    cost = Row("  that / no limit (the limited claim's cost)", "%", notes=dict(unbound.notes))
    for system, value in unbound.values.items():
        base = plain.values.get(system)
        cost.values[system] = 100 * value / base if value and base else None
    capped = row(f"limits: max_running {MAX_RUNNING}", "tasks/s", "max", rate)
    running = row("  most running at once (polls)", "tasks", "max", most("most_running"))
    keyed = row(f"limits: max_running_per_key 1, {KEYS} keys", "tasks/s", "per_key", rate)
    if "procrastinate" in results:
        keyed.notes["procrastinate"] = "(lock)"
    of_key = row("  most running of one key (polls)", "tasks", "per_key", most("most_of_key"))
    fair = row("limits: the same with fair_share", "tasks/s", "fair", rate)
    of_key_fair = row("  most running of one key (polls)", "tasks", "fair", most("most_of_key"))
    rated = row(
        f"limits: rate {RATE_LIMIT} per {RATE_PER} s, {rate_n:,} tasks",
        "starts/s",
        "rate",
        lambda o: sustained(o.audits[0]) if o.audits else None,
    )
    for r in (plain, unbound, capped, keyed, fair):
        r.compare = True
    # pgstask's exact figure beside the polls': the most its claims left running.
    exact = (
        (running, "max", "running"),
        (of_key, "per_key", "of_key"),
        (of_key_fair, "fair", "of_key"),
    )
    for r, case, attr in exact:
        got = results.get("pgstask", {}).get(case)
        if got and got.audits and r.values.get("pgstask") is not None:
            r.notes["pgstask"] = f"(claims {max(getattr(a, attr) for a in got.audits)})"
    for r, case, target in (
        (running, "max", f"= {MAX_RUNNING}, never more"),
        (of_key, "per_key", "= 1, never more"),
        (of_key_fair, "fair", "= 1, never more"),
        (rated, "rate", f"<= {RATE_LIMIT / RATE_PER:,.0f}/s, never more"),
    ):
        got = results.get("pgstask", {}).get(case)
        r.target, r.met = target, bool(got and got.drains and got.held and got.reached)
    return [plain, unbound, cost, capped, running, keyed, of_key, fair, of_key_fair, rated]
