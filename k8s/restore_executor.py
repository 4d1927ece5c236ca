"""Run a restore record's plan, one durable step at a time, resumable after a crash.

The playbook keeps its progress in the memory of an Ansible process; when a laptop
closes halfway, the application stays uninstalled and nobody knows how far it got.
Here every step is written to the record (k8s.restore_record) as started and as done
before the next one begins, so any process (the CLI, a bot replica) can pick the
record up and carry on from the first step not done, and a finished step never runs
again. Each step is idempotent for the part that may have run before a crash:
deletes treat 404 as success, the Helm uninstall carries on an `uninstalling`
record, and the Restore's name is written to the record before the Restore is
created, so a resumed run finds that Restore instead of making a second one.

A failing step stops the restore: the record becomes `failed` with the step, the
reason and the state the application was left in. Nothing is retried by itself; an
operator may retry the failed step explicitly (`retry_failed=True`). The lock is
released when the record ends (succeeded or failed); a run asked to `stop` leaves
the record running and the lock held, for whoever resumes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from config.models import Config

from . import labels as L
from .client import Cluster
from .errors import AlreadyExists, ClusterError
from .helm_uninstall import delete_and_wait, uninstall_release
from .kinds import resolve_kind
from .readiness import Readiness, wait_ready
from .resources import PVC, RESTORE, create, list_all, try_get
from .restore_lock import release_lock, start
from .restore_plan import (
    CLEANUP_ACTIONS,
    CREATE_RESTORE,
    HELM_UNINSTALL,
    NAMED_DELETE,
    PVC_DELETE,
    SELECTOR_DELETE,
    WAIT_READY,
    WAIT_VELERO,
    PlanStep,
    RestorePlan,
)
from .restore_record import (
    FAILED,
    PENDING,
    RUNNING,
    STEP_DONE,
    STEP_FAILED,
    STEP_RUNNING,
    SUCCEEDED,
    RestoreRecord,
    StateConflict,
    get_record,
    mark_step,
    set_fields,
    transition,
    update,
    utcnow,
)
from .watch import Collection, wait_for


@dataclass(frozen=True)
class Progress:
    """What a restore is doing now, for the CLI's lines and the bot's Slack message."""

    record_id: str
    step: int
    steps: int
    title: str
    status: str  # started | done | failed | progress | succeeded | stopped
    detail: str = ""
    phase: str = ""
    items_restored: int | None = None
    items_total: int | None = None


class StepFailed(ClusterError):
    """A step ended in a way that stops the restore (e.g. Velero said PartiallyFailed)."""


def restore_name(prefix: str, when: datetime) -> str:
    """`<restore_prefix>-<timestamp>` as the playbook names Restores (lower-cased)."""
    return f"{prefix}-{when.astimezone(UTC).strftime('%Y%m%dT%H%M%S').lower()}"


def restore_object(cfg: Config, record: RestoreRecord, step: PlanStep, name: str) -> dict[str, Any]:
    """The Restore: the playbook's spec and labels, plus ragbot's trigger label and annotations."""
    trigger = str(record.data.get("trigger", "cli"))
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": {
            "name": name,
            "namespace": cfg.velero.namespace,
            "labels": {**dict(step.params.get("labels") or {}), L.LABEL_TRIGGER: trigger},
            "annotations": {
                L.ANNO_RESTORE_RECORD: record.id,
                L.ANNO_REQUESTER: str(record.data.get("requester", "")),
            },
        },
        "spec": dict(step.params["spec"]),
    }


def application_state(plan: RestorePlan, failed_key: str, detail: str = "") -> str:
    """One sentence on what a failure at `failed_key` left the application like."""
    keys = [s.key for s in plan.steps]
    idx = keys.index(failed_key) if failed_key in keys else len(keys)
    step = plan.steps[idx] if idx < len(keys) else None
    cleaned = sorted({s.namespace for s in plan.steps[:idx] if s.action in CLEANUP_ACTIONS})
    offline = ", ".join(plan.offline) or "none"
    if step is None or step.action in CLEANUP_ACTIONS:
        done = ", ".join(cleaned) or "none yet"
        return (f"partly uninstalled: cleanup finished for {done}; no PVC deleted and nothing "
                f"restored yet; namespaces {offline} may be offline")  # fmt: skip
    if step.action == PVC_DELETE:
        return ("uninstalled (cleanup done); some of the backup's PVCs may be deleted; nothing "
                "restored yet")  # fmt: skip
    if step.action == CREATE_RESTORE:
        return "uninstalled and the backup's PVCs deleted; no Velero Restore was created"
    if step.action == WAIT_VELERO:
        return f"uninstalled, then partly restored by Velero ({detail or 'see the Restore'})"
    return f"restored by Velero but not ready: {detail or 'see the pods'}"


class _Run:
    def __init__(self, cluster: Cluster, cfg: Config, record: RestoreRecord,
                 on_progress: Callable[[Progress], None] | None,
                 stop: Callable[[], bool] | None, now: Callable[[], datetime]) -> None:  # fmt: skip
        self.cluster, self.cfg, self.record = cluster, cfg, record
        self.plan = record.plan
        self.on_progress, self.stop, self.now = on_progress, stop, now
        self.index = 0

    def emit(self, status: str, detail: str = "", **extra: Any) -> None:
        if self.on_progress is None:
            return
        step = self.plan.steps[self.index - 1] if self.index else None
        self.on_progress(Progress(self.record.id, self.index, len(self.plan.steps),
                                  step.title if step else "", status, detail, **extra))  # fmt: skip

    def stopping(self) -> bool:
        return self.stop is not None and self.stop()

    # ---- steps ----------------------------------------------------------------------

    def run_step(self, step: PlanStep) -> str:
        r = self.cfg.ragbot.restore
        if step.action == HELM_UNINSTALL:
            result = uninstall_release(self.cluster, step.namespace, step.name,
                                       timeout=r.step_timeout.total_seconds(), stop=self.stop)  # fmt: skip
            return result.message
        if step.action in (SELECTOR_DELETE, NAMED_DELETE):
            res = resolve_kind(self.cluster, step.kind)
            ns = step.namespace if res.namespaced else None
            if step.action == SELECTOR_DELETE:
                items, _ = list_all(self.cluster, res, ns, label_selector=step.selector)
                names = sorted(str(o["metadata"]["name"]) for o in items)
            else:
                names = [step.name]
            deleted, gone = delete_and_wait(
                self.cluster, [(res, step.namespace, n) for n in names],
                timeout=r.step_timeout.total_seconds(), what=step.title, stop=self.stop,
            )  # fmt: skip
            return _deleted_detail(step.kind, deleted, gone)
        if step.action == PVC_DELETE:
            targets = [(PVC, o.namespace, o.name) for o in step.objects]
            deleted, gone = delete_and_wait(self.cluster, targets, timeout=r.pvc_timeout.total_seconds(),
                                            what="delete the backup's PVCs", stop=self.stop)  # fmt: skip
            return _deleted_detail("PersistentVolumeClaim", deleted, gone)
        if step.action == CREATE_RESTORE:
            return self.create_restore(step)
        if step.action == WAIT_VELERO:
            return self.wait_velero()
        if step.action == WAIT_READY:
            return self.wait_ready(step)
        raise StepFailed(f"unknown step action {step.action!r} in the record")

    def create_restore(self, step: PlanStep) -> str:
        vns = self.cfg.velero.namespace
        name = self.record.velero_restore
        for attempt in range(1, 7):
            if not name:
                name = self._claim_name(attempt, stale="")
                continue
            existing = try_get(self.cluster, RESTORE, vns, name)
            if existing is None:
                try:
                    create(self.cluster, RESTORE, vns, restore_object(self.cfg, self.record, step, name))
                except AlreadyExists:
                    continue  # look at whose it is on the next round
                return f"created Restore {vns}/{name} of backup {self.plan.backup}"
            annos = (existing.get("metadata") or {}).get("annotations") or {}
            if annos.get(L.ANNO_RESTORE_RECORD) == self.record.id:
                return f"Restore {vns}/{name} exists (created before a restart)"
            name = self._claim_name(attempt, stale=name)  # someone else's Restore has it
        raise StepFailed(f"could not create a Restore: {name} and other names are taken")

    def _claim_name(self, attempt: int, *, stale: str) -> str:
        """Write the Restore's name into the record before creating it; returns the name.

        If another runner wrote a name first (and it is not the `stale` one we are
        replacing), that name is adopted instead, so one record never makes two Restores.
        """
        proposed = restore_name(self.cfg.velero.backup.restore_prefix, self.now())
        if attempt > 1:
            proposed = f"{proposed}-{attempt}"

        def claim(data: dict[str, Any], _annos: dict[str, str]) -> None:
            current = str(data.get("velero_restore") or "")
            if not current or current == stale:
                data["velero_restore"] = proposed

        self.record = update(self.cluster, self.record, claim, now=self.now)
        return self.record.velero_restore

    def wait_velero(self) -> str:
        vns, name = self.cfg.velero.namespace, self.record.velero_restore
        if not name or try_get(self.cluster, RESTORE, vns, name) is None:
            raise StepFailed(f"the Velero Restore {name or '(unnamed)'} is gone from {vns}")
        last_phase = [""]

        def done(view: Collection) -> dict[str, Any] | None:
            obj = view.get(vns, name)
            if obj is None:
                raise StepFailed(f"the Velero Restore {vns}/{name} was deleted while running")
            phase = L.phase_of(obj)
            prog = (obj.get("status") or {}).get("progress") or {}
            self.emit("progress", phase=phase, items_restored=prog.get("itemsRestored"),
                      items_total=prog.get("totalItems"))  # fmt: skip
            if phase != last_phase[0]:
                last_phase[0] = phase
                self.record = set_fields(self.cluster, self.record, velero={"phase": phase, **prog})
            return obj if phase in L.RESTORE_TERMINAL else None

        obj = wait_for(self.cluster, RESTORE, vns, done,
                       timeout=self.cfg.ragbot.restore.velero_timeout.total_seconds(),
                       what=f"Velero Restore {name} to finish",
                       field_selector=f"metadata.name={name}", stop=self.stop)  # fmt: skip
        status = obj.get("status") or {}
        phase = L.phase_of(obj)
        prog = status.get("progress") or {}
        summary = {k: status.get(k) for k in ("phase", "errors", "warnings", "failureReason",
                                               "validationErrors", "progress") if status.get(k)}  # fmt: skip
        self.record = set_fields(self.cluster, self.record, velero=summary)
        counts = f"{prog.get('itemsRestored', 0)}/{prog.get('totalItems', 0)} items restored"
        if phase == "Completed":
            warn = f", {status['warnings']} warnings" if status.get("warnings") else ""
            return f"Restore {name} Completed: {counts}{warn}"
        why = [f"{status.get('errors', 0)} errors", f"{status.get('warnings', 0)} warnings"]
        if status.get("failureReason"):
            why.append(f"failure reason: {status['failureReason']}")
        if status.get("validationErrors"):
            why.append("validation errors: " + "; ".join(status["validationErrors"]))
        raise StepFailed(f"Velero Restore {name} ended {phase} ({counts}; {', '.join(why)}); "
                         f"see `velero restore describe {name} --details`")  # fmt: skip

    def wait_ready(self, step: PlanStep) -> str:
        required = list(step.params.get("namespaces") or [])
        skipped = list(step.params.get("skipped") or [])
        order = [ns for ns in self.cfg.velero.backup.backupConfig.namespaceOrder
                 if ns in required or ns in skipped] or required + skipped  # fmt: skip
        last = [""]

        def changed(state: Readiness, total: int) -> None:
            summary = state.summary(total)
            if summary != last[0]:
                last[0] = summary
                self.emit("progress", summary)

        final = wait_ready(self.cluster, order, skip_empty=skipped,
                           timeout=self.cfg.ragbot.restore.ready_timeout.total_seconds(),
                           on_change=changed, stop=self.stop)  # fmt: skip
        pods = sum(n.pods for n in final.namespaces)
        return f"application ready: {pods} pods in {len(final.namespaces)} namespaces"

    # ---- driving --------------------------------------------------------------------

    def fail(self, step: PlanStep, err: BaseException) -> RestoreRecord:
        detail = str(err) or type(err).__name__
        with contextlib.suppress(StateConflict):
            self.record = mark_step(self.cluster, self.record, step.key, STEP_FAILED, detail)
        state = application_state(self.plan, step.key, detail)
        self.record = transition(
            self.cluster, self.record, [RUNNING], FAILED, now=self.now,
            error=f"step {self.index} ({step.title}) failed: {detail}",
            failed_step=step.key, application_state=state,
        )  # fmt: skip
        release_lock(self.cluster, self.cfg, self.record.id)
        self.emit("failed", detail)
        return self.record

    def drive(self) -> RestoreRecord:
        for index, step in enumerate(self.plan.steps, 1):
            self.index = index
            if self.record.step(step.key)["status"] == STEP_DONE:
                continue
            if self.stopping():
                self.emit("stopped")
                return self.record
            try:
                self.record = mark_step(self.cluster, self.record, step.key, STEP_RUNNING)
            except StateConflict:
                self.record = get_record(self.cluster, self.cfg, self.record.id)
                if self.record.state != RUNNING:
                    return self.record
                continue  # someone else finished it meanwhile
            self.emit("started")
            try:
                detail = self.run_step(step)
            except Exception as err:  # every failure ends in the record
                if self.stopping():
                    self.emit("stopped")
                    return self.record
                return self.fail(step, err)
            try:
                self.record = mark_step(self.cluster, self.record, step.key, STEP_DONE, detail)
            except StateConflict:  # another runner recorded it first: trust the record
                self.record = get_record(self.cluster, self.cfg, self.record.id)
                if self.record.state != RUNNING:
                    return self.record
                continue
            self.emit("done", detail)
        self.record = transition(self.cluster, self.record, [RUNNING], SUCCEEDED, now=self.now)
        release_lock(self.cluster, self.cfg, self.record.id)
        self.index = len(self.plan.steps)
        self.emit("succeeded")
        return self.record


def run_restore(
    cluster: Cluster,
    cfg: Config,
    record_id: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    stop: Callable[[], bool] | None = None,
    retry_failed: bool = False,
    now: Callable[[], datetime] = utcnow,
) -> RestoreRecord:
    """Run (or resume) the restore `record_id` to its end; returns the final record.

    An approved record is started (lock, backup check); a running one is resumed from
    its first step not done; a finished one is returned as it is. A record still
    pending approval raises StateConflict.
    """
    record = get_record(cluster, cfg, record_id)
    if record.state == PENDING:
        raise StateConflict(f"restore {record.id} is waiting for approval", state=PENDING)
    if record.terminal and not (retry_failed and record.state == FAILED):
        release_lock(cluster, cfg, record.id)  # in case its process died right at the end
        return record
    record = start(cluster, cfg, record, retry_failed=retry_failed, now=now)
    return _Run(cluster, cfg, record, on_progress, stop, now).drive()


def _deleted_detail(kind: str, deleted: list[Any], gone: list[Any]) -> str:
    names = ", ".join(f"{ns}/{n}" if ns else n for _, ns, n in deleted)
    text = f"deleted {len(deleted)} {kind}" + (f": {names}" if names else "")
    if gone:
        text += f"; {len(gone)} already gone"
    return text
