"""The restore side end to end against the sandbox cluster (real client, loopback HTTP).

A full restore of `latest` after `ragbot backup now --wait`; the Restore ragbot creates
compared with the playbook's, written out by hand from reference/enterprise-rag-backup.md;
a restore whose `python -m bot` process is SIGKILLed after each step in turn and
resumed by a new process; two concurrent runs; a restore refused while a backup runs;
a Velero PartiallyFailed restore; watch 410s and dropped connections during a restore.
Waits are watches or deadline-bound conditions, never sleeps.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from config.loader import load_config
from config.models import Config
from k8s import labels as L
from k8s import resources as R
from k8s.backups import create_backup, wait_backup
from k8s.client import Cluster, from_kubeconfig
from k8s.readiness import check_ready
from k8s.restore_executor import Progress, run_restore
from k8s.restore_lock import (
    LOCK_NAME,
    BackupRunning,
    RestoreInProgress,
    acquire_lock,
    lock_holder,
    release_lock,
    restore_in_progress,
    start,
)
from k8s.restore_plan import build_plan
from k8s.restore_record import (
    APPROVED,
    DATA_KEY,
    FAILED,
    RUNNING,
    SUCCEEDED,
    RestoreRecord,
    create_record,
    get_record,
    list_records,
)
from k8s.watch import Collection, wait_for
from sandbox.cluster import SandboxCluster
from tests.conftest import WatchCollector

REPO = Path(__file__).resolve().parents[2]
RECORDS = f"{L.LABEL_RECORD_KIND}=restore"

#: The playbook's Restore (reference: Restore step 5) for the sandbox's config.yaml,
#: which sets no `velero.backup` keys: every value below is the role default.
PLAYBOOK_RESTORE_LABELS = {"restore-reason": "recovery"}
PLAYBOOK_RESTORE_SPEC_EXCEPT_BACKUP = {
    "excludedResources": [
        "instrumentations.opentelemetry.io",
        "pods",
        "replicasets.apps",
        "gmconnectors.gmc.opea.io",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
    ],
    "existingResourcePolicy": "update",
    "itemOperationTimeout": "2h0m0s",
}
PLAYBOOK_RESTORE_NAME = re.compile(r"^restore-\d{8}t\d{6}$")  # restore_prefix-%Y%m%dT%H%M%S


@dataclass
class Sandbox:
    sim: SandboxCluster
    cluster: Cluster
    cfg: Config
    args: list[str]

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, *self.args])
        out, err = capsys.readouterr()
        return code, out, err

    def spawn(self, *argv: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.Popen(
            [sys.executable, "-m", "bot", *argv, *self.args], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def backup(self) -> str:
        """A Completed backup of ours (created as `ragbot backup now` does)."""
        obj = create_backup(self.cluster, self.cfg, trigger="cli", requester="test")
        name = obj["metadata"]["name"]
        final = wait_backup(self.cluster, self.cfg, name, timeout=60)
        assert L.phase_of(final) == "Completed", final.get("status")
        return str(name)

    def restores(self) -> list[dict[str, Any]]:
        return R.list_all(self.cluster, R.RESTORE, self.cfg.velero.namespace)[0]

    def wait_record(self, cond: Callable[[RestoreRecord], Any], timeout: float = 60,
                    what: str = "the restore record") -> Any:  # fmt: skip
        """Watch the bot's namespace until cond(record) holds for a restore record."""

        def check(view: Collection) -> Any:
            for obj in view.objects.values():
                rec = get_record_from(obj)
                result = cond(rec)
                if result:
                    return result
            return None

        return wait_for(self.cluster, R.CONFIGMAP, self.cfg.ragbot.namespace, check,
                        timeout=timeout, what=what, label_selector=RECORDS)  # fmt: skip


def get_record_from(obj: dict[str, Any]) -> RestoreRecord:
    meta = obj["metadata"]
    return RestoreRecord(meta["name"], meta["namespace"], meta["resourceVersion"],
                         json.loads(obj["data"][DATA_KEY]), meta.get("annotations") or {})  # fmt: skip


