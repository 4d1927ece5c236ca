"""The simulated Velero server, driven as ragbot drives Velero: through the API over HTTP.

Each test starts a seeded SandboxCluster (workload controllers included, when present)
and talks to it only with the official `kubernetes` client: Backups and Restores
created exactly as the Enterprise RAG playbook creates them, DownloadRequests answered
by pre-signed URLs fetched with plain HTTP and gunzipped, DeleteBackupRequests as
`velero backup delete` creates them. Waits are watches or polls against a deadline.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client, watch

from config.models import BackupConfig
from config.selectors import from_api
from k8s.helm_release import latest_release, manifest_objects
from sandbox import seed
from sandbox.apiserver.objects import clone
from sandbox.cluster import SandboxCluster
from sandbox.velero import VeleroSimulator
from tests.conftest import wait_for as shared_wait_for

GROUP, VERSION, NS = "velero.io", "v1", "velero"
TERMINAL = {"Completed", "PartiallyFailed", "Failed", "FailedValidation"}
SECONDS = 0.3
#: The playbook's Restore excludes (reference/enterprise-rag-backup.md, Restore step 5).
RESTORE_EXCLUDES = [
    "instrumentations.opentelemetry.io",
    "pods",
    "replicasets.apps",
    "gmconnectors.gmc.opea.io",
    "validatingwebhookconfigurations.admissionregistration.k8s.io",
]
MODEL_SERVING_DEPLOYMENTS = {
    "chatqa/torchserve-embedding-svc-deployment",
    "chatqa/torchserve-reranking-svc-deployment",
    "chatqa/vllm-service-m-deployment",
}


# ----- helpers ------------------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """The shared condition wait of tests/conftest.py, with this module's longer default."""
    return shared_wait_for(condition, timeout, what)


def holds(condition: Callable[[], bool], duration: float, what: str) -> None:
    """Check that `condition` stays true for `duration` seconds (polled)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert condition(), f"{what} stopped holding"
        time.sleep(0.02)


class Velero:
    """The Velero objects of one sandbox, through CustomObjectsApi."""

    def __init__(self, cluster: SandboxCluster) -> None:
        self.cluster = cluster
        self.api_client = cluster.api_client()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    @property
    def sim(self) -> VeleroSimulator:
        return self.cluster.velero  # type: ignore[no-any-return]

    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, plural, body)  # type: ignore[no-any-return]

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, NS, plural, name)  # type: ignore[no-any-return]
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise

    def follow(self, plural: str, created: dict[str, Any], timeout: float = 15.0) -> list[dict[str, Any]]:
        """Every state of one object from its creation to a terminal phase, by watch."""
        name = created["metadata"]["name"]
        states = [created]
        if (created.get("status") or {}).get("phase") in TERMINAL:
            return states
        deadline = time.monotonic() + timeout
        rv = created["metadata"]["resourceVersion"]
        while time.monotonic() < deadline:
            w = watch.Watch()
            for event in w.stream(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, NS, plural,
                field_selector=f"metadata.name={name}", resource_version=rv,
                timeout_seconds=max(1, int(deadline - time.monotonic())),
            ):
                obj = event["object"]
                rv = obj["metadata"]["resourceVersion"]
                states.append(obj)
                if (obj.get("status") or {}).get("phase") in TERMINAL:
                    w.stop()
                    return states
        pytest.fail(f"{plural}/{name} reached no terminal phase in {timeout}s: {phases(states)}")

    def download(self, kind: str, name: str) -> bytes:
        """`velero backup describe --details`'s way: a DownloadRequest, then HTTP GET."""
        dr = self.create("downloadrequests", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DownloadRequest",
            "metadata": {"generateName": f"{name}-"},
            "spec": {"target": {"kind": kind, "name": name}},
        })
        done = wait_for(
            lambda: ((self.get("downloadrequests", dr["metadata"]["name"]) or {}).get("status") or {}).get("downloadURL"),
            what=f"a download URL for {kind} {name}",
        )
        with urllib.request.urlopen(done, timeout=10) as resp:
            return resp.read()  # type: ignore[no-any-return]

    def download_json(self, kind: str, name: str) -> Any:
        return json.loads(gzip.decompress(self.download(kind, name)))


def phases(states: list[dict[str, Any]]) -> list[str]:
    """The distinct phases in order (a phase-less New object shows as "")."""
    out: list[str] = []
    for s in states:
        p = (s.get("status") or {}).get("phase") or ""
        if not out or out[-1] != p:
            out.append(p)
    return out


_used_names: set[str] = set()


def playbook_name(prefix: str) -> str:
    """`<prefix>-<%Y%m%dT%H%M%S lower-cased>` as the playbook names Backups and Restores
    (a suffix only when a test makes two within one second)."""
    base = f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S').lower()}"
    name = next(n for n in itertools.chain([base], (f"{base}-{i}" for i in itertools.count(2))) if n not in _used_names)
    _used_names.add(name)
    return name


