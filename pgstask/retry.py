"""Retry delays: exponential backoff with bounded jitter (pure functions)."""

from __future__ import annotations

import random
from collections.abc import Callable


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