def _sandbox(tmp_path: Path, **kwargs: Any) -> Iterator[Sandbox]:
    options = {"velero_seconds": 0.3, "pod_ready_seconds": 0.05, **kwargs}
    sim = SandboxCluster(**options).start()
    if getattr(sim, "velero", None) is None:
        sim.stop()
        pytest.skip("sandbox/velero.py (the Velero simulation) is not there yet")
    kubeconfig, config = sim.write_files(tmp_path)
    cluster = from_kubeconfig(kubeconfig)
    try:
        yield Sandbox(sim, cluster, load_config([config]),
                      ["--kubeconfig", str(kubeconfig), "--config", str(config)])  # fmt: skip
    finally:
        cluster.close()
        sim.stop()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    yield from _sandbox(tmp_path)


@pytest.fixture
def slow_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """Velero and pods slow enough that a watcher sees each step before the next ends."""
    yield from _sandbox(tmp_path, velero_seconds=1.5, pod_ready_seconds=0.3)


def _assert_ready_and_restored(sb: Sandbox, restore: str) -> None:
    order = sb.cfg.velero.backup.backupConfig.namespaceOrder
    record = list_records(sb.cluster, sb.cfg)[0]
    verdict = check_ready(sb.cluster, order, record.plan.skipped_namespaces)
    assert verdict.ready, verdict.summary()
    for step in record.plan.steps:
        if step.action == "pvc-delete":
            for pvc in step.objects:
                obj = R.get(sb.cluster, R.PVC, pvc.namespace, pvc.name)
                assert obj["metadata"]["labels"]["velero.io/restore-name"] == restore


def _assert_each_step_done_once(record: RestoreRecord) -> None:
    assert record.state == SUCCEEDED, record.data.get("error")
    for step in record.steps:
        assert step["status"] == "done", step
        events = [h for h in record.data["history"] if h["event"] == f"step {step['key']} done"]
        assert len(events) == 1, (step["key"], events)


# ---------------------------------------------------------------------------- full restore


