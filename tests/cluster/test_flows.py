"""ragbot's cluster-side flows, judged on the sandbox and on upstream alike.

Each test drives ragbot as its ServiceAccount (exactly the declared RBAC) and checks the
outcome from outside with an admin client and the backup bucket: the README's three
commands (`check`, `backup now --wait`, `restore run latest --yes --wait`), the backup
listing and resource list (DownloadRequest), pruning through DeleteBackupRequests, the
restore lock, leader election, and that the grant is no wider than declared. Run with
`--cluster=upstream` to judge against real kube-apiserver + Velero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from k8s import labels as L
from k8s import lease
from k8s import resources as R
from k8s.backups import create_backup, wait_backup
from k8s.client import Cluster, from_kubeconfig
from k8s.download import backup_resource_list, pvcs_in
from k8s.permissions import required_rules
from k8s.prune import prune
from k8s.restore_lock import RestoreInProgress, acquire_lock, release_lock
from k8s.restore_plan import build_plan
from k8s.restore_record import (
    APPROVED,
    CANCELLED,
    SUCCEEDED,
    RestoreRecord,
    create_record,
    get_record,
    list_records,
    transition,
)
from k8s.restore_record import _from_configmap as record_from_configmap
from k8s.watch import Collection, wait_for
from tests.cluster.conftest import CliResult
from tests.cluster.targets import Target
from tests.conftest import wait_for as poll

REPO = Path(__file__).resolve().parents[2]
DONE = ("Completed", "PartiallyFailed")
#: Upstream Velero finishes a backup of the seed in ~10 s and a restore in ~10 s; pods
#: come back through the controllers, the scheduler and kwok.
BACKUP_TIMEOUT = 300.0


def _sa_cluster(target: Target) -> Cluster:
    return from_kubeconfig(target.kubeconfig)


def _backup_done(target: Target, ragbot: Callable[..., CliResult]) -> str:
    """`ragbot backup now --wait` as the ServiceAccount; the Backup's name."""
    res = ragbot("backup", "now", "--wait")
    assert res.code == 0, res
    assert any(p in res.out for p in DONE), res
    with target.admin() as api:
        backups = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "velero.io", "v1", target.cfg.velero.namespace, "backups"
        )["items"]
    done = [b for b in backups if (b.get("status") or {}).get("phase") in DONE]
    newest = max(done, key=lambda b: b["status"].get("completionTimestamp") or "")
    return str(newest["metadata"]["name"])


def test_check_passes(ragbot: Callable[..., CliResult]) -> None:
    res = ragbot("check")
    assert res.code == 0, res
    assert res.err == "" and "WARNING" not in res.out and "FAILED" not in res.out, res
    res = ragbot("check", "-o", "json")
    report = json.loads(res.out)
    assert res.code == 0 and report["passed"] is True
    assert {c["status"] for c in report["checks"]} == {"ok"}, report
    assert {"Velero server pod", "BackupStorageLocation", "VolumeSnapshotClass"} <= {
        c["item"] for c in report["checks"]
    }


def test_check_fails_while_the_snapshot_class_is_ambiguous(
    target: Target, ragbot: Callable[..., CliResult]
) -> None:
    vsc, name = R.VOLUME_SNAPSHOT_CLASS, "csi-snapclass"
    label = "velero.io/csi-volumesnapshot-class"
    with target.admin() as api:
        admin = Cluster(api)
        driver = R.get(admin, vsc, None, name)["driver"]
        R.merge_patch(admin, vsc, None, name, {"metadata": {"labels": {label: None}}})
        second = {"apiVersion": vsc.api_version, "kind": vsc.kind,
                  "metadata": {"name": "second-" + str(int(time.time()))},
                  "driver": driver, "deletionPolicy": "Retain"}  # fmt: skip
        try:
            # The only class of its driver: Velero still uses it, so only a warning.
            res = ragbot("check")
            assert res.code == 0 and "WARNING  VolumeSnapshotClass" in res.out, res
            R.create(admin, vsc, None, second)
            res = ragbot("check")
            assert res.code == 1 and "FAILED   VolumeSnapshotClass" in res.out, res
            assert f'fix: kubectl label volumesnapshotclass {name} {label}="true"' in res.out
        finally:
            R.merge_patch(admin, vsc, None, name, {"metadata": {"labels": {label: "true"}}})
            if R.try_get(admin, vsc, None, second["metadata"]["name"]) is not None:
                R.delete(admin, vsc, None, second["metadata"]["name"])
    assert ragbot("check").code == 0


