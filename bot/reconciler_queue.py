"""A de-duplicating work queue with delayed re-adds, as controller-runtime's.

Reconcile by name, never by event (STYLE.md): watch events only say "look at this object
again". Ten progress events for one Backup while its reconcile runs collapse into one
more reconcile; "again after X" (an expiry, a Slack failure to retry) is a delayed add.
One consumer thread takes keys in order; a key is never handed out twice at once.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Hashable


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: list[Hashable] = []
        self._queued: set[Hashable] = set()
        self._busy: set[Hashable] = set()
        self._again: set[Hashable] = set()  # added while busy: queue once done
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._seq = 0
        self._closed = False

    def add(self, key: Hashable, *, after: float = 0.0) -> None:
        with self._cond:
            if self._closed:
                return
            if after > 0:
                self._seq += 1
                heapq.heappush(self._delayed, (time.monotonic() + after, self._seq, key))
            elif key in self._busy:
                self._again.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
            self._cond.notify_all()

    def get(self) -> Hashable | None:
        """The next key (blocks); None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                self._promote()
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    self._busy.add(key)
                    return key
                wait = self._delayed[0][0] - time.monotonic() if self._delayed else 3600.0
                self._cond.wait(max(0.0, wait))

    def done(self, key: Hashable) -> None:
        with self._cond:
            self._busy.discard(key)
            if key in self._again:
                self._again.discard(key)
                if key not in self._queued:
                    self._queued.add(key)
                    self._ready.append(key)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _promote(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key in self._busy:
                self._again.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
