"""Client-side pacing under RevenueCat's per-domain, per-minute rate limits.

RevenueCat counts requests per API key, per *domain* (Customer Information 480/min, Project
Configuration 60/min, ...) in one-minute periods, and reports the count on every success in
``RevenueCat-Rate-Limit-Current-Usage`` / ``RevenueCat-Rate-Limit-Current-Limit``. A 429 is only a
retry later, so a long backfill should not reach it. Two rules, per domain, keep it under:

* our own requests: at most ``budget`` (the limit minus a 10 % reserve, at least one) in any 60 s
  sliding window, which also bounds any fixed one-minute period the vendor may use;
* the vendor's count (other clients may share the key): once an answer reports usage at or past the
  budget, wait until a whole period has passed since that answer, when the count must have started over;
  if the next answer still reports it, wait another period.

Waits are capped at 60 s, well inside a sync's lease, which each checkpoint renews.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_LIMITS", "WINDOW", "Pacer"]

WINDOW = 60.0
"""RevenueCat's rate-limiting period, in seconds."""
DEFAULT_LIMITS = {"customer_information": 480, "project_configuration": 60}
"""Requests per minute per domain, as documented; the headers of each answer take precedence."""
_FALLBACK_LIMIT = 60
USAGE_HEADER = "RevenueCat-Rate-Limit-Current-Usage"
LIMIT_HEADER = "RevenueCat-Rate-Limit-Current-Limit"


@dataclass
class _Domain:
    limit: int
    high_since: float | None = None
    """When an answer first reported usage at or past the budget (cleared by one below it)."""
    sent: deque[float] = field(default_factory=deque)

    @property
    def budget(self) -> int:
        return max(1, self.limit - max(1, self.limit // 10))

    def wait(self, now: float) -> float:
        while self.sent and self.sent[0] <= now - WINDOW:
            self.sent.popleft()
        wait = 0.0
        if len(self.sent) >= self.budget:  # until enough of our own requests leave the window
            wait = self.sent[len(self.sent) - self.budget] + WINDOW - now
        if self.high_since is not None:  # until the vendor's period has surely ended
            wait = max(wait, self.high_since + WINDOW - now)
        return min(max(wait, 0.0), WINDOW)


class Pacer:
    """Waits, when needed, before each request to a domain; learns the limits from the answers."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._domains: dict[str, _Domain] = {}
        self.waited = 0.0
        """Seconds spent waiting so far, for the log."""

    def _domain(self, name: str) -> _Domain:
        found = self._domains.get(name)
        if found is None:
            found = self._domains[name] = _Domain(DEFAULT_LIMITS.get(name, _FALLBACK_LIMIT))
        return found

    def before(self, domain: str) -> None:
        """Call before sending a request to ``domain``: sleeps if the request would go over the budget."""
        state = self._domain(domain)
        wait = state.wait(self._clock())
        if wait > 0:
            self._sleep(wait)
            self.waited += wait
        state.sent.append(self._clock())

    def after(self, domain: str, headers: Mapping[str, str]) -> None:
        """Call with each answer's headers: the vendor's count and limit for ``domain``."""
        state = self._domain(domain)
        limit, usage = _int(headers.get(LIMIT_HEADER)), _int(headers.get(USAGE_HEADER))
        if limit is not None and limit > 0:
            state.limit = limit
        if usage is None:
            return
        now = self._clock()
        if usage < state.budget:
            state.high_since = None
        elif state.high_since is None or now >= state.high_since + WINDOW:
            state.high_since = now


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None
