"""Typed, read-only views of what the Slack messages show, made from the domain objects.

The restore record keeps its facts in a JSON document (`RestoreRecord.data`) so it can
grow without a schema migration; reading its keys in every builder would spread that
format over the Slack code. `restore_view` reads it once, here, tolerating missing keys
(a record written by an older version). The other values are those the cluster layer
does not model (yet): Velero's BackupResults/RestoreResults lists, the schedule's state
and the alerts the reconciler raises. All pure; no cluster access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from k8s.backup_views import BackupSummary, as_int, parse_time
from k8s.restore_record import STEP_DONE, STEP_FAILED, STEP_RUNNING, RestoreRecord


@dataclass(frozen=True)
class VeleroResults:
    """Velero's error and warning messages (the `<name>-results.gz` document), flattened."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> VeleroResults:
        """From BackupResults/RestoreResults: `{"errors": {"velero": [], "cluster": [],
        "namespaces": {ns: []}}, "warnings": {...}}`, each line prefixed with its scope."""
        data = data or {}
        return cls(_flatten(data.get("errors")), _flatten(data.get("warnings")))


def _flatten(part: Any) -> tuple[str, ...]:
    if not isinstance(part, Mapping):
        return ()
    out: list[str] = []
    for scope in ("velero", "cluster"):
        out += [f"{scope}: {m}" for m in part.get(scope) or () if m]
    namespaces = part.get("namespaces") or {}
    if isinstance(namespaces, Mapping):
        for ns, messages in sorted(namespaces.items()):
            out += [f"{ns}: {m}" for m in messages or () if m]
    return tuple(out)


@dataclass(frozen=True)
class StepView:
    key: str
    action: str
    title: str
    status: str
    detail: str = ""
    started: datetime | None = None
    finished: datetime | None = None


@dataclass(frozen=True)
class RestoreView:
    """What a message says about one restore record."""

    id: str
    state: str
    backup: str
    requester: str = ""
    reason: str = ""
    trigger: str = ""
    created: datetime | None = None
    expires: datetime | None = None
    approver: str = ""
    decided_by: str = ""  # who rejected or cancelled it, when the record says
    started: datetime | None = None
    finished: datetime | None = None
    velero_restore: str = ""
    velero_phase: str = ""
    items_restored: int = 0
    items_total: int = 0
    velero_errors: int = 0
    velero_warnings: int = 0
    failure_reason: str = ""
    validation_errors: tuple[str, ...] = ()
    error: str = ""
    failed_step: str = ""
    application_state: str = ""
    offline: tuple[str, ...] = ()
    pvcs: int = 0
    releases: tuple[str, ...] = ()
    plan_warnings: tuple[str, ...] = ()
    steps: tuple[StepView, ...] = ()

    def current(self) -> tuple[int, StepView] | None:
        """(1-based index, step) of the step running, failed, or next to run."""
        for wanted in (STEP_RUNNING, STEP_FAILED):
            for i, s in enumerate(self.steps, 1):
                if s.status == wanted:
                    return i, s
        for i, s in enumerate(self.steps, 1):
            if s.status != STEP_DONE:
                return i, s
        return None

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.status == STEP_DONE)

    def elapsed(self, now: datetime) -> float | None:
        if self.started is None:
            return None
        return max(0.0, ((self.finished or now) - self.started).total_seconds())

    def with_velero(self, status: Mapping[str, Any] | None) -> RestoreView:
        """This view with a live Velero Restore `status` (fresher than the record's copy)."""
        if not status:
            return self
        prog = status.get("progress") or {}
        return replace(
            self, velero_phase=str(status.get("phase") or self.velero_phase),
            items_restored=as_int(prog.get("itemsRestored")) or self.items_restored,
            items_total=as_int(prog.get("totalItems")) or self.items_total,
            velero_errors=as_int(status.get("errors")), velero_warnings=as_int(status.get("warnings")),
            failure_reason=str(status.get("failureReason") or ""),
            validation_errors=tuple(str(e) for e in status.get("validationErrors") or ()),
        )  # fmt: skip


def _t(value: Any) -> datetime | None:
    return parse_time(value) if value else None


