"""Every Block Kit builder on representative inputs, pinned by golden files.

Each case renders a message, checks it against Slack's limits twice (our
`check_message`, and slack_sdk's own block models, which must accept and round-trip
it) and compares it with tests/unit/golden/<case>.json. After an intended change:

    UPDATE_GOLDEN=1 python -m pytest tests/unit/test_handlers_blocks.py

then read the diff of the golden files before committing them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from config.models import Config
from handlers import blocks as B
from handlers.access import Decision
from handlers.blocks.kit import bullets, clip
from handlers.commands import UsageError, parse
from handlers.limits import check_message
from handlers.views import Alert, ScheduleStatus, VeleroResults, restore_duration, restore_view
from k8s.backup_views import BackupSummary
from k8s.backups import BackupInProgress, NoCompletedBackup
from k8s.errors import ClusterError, Forbidden, Unreachable
from k8s.preflight import CheckResult
from k8s.restore_plan import ClusterFacts, RestorePlan, plan_restore
from k8s.restore_record import RestoreRecord, apply_step, apply_transition, new_record_data

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2025, 9, 16, 11, 40, 0, tzinfo=UTC)  # the request / backup start
BACKUP = "backup-20250916t114315"
RECORD_ID = "restore-20250916t114000"

RESOURCE_LIST = {
    "v1/Secret": ["auth/keycloak", "edp/tls-secret", "edp/vector-database-config"],
    "apps/v1/StatefulSet": ["auth/keycloak"],
    "apps/v1/Deployment": ["chatqa/router"],
    "v1/Pod": ["auth/keycloak-0", "chatqa/router-abc", "edp/edp-backend-x", "vdb/redis-0"],
    "v1/PersistentVolumeClaim": ["auth/data-keycloak-postgresql-0", "vdb/redis-data-vdb-0"],
}
FACTS = ClusterFacts(
    selector_matches={("chatqa", "Deployment", "app.kubernetes.io/managed-by=Helm"): ("router", "vllm")},
    present={("edp", "Secret", "tls-secret"): True, ("edp", "Secret", "vector-database-config"): True},
    pvcs_present=frozenset({("auth", "data-keycloak-postgresql-0")}),
)  # fmt: skip


# ------------------------------------------------------------------------- fixtures


def plan() -> RestorePlan:
    return plan_restore(Config(), BACKUP, RESOURCE_LIST, FACTS)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def record(
    state: str = "pending-approval", *, done: int = 0, running: bool = False,
    fail: str = "", the_plan: RestorePlan | None = None, record_id: str = RECORD_ID,
    reason: str = "Keycloak DB corrupted after the 2.1 upgrade", requester: str = "U0REQUEST",
    **fields: Any,
) -> RestoreRecord:  # fmt: skip
    """A record as the executor leaves it: `done` steps done, then one running or failed."""
    data = new_record_data(the_plan or plan(), requester=requester, reason=reason,
                           trigger="slack", state="pending-approval", created=T0,
                           approval_timeout=timedelta(minutes=15))  # fmt: skip
    rid = record_id
    if state in ("rejected", "expired", "cancelled"):
        apply_transition(data, rid, ["pending-approval"], state, at(3))
    elif state != "pending-approval":
        apply_transition(data, rid, ["pending-approval"], "approved", at(2), {"approver": "U0APPROVER"})
    if state in ("running", "succeeded", "failed"):
        apply_transition(data, rid, ["approved"], "running", at(2))
        for s in data["steps"][:done]:
            apply_step(data, rid, s["key"], "running", at(3))
            apply_step(data, rid, s["key"], "done", at(4), "deleted 1 Secret: edp/tls-secret")
        if running or fail:
            current = data["steps"][done]
            apply_step(data, rid, current["key"], "running", at(5))
        if fail:
            apply_step(data, rid, current["key"], "failed", at(9), fail)
            apply_transition(data, rid, ["running"], "failed", at(9), {
                "error": f"step {done + 1} ({current['title']}) failed: {fail}",
                "failed_step": current["key"],
            })  # fmt: skip
        if state == "succeeded":
            apply_transition(data, rid, ["running"], "succeeded", at(25))
    data.update(fields)
    return RestoreRecord(id=rid, namespace="ragbot", resource_version="7", data=data, annotations={})


def backup(**kw: Any) -> BackupSummary:
    base: dict[str, Any] = dict(
        name=BACKUP, namespace="velero", phase="InProgress", items_backed_up=450,
        items_total=1200, csi_snapshots_attempted=3, csi_snapshots_completed=1, created=T0,
        started=T0 + timedelta(seconds=2), trigger="slack", requester="U0REQUEST",
        note="before the 2.1 upgrade & <b>not bold</b> <!channel>", storage_location="default",
    )  # fmt: skip
    base.update(kw)
    return BackupSummary(**base)


def done_backup(**kw: Any) -> BackupSummary:
    base: dict[str, Any] = dict(phase="Completed", items_backed_up=1200, csi_snapshots_completed=3,
                                completed=at(12), expires=at(12) + timedelta(days=30))  # fmt: skip
    base.update(kw)
    return backup(**base)


RESULTS = VeleroResults.from_json({
    "errors": {"velero": ["timed out waiting for CSI snapshot vdb/redis-data-vdb-0"],
               "namespaces": {"edp": ["error executing hook: pod edp-backend-x not running"]}},
    "warnings": {"cluster": ["resource customresourcedefinitions/x.y not backed up"]},
})  # fmt: skip
VELERO_RUNNING = {"phase": "InProgress", "progress": {"itemsRestored": 340, "totalItems": 1180}}


# --------------------------------------------------------------------------- cases


def _restore_velero_failed() -> RestoreRecord:
    rec = record("failed", done=15, fail="Velero Restore restore-20250916t114600 ended "
                 "PartiallyFailed (1100/1180 items restored; 3 errors, 0 warnings)",
                 velero_restore="restore-20250916t114600")  # fmt: skip
    rec.data["velero"] = {"phase": "PartiallyFailed", "errors": 3,
                          "progress": {"itemsRestored": 1100, "totalItems": 1180}}  # fmt: skip
    rec.data["application_state"] = "uninstalled, then partly restored by Velero"
    return rec


def _succeeded() -> RestoreRecord:
    rec = record("succeeded", done=17, velero_restore="restore-20250916t114600")
    rec.data["steps"][-1]["detail"] = "application ready: 42 pods in 4 namespaces"
    rec.data["velero"] = {"phase": "Completed", "warnings": 2,
                          "progress": {"itemsRestored": 1180, "totalItems": 1180}}  # fmt: skip
    return rec


def _long_plan() -> RestorePlan:
    p = plan()
    steps = p.steps[:1] * 0 + tuple(
        type(p.steps[0])(key=f"named-delete:ns{i}:Secret:s{i}", action="named-delete",
                         namespace=f"ns{i}", title=f"ns{i}: delete Secret s{i}")
        for i in range(30)
    ) + p.steps[-4:]  # fmt: skip
    return RestorePlan(p.backup, p.velero_namespace, steps, tuple(f"ns{i}" for i in range(30)),
                       p.ready_namespaces, p.skipped_namespaces)  # fmt: skip


def _usage(text: str) -> UsageError:
    err = parse("/ragbackup", text)
    assert isinstance(err, UsageError)
    return err


SCHEDULE = ScheduleStatus(cron="0 2 * * *", timezone="Europe/Berlin",
                          description="every day at 02:00 (Europe/Berlin)",
                          next_runs=(datetime(2025, 9, 17, 0, 0, tzinfo=UTC),
                                     datetime(2025, 9, 18, 0, 0, tzinfo=UTC)),
                          last_backup=done_backup(trigger="schedule", requester="", note=""))  # fmt: skip
CHECKS = [
    CheckResult("velero.enabled", "ok", "backups are enabled"),
    CheckResult("Velero server pod", "failure",
                "no Running, ready pod labelled app.kubernetes.io/name=velero in velero; found "
                "velero-7d9 (Pending)", "kubectl -n velero get pods -l app.kubernetes.io/name=velero"),
    CheckResult("BackupStorageLocation", "ok", "Available: default"),
    CheckResult("VolumeSnapshotClass", "warning",
                "csi-snapclass is the only class of driver hostpath.csi.k8s.io, so Velero uses it "
                "unlabelled", 'kubectl label volumesnapshotclass csi-snapclass '
                'velero.io/csi-volumesnapshot-class="true"'),
]  # fmt: skip

CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "backup_progress_running": lambda: B.backup_progress(backup(), now=at(4)),
    "backup_progress_new": lambda: B.backup_progress(
        backup(phase="", items_backed_up=0, items_total=0, csi_snapshots_attempted=0,
               started=None, note=""), now=at(0.1)),
    "backup_progress_completed": lambda: B.backup_progress(done_backup(), now=at(20)),
    "backup_result_completed": lambda: B.backup_result(done_backup(warnings=1), now=at(20),
                                                       results=RESULTS),
    "backup_result_partially_failed": lambda: B.backup_result(
        backup(phase="PartiallyFailed", completed=at(14), errors=2, warnings=1), now=at(20),
        results=RESULTS),
    "backup_result_failed": lambda: B.backup_result(
        backup(phase="Failed", completed=at(3), errors=1, trigger="schedule", requester="", note="",
               failure_reason="error getting backup storage location: BackupStorageLocation "
                              "\"default\" is unavailable"), now=at(20)),
    "backup_result_failed_validation": lambda: B.backup_result(
        backup(phase="FailedValidation", items_backed_up=0, items_total=0, started=None,
               csi_snapshots_attempted=0, trigger="", requester="", note="",
               validation_errors=("an existing backup storage location wasn't specified at "
                                  "backup creation time and the default 'default' wasn't found",)),
        now=at(1)),
    "backup_list": lambda: B.backup_list([
        backup(),
        done_backup(name="backup-20250915t020000", created=at(-1440), started=at(-1440),
                    completed=at(-1428), trigger="schedule", requester="", note=""),
        backup(name="backup-20250914t020000", phase="PartiallyFailed", created=at(-2880),
               started=at(-2880), completed=at(-2860), trigger="", requester="", note="",
               errors=2),
    ], now=at(5), total=12),
    "backup_list_empty": lambda: B.backup_list([], now=at(5)),
    "backup_status_completed": lambda: B.backup_status(done_backup(), now=at(20)),
    "backup_status_failed": lambda: B.backup_status(
        backup(phase="PartiallyFailed", completed=at(14), errors=2, warnings=1), now=at(20),
        results=RESULTS),
    "check_report_not_ready": lambda: B.check_report(CHECKS),
    "check_report_ready": lambda: B.check_report([c for c in CHECKS if c.status == "ok"]),
    "restore_approval_request": lambda: B.restore_approval_request(
        record(), now=at(5), backup=done_backup(completed=at(-180)),
        last_restore=timedelta(minutes=23, seconds=10), resource_items=1180),
    "restore_approval_request_minimal": lambda: B.restore_approval_request(
        record(reason=""), now=at(1), allow_self_approval=True),
    "restore_approval_approved": lambda: B.restore_approval_outcome(
        record("approved"), now=at(2), backup=done_backup(completed=at(-180))),
    "restore_approval_rejected": lambda: B.restore_approval_outcome(
        record("rejected", rejected_by="U0APPROVER"), now=at(3)),
    "restore_approval_expired": lambda: B.restore_approval_outcome(record("expired"), now=at(16)),
    "restore_approval_cancelled": lambda: B.restore_approval_outcome(
        record("cancelled"), now=at(3), by="U0REQUEST"),
    "restore_progress_starting": lambda: B.restore_progress(record("approved"), now=at(2)),
    "restore_progress_cleanup": lambda: B.restore_progress(
        record("running", done=3, running=True), now=at(6)),
    "restore_progress_velero": lambda: B.restore_progress(
        record("running", done=15, running=True, velero_restore="restore-20250916t114600"),
        now=at(12), velero_status=VELERO_RUNNING),
    "restore_progress_ready": lambda: B.restore_progress(
        record("running", done=16, running=True, velero_restore="restore-20250916t114600",
               velero={"phase": "Completed", "progress": {"itemsRestored": 1180, "totalItems": 1180}}),
        now=at(20), detail="chatqa: 3/5 pods ready; edp: waiting for edp-backend-x"),
    "restore_progress_long_plan": lambda: B.restore_progress(
        record("running", done=25, running=True, the_plan=_long_plan()), now=at(30)),
    "restore_result_succeeded": lambda: B.restore_result(_succeeded(), now=at(30)),
    "restore_result_failed_cleanup": lambda: B.restore_result(
        record("failed", done=1, fail="timed out after 300s waiting for Deployment chatqa/vllm "
               "to be deleted", application_state="partly uninstalled: cleanup finished for "
               "chatqa; no PVC deleted and nothing restored yet"), now=at(10)),
    "restore_result_failed_velero": lambda: B.restore_result(
        _restore_velero_failed(), now=at(10), results=RESULTS),
    "restore_result_failed_ready": lambda: B.restore_result(
        record("failed", done=16, fail="timed out after 7200s: edp: edp-backend-x CrashLoopBackOff",
               application_state="restored by Velero but not ready"), now=at(10)),
    "restore_list": lambda: B.restore_list(
        [_succeeded(), record("rejected", record_id="restore-20250915t090000", reason="")],
        now=at(40)),
    "restore_list_empty": lambda: B.restore_list([], now=at(40)),
    "restore_status_pending": lambda: B.restore_status(record(), now=at(5)),
    "restore_status_running": lambda: B.restore_status(
        record("running", done=3, running=True), now=at(6)),
    "schedule_status": lambda: B.schedule_status(SCHEDULE, now=at(60)),
    "schedule_status_paused": lambda: B.schedule_status(
        ScheduleStatus(cron=SCHEDULE.cron, description=SCHEDULE.description, paused=True,
                       paused_by="U0OPS", paused_at=at(-60), next_runs=SCHEDULE.next_runs),
        now=at(60), changed="paused", by="U0OPS"),
    "schedule_status_none": lambda: B.schedule_status(ScheduleStatus(), now=at(60)),
    "alert_backup_stuck": lambda: B.alert_message(
        Alert("backup-stuck", BACKUP, "csiVolumeSnapshotsCompleted 1 of 3 for 40m", at(0),
              timedelta(minutes=30), phase="WaitingForPluginOperations"), now=at(45)),
    "alert_backup_stuck_cleared": lambda: B.alert_message(
        Alert("backup-stuck", BACKUP, phase="Completed", cleared=True, cleared_at=at(50)),
        now=at(50)),
    "alert_restore_stuck": lambda: B.alert_message(
        Alert("restore-stuck", RECORD_ID, "step 16 (wait for Velero) running for 65m", at(0),
              timedelta(minutes=30)), now=at(65)),
    "alert_restore_stuck_cleared": lambda: B.alert_message(
        Alert("restore-stuck", RECORD_ID, cleared=True, cleared_at=at(70)), now=at(70)),
    "alert_no_recent_backup": lambda: B.alert_message(
        Alert("no-recent-backup", "backup-20250914t020000", since=at(-2860),
              threshold=timedelta(hours=26)), now=at(60)),
    "alert_no_backup_at_all": lambda: B.alert_message(
        Alert("no-recent-backup", threshold=timedelta(hours=26)), now=at(60)),
    "alert_no_recent_backup_cleared": lambda: B.alert_message(
        Alert("no-recent-backup", BACKUP, cleared=True, cleared_at=at(12)), now=at(12)),
    "alert_bsl_unavailable": lambda: B.alert_message(
        Alert("bsl-unavailable", "default", "BackupStorageLocation \"default\" is unavailable: "
              "rpc error: NoSuchBucket", at(-10), phase="Unavailable"), now=at(0)),
    "alert_bsl_unavailable_cleared": lambda: B.alert_message(
        Alert("bsl-unavailable", "default", cleared=True, cleared_at=at(5)), now=at(5)),
    "alert_velero_not_ready": lambda: B.alert_message(
        Alert("velero-not-ready", "velero", "velero-7d9: CrashLoopBackOff\nrestarts: 12", at(-5)),
        now=at(0)),
    "alert_velero_not_ready_cleared": lambda: B.alert_message(
        Alert("velero-not-ready", "velero", "velero-7d9 is ready", cleared=True,
              cleared_at=at(3)), now=at(3)),
    "help_ragbackup": lambda: B.help_message("/ragbackup"),
    "help_ragrestore": lambda: B.help_message("/ragrestore"),
    "usage_error": lambda: B.usage_error(_usage("list 99")),
    "usage_error_unknown": lambda: B.usage_error(_usage("lsit <b>")),
    "refusal": lambda: B.refusal(Decision(False, "ragbot.access.restore.users",
                                          "you are not in ragbot.access.restore.users or its "
                                          "usergroups"), what="restore"),
    "error_backup_in_progress": lambda: B.explain_error(
        BackupInProgress("backup x is still running", running=BACKUP), doing="start a backup"),
    "error_no_completed_backup": lambda: B.explain_error(
        NoCompletedBackup("no Completed Backup labelled backup-reason=regular in namespace velero"),
        doing="restore"),
    "error_forbidden": lambda: B.explain_error(
        Forbidden("configmaps is forbidden: User \"system:serviceaccount:ragbot:ragbot\" cannot "
                  "create resource \"configmaps\" in namespace \"ragbot\""), doing="record the request"),
    "error_unreachable": lambda: B.explain_error(
        Unreachable("cannot reach the Kubernetes API server: connection refused"), doing="list backups"),
    "error_cluster": lambda: B.explain_error(ClusterError("something <odd> & new"), doing="list backups"),
    "error_unexpected": lambda: B.explain_error(KeyError("secret internals"), doing="list backups"),
    "error_notice": lambda: B.error_notice("Slack did not answer", "ratelimited", "Try again."),
    "ack_backup_started": lambda: B.backup_started(BACKUP, channel="C0OPS"),
    "ack_restore_requested": lambda: B.restore_requested(record(), channel="C0OPS"),
    "ack_restore_cancelled": lambda: B.restore_cancelled(record("cancelled")),
    "approval_done": lambda: B.approval_done(record("approved")),
    "approval_recorded": lambda: B.approval_recorded(record("approved"), approved=True, now=at(2)),
    "schedule_skipped": lambda: B.schedule_skipped(at(0), BACKUP),
    "schedule_missed": lambda: B.schedule_missed([at(-60 * 24 * d) for d in range(7, 0, -1)], "1h0m0s"),
    "schedule_paused": lambda: B.schedule_paused(True, "U0OPERATOR1"),
    "schedule_resumed": lambda: B.schedule_paused(False, "U0OPERATOR1"),
}  # fmt: skip


def assert_golden(name: str, msg: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(msg, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from {path.name}; if intended, UPDATE_GOLDEN=1 and review the diff"
    )


def assert_slack_accepts(msg: dict[str, Any]) -> None:
    assert check_message(msg) == []
    for block in msg["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        assert parsed.to_dict() == block  # to_dict validates slack_sdk's own limits


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    msg = CASES[name]()
    assert_slack_accepts(msg)
    assert_golden(name, msg)


def test_every_golden_file_has_a_case() -> None:
    stale = sorted(p.stem for p in GOLDEN.glob("*.json") if p.stem not in CASES)
    assert stale == [], f"golden files without a case: {stale}"


# ----------------------------------------------------------------------- properties


def test_approval_buttons_carry_the_record_id_and_constant_action_ids() -> None:
    msg = B.restore_approval_request(record(), now=at(5))
    actions = next(b for b in msg["blocks"] if b["type"] == "actions")
    assert actions["block_id"] == B.APPROVAL_BLOCK
    approve, reject = actions["elements"]
    assert (approve["action_id"], approve["value"], approve["style"]) == (
        B.APPROVE_ACTION, RECORD_ID, "primary")
    assert (reject["action_id"], reject["value"], reject["style"]) == (
        B.REJECT_ACTION, RECORD_ID, "danger")
    assert "confirm" in approve and "confirm" not in reject
    assert B.ACTION_IDS == (B.APPROVE_ACTION, B.REJECT_ACTION)
    decided = B.restore_approval_outcome(record("approved"), now=at(5))
    assert all(b["type"] != "actions" for b in decided["blocks"])
    assert "Approved by <@U0APPROVER>" in json.dumps(decided)


def test_user_text_is_escaped_and_cannot_ping_the_channel() -> None:
    everything = json.dumps([B.backup_progress(backup(), now=at(1)),
                             B.restore_approval_request(record(reason="<!here> & <@U0X>"), now=at(1))])
    assert "<!channel>" not in everything and "<!here>" not in everything
    assert "&lt;!here&gt; &amp; &lt;@U0X&gt;" in everything


def test_offline_namespaces_and_their_effects_are_named() -> None:
    text = json.dumps(B.restore_approval_request(record(), now=at(1)))
    assert "`auth`: Keycloak user logins" in text
    assert "`edp`: document ingestion pipelines" in text
    assert "`chatqa`" in text and "`vdb`" in text


def test_restore_view_reads_the_record() -> None:
    v = restore_view(record("running", done=3, running=True))
    assert (v.state, v.backup, v.requester, v.approver) == ("running", BACKUP, "U0REQUEST", "U0APPROVER")
    assert v.current() is not None and v.current()[0] == 4  # type: ignore[index]
    assert v.offline == ("auth", "chatqa", "edp", "vdb") and v.pvcs == 2
    assert restore_duration(_succeeded()) == timedelta(minutes=23)
    assert restore_duration(record()) is None


def test_velero_results_flatten_every_scope() -> None:
    assert RESULTS.errors == ("velero: timed out waiting for CSI snapshot vdb/redis-data-vdb-0",
                              "edp: error executing hook: pod edp-backend-x not running")  # fmt: skip
    assert RESULTS.warnings == ("cluster: resource customresourcedefinitions/x.y not backed up",)
    assert VeleroResults.from_json(None) == VeleroResults()


def test_clip_never_cuts_an_entity_or_a_token() -> None:
    assert clip("abc &amp; def", 7) == "abc …"
    assert clip("see <@U0ABCDEF> now", 10) == "see …"
    assert clip("short", 10) == "short"
    assert len(clip("x" * 5000, 3000)) == 3000


def test_bullets_end_with_and_n_more() -> None:
    text = bullets([f"error {i}" for i in range(500)], max_items=15)
    assert text.splitlines()[-1] == "… and 485 more"
    assert len(text.splitlines()) == 16
    long = bullets(["y" * 290] * 40, max_chars=2000)
    assert len(long) <= 2000 and long.endswith("more")
