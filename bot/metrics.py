"""Prometheus metrics of one bot process, in a registry of their own.

Operators look at Prometheus before they look at Slack (issue 7), so everything the bot
does that an operator may want to graph or alert on is counted here: commands by outcome,
backups and restores by trigger and result with their durations, the time of the last
successful backup, leadership, and the errors of the two APIs the bot depends on.

Each `Metrics` owns a `CollectorRegistry` instead of using prometheus_client's global
one, so tests (and the all-in-one sandbox) can run several bots in one process without
"duplicated timeseries" errors. The instrumented code gets a `Metrics` passed in; the
cluster layer (`k8s/`) never imports prometheus: it reports through callbacks
(`WatchStats.listener`, `count_cluster_errors`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from k8s.client import Cluster

T = TypeVar("T")

#: Backups take minutes to hours; restores about as long (cleanup + Velero + readiness).
DURATION_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every ragbot metric; method names say what happened, not which series moves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.commands = Counter("ragbot_commands", "Slash commands received, by outcome.",
                                ["command", "verb", "outcome"], registry=r)  # fmt: skip
        self.backups = Counter("ragbot_backups", "Backups that reached a terminal phase (announced).",
                               ["trigger", "result"], registry=r)  # fmt: skip
        self.restores = Counter("ragbot_restores", "Restores that finished (announced).",
                                ["trigger", "result"], registry=r)  # fmt: skip
        self.backup_duration = Histogram("ragbot_backup_duration_seconds",
                                         "Backup start to completion.", buckets=DURATION_BUCKETS,
                                         registry=r)  # fmt: skip
        self.restore_duration = Histogram("ragbot_restore_duration_seconds",
                                          "Restore start (after approval) to finish.",
                                          buckets=DURATION_BUCKETS, registry=r)  # fmt: skip
        self.last_success = Gauge("ragbot_last_successful_backup_timestamp_seconds",
                                  "Completion time of the newest Completed backup (Unix seconds).",
                                  registry=r)  # fmt: skip
        self.leader = Gauge("ragbot_leader", "1 while this replica holds the leader Lease.",
                            registry=r)  # fmt: skip
        self.slack_errors = Counter("ragbot_slack_api_errors", "Slack Web API calls that failed "
                                    "after the SDK's retries.", ["method", "error"], registry=r)  # fmt: skip
        self.kube_errors = Counter("ragbot_kubernetes_api_errors", "Kubernetes API calls that "
                                   "failed after retries, by error class.", ["reason"], registry=r)  # fmt: skip
        self.watch_restarts = Counter("ragbot_watch_restarts", "Watch streams reconnected or "
                                      "relisted (410 Gone) or restarted after a failure.",
                                      ["resource"], registry=r)  # fmt: skip
        self._lock = threading.Lock()
        self._last_success = 0.0

    # ----- events ------------------------------------------------------------------------

    def command(self, command: str, verb: str, outcome: str) -> None:
        """outcome: ok | denied | usage-error | help | error."""
        self.commands.labels(command=command.lstrip("/"), verb=verb or "-", outcome=outcome).inc()

    def backup_finished(self, *, trigger: str, result: str, seconds: float | None,
                        completed: datetime | None) -> None:  # fmt: skip
        self.backups.labels(trigger=trigger or "external", result=result or "unknown").inc()
        if seconds is not None:
            self.backup_duration.observe(seconds)
        if result == "Completed":
            self.saw_completed(completed)

    def saw_completed(self, completed: datetime | None) -> None:
        """A Completed backup exists: the gauge only moves forward (restarts relearn it)."""
        if completed is None:
            return
        ts = completed.timestamp()
        with self._lock:
            if ts > self._last_success:
                self._last_success = ts
                self.last_success.set(ts)

    def restore_finished(self, *, trigger: str, result: str, seconds: float | None) -> None:
        self.restores.labels(trigger=trigger or "external", result=result or "unknown").inc()
        if seconds is not None:
            self.restore_duration.observe(seconds)

    def set_leader(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)

    def slack_error(self, method: str, error: str) -> None:
        # Network errors carry a message; keep the label set small: the exception class.
        self.slack_errors.labels(method=method, error=error.split(":", 1)[0][:60]).inc()

    def kube_error(self, err: BaseException) -> None:
        self.kube_errors.labels(reason=type(err).__name__).inc()

    def watch_restart(self, resource: str) -> None:
        self.watch_restarts.labels(resource=resource).inc()

    def watch_listener(self, resource: str) -> Callable[[str], None]:
        """A `k8s.watch.WatchStats.listener` counting reconnects and relists of `resource`."""

        def listener(what: str) -> None:
            if what in ("reconnects", "relists_after_gone"):
                self.watch_restart(resource)

        return listener

    # ----- exposition --------------------------------------------------------------------

    def render(self) -> bytes:
        """The registry in Prometheus' text format (what `/metrics` serves)."""
        return generate_latest(self.registry)


def count_cluster_errors(cluster: Cluster, metrics: Metrics) -> None:
    """Count every failed `Cluster.call` (after its retries) by error class.

    k8s/ must not import prometheus, and Cluster has no hook, so the bound method is
    wrapped on this one instance; `raw` goes through `call` and is counted too. Calling
    it twice on one cluster wraps once.
    """
    if getattr(cluster, "_ragbot_counted", False):
        return
    inner = cluster.call

    @functools.wraps(inner)
    def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return inner(what, fn, *args, **kwargs)
        except Exception as err:
            metrics.kube_error(err)
            raise

    object.__setattr__(cluster, "call", call)
    object.__setattr__(cluster, "_ragbot_counted", True)


__all__ = ["CONTENT_TYPE", "Metrics", "count_cluster_errors"]
