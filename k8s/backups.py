"""Velero Backups the way Enterprise RAG's playbook makes them, plus ragbot's bookkeeping.

A Backup ragbot creates must be indistinguishable from one `backup.yaml` creates (same
name format, spec and labels), so `velero backup get`, the playbook's restore and the
bot share one history (DESIGN.md principle 5). ragbot only adds its trigger label and
requester/note annotations, which is how a restarted process recognises its own work.
"Latest" follows the playbook's rule exactly, because a restore of the wrong backup is
the most expensive mistake this tool can make.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from config.models import Config

from . import labels as L
from . import resources as R
from .backup_views import BackupSummary, newest_first_key, parse_time, summarize
from .client import Cluster
from .errors import AlreadyExists, ClusterError, NotFound
from .watch import Collection, wait_for

__all__ = [
    "BackupInProgress",
    "BackupNotFound",
    "BackupNotUsable",
    "BackupSummary",
    "NoCompletedBackup",
    "VeleroDisabled",
    "backup_name",
    "build_backup",
    "create_backup",
    "describe_backup",
    "latest_completed",
    "list_backups",
    "resolve_backup",
    "running_backups",
    "summarize",
    "wait_backup",
]

#: An AlreadyExists Backup of ours, same requester, younger than this, is the same request
#: (a double click, a retried Slack command) rather than a second backup.
SAME_REQUEST_WINDOW = timedelta(seconds=60)
#: `-2` ... `-9`: more than that many backups in one second is not a clash but a bug.
MAX_NAME_SUFFIX = 9


class VeleroDisabled(ClusterError):
    """`velero.enabled` is false: the playbook refuses, and so do we."""


class BackupInProgress(ClusterError):
    """One of our backups is still running; a second one would compete for snapshots."""

    def __init__(self, message: str, *, running: str) -> None:
        super().__init__(message)
        self.running = running


class NoCompletedBackup(ClusterError):
    """Nothing to restore: no Completed Backup carries `backup.labels`."""


class BackupNotFound(ClusterError):
    pass


class BackupNotUsable(ClusterError):
    """The named Backup exists but did not complete, so it cannot be restored."""


def backup_name(prefix: str, now: datetime) -> str:
    """`<prefix>-<%Y%m%dT%H%M%S lower-cased>`, the playbook's name, e.g. backup-20250916t114315."""
    return f"{prefix}-{now.strftime('%Y%m%dT%H%M%S').lower()}"


def label_selector(selected: dict[str, str]) -> str:
    """`k=v,k2=v2` for a list call; "" selects everything."""
    return ",".join(f"{k}={v}" for k, v in sorted(selected.items()))