def _step(s: Mapping[str, Any]) -> StepView:
    return StepView(
        key=str(s.get("key", "")), action=str(s.get("action", "")),
        title=str(s.get("title", "")), status=str(s.get("status", "")),
        detail=str(s.get("detail", "")), started=_t(s.get("started")),
        finished=_t(s.get("finished")),
    )  # fmt: skip


def restore_view(record: RestoreRecord) -> RestoreView:
    """Read a record's `record.json` (missing keys: empty)."""
    d = record.data
    summary = d.get("summary") or {}
    offline: Sequence[str] = summary.get("offline") or ()
    if not offline and d.get("plan"):
        try:
            offline = record.plan.offline
        except (KeyError, TypeError, ValueError):
            offline = ()
    steps = tuple(_step(s) for s in d.get("steps") or () if isinstance(s, Mapping))
    state = record.state
    decided = str(d.get(f"{state}_by") or "") if state in ("rejected", "cancelled") else ""
    view = RestoreView(
        id=record.id, state=state, backup=str(d.get("backup", "")),
        requester=str(d.get("requester", "")), reason=str(d.get("reason", "")),
        trigger=str(d.get("trigger", "")), created=_t(d.get("created")),
        expires=_t(d.get("expires")), approver=str(d.get("approver", "")), decided_by=decided,
        started=_t(d.get("started")), finished=_t(d.get("finished")),
        velero_restore=str(d.get("velero_restore", "")), error=str(d.get("error", "")),
        failed_step=str(d.get("failed_step", "")),
        application_state=str(d.get("application_state", "")),
        offline=tuple(str(ns) for ns in offline), pvcs=as_int(summary.get("pvcs")),
        releases=tuple(str(r) for r in summary.get("releases") or ()),
        plan_warnings=tuple(str(w) for w in summary.get("warnings") or ()), steps=steps,
    )  # fmt: skip
    velero = d.get("velero") or {}
    if isinstance(velero, Mapping) and velero:
        # While running the record holds {"phase", "itemsRestored", "totalItems"}; at the
        # end Velero's status fields with "progress" nested, as the Restore has them.
        flat = dict(velero)
        if "progress" not in flat:
            flat["progress"] = {k: flat.get(k) for k in ("itemsRestored", "totalItems")}
        view = view.with_velero(flat)
    return view


def restore_duration(record: RestoreRecord) -> timedelta | None:
    """How long a finished restore took (started to finished), for the next approval."""
    view = restore_view(record)
    if view.started is None or view.finished is None:
        return None
    return view.finished - view.started


@dataclass(frozen=True)
class ScheduleStatus:
    """The backup schedule as `/ragbackup schedule` shows it (filled by the scheduler)."""

    cron: str = ""  # "" when no schedule is configured
    timezone: str = "UTC"
    description: str = ""  # the cron in words, e.g. "every day at 02:00"
    next_runs: tuple[datetime, ...] = ()
    paused: bool = False
    paused_by: str = ""
    paused_at: datetime | None = None
    last_backup: BackupSummary | None = None
    leader: bool = True  # False: this replica does not run the schedule


AlertKind = Literal[
    "backup-stuck", "restore-stuck", "no-recent-backup", "bsl-unavailable", "velero-not-ready"
]
ALERT_KINDS: tuple[AlertKind, ...] = (
    "backup-stuck", "restore-stuck", "no-recent-backup", "bsl-unavailable", "velero-not-ready",
)  # fmt: skip


@dataclass(frozen=True)
class Alert:
    """A condition the reconciler watches; `cleared` once it no longer holds.

    `subject` names the object (the Backup, the restore record, the storage location,
    the Velero pod or Deployment); `detail` is what was seen; `since` when it began;
    `threshold` the configured limit it passed (ragbot.alerts.*), when there is one.
    """

    kind: AlertKind
    subject: str = ""
    detail: str = ""
    since: datetime | None = None
    threshold: timedelta | None = None
    phase: str = ""
    cleared: bool = False
    cleared_at: datetime | None = None
    namespace: str = "velero"


__all__ = [
    "ALERT_KINDS",
    "Alert",
    "AlertKind",
    "RestoreView",
    "ScheduleStatus",
    "StepView",
    "VeleroResults",
    "restore_duration",
    "restore_view",
]
