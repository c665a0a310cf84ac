"""What became of a run (``Outcome``), in words for people (``describe_outcomes``) and for
telemetry (``tell``: the run's ``process`` span and metrics, ``pgstask.telemetry``).

The runner makes outcomes, the completer writes them, the run table counts them, and the CLI
describes them; a module of their own so that each of those imports it, not the runner's
internals.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pgstask.logs import LogRecord
from pgstask.runtime.invocation import Ending, EndingKind
from pgstask.task import Task
from pgstask.telemetry import Processing
from pgstask.workers.context import StopReason, TaskRun


class OutcomeKind(enum.Enum):
    """How a run ended, as the completer writes it (the outcome kinds of docs/architecture.md)."""

    COMPLETED = "completed"
    FAILED = "failed"  # retried when retry_delay is set, final otherwise
    SNOOZED = "snoozed"  # Snooze: pending again after snooze_delay, attempt not counted
    GIVEN_BACK = "given_back"  # shutdown: back to pending, attempt not counted
    DROPPED = "dropped"  # cancelled or lost: the task is no longer ours, nothing to write


#: The outcome kinds of ``OutcomeKind``, in the order they are told, with what
#: each means (docs/cli.md explains them further).
OUTCOME_WORDS = {
    "completed": "completed",
    "failed": "failed",
    "snoozed": "snoozed (pending again later)",
    "given_back": "given back (pending again)",
    "dropped": "dropped (cancelled or taken over while running)",
}


def describe_outcomes(counts: Mapping[str, int], *, retried: int = 0) -> str:
    """A sentence of what a daemon or ``run-once`` did with the tasks it ran: ``3 completed,
    1 failed, 2 given back (pending again), 1 dropped (cancelled or taken over while
    running)``. ``completed`` and ``failed`` are always told, the other kinds when they
    happened; ``retried`` of the failed ones will run again."""
    parts = []
    for kind in [*OUTCOME_WORDS, *sorted(counts.keys() - OUTCOME_WORDS.keys())]:
        n = counts.get(kind, 0)
        if n or kind in ("completed", "failed"):
            text = f"{n} {OUTCOME_WORDS.get(kind, kind.replace('_', ' '))}"
            if kind == "failed" and retried:
                text += f" ({retried} will be retried)"
            parts.append(text)
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one run of a task."""

    task: Task
    kind: OutcomeKind
    message: str | None = None
    result: Any = None
    error: str | None = None
    retry_delay: float | None = None
    #: SNOOZED: seconds until the task may run again (its ``message``: the action's words).
    snooze_delay: float | None = None
    logs: tuple[LogRecord, ...] = ()
    touched_progress: bool = False
    #: Highest resident set size in bytes seen for the run (see the module docstring).
    peak_memory: int | None = None

    @property
    def succeeded(self) -> bool:
        """The run completed."""
        return self.kind is OutcomeKind.COMPLETED


def raised(seen: Processing, ending: Ending) -> None:
    """Tell the run's span what its action raised, if it raised (an ``exception`` event)."""
    if ending.kind in (EndingKind.RAISED, EndingKind.RETRY):
        seen.raised(ending.names, ending.error, ending.trace)


def tell(seen: Processing, run: TaskRun, outcome: Outcome) -> Outcome:
    """Tell the run's span and metrics how it ended (``pgstask.outcome``: completed, failed,
    retry, snoozed, cancelled, lost, given_back; a failure's status ERROR, a timeout's
    ``error.type`` ``timeout``; a cancel is not an error); returns ``outcome``."""
    reason = run.stop_reason.value if run.stop_reason is not None else None
    kind = outcome.kind
    if kind is OutcomeKind.FAILED:
        word = "failed" if outcome.retry_delay is None else "retry"
        seen.ended(word, error=outcome.message or "Failed", stop_reason=reason)
    elif kind is OutcomeKind.DROPPED:
        cancelled = run.stop_reason is StopReason.CANCELLED
        seen.ended("cancelled" if cancelled else "lost", stop_reason=reason)
    else:
        seen.ended(kind.value, stop_reason=reason)
    return outcome