def playbook_backup(name: str | None = None, **spec: Any) -> dict[str, Any]:
    """The Backup the Enterprise RAG playbook creates with its default configuration."""
    cfg = BackupConfig()
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Backup",
        "metadata": {
            "name": name or playbook_name("backup"),
            "namespace": NS,
            "labels": {"backup-reason": "regular", "meta.erag/solution-version": "2.1.1"},
        },
        "spec": {
            "includedNamespaces": list(cfg.namespaceOrder),
            **cfg.selector_spec(),
            "csiSnapshotTimeout": "2h0m0s",
            "itemOperationTimeout": "2h0m0s",
            "ttl": "720h",
            **spec,
        },
    }


def playbook_restore(backup: str, name: str | None = None, **spec: Any) -> dict[str, Any]:
    """The Restore the playbook creates (step 5 of reference/enterprise-rag-backup.md)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Restore",
        "metadata": {"name": name or playbook_name("restore"), "labels": {"restore-reason": "recovery"}},
        "spec": {
            "backupName": backup,
            "excludedResources": RESTORE_EXCLUDES,
            "existingResourcePolicy": "update",
            "itemOperationTimeout": "2h0m0s",
            **spec,
        },
    }


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pod_ready(pod: client.V1Pod) -> bool:
    return pod.status is not None and pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def has_workloads(cluster: SandboxCluster) -> bool:
    return any(type(c).__name__ == "WorkloadController" for c in cluster.controllers)


@pytest.fixture(scope="module")
def seed_objects() -> list[dict[str, Any]]:
    return seed.enterprise_rag_seed()


@pytest.fixture
def cluster(seed_objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxCluster]:
    # The seed parses its CRD YAML on every call (about 1.5 s); the objects are the same
    # each time, so each cluster gets a fresh copy of one parse.
    monkeypatch.setattr(seed, "enterprise_rag_seed", lambda **_: clone(seed_objects))
    c = SandboxCluster(velero_seconds=SECONDS, pod_ready_seconds=0.05).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def velero(cluster: SandboxCluster) -> Velero:
    v = Velero(cluster)
    wait_for(lambda: v.sim.alive, what="the Velero server to run")
    return v


def run_backup(velero: Velero, body: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    created = velero.create("backups", body or playbook_backup())
    states = velero.follow("backups", created)
    return states[-1], states


# ----- backups ------------------------------------------------------------------------------


def test_playbook_backup_runs_through_velero_phases_to_completed(velero: Velero) -> None:
    backup, states = run_backup(velero)
    seen = phases(states)
    assert seen[0] == ""
    assert seen[1:] == ["InProgress", "WaitingForPluginOperations", "Finalizing", "Completed"]

    st, spec, meta = backup["status"], backup["spec"], backup["metadata"]
    progress = st["progress"]
    assert progress["totalItems"] == progress["itemsBackedUp"] > 50
    mid = [s["status"]["progress"] for s in states if (s.get("status") or {}).get("phase") == "InProgress" and "progress" in s["status"]]
    assert all(p["itemsBackedUp"] <= p["totalItems"] for p in mid)
    assert len(states) < 20, "status writes are throttled, not one per item"
    assert st["formatVersion"] == "1.1.0" and st["version"] == 1
    start, end = parse_time(st["startTimestamp"]), parse_time(st["completionTimestamp"])
    assert start <= end
    assert parse_time(st["expiration"]) - start == timedelta(hours=720)
    # What the user wrote stays as written; what Velero defaults is written into spec.
    assert spec["ttl"] == "720h" and spec["csiSnapshotTimeout"] == "2h0m0s"
    assert spec["storageLocation"] == "default"
    assert spec["defaultVolumesToFsBackup"] is False and spec["snapshotMoveData"] is False
    assert meta["labels"]["velero.io/storage-location"] == "default"
    assert meta["labels"]["backup-reason"] == "regular"
    assert meta["annotations"]["velero.io/resource-timeout"] == "10m0s"
    assert "errors" not in st and "warnings" not in st and "failureReason" not in st

    resources = velero.download_json("BackupResourceList", meta["name"])
    pvcs = resources["v1/PersistentVolumeClaim"]
    assert st["csiVolumeSnapshotsAttempted"] == st["csiVolumeSnapshotsCompleted"] == len(pvcs)
    assert st["backupItemOperationsAttempted"] == st["backupItemOperationsCompleted"] == len(pvcs)

    # Every PVC of the backed-up namespaces that the orSelectors select, and no other.
    selectors = [from_api(s) for s in spec["orLabelSelectors"]]
    expected = sorted(
        f"{p.metadata.namespace}/{p.metadata.name}"
        for p in velero.core.list_persistent_volume_claim_for_all_namespaces().items
        if p.metadata.namespace in spec["includedNamespaces"]
        and any(s.matches(p.metadata.labels) for s in selectors)
    )
    assert pvcs == expected
    assert "edp/data-edp-postgresql-0" in pvcs and "vdb/redis-data-vdb-redis-cluster-2" in pvcs
    assert "chatqa/model-volume-vllm" not in pvcs
    assert "default/erag-deployment-manifest" in resources["v1/ConfigMap"]
    assert "edp/sh.helm.release.v1.edp.v10" in resources["v1/Secret"]
    assert {"vdb/vdb-redis-cluster", "edp/edp-postgresql"} <= set(resources["apps/v1/StatefulSet"])
    assert "edp/edp-backend" in resources["apps/v1/Deployment"]
    assert not MODEL_SERVING_DEPLOYMENTS & set(resources["apps/v1/Deployment"])
    assert len(resources["v1/PersistentVolume"]) == len(pvcs)
    assert len(resources["snapshot.storage.k8s.io/v1/VolumeSnapshot"]) == len(pvcs)
    assert sum(len(v) for v in resources.values()) == progress["totalItems"]

    # The tarball has Velero's layout; the results say nothing went wrong.
    with tarfile.open(fileobj=io.BytesIO(velero.download("BackupContents", meta["name"]))) as tar:
        names = set(tar.getnames())
    assert "metadata/version" in names
    assert "resources/persistentvolumeclaims/namespaces/edp/data-edp-postgresql-0.json" in names
    assert "resources/deployments.apps/v1-preferredversion/namespaces/edp/edp-backend.json" in names
    assert velero.download_json("BackupResults", meta["name"]) == {"errors": {}, "warnings": {}}
    log = gzip.decompress(velero.download("BackupLog", meta["name"])).decode()
    assert "level=info" in log and f"backup={NS}/{meta['name']}" in log


def test_backups_run_one_at_a_time(velero: Velero) -> None:
    first = velero.create("backups", playbook_backup("backup-first"))
    velero.create("backups", playbook_backup("backup-second"))
    # One watch over both: its events are in resourceVersion order, i.e. in time order.
    order: list[tuple[str, str]] = []
    w = watch.Watch()
    for event in w.stream(velero.custom.list_namespaced_custom_object, GROUP, VERSION, NS, "backups",
                          resource_version=first["metadata"]["resourceVersion"], timeout_seconds=15):
        obj = event["object"]
        phase = (obj.get("status") or {}).get("phase") or ""
        if not order or order[-1] != (obj["metadata"]["name"], phase):
            order.append((obj["metadata"]["name"], phase))
        if sum(1 for _, p in order if p in TERMINAL) == 2:
            w.stop()
    first_leaves = next(i for i, (n, p) in enumerate(order) if n == "backup-first" and p not in ("", "InProgress"))
    second_starts = order.index(("backup-second", "InProgress"))
    assert first_leaves < second_starts
    assert ("backup-first", "Completed") in order and ("backup-second", "Completed") in order


def test_missing_storage_location_fails_validation(velero: Velero) -> None:
    backup, _ = run_backup(velero, playbook_backup(storageLocation="missing"))
    assert backup["status"]["phase"] == "FailedValidation"
    assert backup["status"]["validationErrors"] == [
        "an existing backup storage location was not specified at backup creation time and the "
        "default missing was not found. Please address this issue (see `velero backup-location "
        "-h` for options) and create a new backup. Error: backupstoragelocations.velero.io "
        '"missing" not found'
    ]
    assert "startTimestamp" not in backup["status"]
    assert backup["metadata"]["labels"]["velero.io/storage-location"] == "missing"

    velero.custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "backupstoragelocations", "default")
    backup, _ = run_backup(velero)
    assert backup["status"]["phase"] == "FailedValidation"
    assert backup["status"]["validationErrors"][0].startswith(
        "an existing backup storage location was not specified at backup creation time and the "
        "server default default does not exist."
    )


def test_unavailable_storage_location_fails_validation(velero: Velero) -> None:
    bsl = velero.custom.get_namespaced_custom_object(GROUP, VERSION, NS, "backupstoragelocations", "default")
    bsl["status"]["phase"] = "Unavailable"
    velero.custom.replace_namespaced_custom_object(GROUP, VERSION, NS, "backupstoragelocations", "default", bsl)
    backup, _ = run_backup(velero)
    assert backup["status"]["validationErrors"] == [
        "backup can't be created because BackupStorageLocation default is in Unavailable status. "
        "please create a new backup after the BSL becomes available"
    ]


def test_backup_without_a_volume_snapshot_class_partially_fails(velero: Velero) -> None:
    # Velero's CSI plugin errors on each claim it cannot snapshot; the claim is not backed
    # up and the backup ends PartiallyFailed (a single unlabelled class would be used).
    velero.custom.delete_cluster_custom_object("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", "csi-snapclass")
    backup, states = run_backup(velero)
    assert phases(states)[1:] == ["InProgress", "FinalizingPartiallyFailed", "PartiallyFailed"]
    st = backup["status"]
    assert "csiVolumeSnapshotsAttempted" not in st
    results = velero.download_json("BackupResults", backup["metadata"]["name"])
    errors = [e for v in results["errors"]["namespaces"].values() for e in v]
    assert st["errors"] == len(errors) > 0
    assert all("failed to get VolumeSnapshotClass for provisioner nfs.csi.k8s.io" in e for e in errors)
    resources = velero.download_json("BackupResourceList", backup["metadata"]["name"])
    assert "v1/PersistentVolumeClaim" not in resources
    assert len(resources["v1/PersistentVolume"]) == len(errors)


def test_injected_failed_backup(velero: Velero) -> None:
    velero.sim.inject("backup-", "Failed", failure_reason="rpc error: code = Unavailable desc = plugin died")
    backup, states = run_backup(velero)
    assert phases(states)[1:] == ["InProgress", "Failed"]
    st = backup["status"]
    assert st["failureReason"] == "rpc error: code = Unavailable desc = plugin died"
    assert "completionTimestamp" in st
    assert st["progress"]["itemsBackedUp"] < st["progress"]["totalItems"]
    log = gzip.decompress(velero.download("BackupLog", backup["metadata"]["name"])).decode()
    assert "plugin died" in log
    # The injection was for one backup only.
    assert run_backup(velero)[0]["status"]["phase"] == "Completed"


def test_injected_partially_failed_backup(velero: Velero) -> None:
    velero.sim.inject(None, "PartiallyFailed", kind="backup", errors=2, warnings=1)
    backup, states = run_backup(velero)
    assert phases(states)[1:] == [
        "InProgress", "WaitingForPluginOperationsPartiallyFailed", "FinalizingPartiallyFailed", "PartiallyFailed",
    ]
    assert backup["status"]["errors"] == 2 and backup["status"]["warnings"] == 1
    results = velero.download_json("BackupResults", backup["metadata"]["name"])
    assert sum(len(v) for v in results["errors"]["namespaces"].values()) == 2
    assert sum(len(v) for v in results["warnings"]["namespaces"].values()) == 1

    content = {"errors": {"namespaces": {"edp": ["boom"]}, "velero": ["velero says no"]}, "warnings": {}}
    velero.sim.inject(None, "PartiallyFailed", results=content)
    backup, _ = run_backup(velero)
    assert backup["status"]["phase"] == "PartiallyFailed" and backup["status"]["errors"] == 2
    results = velero.download_json("BackupResults", backup["metadata"]["name"])
    assert results["errors"] == {"namespaces": {"edp": ["boom"]}, "velero": ["velero says no"]}


def test_injected_failed_validation_backup(velero: Velero) -> None:
    velero.sim.inject(None, "FailedValidation", validation_errors=("the sandbox says no",))
    backup, states = run_backup(velero)
    assert phases(states)[1:] == ["FailedValidation"]
    assert backup["status"]["validationErrors"] == ["the sandbox says no"]


def velero_pods(velero: Velero) -> list[client.V1Pod]:
    return velero.core.list_namespaced_pod(NS, label_selector="deploy=velero").items  # type: ignore[no-any-return]


def test_stuck_backup_stays_in_progress_until_velero_restarts(velero: Velero) -> None:
    velero.sim.inject(None, "Stuck")
    created = velero.create("backups", playbook_backup("backup-stuck"))
    wait_for(lambda: velero.sim.crashed, what="the simulated OOM kill")
    stuck = velero.get("backups", "backup-stuck")
    assert stuck is not None and stuck["status"]["phase"] == "InProgress"
    if has_workloads(velero.cluster):
        pod = velero_pods(velero)[0]
        assert not pod_ready(pod)
        term = pod.status.container_statuses[0].last_state.terminated
        assert term.reason == "OOMKilled" and term.exit_code == 137
    # A dead server does nothing: the stuck backup keeps its phase and progress, the next
    # backup is not even validated.
    velero.create("backups", playbook_backup("backup-after"))
    holds(
        lambda: (velero.get("backups", "backup-stuck") or {}).get("status") == stuck["status"]
        and "status" not in (velero.get("backups", "backup-after") or {}),
        3 * SECONDS,
        "the stuck state",
    )
    velero.sim.restart()
    failed = wait_for(lambda: (b := velero.get("backups", "backup-stuck")) and b["status"]["phase"] == "Failed" and b)
    assert failed["status"]["failureReason"] == (
        'found a backup with status "InProgress" during the server starting, mark it as "Failed"'
    )
    assert phases(velero.follow("backups", created))[-1] == "Failed"
    after = velero.follow("backups", velero.get("backups", "backup-after") or {})
    assert phases(after)[-1] == "Completed"
    if has_workloads(velero.cluster):
        assert pod_ready(velero_pods(velero)[0])


def test_velero_scaled_to_zero_processes_nothing(velero: Velero) -> None:
    velero.apps.patch_namespaced_deployment("velero", NS, {"spec": {"replicas": 0}})
    wait_for(lambda: not velero.sim.alive, what="the Velero server to stop")
    created = velero.create("backups", playbook_backup())
    name = created["metadata"]["name"]
    holds(lambda: "status" not in (velero.get("backups", name) or {}), 3 * SECONDS, "an unprocessed backup")
    velero.apps.patch_namespaced_deployment("velero", NS, {"spec": {"replicas": 1}})
    assert phases(velero.follow("backups", created))[-1] == "Completed"


# ----- restores -----------------------------------------------------------------------------


def uninstall_release(velero: Velero, namespace: str, release: str) -> None:
    """`helm uninstall`: the manifest's objects, then the release records."""
    secrets = velero.core.list_namespaced_secret(namespace, label_selector=f"owner=helm,name={release}").items
    records = [velero.api_client.sanitize_for_serialization(s) for s in secrets]
    rel = latest_release(records, name=release)
    assert rel is not None
    deleters = {
        "Secret": velero.core.delete_namespaced_secret,
        "ConfigMap": velero.core.delete_namespaced_config_map,
        "Service": velero.core.delete_namespaced_service,
        "Deployment": velero.apps.delete_namespaced_deployment,
        "StatefulSet": velero.apps.delete_namespaced_stateful_set,
    }
    for obj in manifest_objects(rel):
        deleters[obj.kind](obj.name, obj.namespace, _preload_content=False)
    for s in secrets:
        velero.core.delete_namespaced_secret(s.metadata.name, namespace, _preload_content=False)


