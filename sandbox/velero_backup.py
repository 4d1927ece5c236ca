"""The Backup controllers: a validated backup's run through Velero's phases.

ragbot follows Backups through their phases and counters, so this mirrors what
backup_controller.go, backup_operations_controller.go and backup_finalizer_controller.go
of v1.16.2 write, and when: on the first reconcile of a "" / New backup the prepared
request (spec defaults, storage-location label, source-cluster annotations, format
version, expiration) is patched in with either FailedValidation + validationErrors or
InProgress + startTimestamp; `status.progress` then grows (throttled, as Velero's 1 s
progress ticker); at the end of InProgress the artifacts are uploaded and the CSI
snapshots become async item operations (WaitingForPluginOperations), then Finalizing,
then Completed / PartiallyFailed with completionTimestamp and
csiVolumeSnapshotsCompleted. Only one backup is InProgress at a time, as Velero's
backup controller runs one at a time. Validation is in velero_backup_validate, the
capture of items in velero_capture, deletion in velero_delete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .velero_backup_validate import prepare_backup
from .velero_capture import Capture, capture_backup
from .velero_common import (
    COMPLETED,
    FAILED,
    FAILED_VALIDATION,
    FINALIZING,
    FINALIZING_PARTIALLY_FAILED,
    IN_PROGRESS,
    PARTIALLY_FAILED,
    WAITING,
    WAITING_PARTIALLY_FAILED,
    Injection,
    LogBuffer,
    Obj,
    log_hook_message,
    result_add,
    result_count,
    stamp,
)
from .velero_objectstore import JSON, JSON_GZ, TARBALL, TEXT_GZ, Layout

if TYPE_CHECKING:
    from .velero import VeleroSimulator

DEFAULT_FAILURE = "rpc error: code = Unavailable desc = error reading from server: EOF"


@dataclass
class BackupRun:
    """A backup the simulated server is working on, between InProgress and the end."""

    name: str
    uid: str
    bsl: str
    layout: Layout
    capture: Capture | None
    injection: Injection | None
    log: LogBuffer
    phase: str = IN_PROGRESS
    elapsed: float = 0.0
    last_write: float = -1.0
    written: tuple[Any, ...] = ()
    ops: int = 0
    stuck: bool = False
    errors: dict[str, Any] = field(default_factory=dict)
    warnings: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.capture.items) if self.capture else 0


# ----- start and run ------------------------------------------------------------------------


def start_backup(sim: VeleroSimulator, backup: Obj) -> BackupRun | None:
    """First reconcile of a new backup: FailedValidation, or InProgress and a run."""
    name = backup["metadata"]["name"]
    injection = sim.injections.take("backup", name)
    prepared, errs, bsl = prepare_backup(sim, backup)
    if injection is not None and injection.outcome == "FailedValidation":
        errs += list(injection.validation_errors) or [
            f"backup can't be created because BackupStorageLocation {prepared['spec']['storageLocation']} "
            "is in Unavailable status. please create a new backup after the BSL becomes available"
        ]
    now = sim.clock()

    def write(cur: Obj) -> None:
        cur["spec"], cur["metadata"]["labels"] = prepared["spec"], prepared["metadata"]["labels"]
        cur["metadata"]["annotations"] = prepared["metadata"]["annotations"]
        st = cur["status"] = {**(cur.get("status") or {}), **prepared["status"]}
        if errs:
            st["phase"], st["validationErrors"] = FAILED_VALIDATION, errs
        else:
            st["phase"], st["startTimestamp"] = IN_PROGRESS, stamp(now)

    if sim.patch(sim.rt("backups"), name, write) is None or errs:
        return None
    assert bsl is not None
    log = LogBuffer(sim.clock, backup=f"{sim.namespace}/{name}", logSource="pkg/backup/backup.go")
    log.info("Setting up backup log")
    log.info("Starting backup")
    layout = Layout(((bsl.get("spec") or {}).get("objectStorage") or {}).get("prefix", ""))
    capture = capture_backup(sim, prepared, log)
    run = BackupRun(
        name=name,
        uid=backup["metadata"].get("uid", ""),
        bsl=bsl["metadata"]["name"],
        layout=layout,
        capture=capture,
        injection=injection,
        log=log,
        ops=len(capture.csi),
        errors=capture.errors,
        warnings=capture.warnings,
    )
    if injection is not None and injection.outcome == "PartiallyFailed":
        _inject_partial(run, injection)
    return run


def _inject_partial(run: BackupRun, injection: Injection) -> None:
    if injection.results is not None:
        for key in ("errors", "warnings"):
            for k, v in (injection.results.get(key) or {}).items():
                target = run.errors if key == "errors" else run.warnings
                if isinstance(v, dict):
                    for ns, msgs in v.items():
                        for msg in msgs:
                            result_add(target, ns, msg)
                else:
                    for msg in v:
                        result_add(target, None if k == "velero" else "", msg)
        return
    items = run.capture.items if run.capture else []
    namespaced = [e["object"]["metadata"] for e in items if e["object"]["metadata"].get("namespace")]
    for i in range(injection.errors):
        m = namespaced[i % len(namespaced)] if namespaced else {"namespace": "default", "name": "item"}
        error = "rpc error: code = Unknown desc = simulated item backup error (injected by the sandbox)"
        result_add(run.errors, m["namespace"], log_hook_message("Error backing up item", name=m["name"], error=error))
        run.log.error("Error backing up item", name=m["name"], namespace=m["namespace"], error=error)
    for i in range(injection.warnings):
        m = namespaced[i % len(namespaced)] if namespaced else {"namespace": "default", "name": "item"}
        msg = "simulated warning (injected by the sandbox)"
        result_add(run.warnings, m["namespace"], log_hook_message(msg, name=m["name"]))
        run.log.warning(msg, name=m["name"], namespace=m["namespace"])


def _windows(sim: VeleroSimulator, run: BackupRun) -> tuple[float, float, float]:
    s = max(sim.seconds, 0.0)
    return (0.5 * s, 0.85 * s, s) if run.ops else (0.7 * s, 0.7 * s, s)


def advance_backup(sim: VeleroSimulator, run: BackupRun, dt: float) -> bool:
    """Move a run on by dt seconds of a live server. Returns False once it is done."""
    if run.stuck:
        return True
    run.elapsed += dt
    t_ip, t_wait, t_end = _windows(sim, run)
    rt = sim.rt("backups")
    inj = run.injection
    if run.phase == IN_PROGRESS:
        frac = 1.0 if t_ip <= 0 else min(1.0, run.elapsed / t_ip)
        if inj is not None and inj.outcome == "Stuck" and frac >= 0.4:
            _write_progress(sim, run, int(run.total * 0.4), force=True)
            run.stuck = True
            sim.crash(f"backup {run.name}")
            return True
        if inj is not None and inj.outcome == "Failed" and frac >= 0.5:
            _fail(sim, run, int(run.total * 0.5), inj.failure_reason or DEFAULT_FAILURE)
            return False
        if run.elapsed < t_ip:
            _write_progress(sim, run, int(run.total * frac))
            return True
        _finish_in_progress(sim, run)
        return True
    if run.phase in (WAITING, WAITING_PARTIALLY_FAILED):
        window = max(t_wait - t_ip, 1e-9)
        done = run.ops if run.elapsed >= t_wait else int(run.ops * (run.elapsed - t_ip) / window)
        if run.elapsed >= t_wait:
            partial = run.phase == WAITING_PARTIALLY_FAILED
            phase = FINALIZING_PARTIALLY_FAILED if partial else FINALIZING
            run.phase = phase
            sim.patch(rt, run.name, lambda cur: _status(cur).update(
                phase=phase, backupItemOperationsCompleted=run.ops))
        elif sim.due(run, (done,)):
            sim.patch(rt, run.name, lambda cur: _status(cur).update(backupItemOperationsCompleted=done))
        return True
    if run.phase in (FINALIZING, FINALIZING_PARTIALLY_FAILED) and run.elapsed >= t_end:
        final = PARTIALLY_FAILED if run.phase == FINALIZING_PARTIALLY_FAILED else COMPLETED
        now = stamp(sim.clock())

        def complete(cur: Obj) -> None:
            st = _status(cur)
            st.update(phase=final, completionTimestamp=now)
            if run.ops:
                st["csiVolumeSnapshotsCompleted"] = run.ops

        written = sim.patch(rt, run.name, complete)
        if written is not None:
            sim.objects.put(run.bsl, run.layout.backup(run.name, ""), JSON, written)
        run.log.info(f"Backup completed with status {final}")
        return False
    return True


def _status(cur: Obj) -> dict[str, Any]:
    return cur.setdefault("status", {})


def _write_progress(sim: VeleroSimulator, run: BackupRun, done: int, force: bool = False) -> None:
    if not force and not sim.due(run, (done,)):
        return
    run.last_write, run.written = run.elapsed, (done,)
    total = run.total
    sim.patch(sim.rt("backups"), run.name, lambda cur: _status(cur).update(
        progress={"totalItems": total, "itemsBackedUp": done}))


def _counts(st: dict[str, Any], run: BackupRun) -> None:
    for key, result in (("warnings", run.warnings), ("errors", run.errors)):
        n = result_count(result)
        if n:
            st[key] = n


def _upload(sim: VeleroSimulator, run: BackupRun, upto: int | None) -> None:
    """persistBackup: the tarball and the JSON files beside it."""
    cap, lay, bsl = run.capture, run.layout, run.bsl
    assert cap is not None
    items = cap.items[:upto]
    put = sim.objects.put
    put(bsl, lay.backup(run.name, ".tar.gz"), TARBALL, items)
    put(bsl, lay.backup(run.name, "-resource-list.json.gz"), JSON_GZ, cap.resource_list(upto))
    put(bsl, lay.backup(run.name, "-results.gz"), JSON_GZ, {"errors": run.errors, "warnings": run.warnings})
    put(bsl, lay.backup(run.name, "-volumeinfo.json.gz"), JSON_GZ, _volume_infos(sim, run))
    put(bsl, lay.backup(run.name, "-itemoperations.json.gz"), JSON_GZ, [])
    put(bsl, lay.backup(run.name, "-volumesnapshots.json.gz"), JSON_GZ, None)
    put(bsl, lay.backup(run.name, "-podvolumebackups.json.gz"), JSON_GZ, None)
    vs = [e["object"] for e in items if e["object"]["kind"] == "VolumeSnapshot"]
    vsc = [e["object"] for e in items if e["object"]["kind"] == "VolumeSnapshotContent"]
    put(bsl, lay.backup(run.name, "-csi-volumesnapshots.json.gz"), JSON_GZ, vs or None)
    put(bsl, lay.backup(run.name, "-csi-volumesnapshotcontents.json.gz"), JSON_GZ, vsc or None)
    put(bsl, lay.backup(run.name, "-logs.gz"), TEXT_GZ, run.log.text())


def _volume_infos(sim: VeleroSimulator, run: BackupRun) -> list[dict[str, Any]]:
    now = stamp(sim.clock())
    return [
        {
            "pvcName": s.pvc_name,
            "pvcNamespace": s.pvc_namespace,
            "pvName": s.pv_name,
            "backupMethod": "CSISnapshot",
            "snapshotDataMoved": False,
            "skipped": False,
            "startTimestamp": now,
            "result": "succeeded",
            "csiSnapshotInfo": {
                "operationID": f"{s.pvc_namespace}/{s.vs_name}/{now}",
                "snapshotHandle": s.handle,
                "size": 0,
                "driver": s.driver,
                "vscName": s.vsc_name,
                "readyToUse": True,
            },
            "pvInfo": {"reclaimPolicy": s.reclaim_policy, "labels": s.pv_labels},
        }
        for s in (run.capture.csi if run.capture else [])
    ]


def _finish_in_progress(sim: VeleroSimulator, run: BackupRun) -> None:
    partial = result_count(run.errors) > 0
    if run.ops:
        run.phase = WAITING_PARTIALLY_FAILED if partial else WAITING
    else:
        run.phase = FINALIZING_PARTIALLY_FAILED if partial else FINALIZING
    run.log.info(f"Initial backup processing complete, moving to {run.phase}")
    _upload(sim, run, None)
    total = run.total

    def write(cur: Obj) -> None:
        st = _status(cur)
        st.update(phase=run.phase, progress={"totalItems": total, "itemsBackedUp": total})
        if run.ops:
            st["csiVolumeSnapshotsAttempted"] = run.ops
            st["backupItemOperationsAttempted"] = run.ops
        _counts(st, run)

    written = sim.patch(sim.rt("backups"), run.name, write)
    if written is not None:
        sim.objects.put(run.bsl, run.layout.backup(run.name, ""), JSON, written)
    sim.backup_slot_free(run.name)


def _fail(sim: VeleroSimulator, run: BackupRun, done: int, reason: str) -> None:
    """runBackup returned an error: Failed, with what was written so far uploaded."""
    run.log.error(reason)
    result_add(run.errors, None, log_hook_message(reason))
    _upload(sim, run, done)
    now = stamp(sim.clock())
    total = run.total

    def write(cur: Obj) -> None:
        st = _status(cur)
        st.update(phase=FAILED, failureReason=reason, completionTimestamp=now,
                  progress={"totalItems": total, "itemsBackedUp": done})
        _counts(st, run)

    written = sim.patch(sim.rt("backups"), run.name, write)
    if written is not None:
        sim.objects.put(run.bsl, run.layout.backup(run.name, ""), JSON, written)
    sim.backup_slot_free(run.name)


def resume_backup(sim: VeleroSimulator, backup: Obj) -> BackupRun | None:
    """A backup left in WaitingForPluginOperations/Finalizing by a previous server."""
    st = backup.get("status") or {}
    phase = st.get("phase")
    if phase not in (WAITING, WAITING_PARTIALLY_FAILED, FINALIZING, FINALIZING_PARTIALLY_FAILED):
        return None
    bsl = sim.bsl((backup.get("spec") or {}).get("storageLocation", ""))
    prefix = (((bsl or {}).get("spec") or {}).get("objectStorage") or {}).get("prefix", "")
    run = BackupRun(
        name=backup["metadata"]["name"],
        uid=backup["metadata"].get("uid", ""),
        bsl=(bsl or {}).get("metadata", {}).get("name", ""),
        layout=Layout(prefix),
        capture=None,
        injection=None,
        log=LogBuffer(sim.clock),
        phase=phase,
        ops=int(st.get("backupItemOperationsAttempted") or 0),
    )
    t_ip, t_wait, _ = _windows(sim, run)
    run.elapsed = t_ip if phase.startswith(WAITING) else t_wait
    return run
