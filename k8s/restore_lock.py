"""The restore lock: one restore at a time, and none while a backup of ours runs.

The lock is a ConfigMap `ragbot-restore-lock` in the bot's namespace whose `holder`
names the restore record that holds it. It is taken with a POST, which the API server
makes atomic (AlreadyExists: someone holds it), so two callers can never both start.
A lock whose holder record is finished or gone is stale and is taken over with a
resourceVersion-checked PUT; it is released with a resourceVersion-checked DELETE.
The "no backup of ours running" check comes after the lock is taken, so a backup that
started in between is still caught; the backup side in turn refuses while
`restore_in_progress` names a restore. The holder is the record, not a process: a
restore whose process died keeps the lock until it is resumed to its end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from config.models import Config

from . import labels as L
from .client import Cluster
from .errors import AlreadyExists, ClusterError, Conflict, NotFound
from .resources import CONFIGMAP, create, get, replace
from .restore_record import (
    APPROVED,
    FAILED,
    RUNNING,
    STEP_FAILED,
    RestoreRecord,
    StateConflict,
    _from_configmap,
    stamp,
    transition,
    utcnow,
)

LOCK_NAME = "ragbot-restore-lock"


class BackupRunning(ClusterError):
    def __init__(self, backup: str) -> None:
        super().__init__(
            f"backup {backup} is still running; restore once it has finished "
            f"(`ragbot backup describe {backup}`)"
        )
        self.backup = backup


class RestoreInProgress(ClusterError):
    def __init__(self, holder: str, state: str = "") -> None:
        extra = f" ({state})" if state else ""
        super().__init__(
            f"restore already in progress: {holder}{extra}; follow it with `ragbot restore "
            f"status {holder}`, or continue it with `ragbot restore resume {holder}`"
        )
        self.holder = holder




def _lock_body(cfg: Config, holder: str, **extra: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": LOCK_NAME, "namespace": cfg.ragbot.namespace,
                     "labels": {L.LABEL_RECORD_KIND: "lock", L.LABEL_MANAGED_BY: L.MANAGED_BY_VALUE}},
        "data": {"holder": holder, "since": stamp(utcnow()), **extra},
    }  # fmt: skip


def _holder_state(cluster: Cluster, cfg: Config, holder: str) -> str | None:
    """The holder record's state; None when it is gone or finished (the lock is stale)."""
    try:
        rec = _from_configmap(get(cluster, CONFIGMAP, cfg.ragbot.namespace, holder))
    except NotFound:
        return None
    return None if rec.terminal else rec.state


def acquire_lock(cluster: Cluster, cfg: Config, record_id: str) -> None:
    """Take the restore lock for `record_id`; RestoreInProgress if another holds it."""
    ns = cfg.ragbot.namespace
    for _ in range(10):
        try:
            create(cluster, CONFIGMAP, ns, _lock_body(cfg, record_id))
            return
        except AlreadyExists:
            pass
        try:
            lock = get(cluster, CONFIGMAP, ns, LOCK_NAME)
        except NotFound:
            continue  # released in between: try to create it again
        holder = str((lock.get("data") or {}).get("holder", ""))
        if holder == record_id:
            return
        state = _holder_state(cluster, cfg, holder) if holder else None
        if state is not None:
            raise RestoreInProgress(holder, state)
        body = _lock_body(cfg, record_id, took_over_from=holder)
        body["metadata"]["resourceVersion"] = lock["metadata"]["resourceVersion"]
        try:
            replace(cluster, CONFIGMAP, ns, LOCK_NAME, body)
            return
        except (Conflict, NotFound):
            continue  # someone else moved first: look again
    raise ClusterError("could not take the restore lock: it keeps changing hands")


def release_lock(cluster: Cluster, cfg: Config, record_id: str) -> bool:
    """Release the lock if `record_id` holds it (an RV-checked DELETE). True if released."""
    ns = cfg.ragbot.namespace
    for _ in range(10):
        try:
            lock = get(cluster, CONFIGMAP, ns, LOCK_NAME)
        except NotFound:
            return False
        if (lock.get("data") or {}).get("holder") != record_id:
            return False
        body = {"preconditions": {"resourceVersion": lock["metadata"]["resourceVersion"]}}
        try:
            cluster.raw(f"delete configmaps {ns}/{LOCK_NAME}", cluster.core.delete_namespaced_config_map,
                        LOCK_NAME, ns, body=body)  # fmt: skip
            return True
        except NotFound:
            return False
        except Conflict:
            continue
    return False


def lock_holder(cluster: Cluster, cfg: Config) -> str | None:
    """The record named in the lock, whatever its state (None: no lock)."""
    try:
        lock = get(cluster, CONFIGMAP, cfg.ragbot.namespace, LOCK_NAME)
    except NotFound:
        return None
    return str((lock.get("data") or {}).get("holder", "")) or None


def restore_in_progress(cluster: Cluster, cfg: Config) -> str | None:
    """The id of the restore holding the lock, if it is still live (for the backup side)."""
    holder = lock_holder(cluster, cfg)
    if holder is None:
        return None
    return holder if _holder_state(cluster, cfg, holder) is not None else None


def running_backup(cluster: Cluster, cfg: Config) -> str | None:
    """The name of a Backup of ours that Velero has not finished, if any."""
    from .backups import running_backups

    running = running_backups(cluster, cfg)
    return running[0].name if running else None


def start(cluster: Cluster, cfg: Config, record: RestoreRecord, *, retry_failed: bool = False,
          now: Callable[[], datetime] = utcnow) -> RestoreRecord:  # fmt: skip
    """Take the lock, check that no backup of ours runs, and move the record to running.

    A record that cannot start (lock held by another restore, a backup running) ends
    `failed` saying why, and the error is raised.
    """
    if record.state == RUNNING:
        acquire_lock(cluster, cfg, record.id)  # ours already, or taken over if it was lost
        return record
    allowed = [APPROVED] + ([FAILED] if retry_failed else [])
    if record.state not in allowed:
        hint = " (add --retry to run its failed step again)" if record.state == FAILED else ""
        raise StateConflict(f"restore {record.id} is {record.state}; it cannot run{hint}",
                            state=record.state)  # fmt: skip
    try:
        acquire_lock(cluster, cfg, record.id)
    except RestoreInProgress as err:
        if record.state == APPROVED:
            transition(cluster, record, [APPROVED], FAILED, now=now, error=str(err))
        raise
    backup = running_backup(cluster, cfg)
    if backup is not None:
        release_lock(cluster, cfg, record.id)
        refusal = BackupRunning(backup)
        if record.state == APPROVED:
            transition(cluster, record, [APPROVED], FAILED, now=now, error=str(refusal))
        raise refusal
    fields: dict[str, Any] = {"error": "", "failed_step": "", "application_state": ""}
    if record.state == FAILED:
        failed = [s["key"] for s in record.steps if s["status"] == STEP_FAILED]
        fields["retried"] = [*list(record.data.get("retried") or []), *failed]
    return transition(cluster, record, [record.state], RUNNING, now=now, **fields)
