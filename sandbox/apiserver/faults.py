"""Faults the sandbox API server injects on demand, switchable while it runs.

ragbot must survive a slow API server, 5xx and 429 answers, watches dropped mid-stream
and 410 Gone; tests and the sandbox console flip these switches (in-process or through
`/sandbox/faults`) instead of patching the client.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class FaultSettings:
    latency_seconds: float = 0.0
    # Fraction of non-watch requests answered with error_code (0..1).
    error_rate: float = 0.0
    error_code: int = 503  # 500, 503 or 429
    retry_after_seconds: int = 1
    # Drop each watch connection (no terminating chunk) after this many events; 0 = never.
    watch_drop_after_events: int = 0
    # Answer the next N watch requests that carry a resourceVersion with 410 Gone.
    watch_gone_next: int = 0
    # Only requests whose path contains this substring are affected ("" = all).
    path_filter: str = ""


class Faults:
    """Thread-safe holder of the current FaultSettings with a seeded dice."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._rng = random.Random(seed)

    def get(self) -> FaultSettings:
        with self._lock:
            return FaultSettings(**asdict(self._settings))

    def set(self, **changes: Any) -> FaultSettings:
        names = {f.name for f in fields(FaultSettings)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        with self._lock:
            for key, value in changes.items():
                setattr(self._settings, key, type(getattr(self._settings, key))(value))
            return FaultSettings(**asdict(self._settings))

    def clear(self) -> None:
        with self._lock:
            self._settings = FaultSettings()

    def applies(self, path: str) -> bool:
        with self._lock:
            return self._settings.path_filter in path

    def roll_error(self, path: str) -> int | None:
        """The error code to answer with, or None to serve the request normally."""
        with self._lock:
            s = self._settings
            if s.error_rate <= 0 or s.path_filter not in path:
                return None
            return s.error_code if self._rng.random() < s.error_rate else None

    def take_watch_gone(self, path: str) -> bool:
        with self._lock:
            if self._settings.watch_gone_next > 0 and self._settings.path_filter in path:
                self._settings.watch_gone_next -= 1
                return True
            return False