def test_full_restore_of_latest(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    sb = sandbox
    code, out, err = sb.cli(capsys, "backup", "now", "--wait")
    assert code == 0, err
    backup = re.search(r"backup (\S+) created", out).group(1)  # type: ignore[union-attr]
    before = R.get(sb.cluster, R.resolve(sb.cluster, "apps/v1", "StatefulSet"), "auth", "keycloak")
    restores = WatchCollector(sb.cluster.custom.list_namespaced_custom_object,
                              "velero.io", "v1", "velero", "restores")  # fmt: skip
    try:
        t0 = time.monotonic()
        code, out, err = sb.cli(capsys, "restore", "run", "latest", "--yes", "--wait")
        elapsed = time.monotonic() - t0
        assert code == 0, err + out
        added = next(e["raw_object"] for e in restores.wait_count(1) if e["type"] == "ADDED")
    finally:
        restores.stop()
    with capsys.disabled():
        print(f"\nfull restore in the sandbox (ragbot restore run --wait): {elapsed:.2f}s")

    # The Restore as ragbot POSTed it (first watch event), against the playbook's.
    meta, spec = added["metadata"], added["spec"]
    assert PLAYBOOK_RESTORE_NAME.match(meta["name"]), meta["name"]
    assert meta["namespace"] == "velero"
    assert spec == {"backupName": backup, **PLAYBOOK_RESTORE_SPEC_EXCEPT_BACKUP}
    assert meta["labels"] == {**PLAYBOOK_RESTORE_LABELS, L.LABEL_TRIGGER: "cli"}
    record = list_records(sb.cluster, sb.cfg)[0]
    assert meta["annotations"][L.ANNO_RESTORE_RECORD] == record.id

    # The record: every step done once, the one Restore named, lock released.
    _assert_each_step_done_once(record)
    assert [s["runs"] for s in record.steps] == [1] * len(record.steps)
    assert record.velero_restore == meta["name"] and record.backup == backup
    assert record.data["velero"]["phase"] == "Completed"
    assert [r["metadata"]["name"] for r in sb.restores()] == [meta["name"]]
    assert lock_holder(sb.cluster, sb.cfg) is None
    assert f"[{len(record.steps)}/{len(record.steps)}] done: application ready" in out
    assert "Velero Completed, items restored" in out

    # Cleanup happened (new objects, restored by Velero) and the application is back.
    after = R.get(sb.cluster, R.resolve(sb.cluster, "apps/v1", "StatefulSet"), "auth", "keycloak")
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["metadata"]["labels"]["velero.io/restore-name"] == meta["name"]
    _assert_ready_and_restored(sb, meta["name"])

    code, out, _ = sb.cli(capsys, "restore", "status", record.id)
    assert code == 0 and "State:" in out and "succeeded" in out and "[x]" in out
    code, out, _ = sb.cli(capsys, "restore", "list")
    assert record.id in out and "succeeded" in out


def test_run_without_yes_shows_the_plan_and_changes_nothing(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    sb = sandbox
    sb.backup()
    code, out, err = sb.cli(capsys, "restore", "run")
    assert code == 2 and "add --yes" in err and "auth (Keycloak user logins)" in err
    assert "uninstall Helm release keycloak" in out
    assert list_records(sb.cluster, sb.cfg) == [] and sb.restores() == []
    code, out, _ = sb.cli(capsys, "restore", "plan", "latest", "-o", "json")
    plan = json.loads(out)
    assert code == 0 and plan["steps"][-1]["action"] == "wait-ready"
    assert any("vllm-service-m-deployment" in w for w in plan["warnings"])


# -------------------------------------------------------------------------- kill / resume


@pytest.mark.slow
def test_killed_after_each_step_and_resumed_by_a_new_process(slow_sandbox: Sandbox) -> None:
    sb = slow_sandbox
    sb.backup()
    # Each write to the record takes 0.15 s in the server, so the process, once step k is
    # recorded done, is still sending "step k+1 started" when it is killed: the kill lands
    # after step k and before step k+1 does anything.
    sb.sim.server.faults.set(latency_seconds=0.15, path_filter="/configmaps/restore-")
    t0 = time.monotonic()
    proc = sb.spawn("restore", "run", "latest", "--yes", "--wait")
    first = sb.wait_record(lambda r: r, what="the record to be created")
    record_id, keys = first.id, [s["key"] for s in first.steps]
    total = len(keys)
    processes = 1
    try:
        for k, key in enumerate(keys, 1):

            def step_done(r: RestoreRecord, key: str = key) -> bool:
                return r.id == record_id and r.step(key)["status"] == "done"

            sb.wait_record(step_done, what=f"step {k} done")
            proc.kill()
            proc.wait(timeout=30)
            rec = get_record(sb.cluster, sb.cfg, record_id)
            if k < total:
                assert rec.steps[k]["status"] != "done", f"killed too late after step {k}"
            proc = sb.spawn("restore", "resume", record_id)
            processes += 1
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - t0
    print(f"\nkill/resume over {total} steps, {processes} processes: {elapsed:.1f}s")
    assert proc.returncode == 0, err + out
    record = get_record(sb.cluster, sb.cfg, record_id)
    _assert_each_step_done_once(record)
    assert all(s["runs"] <= 2 for s in record.steps), [s["runs"] for s in record.steps]
    names = [r["metadata"]["name"] for r in sb.restores()]
    assert names == [record.velero_restore]
    assert lock_holder(sb.cluster, sb.cfg) is None
    sb.sim.server.faults.clear()
    _assert_ready_and_restored(sb, record.velero_restore)


# --------------------------------------------------------------------------- the lock


def test_two_concurrent_runs_only_one_proceeds(slow_sandbox: Sandbox) -> None:
    sb = slow_sandbox  # a restore takes seconds here, longer than two processes' start skew
    sb.backup()
    procs = [sb.spawn("restore", "run", "latest", "--yes", "--wait") for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "restore already in progress" in loser and loser.count("\n") == 1, loser
    assert len(sb.restores()) == 1
    states = sorted(r.state for r in list_records(sb.cluster, sb.cfg))
    assert states in ([SUCCEEDED], [FAILED, SUCCEEDED]), states


def test_two_starts_race_for_the_lock(sandbox: Sandbox) -> None:
    sb = sandbox
    backup = R.get(sb.cluster, R.BACKUP, "velero", sb.backup())
    plan = build_plan(sb.cluster, sb.cfg, backup)
    records = [create_record(sb.cluster, sb.cfg, plan, requester=f"u{i}", state=APPROVED)
               for i in range(2)]  # fmt: skip
    barrier = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def go(rec: RestoreRecord) -> None:
        clusterx = from_kubeconfig(Path(sb.args[1]))
        barrier.wait()
        try:
            outcome[rec.id] = start(clusterx, sb.cfg, rec).state
        except RestoreInProgress as err:
            outcome[rec.id] = err
        finally:
            clusterx.close()

    threads = [threading.Thread(target=go, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [k for k, v in outcome.items() if v == RUNNING]
    losers = [k for k, v in outcome.items() if isinstance(v, RestoreInProgress)]
    assert len(winners) == 1 and len(losers) == 1, outcome
    assert lock_holder(sb.cluster, sb.cfg) == winners[0]
    assert restore_in_progress(sb.cluster, sb.cfg) == winners[0]
    assert get_record(sb.cluster, sb.cfg, losers[0]).state == FAILED
    # The winner finishes; then the lock is free and a stale one would be taken over.
    assert run_restore(sb.cluster, sb.cfg, winners[0]).state == SUCCEEDED
    assert restore_in_progress(sb.cluster, sb.cfg) is None


def test_stale_lock_of_a_finished_record_is_taken_over(sandbox: Sandbox) -> None:
    sb = sandbox
    name = sb.backup()
    R.create(sb.cluster, R.CONFIGMAP, sb.cfg.ragbot.namespace, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": LOCK_NAME, "namespace": sb.cfg.ragbot.namespace},
        "data": {"holder": "restore-19700101t000000"},
    })  # fmt: skip
    assert restore_in_progress(sb.cluster, sb.cfg) is None  # holder record is gone
    backup = R.get(sb.cluster, R.BACKUP, "velero", name)
    rec = create_record(sb.cluster, sb.cfg, build_plan(sb.cluster, sb.cfg, backup),
                        requester="t", state=APPROVED)  # fmt: skip
    assert start(sb.cluster, sb.cfg, rec).state == RUNNING
    assert lock_holder(sb.cluster, sb.cfg) == rec.id


def test_restore_refused_while_a_backup_of_ours_runs(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    sb = sandbox
    completed = sb.backup()
    backup = R.get(sb.cluster, R.BACKUP, "velero", completed)
    rec = create_record(sb.cluster, sb.cfg, build_plan(sb.cluster, sb.cfg, backup),
                        requester="t", state=APPROVED)  # fmt: skip
    # A backup of ours that stays InProgress (Velero's pod "OOM-killed" under it).
    sb.sim.velero.inject("backup-", "Stuck", kind="backup")
    running = create_backup(sb.cluster, sb.cfg, trigger="cli", requester="other")["metadata"]["name"]
    assert running != completed
    code, _, err = sb.cli(capsys, "restore", "run", completed, "--yes", "--wait")
    assert code == 1 and f"backup {running} is still running" in err
    assert [r.id for r in list_records(sb.cluster, sb.cfg)] == [rec.id] and sb.restores() == []
    # The same check runs after the lock is taken (a backup that started in between).
    with pytest.raises(BackupRunning, match=f"backup {running} is still running"):
        run_restore(sb.cluster, sb.cfg, rec.id)
    assert get_record(sb.cluster, sb.cfg, rec.id).state == FAILED
    assert lock_holder(sb.cluster, sb.cfg) is None


# ------------------------------------------------------------------------ failures, faults


def test_velero_partially_failed_stops_the_restore(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    sb = sandbox
    sb.backup()
    sb.sim.velero.inject(None, "PartiallyFailed", kind="restore", errors=2, warnings=3)
    code, _, err = sb.cli(capsys, "restore", "run", "--yes", "--wait")
    assert code == 1
    assert "ended PartiallyFailed" in err and "2 errors" in err and "3 warnings" in err
    record = list_records(sb.cluster, sb.cfg)[0]
    assert record.state == FAILED and record.data["failed_step"] == "wait-velero"
    assert "partly restored" in record.data["application_state"]
    assert record.step("wait-velero")["status"] == "failed"
    assert record.step("wait-ready")["status"] == "pending"
    assert lock_holder(sb.cluster, sb.cfg) is None
    code, _, err = sb.cli(capsys, "restore", "resume", record.id)
    assert code == 1 and "--retry" in err


def test_watch_gone_and_dropped_connections_during_a_restore(sandbox: Sandbox) -> None:
    sb = sandbox
    name = sb.backup()
    plan = build_plan(sb.cluster, sb.cfg, R.get(sb.cluster, R.BACKUP, "velero", name))
    rec = create_record(sb.cluster, sb.cfg, plan, requester="t", state=APPROVED)
    faults = sb.sim.server.faults
    # Every watch is cut after 2 events and the next 20 resumes get 410 Gone.
    faults.set(watch_drop_after_events=2, watch_gone_next=20)
    disruptions: list[str] = []

    def disrupt(p: Progress) -> None:
        # At each step's start and its first few progress events (then a watch is open).
        if p.status in ("started", "progress") and disruptions.count(p.title) < 3:
            sb.sim.store.compact()  # history forgotten: resumes from older RVs get 410
            sb.sim.server.drop_watches()
            disruptions.append(p.title)

    final = run_restore(sb.cluster, sb.cfg, rec.id, on_progress=disrupt)
    assert final.state == SUCCEEDED, final.data.get("error")
    assert faults.get().watch_gone_next < 20  # the 410 path was taken
    assert len(disruptions) > len(plan.steps)
    faults.clear()
    _assert_ready_and_restored(sb, final.velero_restore)


def test_run_without_wait_goes_on_in_the_background(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --wait the command returns at once and a detached process does the work."""
    sb = sandbox
    sb.backup()
    code, out, err = sb.cli(capsys, "restore", "run", "latest", "--yes", "--reason", "drill")
    assert code == 0 and "running in the background" in out, err
    (record,) = list_records(sb.cluster, sb.cfg)
    assert record.data["reason"] == "drill"

    def finished(view: Collection) -> str | None:
        obj = view.get(sb.cfg.ragbot.namespace, record.id)
        state = json.loads(obj["data"]["record.json"])["state"] if obj else ""
        return state if state in (SUCCEEDED, "failed") else None

    state = wait_for(
        sb.cluster, R.CONFIGMAP, sb.cfg.ragbot.namespace, finished, timeout=120,
        what="the background restore", field_selector=f"metadata.name={record.id}",
    )
    final = get_record(sb.cluster, sb.cfg, record.id)
    assert state == SUCCEEDED, final.data.get("error")
    assert len(sb.restores()) == 1
    # The Velero Restore's name finds the record too.
    code, out, _ = sb.cli(capsys, "restore", "status", final.velero_restore)
    assert code == 0 and record.id in out


# ------------------------------------------------------------- API-only helm uninstall


def _release_objects(ns: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Three live objects and the release JSON whose manifest names them (one kept)."""
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo-config"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-secret"}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "demo-keep", "annotations": {"helm.sh/resource-policy": "keep"}}},
    ]  # fmt: skip
    manifest = "".join(f"---\n# Source: demo/templates/{i}.yaml\n{json.dumps(d)}\n"
                       for i, d in enumerate(docs))  # fmt: skip
    release = {
        "name": "demo", "namespace": ns, "version": 2,
        "info": {"status": "deployed", "description": "Upgrade complete",
                 "first_deployed": "2025-01-01T00:00:00Z", "last_deployed": "2025-01-02T00:00:00Z"},
        "chart": {"metadata": {"apiVersion": "v2", "name": "demo", "version": "1.0.0"}},
        "config": {}, "manifest": manifest,
        "hooks": [{"name": "demo-pre-delete", "kind": "Job", "path": "demo/templates/hook.yaml",
                   "manifest": "", "events": ["pre-delete"], "weight": 0,
                   "delete_policies": ["hook-succeeded"], "last_run": {"phase": ""}}],
    }  # fmt: skip
    live = [{**d, "metadata": {**d["metadata"], "namespace": ns}} for d in docs]
    live[1]["data"] = {}
    return live, release


def _install_demo(sb: Sandbox, ns: str = "edp") -> None:
    from k8s.helm_release import encode_release_secret

    live, release = _release_objects(ns)
    for obj in live:
        R.create(sb.cluster, R.resolve(sb.cluster, "v1", obj["kind"]), ns, obj)
    old = {**release, "version": 1, "info": {**release["info"], "status": "superseded"}}
    for doc in (old, release):
        R.create(sb.cluster, R.SECRET, ns, encode_release_secret(doc, ns))


def _demo_left(sb: Sandbox, ns: str = "edp") -> set[str]:
    cms = {o["metadata"]["name"] for o in R.list_all(sb.cluster, R.CONFIGMAP, ns)[0]}
    secrets = {o["metadata"]["name"] for o in R.list_all(sb.cluster, R.SECRET, ns)[0]}
    return {n for n in cms | secrets if "demo" in n}


@pytest.mark.parametrize("crash_point", ["none", "marked", "half-deleted", "half-purged"])
def test_helm_uninstall_finishes_whatever_a_crash_left(sandbox: Sandbox, crash_point: str) -> None:
    from k8s.helm_uninstall import mark_uninstalling, uninstall_release

    sb = sandbox
    _install_demo(sb)
    if crash_point != "none":  # replay what a killed uninstall had done
        assert mark_uninstalling(sb.cluster, "edp", "demo") == 2
        labels = R.get(sb.cluster, R.SECRET, "edp", "sh.helm.release.v1.demo.v2")["metadata"]["labels"]
        assert labels["status"] == "uninstalling"
    if crash_point in ("half-deleted", "half-purged"):
        R.delete(sb.cluster, R.CONFIGMAP, "edp", "demo-config")
    if crash_point == "half-purged":
        R.delete(sb.cluster, R.SECRET, "edp", "demo-secret")
        R.delete(sb.cluster, R.SECRET, "edp", "sh.helm.release.v1.demo.v1")
    result = uninstall_release(sb.cluster, "edp", "demo", timeout=30)
    assert result.found and result.revision == 2
    assert result.kept == ("ConfigMap edp/demo-keep",)
    assert [h.name for h in result.hooks_skipped] == ["demo-pre-delete"]
    assert set(result.deleted) | set(result.already_gone) == {
        "ConfigMap edp/demo-config", "Secret edp/demo-secret"}  # fmt: skip
    assert _demo_left(sb) == {"demo-keep"}
    again = uninstall_release(sb.cluster, "edp", "demo", timeout=30)
    assert not again.found and "not found" in again.message


def test_backup_refused_while_a_restore_holds_the_lock(sandbox: Sandbox) -> None:
    """The lock works both ways: no backup of a half-restored application."""
    sb = sandbox
    backup = sb.backup()
    plan = build_plan(sb.cluster, sb.cfg, R.get(sb.cluster, R.BACKUP, sb.cfg.velero.namespace, backup))
    record = create_record(sb.cluster, sb.cfg, plan, requester="test", reason="", trigger="cli",
                           state=APPROVED, approver="test")  # fmt: skip
    acquire_lock(sb.cluster, sb.cfg, record.id)
    with pytest.raises(RestoreInProgress, match=record.id):
        create_backup(sb.cluster, sb.cfg, trigger="cli", requester="test")
    release_lock(sb.cluster, sb.cfg, record.id)
    created = create_backup(sb.cluster, sb.cfg, trigger="cli", requester="test")
    assert created["metadata"]["name"]