def test_restore_after_playbook_cleanup_brings_edp_back(velero: Velero) -> None:
    backup, _ = run_backup(velero)
    name = backup["metadata"]["name"]
    resources = velero.download_json("BackupResourceList", name)
    edp_pvcs = [p.split("/", 1)[1] for p in resources["v1/PersistentVolumeClaim"] if p.startswith("edp/")]
    assert sorted(edp_pvcs) == ["data-edp-postgresql-0", "redis-data-edp-redis-0"]

    uninstall_release(velero, "edp", "edp")
    for pvc in edp_pvcs:
        velero.core.delete_namespaced_persistent_volume_claim(pvc, "edp", _preload_content=False)
    wait_for(lambda: not velero.apps.list_namespaced_stateful_set("edp").items
             and not velero.core.list_namespaced_persistent_volume_claim("edp").items
             and not velero.core.list_namespaced_pod("edp").items, what="edp to be gone")

    created = velero.create("restores", playbook_restore(name))
    states = velero.follow("restores", created)
    restore = states[-1]
    assert phases(states)[1:] == ["InProgress", "Finalizing", "Completed"]
    st, spec = restore["status"], restore["spec"]
    assert st["progress"]["totalItems"] == st["progress"]["itemsRestored"] > 0
    # The claims of the releases still installed exist: Velero's patch of their spec is
    # refused, a warning each (the playbook avoids this by deleting every backed-up PVC).
    others = [p for p in resources["v1/PersistentVolumeClaim"] if not p.startswith("edp/")]
    assert "errors" not in st and st["warnings"] == len(others)
    assert restore["metadata"]["finalizers"] == ["restores.velero.io/external-resources-finalizer"]
    assert spec["excludedResources"][: len(RESTORE_EXCLUDES)] == RESTORE_EXCLUDES
    assert {"nodes", "events", "backups.velero.io", "restores.velero.io"} <= set(spec["excludedResources"])
    assert restore["metadata"]["labels"] == {"restore-reason": "recovery"}

    labels = {"velero.io/backup-name": name, "velero.io/restore-name": restore["metadata"]["name"]}
    for sts in ("edp-postgresql", "edp-redis"):
        obj = velero.apps.read_namespaced_stateful_set(sts, "edp")
        assert labels.items() <= obj.metadata.labels.items()
        assert not obj.metadata.owner_references
    assert {d.metadata.name for d in velero.apps.list_namespaced_deployment("edp").items} == {
        "edp-backend", "edp-celery", "edp-dataprep",
    }
    assert velero.core.read_namespaced_secret("sh.helm.release.v1.edp.v10", "edp").metadata.labels["owner"] == "helm"
    for pvc in edp_pvcs:
        claim = velero.core.read_namespaced_persistent_volume_claim(pvc, "edp")
        assert claim.status.phase == "Bound" and claim.spec.volume_name
        assert claim.spec.data_source.kind == "VolumeSnapshot"
    # Restored Services get a new cluster IP; existing objects were only relabelled.
    assert velero.core.read_namespaced_service("edp-backend", "edp").spec.cluster_ip
    vdb = velero.apps.read_namespaced_stateful_set("vdb-redis-cluster", "vdb")
    assert vdb.metadata.labels["velero.io/restore-name"] == restore["metadata"]["name"]

    results = velero.download_json("RestoreResults", restore["metadata"]["name"])
    assert results["errors"] == {} and "edp" not in results["warnings"]["namespaces"]
    restored = velero.download_json("RestoreResourceList", restore["metadata"]["name"])
    assert "edp/data-edp-postgresql-0(created)" in restored["v1/PersistentVolumeClaim"]
    assert "vdb/vdb-redis-cluster(skipped)" in restored["apps/v1/StatefulSet"]

    if has_workloads(velero.cluster):
        wait_for(lambda: (pods := velero.core.list_namespaced_pod("edp").items) and len(pods) == 5
                 and all(pod_ready(p) for p in pods), what="edp pods ready again")


