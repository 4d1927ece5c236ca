"""DeleteBackupRequests and backup expiry, as backup_deletion_controller.go and
gc_controller.go (v1.16.2) handle them.

`velero backup delete` and ragbot's retention only create a DeleteBackupRequest; the
server refuses (status.errors) or removes the backup's files, the Restores made from
it and the Backup itself, and then every request for that backup, so a successful
request vanishes. Expired backups get such a request from the GC controller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .apiserver.objects import parse_rfc3339
from .velero_common import (
    BACKUP_NAME_LABEL,
    BACKUP_UID_LABEL,
    DELETE_REQUEST_MAX_AGE,
    DELETING,
    IN_PROGRESS,
    Obj,
    valid_label_value,
)
from .velero_objectstore import Layout

if TYPE_CHECKING:
    from .velero import VeleroSimulator


def _status(cur: Obj) -> dict:
    return cur.setdefault("status", {})


def reconcile_delete_request(sim: VeleroSimulator, name: str) -> None:
    """backupDeletionReconciler.Reconcile for one DeleteBackupRequest."""
    rt = sim.rt("deletebackuprequests")
    dbr = sim.get(rt, name)
    if dbr is None:
        return
    phase = (dbr.get("status") or {}).get("phase")
    if phase in ("Processed", "InProgress"):
        created = parse_rfc3339(dbr["metadata"]["creationTimestamp"])
        if sim.clock() - created >= DELETE_REQUEST_MAX_AGE:
            sim.delete(rt, name)
        return

    def fail(message: str) -> None:
        sim.patch(rt, name, lambda cur: _status(cur).update(phase="Processed", errors=[message]))

    backup_name = (dbr.get("spec") or {}).get("backupName", "")
    if not backup_name:
        fail("spec.backupName is required")
        return
    for other in sim.list(rt, labels={BACKUP_NAME_LABEL: valid_label_value(backup_name)}):
        if other["metadata"]["name"] != name:
            sim.delete(rt, other["metadata"]["name"])
    if sim.backup_in_progress(backup_name):
        fail("backup is still in progress")
        return
    backup_rt = sim.rt("backups")
    backup = sim.get(backup_rt, backup_name)
    if backup is None:
        fail("backup not found")
        return
    loc_name = (backup.get("spec") or {}).get("storageLocation", "")
    bsl = sim.bsl(loc_name)
    if bsl is None:
        fail(f"backup storage location {loc_name} not found")
        return
    if (bsl.get("spec") or {}).get("accessMode") == "ReadOnly":
        fail(f"cannot delete backup because backup storage location {loc_name} is currently in read-only mode")
        return
    if (bsl.get("status") or {}).get("phase") != "Available":
        fail(f"cannot delete backup because backup storage location {loc_name} is currently in Unavailable state")
        return
    uid = backup["metadata"].get("uid", "")

    def in_progress(cur: Obj) -> None:
        labels = cur["metadata"].setdefault("labels", {})
        labels.setdefault(BACKUP_NAME_LABEL, valid_label_value(backup_name))
        labels.setdefault(BACKUP_UID_LABEL, uid)
        _status(cur)["phase"] = "InProgress"

    sim.patch(rt, name, in_progress)
    sim.patch(backup_rt, backup_name, lambda cur: _status(cur).update(phase=DELETING))
    errs: list[str] = []
    prefix = (((bsl.get("spec") or {}).get("objectStorage") or {}).get("prefix", ""))
    sim.objects.delete_prefix(bsl["metadata"]["name"], Layout(prefix).backup_dir(backup_name))
    restore_rt = sim.rt("restores")
    for restore in sim.list(restore_rt):
        if (restore.get("spec") or {}).get("backupName") == backup_name:
            rname = restore["metadata"]["name"]
            sim.delete(restore_rt, rname)
            sim.finalize_restore(rname)  # the restore finalizer, which Velero waits for
    if not errs and sim.delete(backup_rt, backup_name) is None:
        errs.append(f"error deleting backup {sim.namespace}/{backup_name}: not found")

    def processed(cur: Obj) -> None:
        st = _status(cur)
        st["phase"] = "Processed"
        if errs:
            st["errors"] = errs

    sim.patch(rt, name, processed)
    if not errs:
        labels = {BACKUP_NAME_LABEL: valid_label_value(backup_name), BACKUP_UID_LABEL: uid}
        for other in sim.list(rt, labels=labels):
            sim.delete(rt, other["metadata"]["name"])


def expire_backups(sim: VeleroSimulator) -> None:
    """gc_controller: an expired backup gets a DeleteBackupRequest (unless it has one)."""
    now = sim.clock()
    dbr_rt = sim.rt("deletebackuprequests")
    for backup in sim.list(sim.rt("backups")):
        st = backup.get("status") or {}
        exp = st.get("expiration")
        if not exp or parse_rfc3339(exp) > now or st.get("phase") in (None, "", "New", IN_PROGRESS, DELETING):
            continue
        name = backup["metadata"]["name"]
        labels = {BACKUP_NAME_LABEL: valid_label_value(name)}
        pending = [
            d for d in sim.list(dbr_rt, labels=labels)
            if (d.get("status") or {}).get("phase") in (None, "", "New", "InProgress")
        ]
        if pending:
            continue
        body = {
            "apiVersion": "velero.io/v1",
            "kind": "DeleteBackupRequest",
            "metadata": {
                "generateName": f"{name}-",
                "labels": {**labels, BACKUP_UID_LABEL: backup["metadata"].get("uid", "")},
            },
            "spec": {"backupName": name},
        }
        sim.create(dbr_rt, body)
