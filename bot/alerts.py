"""Channel alerts: things an operator must act on, said once when they start and once when they end.

The leader runs one `AlertMonitor`. Every `interval` seconds (and whenever `wake()` is
called) it lists Backups, Restores, BackupStorageLocations and Velero's pods, and works
out which conditions hold now:

- `backup-stuck` / `restore-stuck`: a Backup or Restore has been in the same
  non-terminal phase, with no progress, longer than `ragbot.alerts.stuck_after`
  (the Velero pod was OOM-killed, a plugin hangs). 0 turns it off.
- `no-recent-backup`: no Completed backup younger than `ragbot.alerts.max_backup_age`
  (the schedule is paused, backups keep failing). 0 turns it off.
- `bsl-unavailable`: a BackupStorageLocation is `Unavailable` (bucket, credentials).
- `velero-not-ready`: no Running, ready Velero server pod (crash loop, scaled to 0).
  These two must hold for `grace` first, so a Velero rollout is not an alert.

What was announced is not kept in memory but in the ConfigMap `ragbot-alerts`
(k8s.alert_state): a new process or a new leader reads it and neither re-posts an active
alert nor forgets to clear it. An alert is recorded only after `post` succeeded (at
least once, never silently lost); a post that fails is tried again at the next round.
A category whose objects could not be listed is left alone that round: an API hiccup
must not "clear" anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from config.models import Config
from handlers.blocks import alert_message
from handlers.blocks.kit import Message
from handlers.views import Alert, AlertKind
from k8s import labels as L
from k8s import resources as R
from k8s.alert_state import Entry, alert_key, read_alerts, update_alerts
from k8s.backup_views import parse_time
from k8s.backups import label_selector
from k8s.client import Cluster
from k8s.errors import ClusterError

from .logs import operation

log = logging.getLogger("ragbot.alerts")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Seen:
    signature: tuple[Any, ...]
    since: datetime
    moved: bool = False  # this process saw the state change at least once


@dataclass
class _Round:
    """One evaluation: alerts that hold, those past their limit, categories listed OK."""

    holding: dict[str, Alert]
    due: set[str]
    evaluated: set[str]
    cleared: dict[str, Alert]  # how to word the clearance of each kind/subject, when known
    observed: set[str] = field(default_factory=set)  # non-terminal objects seen this round


class AlertMonitor:
    """Evaluates the alert conditions and posts their start and end, once each."""

    def __init__(self, cluster: Cluster, cfg: Config, post: Callable[[Message], Any],
                 clock: Callable[[], datetime] = _utcnow, *, interval: float = 15.0,
                 grace: timedelta = timedelta(seconds=60)) -> None:  # fmt: skip
        self.cluster, self.cfg, self.post, self.clock = cluster, cfg, post, clock
        self.interval = interval
        self.grace = grace
        self.namespace = cfg.ragbot.namespace
        self._seen: dict[str, _Seen] = {}
        #: Posted but not yet written to the ConfigMap (the write failed): never re-post.
        self._unrecorded: dict[str, Entry | None] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> AlertMonitor:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ragbot-alerts", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Evaluate now (e.g. on a watch event) instead of at the next interval."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.evaluate()
            except Exception:  # one bad round must not end alerting
                log.exception("evaluating alerts failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    # ----- one round ---------------------------------------------------------------------

    def evaluate(self) -> list[str]:
        """One round; returns what was posted (`started <key>` / `cleared <key>`)."""
        now = self.clock()
        current = self._conditions(now)
        try:
            active = read_alerts(self.cluster, self.namespace).active
        except ClusterError as err:
            log.warning("cannot read the active alerts: %s; trying again later", err)
            return []
        for key, entry in self._unrecorded.items():
            if entry is None:
                active.pop(key, None)
            else:
                active[key] = entry
        self._flush()
        posted: list[str] = []
        for key in sorted(current.due - set(active)):
            alert = current.holding[key]
            if self._announce(key, alert_message(alert, now=now), _entry(alert, now)):
                posted.append(f"started {key}")
        for key, entry in sorted(active.items()):
            kind = str(entry.get("kind") or key.split(".", 1)[0])
            if kind not in current.evaluated or key in current.holding:
                continue
            alert = current.cleared.get(key) or _from_entry(entry, now)
            if self._announce(key, alert_message(alert, now=now), None):
                posted.append(f"cleared {key}")
        return posted

    def _announce(self, key: str, msg: Message, entry: Entry | None) -> bool:
        """Post, then record (entry None: remove). False if the post failed."""
        with operation(f"alert {key}"):
            try:
                self.post(msg)
            except Exception as err:
                log.warning("posting alert %s failed: %s; trying again later", key, err)
                return False
            log.info("alert %s %s", key, "started" if entry is not None else "cleared")
            self._unrecorded[key] = entry
            self._flush()
            return True

    def _flush(self) -> None:
        """Write what was posted but not recorded yet (kept in memory until it is)."""
        if not self._unrecorded:
            return
        pending = dict(self._unrecorded)

        def change(active: dict[str, Entry]) -> dict[str, Entry]:
            for key, entry in pending.items():
                if entry is None:
                    active.pop(key, None)
                else:
                    active[key] = entry
            return active

        try:
            update_alerts(self.cluster, self.namespace, change)
        except ClusterError as err:
            log.warning("recording alerts %s failed: %s; retrying", ", ".join(pending), err)
            return
        for key in pending:
            if self._unrecorded.get(key, "gone") == pending[key]:
                del self._unrecorded[key]

    # ----- conditions --------------------------------------------------------------------

    def _conditions(self, now: datetime) -> _Round:
        rnd = _Round({}, set(), set(), {})
        for kind, check in (("stuck", self._stuck), ("no-recent-backup", self._no_recent),
                            ("bsl-unavailable", self._bsl), ("velero-not-ready", self._velero)):  # fmt: skip
            try:
                check(now, rnd)
            except ClusterError as err:
                log.warning("cannot evaluate %s alerts: %s", kind, err)
                continue
            rnd.evaluated.update(["backup-stuck", "restore-stuck"] if kind == "stuck" else [kind])
        # Forget objects that are gone or terminal, and conditions that ended.
        live = set(rnd.holding) | rnd.observed
        self._seen = {k: v for k, v in self._seen.items() if k in live}
        return rnd

    def _observe(self, key: str, signature: tuple[Any, ...], first: datetime) -> _Seen:
        """When the object's current state began: `first` if this process has not seen it
        before, else the moment this process saw it change."""
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen(signature, first)
        elif seen.signature != signature:
            seen = self._seen[key] = _Seen(signature, self.clock(), moved=True)
        return seen

    def _stuck(self, now: datetime, rnd: _Round) -> None:
        limit = self.cfg.ragbot.alerts.stuck_after
        ns = self.cfg.velero.namespace
        if not limit:
            return
        for res, kind, terminal in ((R.BACKUP, "backup-stuck", L.BACKUP_TERMINAL),
                                    (R.RESTORE, "restore-stuck", L.RESTORE_TERMINAL)):  # fmt: skip
            items, _ = R.list_all(self.cluster, res, ns)
            for obj in items:
                meta, status = obj.get("metadata") or {}, obj.get("status") or {}
                name, phase = str(meta.get("name", "")), str(status.get("phase") or "")
                annotations = meta.get("annotations") or {}
                subject = str(annotations.get(L.ANNO_RESTORE_RECORD) or name) if kind == "restore-stuck" else name
                key = alert_key(kind, subject)
                if phase in terminal:
                    rnd.cleared[key] = Alert(kind, subject, cleared=True, cleared_at=now,
                                             phase=phase, namespace=ns)  # fmt: skip
                    continue
                progress = status.get("progress") or {}
                done, total = progress.get("itemsBackedUp", progress.get("itemsRestored")), progress.get("totalItems")
                # New never moves, so its age counts from creation; a running phase has no
                # "last progress" time in Velero's status: count from when we first saw it
                # (after a restart an alert may come up to stuck_after late, never falsely).
                created = parse_time(meta.get("creationTimestamp"))
                first = (created or now) if phase in ("", "New") else now
                seen = self._observe(key, (phase, done, total), first)
                rnd.observed.add(key)
                due = now - seen.since >= limit
                if due:
                    rnd.due.add(key)
                # Holds while due; and while an announced alert's object was not seen moving
                # (a restarted monitor cannot tell yet, so it keeps the alert open).
                if due or not seen.moved:
                    detail = f"{kind.split('-')[0]} {name}: phase {phase or 'New'}" + (
                        f", items {done or 0}/{total}" if total else "")
                    rnd.holding[key] = Alert(kind, subject, detail=detail, since=seen.since,
                                             threshold=limit, phase=phase or "New", namespace=ns)  # fmt: skip
                else:
                    rnd.cleared[key] = Alert(kind, subject, cleared=True, cleared_at=now,
                                             phase=phase or "New", namespace=ns)  # fmt: skip

    def _no_recent(self, now: datetime, rnd: _Round) -> None:
        limit = self.cfg.ragbot.alerts.max_backup_age
        if not limit:
            return
        items, _ = R.list_all(self.cluster, R.BACKUP, self.cfg.velero.namespace)
        done = [(parse_time((b.get("status") or {}).get("completionTimestamp")), b) for b in items
                if L.phase_of(b) == L.BACKUP_SUCCESS]  # fmt: skip
        done = [(t, b) for t, b in done if t is not None]
        newest = max(done, key=lambda tb: tb[0], default=None)  # type: ignore[arg-type,return-value]
        kind: AlertKind = "no-recent-backup"
        key = alert_key(kind)
        if newest is not None:
            completed, obj = newest
            name = str(obj["metadata"]["name"])
            rnd.cleared[key] = Alert(kind, name, cleared=True, cleared_at=completed,
                                     namespace=self.cfg.velero.namespace)  # fmt: skip
            if completed is not None and now - completed <= limit:
                return
            rnd.holding[key] = Alert(kind, name, since=completed, threshold=limit,
                                     namespace=self.cfg.velero.namespace)  # fmt: skip
        else:
            rnd.holding[key] = Alert(kind, threshold=limit, namespace=self.cfg.velero.namespace)
        rnd.due.add(key)

    def _bsl(self, now: datetime, rnd: _Round) -> None:
        ns = self.cfg.velero.namespace
        items, _ = R.list_all(self.cluster, R.BSL, ns)
        for obj in items:
            name = str(obj["metadata"]["name"])
            status = obj.get("status") or {}
            phase = str(status.get("phase") or "")
            if phase != "Unavailable":
                continue
            key = alert_key("bsl-unavailable", name)
            since = self._observe(key, (phase,), now).since
            message = str(status.get("message") or "")
            rnd.holding[key] = Alert("bsl-unavailable", name, detail=message, since=since,
                                     phase=phase, namespace=ns)  # fmt: skip
            if now - since >= self.grace:
                rnd.due.add(key)

    def _velero(self, now: datetime, rnd: _Round) -> None:
        ns = self.cfg.velero.namespace
        selector = label_selector(dict(self.cfg.velero.velero_pod_labels))
        pods, _ = R.list_all(self.cluster, R.POD, ns, label_selector=selector)
        if any(_pod_ready(p) for p in pods):
            return
        key = alert_key("velero-not-ready")
        since = self._observe(key, (), now).since
        seen = "; ".join(_pod_line(p) for p in pods[:5]) or f"no pod labelled {selector} in {ns}"
        rnd.holding[key] = Alert("velero-not-ready", "velero", detail=seen, since=since,
                                 namespace=ns)  # fmt: skip
        if now - since >= self.grace:
            rnd.due.add(key)


def _pod_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("ready") for c in status.get("containerStatuses") or []
    )


def _pod_line(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    why = [str(((c.get("lastState") or {}).get("terminated") or {}).get("reason") or "")
           for c in status.get("containerStatuses") or []]  # fmt: skip
    reason = ", ".join(w for w in why if w)
    return f"{pod['metadata']['name']}: {status.get('phase', 'Pending')}, not ready" + (
        f" ({reason})" if reason else "")


def _entry(a: Alert, now: datetime) -> Entry:
    return {"kind": a.kind, "subject": a.subject, "namespace": a.namespace, "phase": a.phase,
            "since": (a.since or now).astimezone(UTC).isoformat(),
            "announced": now.astimezone(UTC).isoformat()}  # fmt: skip


def _from_entry(entry: Entry, now: datetime) -> Alert:
    """The clearance of an alert whose object is gone (a deleted Backup, BSL)."""
    kind = str(entry.get("kind") or "velero-not-ready")
    return Alert(kind, str(entry.get("subject") or ""), cleared=True, cleared_at=now,  # type: ignore[arg-type]
                 namespace=str(entry.get("namespace") or "velero"))  # fmt: skip


__all__ = ["AlertMonitor"]
