"""When to try a failed delivery again: a Svix-like schedule with jitter that honours ``Retry-After``."""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["DEFAULT_SCHEDULE", "MAX_RETRY_AFTER", "next_delay"]

DEFAULT_SCHEDULE: tuple[int, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
"""Seconds before each attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts).

A schedule always starts with 0: the first attempt is made as soon as the event is accepted."""

MAX_RETRY_AFTER = 3600.0
"""A vendor's ``Retry-After`` is honoured up to an hour; a longer wish is cut to this."""


def next_delay(
    schedule: Sequence[int], attempts_made: int, retry_after: float | None = None, *, jitter: float = 0.2
) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` when the schedule is exhausted.

    ``attempts_made`` counts attempts so far (1 after the first). The scheduled delay gets up to
    ``jitter`` (a fraction) added, so a vendor that failed many deliveries is not hit by all at once;
    ``Retry-After`` is a floor, capped at :data:`MAX_RETRY_AFTER`.
    """
    if attempts_made >= len(schedule):
        return None
    delay = float(schedule[attempts_made])
    delay += delay * jitter * random.random()
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay
