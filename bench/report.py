"""The closing table: one row per figure, a column per system, pgstask's ratio to each peer, the
issue's target and a MET / NOT MET verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEMS = ("pgstask", "procrastinate", "pgqueuer")
LABELS = {"pgstask": "pgstask", "procrastinate": "procrastinate", "pgqueuer": "PgQueuer"}
PEERS = SYSTEMS[1:]


@dataclass(slots=True)
class Row:
    """A figure. ``values`` per system (None: failed or not measured, ``notes`` says why or
    with which setting); ``compare`` adds pgstask's ratio to each peer."""

    name: str
    unit: str  # tasks/s, rows/s, starts/s, tasks, ms, MB, s, %
    values: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None
    compare: bool = False

    def cell(self, system: str) -> str:
        value, note = self.values.get(system), self.notes.get(system, "")
        if value is None:
            return note
        return f"{number(value, self.unit)} {note}".rstrip()

    def ratio(self, peer: str) -> str:
        ours, theirs = self.values.get("pgstask"), self.values.get(peer)
        if not self.compare or not ours or not theirs:
            return ""
        return f"{ours / theirs:.2f}x"


def number(value: float, unit: str) -> str:
    if unit in ("tasks/s", "rows/s", "starts/s", "tasks"):
        return f"{value:,.0f}"
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:.1f}"


def verdict(met: bool | None) -> str:
    return "" if met is None else "MET" if met else "NOT MET"


def table(rows: list[Row], systems: tuple[str, ...] = SYSTEMS) -> str:
    peers = [s for s in systems if s != "pgstask"]
    head = ["figure", "unit", *(LABELS[s] for s in systems)]
    head += [f"÷ {LABELS[p]}" for p in peers] + ["target", "verdict"]
    body = [
        [
            r.name,
            r.unit,
            *(r.cell(s) for s in systems),
            *(r.ratio(p) for p in peers),
            r.target,
            verdict(r.met),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    numeric = range(2, 2 + len(systems) + len(peers))

    def fmt(line: list[str]) -> str:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "-" * len(fmt(head))
    return "\n".join([fmt(head), rule, *(fmt(line) for line in body)])
