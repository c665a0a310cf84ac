"""Retries: exponential backoff with bounded jitter, and a worker's retry rules (pure functions).

A ``RetryPolicy`` holds the rules of one worker: the backoff (``base_delay``, ``max_delay``,
``jitter``), which exceptions are retried (``retry_on``; None: all) and which fail the task at
once (``fail_on``), and how many times a task may snooze (``max_snoozes``; None: no limit). The
daemon's policy comes from the global settings (``PGSTASK_RETRY_BASE_DELAY``,
``PGSTASK_RETRY_MAX_DELAY``); ``for_worker`` lays a worker's settings over it (the keys of
``SETTING_KEYS``, each overridable on its own in ``s_workers.settings``).

Exceptions are matched by name, so that the daemon can judge one raised in a child process
(``isolation: "process"``) without importing its class: ``exception_names`` lists, for every
class of the exception's MRO, its name, its qualified name and its dotted path
(``requests.exceptions.ConnectionError``). A configured name without a dot matches any class of
that name; a dotted one the class at that path; a base class matches its subclasses.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pgstask.errors import MAX_DELAY, shown

#: The worker settings a ``RetryPolicy`` reads (docs/workers.md, "Retries, Retry and Snooze").
SETTING_KEYS = (
    "retry_base_delay",
    "retry_max_delay",
    "retry_jitter",
    "retry_on",
    "fail_on",
    "max_snoozes",
)

_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def backoff(
    attempt: int,
    *,
    base: float,
    maximum: float,
    jitter: float = 0.25,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before the attempt after ``attempt`` (1-based) failed.

    ``base * 2 ** (attempt - 1)``, capped at ``maximum``, then spread by up to ``jitter`` of
    itself in either direction (so retries of a burst of failures do not arrive together), and
    kept within ``[base * (1 - jitter), maximum]``.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, not {attempt}")
    delay = min(maximum, base * 2.0 ** min(attempt - 1, 62))
    spread = delay * jitter * (2.0 * rand() - 1.0)
    return max(base * (1.0 - jitter), min(maximum, delay + spread))


def exception_names(exc: BaseException) -> tuple[str, ...]:
    """The names ``retry_on``/``fail_on`` match ``exc`` by: for each class of its MRO (most
    derived first, ``object`` left out), ``__name__``, ``__qualname__`` and
    ``module.__qualname__``, each once."""
    names: dict[str, None] = {}
    for cls in type(exc).__mro__[:-1]:
        for name in (cls.__name__, cls.__qualname__, f"{cls.__module__}.{cls.__qualname__}"):
            names[name] = None
    return tuple(names)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The retry rules of a worker (see the module docstring)."""

    base_delay: float
    max_delay: float
    jitter: float = 0.25
    #: Only exceptions of these names are retried; None: every exception.
    retry_on: tuple[str, ...] | None = None
    #: Exceptions of these names fail the task at once (over ``retry_on``).
    fail_on: tuple[str, ...] = ()
    #: How many times a task may snooze; None: no limit.
    max_snoozes: int | None = None

    def delay(self, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before the attempt after ``attempt``."""
        return backoff(
            attempt, base=self.base_delay, maximum=self.max_delay, jitter=self.jitter, rand=rand
        )

    def not_retried(self, names: Collection[str]) -> str | None:
        """Why an exception with these ``exception_names`` is not retried (a sentence for the
        task's log), or None when it is."""
        for name in self.fail_on:
            if name in names:
                return f"the worker's fail_on names {name}"
        if self.retry_on is not None and not any(name in names for name in self.retry_on):
            return "the worker's retry_on names neither its class nor a base class of it"
        return None

    def for_worker(self, identifier: str, settings: Mapping[str, Any]) -> RetryPolicy:
        """This policy with the retry settings of worker ``identifier`` laid over it; a
        ``ValueError`` naming the worker, the setting and what it must be for a bad one.

        A worker that sets only ``retry_max_delay`` below this policy's base delay starts its
        backoff at that maximum, and one that sets only ``retry_base_delay`` above this
        policy's maximum waits that long each time: a worker's own setting wins over a default.
        """
        given = {key: settings[key] for key in SETTING_KEYS if settings.get(key) is not None}
        if not given:
            return self
        changes: dict[str, Any] = {}
        for key, value in given.items():
            changes[key] = _CHECKS[key](value)
            if changes[key] is None:
                raise ValueError(_invalid(identifier, key, value))
        base = changes.pop("retry_base_delay", None)
        maximum = changes.pop("retry_max_delay", None)
        if base is not None and maximum is not None and maximum < base:
            raise ValueError(
                f"worker {identifier!r} has invalid settings retry_base_delay={base!r} and "
                f"retry_max_delay={maximum!r}: the maximum must not be smaller than the base"
            )
        if base is None:
            base = self.base_delay if maximum is None else min(self.base_delay, maximum)
        if maximum is None:
            maximum = max(self.max_delay, base)
        return dataclasses.replace(
            self,
            base_delay=base,
            max_delay=maximum,
            jitter=changes.get("retry_jitter", self.jitter),
            retry_on=changes.get("retry_on", self.retry_on),
            fail_on=changes.get("fail_on", self.fail_on),
            max_snoozes=changes.get("max_snoozes", self.max_snoozes),
        )


def _seconds(value: Any) -> float | None:
    """A positive number of seconds up to ``MAX_DELAY``; None for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and 0.0 < seconds <= MAX_DELAY:
            return seconds
    return None


def _jitter(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value < 1.0:
        return float(value)
    return None


def _names(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list | tuple):
        return None
    if not all(isinstance(name, str) and _NAME.fullmatch(name) for name in value):
        return None
    return tuple(value)


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "retry_base_delay": _seconds,
    "retry_max_delay": _seconds,
    "retry_jitter": _jitter,
    "retry_on": _names,
    "fail_on": _names,
    "max_snoozes": _count,
}

_ALLOWED = {
    "retry_base_delay": f"a number of seconds above 0 and at most {MAX_DELAY:.0f}",
    "retry_max_delay": f"a number of seconds above 0 and at most {MAX_DELAY:.0f}",
    "retry_jitter": "a number from 0 to less than 1 (0.25: up to 25 % either way)",
    "retry_on": 'a list of exception class names, e.g. ["ConnectionError", "mylib.Timeout"]',
    "fail_on": 'a list of exception class names, e.g. ["ValueError", "mylib.BadInput"]',
    "max_snoozes": "a whole number from 0 up, or null for no limit",
}


def _invalid(identifier: str, key: str, value: Any) -> str:
    value = shown(value)
    return f"worker {identifier!r} has an invalid setting {key}={value}; it must be {_ALLOWED[key]}"