def test_backup_now_stores_the_backup_in_the_bucket(
    target: Target, ragbot: Callable[..., CliResult]
) -> None:
    name = _backup_done(target, ragbot)
    keys = target.bucket_keys(f"backups/{name}/")
    # Velero's own layout (pkg/persistence/object_store_layout.go).
    for suffix in ("velero-backup.json", f"{name}.tar.gz", f"{name}-resource-list.json.gz"):
        assert f"backups/{name}/{suffix}" in keys, keys

    listed = ragbot("backup", "list", "-o", "json")
    assert listed.code == 0, listed
    assert name in {b["name"] for b in json.loads(listed.out)}, listed
    described = ragbot("backup", "describe", name)
    assert described.code == 0 and name in described.out, described

    # The resource list comes back through a DownloadRequest served by Velero.
    cluster = _sa_cluster(target)
    try:
        resources = backup_resource_list(cluster, target.cfg.velero.namespace, name, timeout=60)
    finally:
        cluster.close()
    assert "v1/Namespace" in resources, sorted(resources)
    pvcs = pvcs_in(resources)
    assert ("auth", "data-keycloak-postgresql-0") in pvcs, pvcs


def test_a_backup_is_refused_while_a_restore_holds_the_lock(
    target: Target, ragbot: Callable[..., CliResult]
) -> None:
    name = _backup_done(target, ragbot)
    cluster = _sa_cluster(target)
    try:
        backup = R.get(cluster, R.BACKUP, target.cfg.velero.namespace, name)
        plan = build_plan(cluster, target.cfg, backup)
        record = create_record(cluster, target.cfg, plan, requester="test-lock", state=APPROVED)
        acquire_lock(cluster, target.cfg, record.id)
        try:
            with pytest.raises(RestoreInProgress):
                create_backup(cluster, target.cfg, trigger="cli", requester="test-lock")
            res = ragbot("backup", "now")
            assert res.code != 0 and res.err.count("\n") == 1, res
            assert record.id in res.err, res
        finally:
            assert release_lock(cluster, target.cfg, record.id)
            transition(cluster, record, [APPROVED], CANCELLED)
        assert ragbot("backup", "now", "--wait").code == 0
    finally:
        cluster.close()


def test_prune_asks_velero_to_delete_old_backups_and_velero_does(target: Target) -> None:
    cluster = _sa_cluster(target)
    try:
        names = []
        for i in range(2):
            # Two requesters: one requester's two requests in one second are one request.
            b = create_backup(cluster, target.cfg, trigger="schedule", requester=f"test-prune-{i}")
            name = b["metadata"]["name"]
            done = wait_backup(cluster, target.cfg, name, timeout=BACKUP_TIMEOUT)
            assert done["status"]["phase"] in DONE, done["status"]
            names.append(name)
        assert names[0] != names[1], names
        assert target.bucket_keys(f"backups/{names[0]}/")
        requested = prune(cluster, target.cfg, keep_last=1)
        assert names[0] in requested and names[1] not in requested, requested
        # Velero (real or simulated) deletes the Backup and its files.
        ns = target.cfg.velero.namespace
        with target.admin() as api:
            custom = client.CustomObjectsApi(api)

            def gone() -> bool:
                try:
                    custom.get_namespaced_custom_object("velero.io", "v1", ns, "backups", names[0])
                except ApiException as exc:
                    return exc.status == 404
                return False

            poll(gone, 120, f"Velero to delete backup {names[0]}")
            custom.get_namespaced_custom_object("velero.io", "v1", ns, "backups", names[1])
        poll(lambda: not target.bucket_keys(f"backups/{names[0]}/"), 60, "the bucket to be emptied")
        assert target.bucket_keys(f"backups/{names[1]}/")
        # Asking again is a no-op: the remaining backup is the one kept.
        assert prune(cluster, target.cfg, keep_last=1) == []
    finally:
        cluster.close()


