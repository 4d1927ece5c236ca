"""Switchable HTTP 429s, so tests can prove the bot survives Slack's rate limits.

Slack throttles per method and workspace (chat.postMessage about one message per second
per channel) and answers HTTP 429 with an integer `Retry-After` and
`{"ok": false, "error": "ratelimited"}`. The real limits are fuzzy, so the sandbox does
not imitate them; instead a test switches throttling on and off at run time:

- `every_nth=2`: every second call of the method is refused;
- `next_n=3`: the next three calls are refused, then calls pass again;
- `storm(seconds)`: every call is refused until the storm is over, each told to retry
  after the storm's remaining whole seconds (at least `retry_after`).

A rule applies to one method, or to every method when `method` is None. The limiter
only decides; the Web API server writes the 429.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Rule:
    every_nth: int | None = None
    next_n: int = 0
    until: float | None = None
    retry_after: int = 1
    count: int = 0


class RateLimiter:
    """Per-method (or global, key None) throttling rules. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rules: dict[str | None, _Rule] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def set(
        self,
        method: str | None = None,
        *,
        every_nth: int | None = None,
        next_n: int = 0,
        retry_after: int = 1,
    ) -> None:
        """Throttle `method` (all methods when None); replaces that method's rule."""
        if every_nth is not None and every_nth < 1:
            raise ValueError("every_nth must be at least 1")
        with self._lock:
            self._rules[method] = _Rule(every_nth=every_nth, next_n=next_n, retry_after=retry_after)

    def storm(self, seconds: float, method: str | None = None, *, retry_after: int = 1) -> None:
        """Refuse every call (of `method`, or all) for `seconds` from now."""
        with self._lock:
            self._rules[method] = _Rule(until=self._clock() + seconds, retry_after=retry_after)

    def clear(self, *methods: str) -> None:
        """Drop the rules of these methods, or every rule when none is named."""
        with self._lock:
            if not methods:
                self._rules.clear()
            for method in methods:
                self._rules.pop(method, None)

    def check(self, method: str) -> int | None:
        """Seconds to put in Retry-After if this call is refused, else None."""
        with self._lock:
            for key in (method, None):
                rule = self._rules.get(key)
                if rule is None:
                    continue
                retry = self._apply(rule)
                if retry is not None:
                    self.refused += 1
                    return retry
        return None

    def _apply(self, rule: _Rule) -> int | None:
        if rule.until is not None:
            left = rule.until - self._clock()
            if left > 0:
                return max(rule.retry_after, math.ceil(left))
            return None
        if rule.next_n > 0:
            rule.next_n -= 1
            return rule.retry_after
        if rule.every_nth is not None:
            rule.count += 1
            if rule.count % rule.every_nth == 0:
                return rule.retry_after
        return None