def test_restore_over_existing_objects_by_policy(velero: Velero) -> None:
    backup, _ = run_backup(velero)
    name = backup["metadata"]["name"]
    velero.core.patch_namespaced_config_map("edp-config", "edp", {"data": {"CELERY_BROKER_URL": "changed"}})
    restore = velero.follow("restores", velero.create(
        "restores", playbook_restore(name, existingResourcePolicy="none")))[-1]
    assert restore["status"]["phase"] == "Completed"  # warnings do not fail a restore
    warnings = velero.download_json("RestoreResults", restore["metadata"]["name"])["warnings"]
    assert restore["status"]["warnings"] == sum(len(v) for v in warnings["namespaces"].values())
    assert (
        'could not restore, ConfigMap "edp-config" already exists. Warning: the in-cluster '
        "version is different than the backed-up version"
    ) in warnings["namespaces"]["edp"]
    # Unchanged objects are skipped without a word; claims and services (whose bound
    # volume and cluster IP Velero drops before comparing) count as different.
    assert not any("Secret" in w for w in warnings["namespaces"]["edp"])
    assert any('PersistentVolumeClaim "data-edp-postgresql-0"' in w for w in warnings["namespaces"]["edp"])
    assert velero.core.read_namespaced_config_map("edp-config", "edp").data["CELERY_BROKER_URL"] == "changed"

    restore = velero.follow("restores", velero.create("restores", playbook_restore(name)))[-1]
    assert velero.core.read_namespaced_config_map("edp-config", "edp").data["CELERY_BROKER_URL"] == (
        "redis://edp-redis:6379"
    )
    # Under `update` only the claims warn: the apiserver refuses to change a claim's spec.
    warnings = velero.download_json("RestoreResults", restore["metadata"]["name"])["warnings"]
    flat = [w for v in warnings["namespaces"].values() for w in v]
    assert flat and all("PersistentVolumeClaim" in w and "spec is immutable" in w for w in flat)
    restored = velero.download_json("RestoreResourceList", restore["metadata"]["name"])
    assert "edp/edp-config(updated)" in restored["v1/ConfigMap"]
    assert "edp/edp-backend(updated)" in restored["v1/Service"]
    claim = velero.core.read_namespaced_persistent_volume_claim("data-edp-postgresql-0", "edp")
    assert claim.status.phase == "Bound" and claim.spec.data_source is None
    assert claim.metadata.labels["velero.io/restore-name"] == restore["metadata"]["name"]


