"""The one controller of the bot: watches the cluster, drives operations, keeps Slack current.

DESIGN.md principles 2 and 3: Slack handlers only record intent; this object watches
every Velero Backup and Restore in the Velero namespace and the bot's restore records
(list + watch with resume and relist, via k8s.watch), and reconciles each object by
name, level-triggered: read what the cluster says now, decide, act, and come back later
if needed. It posts and edits each operation's one channel message, runs approved
restores (k8s.restore_executor, resumable) in worker threads, expires approval requests
and announces each result once. Whether a message was posted and a result announced is
stored on the object itself (annotations), so a restarted process carries on with the
same message and never announces twice.

It is deliberately one object with `start()`/`stop()`: with several replicas only the
leader runs it (a Lease, issue 7); the Slack listeners run everywhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from slack_sdk import WebClient

from config.models import Config
from k8s import labels as L
from k8s import resources as R
from k8s.client import Cluster
from k8s.errors import ClusterError
from k8s.restore_executor import Progress
from k8s.restore_record import RECORD_KIND
from k8s.watch import Collection, WatchStats, wait_for

from .logs import operation
from .metrics import Metrics
from .reconciler_queue import WorkQueue
from .slack_io import MessageRef, MessageUpdater, SlackFailure

log = logging.getLogger("ragbot.reconciler")

BACKUP, RESTORE, RECORD = "backup", "restore", "record"
Key = tuple[str, str, str]  # (kind, namespace, name)


@dataclass(frozen=True)
class Options:
    """Timing knobs; the defaults suit production, tests shorten them."""

    resync_seconds: float = 30.0
    min_update_interval: float = 1.0
    retry_delay: float = 2.0
    max_retry_delay: float = 60.0
    #: Finished operations older than this (before the bot started) with no Slack message
    #: are history, not news: a first start does not announce last month's backups.
    history_window: timedelta = timedelta(hours=1)
    workers: int = 3
    results_timeout: float = 20.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    def __init__(self, cluster: Cluster, cfg: Config, client: WebClient, *,
                 options: Options | None = None, now: Callable[[], datetime] = utcnow,
                 metrics: Metrics | None = None) -> None:  # fmt: skip
        self.cluster, self.cfg, self.client = cluster, cfg, client
        self.metrics = metrics or Metrics()
        self.options = options or Options()
        self.now = now
        self.channel = cfg.ragbot.slack.channel
        self.started_at = now()
        self.queue = WorkQueue()
        self.updater = MessageUpdater(client, min_interval=self.options.min_update_interval,
                                      retry_delay=self.options.retry_delay)  # fmt: skip
        self._stopped = threading.Event()
        self._views: dict[str, Collection] = {}
        self._lock = threading.Lock()
        #: Message refs and announcements done by this process, ahead of the watch cache.
        self.refs: dict[Key, MessageRef] = {}
        self.announced: set[Key] = set()
        self.progress: dict[str, Progress] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._failures: dict[Key, int] = {}
        self._threads: list[threading.Thread] = []

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> Reconciler:
        self.updater.start()
        vns, bns = self.cfg.velero.namespace, self.cfg.ragbot.namespace
        watches = [
            (BACKUP, R.BACKUP, vns, ""),
            (RESTORE, R.RESTORE, vns, ""),
            (RECORD, R.CONFIGMAP, bns, f"{L.LABEL_RECORD_KIND}={RECORD_KIND}"),
        ]
        for kind, res, ns, selector in watches:
            self._spawn(f"watch-{kind}", self._watch, kind, res, ns, selector)
        for i in range(self.options.workers):
            self._spawn(f"reconcile-{i}", self._work)
        self._spawn("resync", self._resync)
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Stop watching and reconciling; running restores stop at their next check and
        stay `running` in the cluster, for the next process to resume."""
        self._stopped.set()
        self.queue.close()
        for t in list(self._workers.values()):
            t.join(timeout)
        self.updater.stop()

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=f"ragbot-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    # ----- the cluster's view ------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        view = self._views.get(kind)
        return view.get(namespace, name) if view is not None else None

    def items(self, kind: str) -> list[dict[str, Any]]:
        view = self._views.get(kind)
        if view is None:
            return []
        for _ in range(5):
            try:
                return list(view.objects.values())
            except RuntimeError:  # changed while copying: try again
                continue
        return []

    def synced(self) -> bool:
        """Every watch has listed at least once."""
        return all(k in self._views for k in (BACKUP, RESTORE, RECORD))

    def _watch(self, kind: str, res: R.Resource, namespace: str, selector: str) -> None:
        seen: dict[tuple[str, str], str] = {}

        def changed(view: Collection) -> None:
            self._views[kind] = view
            for key, obj in list(view.objects.items()):
                rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
                if seen.get(key) != rv:
                    seen[key] = rv
                    self.queue.add((kind, *key))
            for key in [k for k in seen if k not in view.objects]:
                del seen[key]
                self.queue.add((kind, *key))

        delay = self.options.retry_delay
        stats = WatchStats(listener=self.metrics.watch_listener(kind))
        while not self.stopping:
            try:
                wait_for(self.cluster, res, namespace, lambda _v: None, timeout=3600.0,
                         what=f"{kind} changes", label_selector=selector, on_change=changed,
                         stats=stats, stop=self._stopped.is_set)  # fmt: skip
                delay = self.options.retry_delay
            except ClusterError as err:
                if self.stopping:
                    return
                self.metrics.watch_restart(kind)
                log.warning("watching %s failed: %s; again in %.0fs", kind, err, delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, self.options.max_retry_delay)
            except Exception:
                self.metrics.watch_restart(kind)
                log.exception("watching %s crashed; restarting it", kind)
                self._stopped.wait(delay)

    def _resync(self) -> None:
        """Look at every object again now and then (expiries, retries nobody woke up)."""
        while not self._stopped.wait(self.options.resync_seconds):
            self.resync()

    def resync(self) -> None:
        for kind, view in list(self._views.items()):
            for key in list(view.objects):
                self.queue.add((kind, *key))

    # ----- reconciling -------------------------------------------------------------------

    def _work(self) -> None:
        from .reconciler_backups import reconcile_backup
        from .reconciler_restores import reconcile_record, reconcile_restore

        table = {BACKUP: reconcile_backup, RESTORE: reconcile_restore, RECORD: reconcile_record}
        while True:
            got = self.queue.get()
            if got is None:
                return
            key = cast(Key, got)
            again: float | None
            try:
                with operation(key[2]):
                    again = table[key[0]](self, key)
                self._failures.pop(key, None)
            except (SlackFailure, ClusterError) as err:
                again = self._backoff(key)
                log.warning("reconciling %s/%s/%s: %s; again in %.1fs", *key, err, again)
            except Exception:
                again = self._backoff(key)
                log.exception("reconciling %s/%s/%s failed; again in %.1fs", *key, again)
            finally:
                self.queue.done(key)
            if again is not None and not self.stopping:
                self.queue.add(key, after=again)

    def _backoff(self, key: Key) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return min(self.options.retry_delay * (2**n), self.options.max_retry_delay)

    def is_history(self, finished: datetime | None) -> bool:
        return finished is not None and finished < self.started_at - self.options.history_window

    def patch_annotations(self, res: R.Resource, namespace: str, name: str,
                          annotations: dict[str, str]) -> None:  # fmt: skip
        R.merge_patch(self.cluster, res, namespace, name, {"metadata": {"annotations": annotations}})

    # ----- restore workers ---------------------------------------------------------------

    def ensure_worker(self, record_id: str) -> None:
        """Run (or resume) the restore `record_id` in a thread, unless one already does."""
        from .reconciler_restores import run_worker

        with self._lock:
            if self.stopping:
                return
            current = self._workers.get(record_id)
            if current is not None and current.is_alive():
                return
            t = threading.Thread(target=run_worker, args=(self, record_id),
                                 name=f"ragbot-restore-{record_id}", daemon=True)  # fmt: skip
            self._workers[record_id] = t
            t.start()

    def worker_alive(self, record_id: str) -> bool:
        t = self._workers.get(record_id)
        return t is not None and t.is_alive()


__all__ = ["BACKUP", "RECORD", "RESTORE", "Key", "Options", "Reconciler", "utcnow"]
