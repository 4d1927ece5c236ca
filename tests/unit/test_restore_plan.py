"""Pure restore logic: the plan from hand-made inputs, the readiness rule, record states.

No cluster: the planner's core takes the config, a backup resource list and a
`ClusterFacts` written out here; readiness is judged on pod dicts; state transitions
run on decoded record dicts exactly as `update` applies them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.models import Config
from k8s.helm_release import HelmHook
from k8s.helm_release import HelmRelease as ReleaseRecord
from k8s.readiness import evaluate, evaluate_namespace, pod_problem
from k8s.restore_executor import application_state, restore_name
from k8s.restore_plan import (
    CREATE_RESTORE,
    EXCLUDED_RESOURCES,
    HELM_UNINSTALL,
    NAMED_DELETE,
    PVC_DELETE,
    SELECTOR_DELETE,
    WAIT_READY,
    WAIT_VELERO,
    ClusterFacts,
    ReleaseFacts,
    plan_from_dict,
    plan_restore,
    plan_to_dict,
    render_plan,
)
from k8s.restore_record import (
    APPROVED,
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    REJECTED,
    RUNNING,
    STEP_DONE,
    STEP_FAILED,
    STEP_RUNNING,
    SUCCEEDED,
    StateConflict,
    apply_step,
    apply_transition,
    new_record_data,
)

T0 = datetime(2025, 9, 16, 11, 43, 15, tzinfo=UTC)


def _manifest(*docs: str) -> str:
    return "".join(f"---\n# Source: x/templates/t.yaml\n{d}\n" for d in docs)


def _release(name: str, ns: str, manifest: str, *, version: int = 1,
             hooks: tuple[HelmHook, ...] = ()) -> ReleaseRecord:  # fmt: skip
    return ReleaseRecord(name, ns, version, "deployed", manifest, hooks, name, "1.0.0")


KEYCLOAK = _release("keycloak", "auth", _manifest(
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: keycloak",
    "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: keycloak",
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: keycloak",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep-me\n  annotations:\n"
    "    helm.sh/resource-policy: keep",
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: kc-reader",
), version=3, hooks=(
    HelmHook("kc-pre-delete", "Job", ("pre-delete",), "keycloak/templates/pre.yaml"),
    HelmHook("kc-test", "Pod", ("test",), "keycloak/templates/test.yaml"),
))  # fmt: skip

RESOURCE_LIST: dict[str, list[str]] = {
    "v1/Secret": ["auth/keycloak", "auth/sh.helm.release.v1.keycloak.v3", "edp/tls-secret",
                  "edp/vector-database-config"],
    "apps/v1/StatefulSet": ["auth/keycloak"],
    "apps/v1/Deployment": ["chatqa/router"],
    "v1/Service": ["auth/keycloak"],
    "v1/Pod": ["auth/keycloak-0", "chatqa/router-abc", "edp/edp-backend-x"],
    "v1/PersistentVolumeClaim": ["auth/data-keycloak-postgresql-0", "vdb/redis-data-vdb-0",
                                 "auth/data-keycloak-postgresql-0"],
    "v1/ConfigMap": ["default/erag-deployment-manifest"],
}  # fmt: skip


def _facts(**overrides: Any) -> ClusterFacts:
    base: dict[str, Any] = {
        "selector_matches": {
            ("chatqa", "Deployment", "app.kubernetes.io/managed-by=Helm"): ("router", "vllm")
        },
        "releases": {("auth", "keycloak"): ReleaseFacts(
            KEYCLOAK, ("sh.helm.release.v1.keycloak.v2", "sh.helm.release.v1.keycloak.v3"))},
        "present": {("edp", "Secret", "tls-secret"): True,
                    ("edp", "Secret", "vector-database-config"): True},
        "pvcs_present": frozenset({("auth", "data-keycloak-postgresql-0")}),
    }  # fmt: skip
    base.update(overrides)
    return ClusterFacts(**base)


def _plan(cfg: Config | None = None, facts: ClusterFacts | None = None) -> Any:
    return plan_restore(cfg or Config(), "backup-20250916t114315", RESOURCE_LIST, facts or _facts())


# ------------------------------------------------------------------------- the plan


def test_steps_follow_the_playbook_three_passes_then_pvcs_restore_velero_ready() -> None:
    plan = _plan()
    actions = [s.action for s in plan.steps]
    # 1 selector delete, 7 Helm releases, 5 distinct named Secrets (edp's duplicate dropped).
    assert actions == [SELECTOR_DELETE] + [HELM_UNINSTALL] * 7 + [NAMED_DELETE] * 5 + [
        PVC_DELETE, CREATE_RESTORE, WAIT_VELERO, WAIT_READY]  # fmt: skip
    helm = [s.namespace for s in plan.steps if s.action == HELM_UNINSTALL]
    assert helm == ["system", "auth", "fingerprint", "chat-history", "edp", "seaweedfs", "vdb"]
    named = [(s.namespace, s.name) for s in plan.steps if s.action == NAMED_DELETE]
    assert named == [
        ("fingerprint", "mongo-database-secret"), ("chat-history", "mongo-database-secret"),
        ("edp", "vector-database-config"), ("edp", "tls-secret"), ("vdb", "vector-database-config"),
    ]  # fmt: skip
    assert len({s.key for s in plan.steps}) == len(plan.steps)


def test_helm_step_lists_objects_secrets_kept_and_skipped_hooks() -> None:
    step = next(s for s in _plan().steps if s.key == "helm-uninstall:auth:keycloak")
    assert [str(o) for o in step.objects] == [
        "Service auth/keycloak", "StatefulSet auth/keycloak", "ClusterRole kc-reader",
        "Secret auth/keycloak", "Secret auth/sh.helm.release.v1.keycloak.v2",
        "Secret auth/sh.helm.release.v1.keycloak.v3",
    ]  # fmt: skip (UninstallOrder: Service, StatefulSet, ClusterRole, ..., Secret)
    assert [str(o) for o in step.kept] == ["ConfigMap auth/keep-me"]
    assert [(h.name, h.events) for h in step.hooks_skipped] == [("kc-pre-delete", ("pre-delete",))]
    assert any("hook skipped" in n and "kc-pre-delete" in n for n in step.notes)
    assert not any("kc-test" in n for n in step.notes)  # a test hook never runs on uninstall


def test_missing_release_and_missing_secret_are_noops_that_say_so() -> None:
    plan = _plan(facts=_facts(releases={}, present={}))
    gmc = next(s for s in plan.steps if s.key == "helm-uninstall:system:gmc")
    assert gmc.objects == () and "not found" in gmc.notes[0]
    tls = next(s for s in plan.steps if s.key == "named-delete:edp:Secret:tls-secret")
    assert tls.objects == () and "not there" in tls.notes[0]


def test_a_corrupt_release_record_is_a_warning_not_a_crash() -> None:
    bad = ReleaseFacts(_release("keycloak", "auth", "---\nkind: [\n"), ("sh.helm.release.v1.keycloak.v1",))
    plan = _plan(facts=_facts(releases={("auth", "keycloak"): bad}))
    assert any(w.startswith("corrupted release record") for w in plan.warnings)


def test_objects_missing_from_the_backup_are_flagged() -> None:
    plan = _plan()
    sel = plan.steps[0]
    assert [(o.name, o.in_backup) for o in sel.objects] == [("router", True), ("vllm", False)]
    assert any("vllm" in w and "cannot bring it back" in w for w in plan.warnings)
    assert not any("router" in w for w in plan.warnings)
    helm = next(s for s in plan.steps if s.key == "helm-uninstall:auth:keycloak")
    old = next(o for o in helm.objects if o.name.endswith(".v2"))
    assert old.in_backup is False


def test_pvcs_come_from_the_resource_list_once_each() -> None:
    step = next(s for s in _plan().steps if s.action == PVC_DELETE)
    assert [(o.namespace, o.name) for o in step.objects] == [
        ("auth", "data-keycloak-postgresql-0"), ("vdb", "redis-data-vdb-0")]  # fmt: skip
    assert any("already absent: vdb/redis-data-vdb-0" in n for n in step.notes)


def test_offline_ready_and_skipped_namespaces() -> None:
    plan = _plan()
    assert plan.offline == ("auth", "chatqa", "edp", "vdb")
    assert plan.ready_namespaces == ("auth", "chatqa", "edp")
    assert "default" in plan.skipped_namespaces and "system" in plan.skipped_namespaces
    ready = plan.steps[-1]
    assert ready.params["namespaces"] == ["auth", "chatqa", "edp"]


def test_restore_spec_is_the_playbooks() -> None:
    cfg = Config.model_validate({"velero": {"backup": {
        "restore_prefix": "rst", "itemOperationTimeout": "90m",
        "restore_labels": {"restore-reason": "drill"}}}})  # fmt: skip
    step = next(s for s in _plan(cfg).steps if s.action == CREATE_RESTORE)
    assert step.params["spec"] == {
        "backupName": "backup-20250916t114315",
        "excludedResources": [
            "instrumentations.opentelemetry.io", "pods", "replicasets.apps",
            "gmconnectors.gmc.opea.io",
            "validatingwebhookconfigurations.admissionregistration.k8s.io",
        ],
        "existingResourcePolicy": "update",
        "itemOperationTimeout": "90m",
    }  # fmt: skip
    assert list(EXCLUDED_RESOURCES) == step.params["spec"]["excludedResources"]
    assert step.params["labels"] == {"restore-reason": "drill"}
    assert restore_name("rst", T0) == "rst-20250916t114315"


def test_namespace_order_limits_cleanup() -> None:
    cfg = Config.model_validate({"velero": {"backup": {"backupConfig": {
        "namespaceOrder": ["vdb", "auth"]}}}})  # fmt: skip
    plan = _plan(cfg)
    cleanup = [s.key for s in plan.steps if s.action in (SELECTOR_DELETE, HELM_UNINSTALL, NAMED_DELETE)]
    assert cleanup == ["helm-uninstall:vdb:vdb", "helm-uninstall:auth:keycloak",
                       "named-delete:vdb:Secret:vector-database-config"]  # fmt: skip


def test_plan_round_trips_through_json_and_renders() -> None:
    plan = _plan()
    data = json.loads(json.dumps(plan_to_dict(plan)))
    assert plan_from_dict(data) == plan
    text = render_plan(plan)
    assert "auth (Keycloak user logins)" in text and "edp (document ingestion pipelines)" in text
    assert "NOT in the backup" in text and "kept: ConfigMap auth/keep-me" in text


# -------------------------------------------------------------------------- readiness


def _pod(name: str, phase: str = "Running", ready: tuple[bool, ...] = (True,), *,
         owner: str = "ReplicaSet", deleting: bool = False) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": name, "namespace": "ns",
                            "ownerReferences": [{"kind": owner, "name": "o", "uid": "u"}]}  # fmt: skip
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    containers = [{"name": f"c{i}"} for i in range(len(ready))]
    statuses = [{"name": f"c{i}", "ready": r} for i, r in enumerate(ready)]
    return {"metadata": meta, "spec": {"containers": containers},
            "status": {"phase": phase, "containerStatuses": statuses}}  # fmt: skip


def test_every_container_of_a_running_pod_must_be_ready() -> None:
    assert pod_problem(_pod("a")) is None
    assert "c1 not ready" in (pod_problem(_pod("a", ready=(True, False))) or "")
    missing_status = _pod("a")
    missing_status["status"]["containerStatuses"] = []
    assert pod_problem(missing_status) is not None


def test_pods_outside_running_or_succeeded_fail_unless_owned_by_a_job() -> None:
    assert pod_problem(_pod("a", "Succeeded", (False,))) is None
    assert pod_problem(_pod("a", "Pending", (False,))) == "pod ns/a is Pending"
    assert pod_problem(_pod("a", "Failed", (False,))) == "pod ns/a is Failed"
    assert pod_problem(_pod("j", "Pending", (False,), owner="Job")) is None
    assert pod_problem(_pod("j", "Failed", (False,), owner="Job")) is None
    assert pod_problem(_pod("old", "Running", (False,), deleting=True)) is None


def test_namespaces_missing_or_empty_are_not_ready_unless_skipped() -> None:
    pods = {"auth": [_pod("kc")], "edp": [], "default": []}
    verdict = evaluate(["auth", "edp", "default", "gone"], ["auth", "edp", "default"], pods,
                       skip_empty=["default", "gone"])  # fmt: skip
    assert [n.ready for n in verdict.namespaces] == [True, False, True, False]
    assert verdict.problems == ("namespace edp has no pods", "namespace gone is missing")
    assert not verdict.ready and "2/4 namespaces ready" in verdict.summary()
    only_terminating = evaluate_namespace("x", True, [_pod("o", deleting=True)], must_have_pods=True)
    assert not only_terminating.ready
    assert evaluate(["auth"], ["auth"], {"auth": [_pod("kc")]}).ready


# ---------------------------------------------------------------------- record states


def _data(state: str = PENDING, expires_in: timedelta | None = timedelta(minutes=15)) -> dict[str, Any]:
    return new_record_data(_plan(), requester="U1", reason="drill", trigger="slack", state=state,
                           created=T0, approval_timeout=expires_in)  # fmt: skip


def test_approval_moves_once_and_a_second_approval_conflicts() -> None:
    data = _data()
    apply_transition(data, "r", [PENDING], APPROVED, T0 + timedelta(minutes=1), {"approver": "U2"})
    assert data["state"] == APPROVED and data["approver"] == "U2"
    with pytest.raises(StateConflict) as err:
        apply_transition(data, "r", [PENDING], APPROVED, T0 + timedelta(minutes=1), {"approver": "U3"})
    assert err.value.state == APPROVED and data["approver"] == "U2"


def test_approval_after_expiry_is_refused() -> None:
    data = _data()
    with pytest.raises(StateConflict, match="expired"):
        apply_transition(data, "r", [PENDING], APPROVED, T0 + timedelta(minutes=16))
    apply_transition(data, "r", [PENDING], EXPIRED, T0 + timedelta(minutes=16))
    assert data["state"] == EXPIRED and data["finished"]


@pytest.mark.parametrize(("start", "target", "ok"), [
    (PENDING, REJECTED, True), (PENDING, CANCELLED, True), (PENDING, RUNNING, False),
    (APPROVED, RUNNING, True), (APPROVED, CANCELLED, True), (RUNNING, SUCCEEDED, True),
    (RUNNING, FAILED, True), (RUNNING, CANCELLED, False), (SUCCEEDED, RUNNING, False),
    (FAILED, RUNNING, True), (REJECTED, APPROVED, False), (EXPIRED, APPROVED, False),
])  # fmt: skip
def test_transition_table(start: str, target: str, ok: bool) -> None:
    data = _data(start, None)
    if ok:
        apply_transition(data, "r", [start], target, T0)
        assert data["state"] == target
        assert data["history"][-1]["event"] == f"{start} -> {target}"
    else:
        with pytest.raises(StateConflict):
            apply_transition(data, "r", [start], target, T0)
        assert data["state"] == start


def test_steps_run_and_finish_once() -> None:
    data = _data(RUNNING, None)
    key = data["steps"][0]["key"]
    apply_step(data, "r", key, STEP_RUNNING, T0)
    apply_step(data, "r", key, STEP_RUNNING, T0 + timedelta(seconds=1))  # resumed after a crash
    apply_step(data, "r", key, STEP_DONE, T0 + timedelta(seconds=2), "deleted 2")
    step = data["steps"][0]
    assert (step["status"], step["runs"], step["detail"]) == (STEP_DONE, 2, "deleted 2")
    with pytest.raises(StateConflict, match="already done"):
        apply_step(data, "r", key, STEP_RUNNING, T0)
    with pytest.raises(StateConflict, match="already done"):
        apply_step(data, "r", key, STEP_FAILED, T0)
    done_events = [h for h in data["history"] if h["event"] == f"step {key} done"]
    assert len(done_events) == 1
    approved = _data(APPROVED, None)
    with pytest.raises(StateConflict, match="not running"):
        apply_step(approved, "r", key, STEP_RUNNING, T0)


def test_record_data_summarises_the_plan() -> None:
    data = _data()
    assert data["summary"]["offline"] == ["auth", "chatqa", "edp", "vdb"]
    assert data["summary"]["pvcs"] == 2 and "keycloak" in data["summary"]["releases"]
    assert data["expires"] == "2025-09-16T11:58:15Z"
    assert all(s["status"] == "pending" for s in data["steps"])
    assert json.loads(json.dumps(data)) == data


def test_application_state_names_how_far_it_got() -> None:
    plan = _plan()
    first_helm = next(s.key for s in plan.steps if s.action == HELM_UNINSTALL)
    assert "cleanup finished for chatqa" in application_state(plan, first_helm)
    assert "no Velero Restore" in application_state(plan, CREATE_RESTORE)
    assert "partly restored" in application_state(plan, WAIT_VELERO, "PartiallyFailed")
    assert "not ready" in application_state(plan, WAIT_READY)