def test_restore_into_another_namespace(velero: Velero) -> None:
    backup = run_backup(velero)[0]["metadata"]["name"]
    restore = velero.follow("restores", velero.create("restores", playbook_restore(
        backup, includedNamespaces=["edp"], namespaceMapping={"edp": "edp-copy"})))[-1]
    assert restore["status"]["phase"] == "Completed" and "warnings" not in restore["status"]
    ns = velero.core.read_namespace("edp-copy")
    assert ns.metadata.labels["app.kubernetes.io/part-of"] == "enterprise-rag"
    assert {s.metadata.name for s in velero.apps.list_namespaced_stateful_set("edp-copy").items} == {
        "edp-postgresql", "edp-redis",
    }
    claims = velero.core.list_namespaced_persistent_volume_claim("edp-copy").items
    assert len(claims) == 2 and all(c.status.phase == "Bound" for c in claims)
    # Cluster-scoped items are not restored when only some namespaces are.
    restored = velero.download_json("RestoreResourceList", restore["metadata"]["name"])
    assert "v1/PersistentVolume" not in restored and "edp-copy/edp-backend(created)" in restored["apps/v1/Deployment"]


def test_restore_validation_errors(velero: Velero) -> None:
    restore = velero.follow("restores", velero.create("restores", playbook_restore("nope")))[-1]
    assert restore["status"]["phase"] == "FailedValidation"
    assert restore["status"]["validationErrors"] == [
        'Error retrieving backup: can\'t find backup velero/nope: backups.velero.io "nope" not found'
    ]
    both = velero.follow("restores", velero.create("restores", playbook_restore("nope", scheduleName="daily")))[-1]
    assert both["status"]["validationErrors"] == [
        "Either a backup or schedule must be specified as a source for the restore, but not both"
    ]