def test_leader_lease_acquire_renew_release(target: Target) -> None:
    cluster = _sa_cluster(target)
    try:
        now = datetime.now(UTC)
        ns = target.cfg.ragbot.namespace
        take = lease.try_acquire_or_renew
        assert take(cluster, ns, "pod-a", now=now, lease_seconds=15)
        assert take(cluster, ns, "pod-a", now=now + timedelta(seconds=5), lease_seconds=15)
        assert not take(cluster, ns, "pod-b", now=now + timedelta(seconds=6), lease_seconds=15)
        assert lease.release(cluster, ns, "pod-a", now=now + timedelta(seconds=7))
        assert take(cluster, ns, "pod-b", now=now + timedelta(seconds=8), lease_seconds=15)
        assert lease.release(cluster, ns, "pod-b", now=now + timedelta(seconds=9))
    finally:
        cluster.close()


def _forbidden(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as exc:
        return exc.status == 403
    return False


def test_the_grant_is_no_wider_than_declared(target: Target) -> None:
    """The cluster's authorizer (the real one upstream) refuses what ragbot was not granted."""
    cluster = _sa_cluster(target)
    try:
        api = cluster.api_client
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        app_namespaces = set(target.cfg.velero.backup.backupConfig.namespaceOrder)
        assert _forbidden(lambda: core.list_secret_for_all_namespaces())
        for ns in ("kube-system", target.cfg.velero.namespace, target.cfg.ragbot.namespace):
            assert ns not in app_namespaces
            assert _forbidden(lambda ns=ns: core.list_namespaced_secret(ns)), ns
        assert _forbidden(lambda: custom.delete_namespaced_custom_object(
            "velero.io", "v1", target.cfg.velero.namespace, "backups", "anything"))  # fmt: skip
        assert _forbidden(lambda: core.list_namespaced_pod("kube-system"))
        for rule in required_rules(target.cfg):
            assert "*" not in (*rule.verbs, *rule.resources, *rule.api_groups), rule
        # And what it was granted, it gets.
        core.list_namespaced_pod(target.cfg.velero.namespace)
    finally:
        cluster.close()


def _workloads_ready(target: Target) -> list[str]:
    """Deployments and StatefulSets of the backed-up namespaces that are not Ready."""
    bad = []
    with target.admin() as api:
        apps = client.AppsV1Api(api)
        for ns in target.cfg.velero.backup.backupConfig.namespaceOrder:
            for kind, items in (
                ("deployment", apps.list_namespaced_deployment(ns).items),
                ("statefulset", apps.list_namespaced_stateful_set(ns).items),
            ):
                for w in items:
                    want = w.spec.replicas if w.spec.replicas is not None else 1
                    have = (w.status.ready_replicas or 0) if w.status else 0
                    if have < want:
                        bad.append(f"{kind} {ns}/{w.metadata.name} {have}/{want}")
    return bad


@pytest.mark.slow
def test_restore_latest_brings_the_application_back(
    target: Target, ragbot: Callable[..., CliResult]
) -> None:
    name = _backup_done(target, ragbot)
    plan = ragbot("restore", "plan", "latest")
    assert plan.code == 0 and name in plan.out, plan
    res = ragbot("restore", "run", "latest", "--yes", "--wait")
    assert res.code == 0 and "succeeded" in res.out, res
    listed = ragbot("restore", "list")
    assert listed.code == 0 and "succeeded" in listed.out, listed
    with target.admin() as api:
        restores = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "velero.io", "v1", target.cfg.velero.namespace, "restores"
        )["items"]
    ours = [r for r in restores if r["spec"].get("backupName") == name]
    assert len(ours) == 1, [r["metadata"]["name"] for r in restores]
    assert ours[0]["status"]["phase"] in DONE, ours[0]["status"]
    # ragbot waited for readiness; everything it restored is Ready now.
    assert _workloads_ready(target) == []


def test_run_without_yes_shows_the_plan_and_changes_nothing(
    target: Target, ragbot: Callable[..., CliResult]
) -> None:
    _backup_done(target, ragbot)
    cluster = _sa_cluster(target)
    try:
        before = {r.id for r in list_records(cluster, target.cfg)}
        res = ragbot("restore", "run")
        assert res.code == 2 and "add --yes" in res.err, res
        assert "uninstall Helm release keycloak" in res.out, res
        assert {r.id for r in list_records(cluster, target.cfg)} == before
        plan = ragbot("restore", "plan", "latest", "-o", "json")
        assert plan.code == 0 and json.loads(plan.out)["steps"][-1]["action"] == "wait-ready"
    finally:
        cluster.close()