def build_backup(
    cfg: Config, *, name: str, trigger: str, requester: str = "", note: str = "",
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Backup object: the playbook's, plus ragbot's trigger label and annotations.

    Storage location is left to Velero's default, as the playbook does; durations are
    written as the config spells them (Velero parses Go durations itself).
    """
    if trigger not in L.TRIGGERS:
        raise ValueError(f"trigger must be one of {', '.join(L.TRIGGERS)}, not {trigger!r}")
    backup = cfg.velero.backup
    obj_labels = dict(backup.labels)
    obj_labels.update(extra_labels or {})  # e.g. the schedule's ragbot.io/slot
    version = cfg.effective_solution_version
    if version:
        obj_labels[L.LABEL_SOLUTION_VERSION] = version
    obj_labels[L.LABEL_TRIGGER] = trigger
    annotations = {k: v for k, v in ((L.ANNO_REQUESTER, requester), (L.ANNO_NOTE, note)) if v}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": cfg.velero.namespace,
        "labels": obj_labels,
    }
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {"includedNamespaces": list(backup.backupConfig.namespaceOrder)}
    spec.update(backup.backupConfig.selector_spec())
    spec["csiSnapshotTimeout"] = str(backup.csiSnapshotTimeout)
    spec["itemOperationTimeout"] = str(backup.itemOperationTimeout)
    spec["ttl"] = str(backup.ttl)
    return {"apiVersion": R.BACKUP.api_version, "kind": R.BACKUP.kind, "metadata": metadata, "spec": spec}


def require_enabled(cfg: Config) -> None:
    """Refuse like the playbook when the user has not switched backups on."""
    if cfg.velero.enabled:
        return
    where = ", ".join(str(p) for p in cfg.sources) or "the configuration"
    raise VeleroDisabled(
        f"backups are disabled: set `velero: {{enabled: true}}` in {where} "
        "(Enterprise RAG's velero.enabled, default false)"
    )


def running_backups(cluster: Cluster, cfg: Config) -> list[BackupSummary]:
    """Our Backups (trigger label) that Velero has not finished, oldest first."""
    items, _ = R.list_all(cluster, R.BACKUP, cfg.velero.namespace, label_selector=L.LABEL_TRIGGER)
    running = [s for s in map(summarize, items) if s.running]
    return sorted(running, key=newest_first_key)


def create_backup(
    cluster: Cluster,
    cfg: Config,
    *,
    trigger: str,
    requester: str = "",
    note: str = "",
    now: datetime | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create a Backup now, unless disabled, restoring, or one of ours is still running.

    Two requests in one second map to one name: the same requester's is the same
    request (returned as is), anyone else's gets the next free `-N` suffix.
    """
    require_enabled(cfg)
    ns = cfg.velero.namespace
    from .restore_lock import RestoreInProgress, restore_in_progress

    restoring = restore_in_progress(cluster, cfg)
    if restoring:
        # A backup taken mid-restore would capture a half-restored application.
        raise RestoreInProgress(restoring)
    running = running_backups(cluster, cfg)
    if running:
        first = running[0]
        who = f" by {first.requester}" if first.requester else ""
        raise BackupInProgress(
            f"backup {first.name} (requested{who}, phase {first.phase or 'New'}) is still "
            f"running; wait for it to finish (`ragbot backup describe {first.name}`)",
            running=first.name,
        )
    now = now or datetime.now(UTC)
    base = backup_name(cfg.velero.backup.prefix, now)
    for attempt in range(1, MAX_NAME_SUFFIX + 1):
        name = base if attempt == 1 else f"{base}-{attempt}"
        body = build_backup(cfg, name=name, trigger=trigger, requester=requester, note=note,
                            extra_labels=extra_labels)
        try:
            return R.create(cluster, R.BACKUP, ns, body)
        except AlreadyExists:
            existing = R.try_get(cluster, R.BACKUP, ns, name)
            if existing is not None and _same_request(existing, requester, now):
                return existing
    raise ClusterError(f"could not find a free Backup name after {base}-{MAX_NAME_SUFFIX}")


def _same_request(existing: dict[str, Any], requester: str, now: datetime) -> bool:
    summary = summarize(existing)
    if not summary.ours or summary.requester != requester:
        return False
    created = summary.created
    return created is not None and abs(now - created) <= SAME_REQUEST_WINDOW


def list_backups(cluster: Cluster, cfg: Config, label_selector: str = "") -> list[BackupSummary]:
    """Every Backup in the Velero namespace (paginated list), newest first."""
    items, _ = R.list_all(cluster, R.BACKUP, cfg.velero.namespace, label_selector=label_selector)
    return sorted(map(summarize, items), key=newest_first_key, reverse=True)


def get_backup(cluster: Cluster, cfg: Config, name: str) -> dict[str, Any]:
    """The Backup object, or BackupNotFound saying where we looked."""
    ns = cfg.velero.namespace
    try:
        return R.get(cluster, R.BACKUP, ns, name)
    except NotFound:
        raise BackupNotFound(
            f"no Backup {name!r} in namespace {ns} (`ragbot backup list` shows them)"
        ) from None


def describe_backup(cluster: Cluster, cfg: Config, name: str) -> BackupSummary:
    return summarize(get_backup(cluster, cfg, name))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest_completed(cluster: Cluster, cfg: Config) -> dict[str, Any]:
    """The playbook's "latest": labelled with backup.labels, Completed, newest completion."""
    ns = cfg.velero.namespace
    selector = label_selector(dict(cfg.velero.backup.labels))
    items, _ = R.list_all(cluster, R.BACKUP, ns, label_selector=selector)
    best: dict[str, Any] | None = None
    best_key: tuple[datetime, str] = (_EPOCH, "")
    for obj in items:
        status = obj.get("status") or {}
        if status.get("phase") != L.BACKUP_SUCCESS:
            continue
        key = (
            parse_time(status.get("completionTimestamp")) or _EPOCH,
            str((obj.get("metadata") or {}).get("name") or ""),
        )
        if best is None or key > best_key:
            best, best_key = obj, key
    if best is None:
        where = f"labelled {selector}" if selector else "at all"
        raise NoCompletedBackup(
            f"no Completed Backup {where} in namespace {ns}: nothing to restore "
            f"(`ragbot backup now --wait` makes one; {len(items)} Backup(s) matched the labels)"
        )
    return best


def resolve_backup(cluster: Cluster, cfg: Config, ref: str) -> dict[str, Any]:
    """The Backup a restore should use: "latest", a name, or "" (restore_from, else latest)."""
    ref = ref.strip()
    if ref == "":
        ref = cfg.velero.restore_from or "latest"
    if ref == "latest":
        return latest_completed(cluster, cfg)
    obj = get_backup(cluster, cfg, ref)
    phase = L.phase_of(obj)
    if phase != L.BACKUP_SUCCESS:
        state = "is still running" if phase in L.BACKUP_RUNNING else f"ended {phase}"
        raise BackupNotUsable(
            f"Backup {ref} {state} (phase {phase or 'New'}); only a Completed backup can be "
            "restored: pick another one (`ragbot backup list`) or `latest`"
        )
    return obj


def wait_backup(
    cluster: Cluster,
    cfg: Config,
    name: str,
    *,
    timeout: float,
    on_change: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Follow one Backup by watch until Velero puts it in a terminal phase; return it.

    on_change gets the Backup each time it changes (for live progress). The Backup
    vanishing (deleted, never created) is an error rather than a wait until timeout.
    """
    ns = cfg.velero.namespace
    seen = {"rv": ""}

    def current(view: Collection) -> dict[str, Any]:
        obj = view.get(ns, name)
        if obj is None:
            raise BackupNotFound(f"Backup {name} in namespace {ns} disappeared while waiting for it")
        return obj

    def changed(view: Collection) -> None:
        obj = view.get(ns, name)
        rv = str((obj or {}).get("metadata", {}).get("resourceVersion", ""))
        if obj is not None and on_change is not None and rv != seen["rv"]:
            seen["rv"] = rv
            on_change(obj)

    def finished(view: Collection) -> dict[str, Any] | None:
        obj = current(view)
        return obj if L.phase_of(obj) in L.BACKUP_TERMINAL else None

    return wait_for(
        cluster, R.BACKUP, ns, finished, timeout=timeout, what=f"Backup {name} to finish",
        field_selector=f"metadata.name={name}", on_change=changed,
    )