def test_injected_restore_outcomes(velero: Velero) -> None:
    backup = run_backup(velero)[0]["metadata"]["name"]
    claims = len(velero.download_json("BackupResourceList", backup)["v1/PersistentVolumeClaim"])
    velero.sim.inject("restore-", "Failed", kind="restore", failure_reason="error downloading backup: boom")
    failed = velero.follow("restores", velero.create("restores", playbook_restore(backup)))
    assert phases(failed)[1:] == ["InProgress", "Failed"]
    assert failed[-1]["status"]["failureReason"] == "error downloading backup: boom"

    velero.sim.inject(None, "PartiallyFailed", kind="restore", errors=3, warnings=2)
    partial = velero.follow("restores", velero.create("restores", playbook_restore(backup)))
    assert phases(partial)[1:] == ["InProgress", "FinalizingPartiallyFailed", "PartiallyFailed"]
    # The injected ones, beside one per (still existing) claim.
    assert partial[-1]["status"]["errors"] == 3 and partial[-1]["status"]["warnings"] == 2 + claims
    results = velero.download_json("RestoreResults", partial[-1]["metadata"]["name"])
    assert sum(len(v) for v in results["errors"]["namespaces"].values()) == 3

    velero.sim.inject(None, "FailedValidation", kind="restore")
    invalid = velero.follow("restores", velero.create("restores", playbook_restore(backup)))[-1]
    assert invalid["status"]["phase"] == "FailedValidation"
    assert invalid["status"]["validationErrors"][0].startswith("the BSL default is unavailable")

    velero.sim.inject(None, "Stuck", kind="restore")
    stuck = velero.create("restores", playbook_restore(backup, name="restore-stuck"))
    wait_for(lambda: velero.sim.crashed)
    assert (velero.get("restores", "restore-stuck") or {})["status"]["phase"] == "InProgress"
    velero.sim.restart()
    assert velero.follow("restores", stuck)[-1]["status"]["failureReason"] == (
        'found a restore with status "InProgress" during the server starting, mark it as "Failed"'
    )


