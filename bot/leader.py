"""Which replica leads: a thread that keeps (or waits for) the Lease and says when it changes.

Every replica serves Slack, but only the leader reconciles, announces and schedules
(issue 7). `LeaderElector` runs k8s.lease rounds in a thread: every `renew_seconds`
while leading, every `retry_seconds` while waiting. It calls `on_start` when it wins and
`on_stop` when it loses: when another holder shows up, or when it could not renew for
`lease_seconds - renew_seconds` (by then others may consider the lease expired, so it
stops before they start). On `stop()` it steps down and releases the Lease, so a rolling
update hands over at once instead of after the lease duration.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from config.models import Config
from k8s import lease
from k8s.client import Cluster
from k8s.errors import ClusterError

log = logging.getLogger("ragbot.leader")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def make_identity(environ: dict[str, str] | None = None) -> str:
    """The pod name (POD_NAME, else HOSTNAME) plus a random suffix: a restarted pod with
    the same name is a different candidate, never mistaken for the old holder."""
    env = os.environ if environ is None else environ
    pod = env.get("POD_NAME") or env.get("HOSTNAME") or "ragbot"
    return f"{pod}-{secrets.token_hex(3)}"


class LeaderElector:
    """Hold the leader Lease in a thread; `is_leader` says whether we do right now."""

    def __init__(self, cluster: Cluster, cfg: Config, identity: str, *,
                 on_start: Callable[[], None], on_stop: Callable[[], None],
                 lease_seconds: float = 15, renew_seconds: float = 5, retry_seconds: float = 1.0,
                 clock: Callable[[], datetime] = _utcnow) -> None:  # fmt: skip
        if renew_seconds >= lease_seconds:
            raise ValueError("renew_seconds must be shorter than lease_seconds")
        self.cluster, self.cfg, self.identity = cluster, cfg, identity
        self.on_start, self.on_stop = on_start, on_stop
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self.retry_seconds = min(retry_seconds, renew_seconds)
        self.clock = clock
        self.namespace = cfg.ragbot.namespace
        self._leading = False
        self._last_renew: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leading

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self._run, name="ragbot-leader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Step down (on_stop) and release the Lease so a successor takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            was = self._leading
            self._set(False)
        if was:
            try:
                lease.release(self.cluster, self.namespace, self.identity, now=self.clock())
            except ClusterError as err:
                log.warning("releasing the leader lease: %s (it expires by itself)", err)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.renew_seconds if self._leading else self.retry_seconds)

    def step(self) -> bool:
        """One election round (the thread's loop body; tests call it directly)."""
        now = self.clock()
        try:
            won = lease.try_acquire_or_renew(self.cluster, self.namespace, self.identity,
                                             now=now, lease_seconds=max(1, round(self.lease_seconds)))  # fmt: skip
            failed = False
        except ClusterError as err:
            log.warning("leader election round failed: %s", err)
            won, failed = False, True
        with self._lock:
            if self._stop.is_set():
                return self._leading
            if won:
                self._last_renew = now
                self._set(True)
            elif self._leading:
                deadline = timedelta(seconds=self.lease_seconds - self.renew_seconds)
                lost = not failed or self._last_renew is None or now - self._last_renew >= deadline
                if lost:
                    log.warning("%s lost the leader lease", self.identity)
                    self._set(False)
            return self._leading

    def _set(self, leading: bool) -> None:
        """Flip leadership: `is_leader` turns true only once on_start has run, and false
        before on_stop runs, so whoever reads it never sees a leader without its work."""
        if leading == self._leading:
            return
        log.info("%s %s", self.identity, "is now the leader" if leading else "is no longer the leader")
        if not leading:
            self._leading = False
        try:
            (self.on_start if leading else self.on_stop)()
        except Exception:
            log.exception("leader %s callback failed", "start" if leading else "stop")
        self._leading = leading


__all__ = ["LeaderElector", "make_identity"]
