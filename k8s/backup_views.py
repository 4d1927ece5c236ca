"""Velero Backup objects as plain, immutable summaries for people and scripts.

The CLI table, `describe`, Slack messages and the reconciler all need the same few
facts about a Backup (phase, items n/total, CSI snapshots, errors, times, who asked).
Reading them out of a raw dict in every caller would spread Velero's field names (all
`omitempty`, so absent means 0) over the code base; `summarize` reads them once.
Pure: no cluster access here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import labels as L


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API (`2025-09-16T11:43:15Z`) as an aware datetime."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime | None) -> str:
    """The API's own timestamp format, or "" when unknown."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def as_int(value: Any) -> int:
    """An API count as int; absent or malformed counts read as 0 (Velero omits zeros)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class BackupSummary:
    """What an operator wants to know about one Backup."""

    name: str
    namespace: str = ""
    phase: str = ""
    items_backed_up: int = 0
    items_total: int = 0
    csi_snapshots_attempted: int = 0
    csi_snapshots_completed: int = 0
    errors: int = 0
    warnings: int = 0
    failure_reason: str = ""
    validation_errors: tuple[str, ...] = ()
    created: datetime | None = None
    started: datetime | None = None
    completed: datetime | None = None
    expires: datetime | None = None
    storage_location: str = ""
    trigger: str = ""
    requester: str = ""
    note: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def terminal(self) -> bool:
        """Velero will not change the phase any more (the `velero backup --wait` set)."""
        return self.phase in L.BACKUP_TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.phase == L.BACKUP_SUCCESS

    @property
    def running(self) -> bool:
        return self.phase in L.BACKUP_RUNNING

    @property
    def ours(self) -> bool:
        """Made by ragbot (the trigger label), as opposed to the playbook or a Schedule."""
        return bool(self.trigger)

    @property
    def progress_text(self) -> str:
        """`items 45/120`, or "" before Velero has counted anything."""
        if not self.items_total and not self.items_backed_up:
            return ""
        return f"{self.items_backed_up}/{self.items_total}"

    @property
    def csi_text(self) -> str:
        if not self.csi_snapshots_attempted:
            return ""
        return f"{self.csi_snapshots_completed}/{self.csi_snapshots_attempted}"

    def elapsed(self, now: datetime | None = None) -> float | None:
        """Seconds from start to completion (or to `now` while running)."""
        start = self.started or self.created
        if start is None:
            return None
        end = self.completed or (now or datetime.now(UTC))
        return max(0.0, (end - start).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for `-o json`; field names are stable for scripts."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "phase": self.phase,
            "progress": {"itemsBackedUp": self.items_backed_up, "totalItems": self.items_total},
            "csiVolumeSnapshots": {
                "attempted": self.csi_snapshots_attempted,
                "completed": self.csi_snapshots_completed,
            },
            "errors": self.errors,
            "warnings": self.warnings,
            "failureReason": self.failure_reason,
            "validationErrors": list(self.validation_errors),
            "created": format_time(self.created),
            "started": format_time(self.started),
            "completed": format_time(self.completed),
            "expires": format_time(self.expires),
            "storageLocation": self.storage_location,
            "trigger": self.trigger,
            "requester": self.requester,
            "note": self.note,
            "labels": dict(self.labels),
        }


def summarize(obj: Mapping[str, Any]) -> BackupSummary:
    """Read a Backup dict as the API returns it; missing fields mean 0 or unknown."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    progress = status.get("progress") or {}
    obj_labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    annotations = meta.get("annotations") or {}
    return BackupSummary(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        phase=str(status.get("phase") or ""),
        items_backed_up=as_int(progress.get("itemsBackedUp")),
        items_total=as_int(progress.get("totalItems")),
        csi_snapshots_attempted=as_int(status.get("csiVolumeSnapshotsAttempted")),
        csi_snapshots_completed=as_int(status.get("csiVolumeSnapshotsCompleted")),
        errors=as_int(status.get("errors")),
        warnings=as_int(status.get("warnings")),
        failure_reason=str(status.get("failureReason") or ""),
        validation_errors=tuple(str(e) for e in status.get("validationErrors") or ()),
        created=parse_time(meta.get("creationTimestamp")),
        started=parse_time(status.get("startTimestamp")),
        completed=parse_time(status.get("completionTimestamp")),
        expires=parse_time(status.get("expiration")),
        storage_location=str(spec.get("storageLocation") or ""),
        trigger=obj_labels.get(L.LABEL_TRIGGER, ""),
        requester=str(annotations.get(L.ANNO_REQUESTER) or ""),
        note=str(annotations.get(L.ANNO_NOTE) or ""),
        labels=obj_labels,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def newest_first_key(summary: BackupSummary) -> tuple[datetime, str]:
    """Sort key: creation time, then name (names embed the time, so ties stay ordered)."""
    return (summary.created or _EPOCH, summary.name)