def test_restore_of_a_backup_without_contents_fails(velero: Velero) -> None:
    # Velero's restore controller does not look at the backup's phase: a restore of a
    # backup that never uploaded a tarball fails when it tries to download it.
    velero.sim.inject(None, "FailedValidation", kind="backup")
    backup, _ = run_backup(velero)
    assert backup["status"]["phase"] == "FailedValidation"
    name = backup["metadata"]["name"]
    states = velero.follow("restores", velero.create("restores", playbook_restore(name)))
    assert phases(states)[1:] == ["InProgress", "Failed"]
    assert states[-1]["status"]["failureReason"].startswith(
        f"error downloading backup: rpc error: code = Unknown desc = error getting object "
        f"backups/{name}/{name}.tar.gz: NoSuchKey"
    )


# ----- downloads and deletion -----------------------------------------------------------


def test_download_urls_expire_and_unknown_targets_get_none(velero: Velero) -> None:
    backup = run_backup(velero)[0]["metadata"]["name"]
    dr = velero.create("downloadrequests", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DownloadRequest", "metadata": {"name": "dr-list"},
        "spec": {"target": {"kind": "BackupResourceList", "name": backup}},
    })
    url = wait_for(lambda: ((velero.get("downloadrequests", "dr-list") or {}).get("status") or {}).get("downloadURL"))
    status = (velero.get("downloadrequests", "dr-list") or {})["status"]
    assert status["phase"] == "Processed"
    assert parse_time(status["expiration"]) - parse_time(dr["metadata"]["creationTimestamp"]) >= timedelta(minutes=9)

    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(url[:-4] + "0000", timeout=5)
    assert forged.value.code == 403 and b"SignatureDoesNotMatch" in forged.value.read()
    downloads = velero.sim.downloads
    real_clock = downloads.clock
    downloads.clock = lambda: real_clock() + 601
    try:
        with pytest.raises(urllib.error.HTTPError) as expired:
            urllib.request.urlopen(url, timeout=5)
        assert expired.value.code == 403 and b"Request has expired" in expired.value.read()
    finally:
        downloads.clock = real_clock
    # The controller deletes expired requests, whatever their phase.
    sim_clock = velero.sim.clock
    velero.sim.clock = lambda: sim_clock() + 601
    try:
        wait_for(lambda: velero.get("downloadrequests", "dr-list") is None, what="the expired request to go")
    finally:
        velero.sim.clock = sim_clock

    velero.create("downloadrequests", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DownloadRequest", "metadata": {"name": "dr-unknown"},
        "spec": {"target": {"kind": "BackupResourceList", "name": "no-such-backup"}},
    })
    unknown = wait_for(lambda: (d := velero.get("downloadrequests", "dr-unknown")) and d.get("status") and d)
    assert set(unknown["status"]) == {"expiration"}


