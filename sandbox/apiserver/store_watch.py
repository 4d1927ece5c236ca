"""Watches over the sandbox store: subscriptions, event history, resume and 410.

Split from store.py: the store commits writes and calls `_emit` under its lock; this
part hands each event to every matching watcher before the lock is released (so no
watcher misses one), keeps the bounded history a watch resumes from, and answers 410
Gone for a resourceVersion older than that history, as etcd compaction does.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from config.selectors import LabelSelector

from . import errors
from .fields import FieldSelector
from .resources import ResourceType


@dataclass(frozen=True)
class Event:
    rv: int
    rt_key: tuple[str, str]
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    """A subscription; the HTTP layer (or an in-process controller) drains `events`."""

    rt: ResourceType
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    events: queue.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=queue.Queue)
    closed: bool = False

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        m = obj.get("metadata") or {}
        if self.namespace and m.get("namespace") != self.namespace:
            return False
        return self.labels.matches(m.get("labels")) and self.fields.matches(obj)


class WatchHub:
    """The watch half of Store; it relies on Store's lock, history, RV and `list`."""

    lock: threading.RLock
    _rv: int
    _history: deque[Event]
    _compacted_rv: int
    _watchers: set[Watcher]

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        for w in list(self._watchers):
            if w.rt.key != event.rt_key or w.closed:
                continue
            out = _watch_event(w, event)
            if out is not None:
                w.events.put(out)

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        resource_version: str = "",
        *,
        initial_events_end: bool = False,
    ) -> Watcher:
        """Register a watcher; initial or replayed events are queued before live ones.

        With initial_events_end (sendInitialEvents=true) the initial ADDED events are
        followed by ("BOOKMARK", metadata) carrying the `k8s.io/initial-events-end`
        annotation at the list's resourceVersion, as the watch cache sends it.
        Raises ApiError 410 when resource_version is older than the retained history.
        """
        w = Watcher(rt, namespace, labels or LabelSelector(), fields or FieldSelector())
        with self.lock:
            if resource_version in ("", "0"):
                items, list_rv, _, _ = self.list(rt, namespace, w.labels, w.fields)
                for obj in items:
                    w.events.put(("ADDED", obj))
                if initial_events_end:
                    w.events.put(
                        (
                            "BOOKMARK",
                            {
                                "metadata": {
                                    "resourceVersion": str(list_rv),
                                    "annotations": {"k8s.io/initial-events-end": "true"},
                                }
                            },
                        )
                    )
            else:
                try:
                    since = int(resource_version)
                except ValueError:
                    raise errors.bad_request(
                        f'invalid resource version "{resource_version}"'
                    ) from None
                floor = self.history_floor()
                if since < floor:
                    raise errors.gone(f"too old resource version: {since} ({floor})")
                for event in self._history:
                    if event.rv > since and event.rt_key == rt.key:
                        out = _watch_event(w, event)
                        if out is not None:
                            w.events.put(out)
            self._watchers.add(w)
        return w

    def history_floor(self) -> int:
        """The oldest resourceVersion a watch (or an Exact list, a continue) may start at."""
        with self.lock:
            oldest = self._history[0].rv if self._history else self._rv + 1
            return max(oldest - 1, self._compacted_rv)

    def stop_watch(self, w: Watcher) -> None:
        with self.lock:
            w.closed = True
            self._watchers.discard(w)
        w.events.put(None)

    def compact(self) -> None:
        """Forget history up to now, as etcd compaction does: older watches get 410."""
        with self.lock:
            self._history.clear()
            self._compacted_rv = self._rv

    def watcher_count(self) -> int:
        with self.lock:
            return len(self._watchers)


def _watch_event(w: Watcher, event: Event) -> tuple[str, dict[str, Any]] | None:
    """What a watcher sees of an event: selector transitions become ADDED/DELETED."""
    now = w.matches(event.obj) if event.type != "DELETED" else False
    before = w.matches(event.old)
    if event.type == "DELETED":
        return ("DELETED", event.obj) if w.matches(event.obj) else None
    if now and before:
        return ("MODIFIED", event.obj)
    if now and not before:
        return ("ADDED", event.obj)
    if before and not now:
        return ("DELETED", event.obj)
    return None