def _spawn(target: Target, *argv: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *argv, *target.args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _record(cluster: Cluster, target: Target, cond: Callable[[RestoreRecord], Any], what: str) -> Any:
    def check(view: Collection) -> Any:
        for obj in view.objects.values():
            found = cond(record_from_configmap(obj))
            if found:
                return found
        return None

    return wait_for(cluster, R.CONFIGMAP, target.cfg.ragbot.namespace, check, timeout=600,
                    what=what, label_selector=f"{L.LABEL_RECORD_KIND}=restore")  # fmt: skip


@pytest.mark.slow
def test_restore_killed_midway_is_resumed_and_a_second_run_is_refused(
    target: Target, ragbot: Callable[..., CliResult]
) -> None:
    """SIGKILL the restoring process after its first steps; a new process finishes the job.

    Meanwhile a second `restore run` is refused by the lock. Exactly one Velero Restore is
    made, every step is recorded done once, and the application ends Ready.
    """
    backup = _backup_done(target, ragbot)
    if target.kind == "sandbox":
        # Pace the sandbox like a real cluster: a restore there takes ~1 s, shorter
        # than a process start, so record writes are slowed (a latency, not a fault).
        target.handle.server.faults.set(latency_seconds=0.15, path_filter="/configmaps/restore-")
    cluster = _sa_cluster(target)
    before = {r.id for r in list_records(cluster, target.cfg)}
    first = _spawn(target, "restore", "run", backup, "--yes", "--wait")
    try:
        rec = _record(cluster, target, lambda r: r if r.id not in before else None,
                      "the record of the new restore")  # fmt: skip
        second = ragbot("restore", "run", backup, "--yes", "--wait")
        assert second.code == 1 and "restore already in progress" in second.err, second
        key = rec.steps[1]["key"]
        _record(cluster, target, lambda r: r.id == rec.id and r.step(key)["status"] == "done",
                f"step {key} of {rec.id} done")  # fmt: skip
        assert first.poll() is None, first.communicate()
        first.kill()
        first.wait(timeout=30)
        if target.kind == "sandbox":
            target.handle.server.faults.clear()
        resumed = _spawn(target, "restore", "resume", rec.id)
        out, err = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, out + err
        done = get_record(cluster, target.cfg, rec.id)
        assert done.state == SUCCEEDED, done.data.get("error")
        for step in done.steps:
            events = [h for h in done.data["history"] if h["event"] == f"step {step['key']} done"]
            assert step["status"] == "done" and len(events) == 1, (step, events)
        with target.admin() as api:
            restores = client.CustomObjectsApi(api).list_namespaced_custom_object(
                "velero.io", "v1", target.cfg.velero.namespace, "restores"
            )["items"]
        assert [r["metadata"]["name"] for r in restores if r["spec"]["backupName"] == backup] == [
            done.velero_restore
        ]
        assert _workloads_ready(target) == []
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        cluster.close()


@pytest.mark.slow
def test_restore_without_wait_goes_on_in_a_detached_process(
    target: Target, ragbot: Callable[..., CliResult]
) -> None:
    if target.kind == "upstream":
        pytest.skip(
            "on the shared upstream stack a fourth restore in one session, after the prune "
            "and lock tests, ended PartiallyFailed (541 items, 66 errors) in CI; alone it "
            "passes: under investigation (tests/upstream/README.md, 'Open')"
        )
    _backup_done(target, ragbot)
    cluster = _sa_cluster(target)
    try:
        before = {r.id for r in list_records(cluster, target.cfg)}
        res = ragbot("restore", "run", "latest", "--yes", "--reason", "drill")
        assert res.code == 0 and "running in the background" in res.out, res
        (record,) = [r for r in list_records(cluster, target.cfg) if r.id not in before]
        assert record.data["reason"] == "drill"
        final = _record(cluster, target, lambda r: r if r.id == record.id and r.terminal else None,
                        "the background restore to finish")  # fmt: skip
        assert final.state == SUCCEEDED, final.data.get("error")
        status = ragbot("restore", "status", final.velero_restore)
        assert status.code == 0 and record.id in status.out, status
        assert _workloads_ready(target) == []
    finally:
        cluster.close()