def test_delete_backup_request_removes_backup_and_its_restores(velero: Velero) -> None:
    backup, _ = run_backup(velero)
    name, uid = backup["metadata"]["name"], backup["metadata"]["uid"]
    restore = velero.follow("restores", velero.create("restores", playbook_restore(name)))[-1]
    assert velero.sim.objects.keys("default", f"backups/{name}/")
    dbr = velero.create("deletebackuprequests", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DeleteBackupRequest",
        "metadata": {"generateName": f"{name}-",
                     "labels": {"velero.io/backup-name": name, "velero.io/backup-uid": uid}},
        "spec": {"backupName": name},
    })
    wait_for(lambda: velero.get("backups", name) is None, what="the backup to be deleted")
    wait_for(lambda: velero.get("deletebackuprequests", dbr["metadata"]["name"]) is None,
             what="the processed request to be removed")
    assert velero.get("restores", restore["metadata"]["name"]) is None
    assert not velero.sim.objects.keys("default", f"backups/{name}/")
    assert not velero.sim.objects.keys("default", f"restores/{restore['metadata']['name']}/")


def test_delete_backup_request_for_a_running_or_missing_backup(velero: Velero) -> None:
    velero.sim.seconds = 30  # long enough to be seen running, however loaded the machine
    created = velero.create("backups", playbook_backup("backup-running"))
    wait_for(lambda: (velero.get("backups", "backup-running") or {}).get("status", {}).get("phase") == "InProgress")
    velero.create("deletebackuprequests", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DeleteBackupRequest",
        "metadata": {"name": "del-running"}, "spec": {"backupName": "backup-running"},
    })
    done = wait_for(lambda: (d := velero.get("deletebackuprequests", "del-running")) and d.get("status", {}).get("phase") == "Processed" and d)
    assert done["status"]["errors"] == ["backup is still in progress"]
    velero.sim.seconds = SECONDS
    assert phases(velero.follow("backups", created))[-1] == "Completed"

    velero.create("deletebackuprequests", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DeleteBackupRequest",
        "metadata": {"name": "del-missing"}, "spec": {"backupName": "backup-missing"},
    })
    done = wait_for(lambda: (d := velero.get("deletebackuprequests", "del-missing")) and d.get("status", {}).get("phase") == "Processed" and d)
    assert done["status"]["errors"] == ["backup not found"]


def test_object_storage_survives_dump_and_load(velero: Velero) -> None:
    backup = run_backup(velero)[0]["metadata"]["name"]
    state = json.loads(json.dumps(velero.sim.dump()))
    other = VeleroSimulator(velero.cluster.store)
    try:
        other.load(state)
        key = f"backups/{backup}/{backup}-resource-list.json.gz"
        assert other.objects.read("default", key) == velero.sim.objects.read("default", key)
        assert other.objects.keys("default") == velero.sim.objects.keys("default")
    finally:
        other.stop()


def test_sandbox_snapshot_keeps_the_bucket(tmp_path: Any, seed_objects: list[dict[str, Any]],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed, "enterprise_rag_seed", lambda **_: clone(seed_objects))
    path = tmp_path / "state.json"
    first = SandboxCluster(velero_seconds=SECONDS, pod_ready_seconds=0.05, snapshot_path=path).start()
    try:
        v = Velero(first)
        wait_for(lambda: v.sim.alive)
        name = run_backup(v)[0]["metadata"]["name"]
        before = v.download_json("BackupResourceList", name)
    finally:
        first.stop()
    second = SandboxCluster(velero_seconds=SECONDS, pod_ready_seconds=0.05, snapshot_path=path).start()
    try:
        v = Velero(second)
        wait_for(lambda: v.sim.alive)
        assert (v.get("backups", name) or {})["status"]["phase"] == "Completed"
        assert v.download_json("BackupResourceList", name) == before
    finally:
        second.stop()
