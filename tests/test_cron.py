"""Cron expressions in a time zone (``pgstask.cron``): aliases, the seconds field, the
daylight-saving changes of a zone that has them (Europe/Kyiv: clocks forward at 03:00 on the last
Sunday of March, back at 04:00 on the last Sunday of October), and clear errors."""

from __future__ import annotations

import datetime as dt

import pytest

from pgstask.cron import ALIASES, Cron
from pgstask.errors import InvalidScheduleError

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def slots(cron: Cron, start: dt.datetime, n: int) -> list[dt.datetime]:
    out, moment = [], start
    for _ in range(n):
        found = cron.next_after(moment)
        assert found is not None
        out.append(found)
        moment = found
    return out


def test_slots_are_in_the_zone_and_returned_in_utc() -> None:
    kyiv = Cron("0 3 * * *", "Europe/Kyiv")
    assert kyiv.next_after(at(2026, 12, 5, 0, 0)) == at(2026, 12, 5, 1, 0)  # UTC+2 in winter
    assert kyiv.next_after(at(2026, 7, 5, 0, 0)) == at(2026, 7, 6, 0, 0)  # UTC+3 in summer
    assert Cron("0 3 * * *").next_after(at(2026, 12, 5, 0, 0)) == at(2026, 12, 5, 3, 0)


def test_next_is_strictly_after_and_latest_is_at_or_before() -> None:
    cron = Cron("0 3 * * *", "Europe/Kyiv")
    slot = at(2026, 12, 5, 1, 0)
    assert cron.next_after(slot) == at(2026, 12, 6, 1, 0)
    assert cron.next_after(slot - dt.timedelta(microseconds=1)) == slot
    assert cron.latest_at(slot) == slot
    assert cron.latest_at(slot + dt.timedelta(microseconds=500_000)) == slot
    assert cron.latest_at(slot - dt.timedelta(seconds=1)) == at(2026, 12, 4, 1, 0)


def test_the_skipped_hour_runs_right_after_the_change() -> None:
    """03:30 does not exist in Kyiv on 2026-03-29 (03:00 → 04:00): that day's slot falls at
    04:00 local time, then the schedule goes on at 03:30 summer time."""
    cron = Cron("30 3 * * *", "Europe/Kyiv")
    assert slots(cron, at(2026, 3, 27, 12, 0), 3) == [
        at(2026, 3, 28, 1, 30),  # 03:30 winter time (UTC+2)
        at(2026, 3, 29, 1, 0),  # 04:00 summer time, right after the change
        at(2026, 3, 30, 0, 30),  # 03:30 summer time (UTC+3)
    ]


def test_the_repeated_hour_runs_once() -> None:
    """03:30 happens twice in Kyiv on 2026-10-25 (04:00 → 03:00): one slot, at the first."""
    cron = Cron("30 3 * * *", "Europe/Kyiv")
    assert slots(cron, at(2026, 10, 23, 12, 0), 3) == [
        at(2026, 10, 24, 0, 30),
        at(2026, 10, 25, 0, 30),  # the first 03:30 (summer time); the second does not run
        at(2026, 10, 26, 1, 30),
    ]


def test_an_hourly_schedule_keeps_its_rhythm_through_both_changes() -> None:
    hourly = Cron("@hourly", "Europe/Kyiv")
    back = slots(hourly, at(2026, 10, 24, 23, 30), 4)
    assert back == [at(2026, 10, 25, h, 0) for h in range(4)]  # 03:00 twice, an hour apart
    forward = slots(hourly, at(2026, 3, 28, 23, 30), 4)
    assert forward == [at(2026, 3, 29, h, 0) for h in range(4)]


def test_a_seconds_field_comes_first() -> None:
    every_15s = Cron("*/15 * * * * *")
    assert every_15s.has_seconds and not Cron("* * * * *").has_seconds
    start = at(2026, 3, 28, 23, 30) + dt.timedelta(microseconds=500_000)
    assert slots(every_15s, start, 4) == [
        at(2026, 3, 28, 23, 30, 15),
        at(2026, 3, 28, 23, 30, 30),
        at(2026, 3, 28, 23, 30, 45),
        at(2026, 3, 28, 23, 31, 0),
    ]


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_aliases_stand_for_their_expressions(alias: str) -> None:
    cron = Cron(f" {alias.upper()} ", "Europe/Kyiv")
    assert cron.expression == alias.upper() and cron.fields == ALIASES[alias]
    same = Cron(ALIASES[alias], "Europe/Kyiv")
    assert cron.next_after(at(2026, 5, 17, 10, 0)) == same.next_after(at(2026, 5, 17, 10, 0))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "invalid cron expression '61 * * * *': bad minute"),
        ("* * *", "has 3 fields: use 5"),
        ("0 3 * * * * *", "has 7 fields"),
        ("", "has 0 fields"),
        ("@reboot", "unknown cron alias '@reboot'; use one of @yearly"),
        ("0 0 31 2 *", "bad day-of-month"),
        ("*/0 * * * *", "bad minute"),
        ("0 3 * * " + "1," * 200 + "1", "longer than 200 characters"),
        (5, "a cron expression is a string"),
    ],
)
def test_a_bad_expression_is_refused_with_its_reason(expression: object, message: str) -> None:
    with pytest.raises(InvalidScheduleError, match=message.replace("*", r"\*")):
        Cron(expression)  # type: ignore[arg-type]


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "UTC ", "../../etc/passwd", "Europe"])
def test_a_bad_time_zone_is_refused(timezone: str) -> None:
    with pytest.raises(InvalidScheduleError, match="time zone"):
        Cron("0 3 * * *", timezone)


def test_a_naive_moment_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        Cron("0 3 * * *").next_after(dt.datetime(2026, 1, 1))
