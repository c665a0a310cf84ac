"""Cron expressions in a time zone: when the slots of a schedule fall.

An expression has five fields (minute, hour, day of month, month, day of week), or six with a
**seconds field first** (``*/15 * * * * *``: every 15 seconds), or is one of the aliases
``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight`` and ``@hourly``.
The fields follow Debian's cron (names such as ``MON`` and ``JAN``, ranges, lists, steps,
``L``, ``W`` and ``#``); pgstask evaluates them with the cronsim library.

Slots are computed in the schedule's IANA time zone and returned in UTC. Daylight-saving
changes follow Vixie cron, for five-field expressions that name a minute and an hour: a slot in
the hour that is skipped (clocks forward) falls right after the change, one in the hour that is
repeated (clocks back) falls once, at its first occurrence. Expressions that run every minute or
every hour, and six-field ones, keep their rhythm through the change (they step in real time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from pgstask.errors import InvalidScheduleError

#: The aliases of the usual cron implementations, and the expressions they stand for.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_EXPRESSION = 200


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Kyiv``); ``InvalidScheduleError`` with a
    clear message for anything else."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidScheduleError(
            "a time zone is a non-empty IANA name such as Europe/Kyiv or UTC"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidScheduleError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Kyiv or UTC"
        ) from None


@dataclass(frozen=True, slots=True)
class Cron:
    """A valid cron expression in a time zone; ``next_after`` and ``latest_at`` give its
    slots."""

    #: As given (an alias stays an alias), without surrounding blanks.
    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str):
            raise InvalidScheduleError("a cron expression is a string such as '0 3 * * *'")
        object.__setattr__(self, "expression", self.expression.strip())
        zone(self.timezone)
        fields = self.fields
        if len(self.expression) > MAX_EXPRESSION:
            raise InvalidScheduleError(
                f"the cron expression is longer than {MAX_EXPRESSION} characters"
            )
        if self.expression.startswith("@") and self.expression.lower() not in ALIASES:
            raise InvalidScheduleError(
                f"unknown cron alias {self.expression!r}; use one of {', '.join(ALIASES)}"
            )
        if len(fields.split()) not in (5, 6):
            raise InvalidScheduleError(
                f"the cron expression {self.expression!r} has {len(fields.split())} fields: "
                "use 5 (minute hour day-of-month month day-of-week) or 6 (a seconds field first)"
            )
        try:
            self._next(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        except CronSimError as exc:
            raise InvalidScheduleError(
                f"invalid cron expression {self.expression!r}: {str(exc).lower()}"
            ) from None

    @property
    def fields(self) -> str:
        """The fields the expression stands for (an alias's expansion)."""
        return ALIASES.get(self.expression.lower(), self.expression)

    @property
    def has_seconds(self) -> bool:
        """The expression has a seconds field (six fields): its slots may be under a minute
        apart."""
        return len(self.fields.split()) == 6

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first slot strictly after ``moment`` (an aware time), in UTC; None when the
        expression matches no time in the next 50 years (``0 0 30 2 *``)."""
        try:
            return self._next(moment)
        except StopIteration:
            return None

    def latest_at(self, moment: dt.datetime) -> dt.datetime | None:
        """The last slot at or before ``moment``, in UTC (what a misfire runs); None when there
        is none in the 50 years before it."""
        # Reverse iteration steps back one second first: start a second after the moment.
        second = _aware(moment).replace(microsecond=0) + dt.timedelta(seconds=1)
        try:
            found = next(CronSim(self.fields, second.astimezone(zone(self.timezone)), reverse=True))
        except StopIteration:
            return None
        return found.astimezone(dt.UTC)

    def _next(self, moment: dt.datetime) -> dt.datetime:
        local = _aware(moment).astimezone(zone(self.timezone))
        return next(CronSim(self.fields, local)).astimezone(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("a slot is computed from an aware datetime (one with a tzinfo)")
    return moment
