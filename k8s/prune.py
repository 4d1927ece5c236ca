"""`keep_last`: ask Velero to delete ragbot's older Completed backups, never anyone else's.

Deleting a Backup object would leave its files and snapshots in the bucket and Velero
would sync it straight back; the only correct way is a DeleteBackupRequest, exactly as
`velero backup delete` makes it (generateName `<backup>-`, labels velero.io/backup-name
and velero.io/backup-uid, spec.backupName), which Velero's deletion controller carries
out. Only Backups with ragbot's trigger label count, so backups made by the playbook,
the velero CLI or a Velero Schedule are never touched. A backup that already has a
DeleteBackupRequest gets no second one, so pruning after every completion is idempotent.
"""

from __future__ import annotations

from typing import Any

from config.models import Config

from . import labels as L
from . import resources as R
from .backup_views import newest_first_key, summarize
from .client import Cluster

BACKUP_NAME_LABEL = "velero.io/backup-name"
BACKUP_UID_LABEL = "velero.io/backup-uid"


def delete_request(cfg: Config, backup: dict[str, Any]) -> dict[str, Any]:
    """The DeleteBackupRequest `velero backup delete <name>` would create."""
    meta = backup.get("metadata") or {}
    name = str(meta.get("name") or "")
    labels = {BACKUP_NAME_LABEL: name}
    if meta.get("uid"):
        labels[BACKUP_UID_LABEL] = str(meta["uid"])
    return {
        "apiVersion": R.DELETE_BACKUP_REQUEST.api_version, "kind": R.DELETE_BACKUP_REQUEST.kind,
        "metadata": {"generateName": f"{name}-", "namespace": cfg.velero.namespace, "labels": labels},
        "spec": {"backupName": name},
    }  # fmt: skip


def prune_candidates(backups: list[dict[str, Any]], keep_last: int) -> list[dict[str, Any]]:
    """Ours and Completed, beyond the newest `keep_last` (pure: the policy in one place)."""
    if keep_last <= 0:
        return []
    ours = [b for b in backups if L.is_ours(b) and L.phase_of(b) == L.BACKUP_SUCCESS]
    ours.sort(key=lambda b: newest_first_key(summarize(b)), reverse=True)
    return ours[keep_last:]


def prune(cluster: Cluster, cfg: Config, keep_last: int) -> list[str]:
    """Request deletion of our Completed backups beyond `keep_last`; the names requested."""
    if keep_last <= 0:
        return []
    ns = cfg.velero.namespace
    # Requests first, then backups: a backup whose request Velero finishes in between is
    # then already Deleting or gone, never a Completed backup without a request (the
    # other order would ask again for a backup Velero just deleted).
    requests, _ = R.list_all(cluster, R.DELETE_BACKUP_REQUEST, ns)
    pending = {str(((d.get("spec") or {}).get("backupName")) or "") for d in requests}
    backups, _ = R.list_all(cluster, R.BACKUP, ns, label_selector=L.LABEL_TRIGGER)
    doomed = prune_candidates(backups, keep_last)
    if not doomed:
        return []
    made: list[str] = []
    for backup in doomed:
        name = str((backup.get("metadata") or {}).get("name") or "")
        if name in pending:
            continue
        R.create(cluster, R.DELETE_BACKUP_REQUEST, ns, delete_request(cfg, backup))
        made.append(name)
    return made


__all__ = ["delete_request", "prune", "prune_candidates"]
