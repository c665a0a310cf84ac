"""Flow-control settings of a worker: ``max_running``, ``max_running_per_key``, ``rate_limit`` and
``fair_share`` (docs/limits.md).

They are worker settings like ``timeout``: the class attribute ``settings`` holds the defaults
and ``s_workers.settings`` overrides them key by key, live. Unlike the others they are enforced
by PostgreSQL, in the claim (``pgstask_claim_limited``): a daemon writes its classes' values to
``s_workers.defaults`` and the table computes ``s_workers.flow`` from both, refusing a value it
could not enforce. This module checks the same rules in Python first, so that a bad class
attribute fails when the daemon starts and a bad override gets a clear error before it reaches
the database (``tests/test_limits.py`` holds both to the same cases).

``on_parent_failure`` (docs/workflows.md) is the other worker setting the database reads (when a
parent of a task ends badly, in ``pgstask_release``): it goes to ``s_workers.defaults`` too, and
is checked here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: The settings this module owns (the rest of a worker's settings are the runner's).
KEYS = ("max_running", "max_running_per_key", "rate_limit", "fair_share")
#: The worker settings the database reads, written to ``s_workers.defaults`` from the class.
DATABASE_KEYS = (*KEYS, "on_parent_failure")
#: The largest count a limit may name.
MAX_COUNT = 1_000_000
#: The longest rate-limit period, in seconds (a week): the log of starts stays bounded.
MAX_PER = 604_800.0
MIN_PER = 0.001


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_flag(value: Any) -> bool:
    # Not "in (None, True, False)": 1 == True and 0 == False.
    return value is None or isinstance(value, bool)


def _check_count(name: str, value: Any) -> None:
    whole = _is_number(value) and math.isfinite(value) and value == int(value)
    if not whole or not 1 <= value <= MAX_COUNT:
        raise ValueError(
            f"worker setting {name} must be a whole number from 1 to {MAX_COUNT}, not {value!r} "
            "(null for no limit; deactivate the worker to stop its tasks)"
        )


def _check_rate(value: Any) -> None:
    shape = (
        'rate_limit must be an object {"limit": N, "per": seconds} with an optional '
        f'"per_key": true|false, not {value!r}'
    )
    if not isinstance(value, Mapping) or not {"limit", "per"} <= set(value) <= {
        "limit",
        "per",
        "per_key",
    }:
        raise ValueError(shape)
    limit, per = value["limit"], value["per"]
    if not _is_number(limit) or not _is_number(per):
        raise ValueError(shape)
    if not _is_flag(value.get("per_key")):
        raise ValueError(shape)
    if not math.isfinite(limit) or limit != int(limit) or not 1 <= limit <= MAX_COUNT:
        raise ValueError(
            f"rate_limit.limit must be a whole number from 1 to {MAX_COUNT}, not {limit!r}"
        )
    if not math.isfinite(per) or not MIN_PER <= per <= MAX_PER:
        raise ValueError(
            f"rate_limit.per must be a number of seconds from {MIN_PER} to {MAX_PER:.0f} "
            f"(a week), not {per!r}"
        )


def check(settings: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the setting when one of the flow-control settings in
    ``settings`` is invalid; null (``None``) is valid for each and means "none"."""
    for name in ("max_running", "max_running_per_key"):
        if settings.get(name) is not None:
            _check_count(name, settings[name])
    if settings.get("rate_limit") is not None:
        _check_rate(settings["rate_limit"])
    fair = settings.get("fair_share")
    if not _is_flag(fair):
        raise ValueError(f"worker setting fair_share must be true or false, not {fair!r}")
    policy = settings.get("on_parent_failure")
    if policy not in (None, "cancel", "run"):
        raise ValueError(
            f'worker setting on_parent_failure must be "cancel" or "run", not {policy!r}'
        )


def defaults_of(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a worker class's ``settings`` the database reads (``s_workers.defaults``)."""
    return {name: settings[name] for name in DATABASE_KEYS if name in settings}


def describe(flow: Mapping[str, Any] | None) -> str:
    """A worker's limits (``s_workers.flow``) in words, as the CLI and the dashboard show them;
    "" without any."""
    if not flow:
        return ""
    parts = []
    if flow.get("max_running"):
        parts.append(f"at most {flow['max_running']} running")
    if flow.get("max_running_per_key"):
        parts.append(f"{flow['max_running_per_key']} per key")
    rate = flow.get("rate_limit")
    if rate:
        per_key = " per key" if rate.get("per_key") else ""
        parts.append(f"{rate['limit']} starts per {rate['per']:g} s{per_key}")
    if flow.get("fair_share"):
        parts.append("keys share fairly")
    return ", ".join(parts)
