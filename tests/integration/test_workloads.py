"""The sandbox's workload controllers, seen through the official client over HTTP.

ragbot deletes an Enterprise RAG application and waits for Velero to bring it back
until every pod is Running and Ready; in the sandbox those pods exist only because
`sandbox.workloads` plays kube-controller-manager, scheduler and kubelet. These tests
check what a client can observe of that: the seeded workloads get their pods and turn
Ready, cascading deletion leaves nothing behind and nothing comes back, recreated
workloads (and StatefulSet claims) come back, scaling and template changes converge,
pod counts hold under concurrent bursts, the GMC simulation recreates model servers,
a failing reconcile is retried, and stop() is prompt.

"Nothing comes back" needs a barrier, not a sleep: `WorkloadController.wait_idle()`
returns once every watch event is consumed and every due reconcile has run.
"""

from __future__ import annotations

import functools
import json
import random
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from sandbox import seed as seed_module
from sandbox.cluster import SandboxCluster
from sandbox.workloads import NODE_NAME, WorkloadController
from tests.conftest import wait_for

READY_SECONDS = 0.05
TIMEOUT = 10.0
HASH = re.compile(r"^[bcdfghjklmnpqrstvwxz2456789]{10}$")
_build_seed = seed_module.enterprise_rag_seed


@functools.cache
def _seed() -> tuple[dict[str, Any], ...]:
    """The seed is pure and costly to build (Helm release encoding): build it once."""
    return tuple(_build_seed())


class Sandbox:
    """A started SandboxCluster with official-client APIs and its workload controller."""

    def __init__(self, cluster: SandboxCluster) -> None:
        self.cluster = cluster
        self.client = cluster.api_client()
        self.core = client.CoreV1Api(self.client)
        self.apps = client.AppsV1Api(self.client)
        self.controller = next(c for c in cluster.controllers if isinstance(c, WorkloadController))

    def close(self) -> None:
        self.cluster.stop()
        self.client.close()

    # ----- reads ---------------------------------------------------------------------------

    def pods(self, namespace: str | None = None, selector: str = "") -> list[Any]:
        if namespace is None:
            return self.core.list_pod_for_all_namespaces(label_selector=selector).items
        return self.core.list_namespaced_pod(namespace, label_selector=selector).items

    def expected_pods(self) -> int:
        deploys = self.apps.list_deployment_for_all_namespaces().items
        sets = self.apps.list_stateful_set_for_all_namespaces().items
        return sum(d.spec.replicas for d in deploys) + sum(s.spec.replicas for s in sets)

    def all_ready(self) -> bool:
        pods = self.pods()
        return len(pods) == self.expected_pods() and all(is_ready(p) for p in pods)

    def owned_by(self, items: list[Any], owner: Any) -> list[Any]:
        return [i for i in items if owner_uid(i) == owner.metadata.uid]

    def deployment_pods(self, namespace: str, name: str) -> list[Any]:
        """Pods of the Deployment's current ReplicaSets (via ownerReferences, as GC sees it)."""
        try:
            deploy = self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        sets = self.owned_by(self.apps.list_namespaced_replica_set(namespace).items, deploy)
        uids = {rs.metadata.uid for rs in sets}
        return [p for p in self.pods(namespace) if owner_uid(p) in uids]

    def wait_idle(self) -> None:
        assert self.controller.wait_idle(TIMEOUT), "workload controller never went idle"

    def wait_all_ready(self) -> None:
        wait_for(self.all_ready, TIMEOUT, "every seeded pod Running and Ready")


def is_ready(pod: Any) -> bool:
    conditions = {c.type: c.status for c in pod.status.conditions or ()}
    statuses = pod.status.container_statuses or ()
    return (
        pod.status.phase == "Running"
        and conditions.get("Ready") == "True"
        and bool(statuses)
        and all(s.ready and s.started for s in statuses)
    )


def owner_uid(obj: Any) -> str | None:
    refs = [r for r in obj.metadata.owner_references or () if r.controller]
    return refs[0].uid if refs else None


def delete(method: Callable[..., Any], *args: Any) -> None:
    """Call a client delete without decoding its answer.

    A real apiserver answers DELETE of pods, Services and PVCs with the object (they
    are deleted gracefully or carry protection finalizers); the sandbox answers with a
    Status, which client 37.x refuses to decode as the object. What is checked here
    is the deletion's effect, so the body is not read.
    """
    response = method(*args, _preload_content=False)
    assert response.status == 200, response.data
    response.data  # noqa: B018 - read it all so the pooled connection is clean again


def manifest(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    """A live object as a client would create it again (server-set fields dropped)."""
    body = api.sanitize_for_serialization(obj)
    body.pop("status", None)
    meta = body["metadata"]
    for field in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        meta.pop(field, None)
    (meta.get("annotations") or {}).pop("deployment.kubernetes.io/revision", None)
    return body


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setattr(seed_module, "enterprise_rag_seed", lambda: list(_seed()))
    handle = Sandbox(SandboxCluster(pod_ready_seconds=READY_SECONDS).start())
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def ready(sandbox: Sandbox) -> Sandbox:
    """A sandbox whose seeded application is fully up."""
    sandbox.wait_all_ready()
    return sandbox


# ----- the seeded application comes up --------------------------------------------------------


def _raw_list(cluster: SandboxCluster, path: str) -> list[dict[str, Any]]:
    """Items of a raw GET: cheap enough to time with.

    The typed client spends tens of milliseconds per list decoding models (far more
    on first use), which would swamp what is being measured.
    """
    request = urllib.request.Request(
        f"{cluster.url}{path}", headers={"Authorization": f"Bearer {cluster.admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return list(json.load(response)["items"])


def _ready_pod_count(cluster: SandboxCluster) -> tuple[int, int]:
    """(pods, Running and Ready pods), read over HTTP."""
    items = _raw_list(cluster, "/api/v1/pods")
    ready = [
        p
        for p in items
        if p["status"].get("phase") == "Running"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    ]
    return len(items), len(ready)


def test_every_seeded_workload_gets_ready_pods(capsys: pytest.CaptureFixture[str]) -> None:
    began = time.monotonic()
    cluster = SandboxCluster(pod_ready_seconds=READY_SECONDS).start()  # the real seed, uncached
    started = time.monotonic()
    try:
        workloads = [
            *_raw_list(cluster, "/apis/apps/v1/deployments"),
            *_raw_list(cluster, "/apis/apps/v1/statefulsets"),
        ]
        want = sum(w["spec"]["replicas"] for w in workloads)
        wait_for(lambda: _ready_pod_count(cluster) == (want, want), TIMEOUT, "all pods Ready")
    except BaseException:
        cluster.stop()
        raise
    done = time.monotonic()
    with capsys.disabled():
        print(
            f"\n[workloads] {want} seeded pods Ready {done - began:.3f}s after start() was "
            f"called (start() itself {started - began:.3f}s, then {done - started:.3f}s)"
        )
    sandbox = Sandbox(cluster)
    try:
        assert want == sandbox.expected_pods() == 29
        sandbox.wait_all_ready()
        node = sandbox.core.read_node(NODE_NAME)
        assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"

        for d in sandbox.apps.list_deployment_for_all_namespaces().items:
            s = d.status
            assert (s.replicas, s.ready_replicas, s.available_replicas, s.updated_replicas) == (
                d.spec.replicas,
            ) * 4, d.metadata.name
            assert s.observed_generation == d.metadata.generation
            conditions = {c.type: (c.status, c.reason) for c in s.conditions}
            assert conditions["Available"] == ("True", "MinimumReplicasAvailable")
            assert conditions["Progressing"] == ("True", "NewReplicaSetAvailable")
        for st in sandbox.apps.list_stateful_set_for_all_namespaces().items:
            s = st.status
            counts = (s.replicas, s.ready_replicas, s.current_replicas, s.updated_replicas)
            assert counts == (st.spec.replicas,) * 4, st.metadata.name
            assert s.available_replicas == st.spec.replicas
            assert s.observed_generation == st.metadata.generation
            assert s.current_revision == s.update_revision

        for pod in sandbox.pods():
            assert pod.spec.node_name == NODE_NAME
            assert pod.status.pod_ip and pod.status.host_ip and pod.status.start_time
            conditions = {c.type: c.status for c in pod.status.conditions}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
                assert conditions[kind] == "True", (pod.metadata.name, kind)
            for cs in pod.status.container_statuses:
                assert cs.restart_count == 0
                assert cs.state.running is not None and cs.state.running.started_at
        assert sandbox.controller.error_count == 0
    finally:
        sandbox.close()


def test_deployments_own_a_hashed_replicaset_which_owns_the_pods(ready: Sandbox) -> None:
    deploy = ready.apps.read_namespaced_deployment("edp-backend", "edp")
    [rs] = ready.owned_by(ready.apps.list_namespaced_replica_set("edp").items, deploy)
    prefix, _, pod_hash = rs.metadata.name.rpartition("-")
    assert prefix == "edp-backend" and HASH.match(pod_hash)
    [ref] = rs.metadata.owner_references
    assert (ref.api_version, ref.kind, ref.name, ref.uid) == (
        "apps/v1", "Deployment", "edp-backend", deploy.metadata.uid,
    )
    assert ref.controller and ref.block_owner_deletion
    assert rs.metadata.labels["pod-template-hash"] == pod_hash
    assert rs.spec.selector.match_labels["pod-template-hash"] == pod_hash
    assert rs.status.ready_replicas == rs.status.available_replicas == 1

    [pod] = ready.owned_by(ready.pods("edp"), rs)
    assert re.fullmatch(rf"{rs.metadata.name}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", pod.metadata.name)
    assert pod.metadata.labels == {**deploy.spec.template.metadata.labels, "pod-template-hash": pod_hash}
    [pref] = pod.metadata.owner_references
    assert (pref.kind, pref.name, pref.uid, pref.controller) == (
        "ReplicaSet", rs.metadata.name, rs.metadata.uid, True,
    )


def test_statefulset_pods_are_ordinal_and_mount_their_claims(ready: Sandbox) -> None:
    sts = ready.apps.read_namespaced_stateful_set("vdb-redis-cluster", "vdb")
    pods = sorted(ready.owned_by(ready.pods("vdb"), sts), key=lambda p: p.metadata.name)
    assert [p.metadata.name for p in pods] == [f"vdb-redis-cluster-{i}" for i in range(3)]
    for i, pod in enumerate(pods):
        claims = [v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim]
        assert claims == [f"redis-data-vdb-redis-cluster-{i}"]
        assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == pod.metadata.name
        assert pod.metadata.labels["controller-revision-hash"] == sts.status.update_revision
        assert pod.spec.hostname == pod.metadata.name
        assert pod.spec.subdomain == sts.spec.service_name


# ----- deletion and recreation ---------------------------------------------------------------


def test_deleted_deployment_takes_its_replicaset_and_pods_and_nothing_comes_back(
    ready: Sandbox,
) -> None:
    ns, name = "edp", "edp-backend"
    deploy = ready.apps.read_namespaced_deployment(name, ns)
    body = manifest(ready.client, deploy)
    [old_rs] = ready.owned_by(ready.apps.list_namespaced_replica_set(ns).items, deploy)
    selector = "app.kubernetes.io/name=edp-backend"

    ready.apps.delete_namespaced_deployment(name, ns)
    wait_for(lambda: not ready.pods(ns, selector), TIMEOUT, "edp-backend pods gone")
    ready.wait_idle()
    assert not ready.pods(ns, selector)
    assert old_rs.metadata.name not in [
        rs.metadata.name for rs in ready.apps.list_namespaced_replica_set(ns).items
    ]

    ready.apps.create_namespaced_deployment(ns, body)
    wait_for(
        lambda: [p for p in ready.deployment_pods(ns, name) if is_ready(p)],
        TIMEOUT,
        "recreated edp-backend pod Ready",
    )
    [new_rs] = ready.owned_by(
        ready.apps.list_namespaced_replica_set(ns).items,
        ready.apps.read_namespaced_deployment(name, ns),
    )
    assert new_rs.metadata.name == old_rs.metadata.name  # same template, same hash
    assert new_rs.metadata.uid != old_rs.metadata.uid
    wait_for(
        lambda: ready.apps.read_namespaced_deployment(name, ns).status.ready_replicas == 1,
        TIMEOUT,
        "deployment status readyReplicas 1",
    )


def test_deleted_pods_are_replaced(ready: Sandbox) -> None:
    [old] = ready.deployment_pods("edp", "edp-celery")
    delete(ready.core.delete_namespaced_pod, old.metadata.name, "edp")
    wait_for(
        lambda: [p for p in ready.deployment_pods("edp", "edp-celery") if is_ready(p)],
        TIMEOUT,
        "replacement edp-celery pod",
    )
    [new] = ready.deployment_pods("edp", "edp-celery")
    assert new.metadata.name != old.metadata.name

    old_sts_pod = ready.core.read_namespaced_pod("edp-redis-0", "edp")
    delete(ready.core.delete_namespaced_pod, "edp-redis-0", "edp")

    def replaced() -> bool:
        try:
            pod = ready.core.read_namespaced_pod("edp-redis-0", "edp")
        except ApiException:
            return False
        return pod.metadata.uid != old_sts_pod.metadata.uid and is_ready(pod)

    wait_for(replaced, TIMEOUT, "edp-redis-0 recreated under the same name")


def test_statefulset_and_claims_deleted_then_recreated_come_back(ready: Sandbox) -> None:
    ns, name = "vdb", "vdb-redis-cluster"
    sts = ready.apps.read_namespaced_stateful_set(name, ns)
    body = manifest(ready.client, sts)
    claims = [f"redis-data-{name}-{i}" for i in range(3)]
    volumes = {ready.core.read_namespaced_persistent_volume_claim(c, ns).spec.volume_name for c in claims}

    ready.apps.delete_namespaced_stateful_set(name, ns)
    wait_for(lambda: not ready.owned_by(ready.pods(ns), sts), TIMEOUT, "vdb pods gone")
    pvc_names = {p.metadata.name for p in ready.core.list_namespaced_persistent_volume_claim(ns).items}
    assert set(claims) <= pvc_names  # claims are not owned by the StatefulSet: they stay
    for c in claims:
        delete(ready.core.delete_namespaced_persistent_volume_claim, c, ns)

    def claims_and_volumes_gone() -> bool:
        left = {p.metadata.name for p in ready.core.list_namespaced_persistent_volume_claim(ns).items}
        pvs = {pv.metadata.name for pv in ready.core.list_persistent_volume().items}
        return not (set(claims) & left) and not (volumes & pvs)

    wait_for(claims_and_volumes_gone, TIMEOUT, "claims deleted and their Delete-policy PVs reclaimed")
    ready.wait_idle()
    assert not ready.pods(ns)

    ready.apps.create_namespaced_stateful_set(ns, body)

    def back() -> bool:
        st = ready.apps.read_namespaced_stateful_set(name, ns)
        pods = ready.owned_by(ready.pods(ns), st)
        return len(pods) == 3 and all(is_ready(p) for p in pods) and st.status.ready_replicas == 3

    wait_for(back, TIMEOUT, "vdb-redis-cluster pods 0..2 Ready again")
    for c in claims:
        pvc = ready.core.read_namespaced_persistent_volume_claim(c, ns)
        assert pvc.status.phase == "Bound" and pvc.spec.volume_name
        assert not pvc.metadata.owner_references
        pv = ready.core.read_persistent_volume(pvc.spec.volume_name)
        assert pv.status.phase == "Bound" and pv.spec.claim_ref.uid == pvc.metadata.uid
        assert pvc.spec.storage_class_name == "nfs-csi"  # the default class, filled in


def test_a_pod_waits_for_its_claim_which_gets_provisioned_and_bound(ready: Sandbox) -> None:
    ns = "ragbot"
    body = _burst_deployment("needs-data", 1)
    pod_spec = body["spec"]["template"]["spec"]
    pod_spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "late-data"}}]
    ready.apps.create_namespaced_deployment(ns, body)
    wait_for(lambda: ready.deployment_pods(ns, "needs-data"), TIMEOUT, "the pod created")
    ready.wait_idle()
    [pod] = ready.deployment_pods(ns, "needs-data")
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"

    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "late-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    made = ready.core.create_namespaced_persistent_volume_claim(ns, claim)
    wait_for(
        lambda: [p for p in ready.deployment_pods(ns, "needs-data") if is_ready(p)],
        TIMEOUT,
        "the pod Ready once its claim is Bound",
    )
    pvc = ready.core.read_namespaced_persistent_volume_claim("late-data", ns)
    assert pvc.status.phase == "Bound" and pvc.status.capacity == {"storage": "2Gi"}
    assert pvc.spec.storage_class_name == "nfs-csi"  # the default class, filled in
    assert pvc.spec.volume_name == f"pvc-{made.metadata.uid}"
    pv = ready.core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.csi.driver == "nfs.csi.k8s.io" and pv.status.phase == "Bound"


def test_orphaned_dependents_are_adopted_by_a_recreated_owner(ready: Sandbox) -> None:
    """`delete --cascade=orphan` then re-create: the same pods carry on, none is added."""
    orphan = client.V1DeleteOptions(propagation_policy="Orphan")
    deploy = ready.apps.read_namespaced_deployment("edp-dataprep", "edp")
    [rs] = ready.owned_by(ready.apps.list_namespaced_replica_set("edp").items, deploy)
    [pod] = ready.owned_by(ready.pods("edp"), rs)
    sts = ready.apps.read_namespaced_stateful_set("seaweedfs-master", "seaweedfs")
    sts_pod = ready.core.read_namespaced_pod("seaweedfs-master-0", "seaweedfs")

    ready.apps.delete_namespaced_deployment("edp-dataprep", "edp", body=orphan)
    ready.apps.delete_namespaced_stateful_set("seaweedfs-master", "seaweedfs", body=orphan)
    ready.wait_idle()
    assert not ready.apps.read_namespaced_replica_set(rs.metadata.name, "edp").metadata.owner_references
    assert [p.metadata.uid for p in ready.owned_by(ready.pods("edp"), rs)] == [pod.metadata.uid]

    ready.apps.create_namespaced_deployment("edp", manifest(ready.client, deploy))
    ready.apps.create_namespaced_stateful_set("seaweedfs", manifest(ready.client, sts))

    def adopted() -> bool:
        d = ready.apps.read_namespaced_deployment("edp-dataprep", "edp")
        sets = ready.owned_by(ready.apps.list_namespaced_replica_set("edp").items, d)
        s = ready.apps.read_namespaced_stateful_set("seaweedfs-master", "seaweedfs")
        return [r.metadata.uid for r in sets] == [rs.metadata.uid] and [
            p.metadata.uid for p in ready.owned_by(ready.pods("seaweedfs"), s)
        ] == [sts_pod.metadata.uid]

    wait_for(adopted, TIMEOUT, "recreated owners adopting the orphans")
    ready.wait_idle()
    assert [p.metadata.uid for p in ready.deployment_pods("edp", "edp-dataprep")] == [pod.metadata.uid]


# ----- scaling and templates -------------------------------------------------------------------


def test_scale_deployment_and_statefulset_up_and_down(ready: Sandbox) -> None:
    ns, name = "fingerprint", "fingerprint-usvc"

    def scaled(n: int) -> Callable[[], bool]:
        def check() -> bool:
            pods = ready.deployment_pods(ns, name)
            d = ready.apps.read_namespaced_deployment(name, ns)
            return len(pods) == n and all(map(is_ready, pods)) and (d.status.ready_replicas or 0) == n

        return check

    for n in (4, 1, 0, 2):
        ready.apps.patch_namespaced_deployment(name, ns, {"spec": {"replicas": n}})
        wait_for(scaled(n), TIMEOUT, f"{name} at {n} ready replicas")

    sts_name = "edp-redis"

    def sts_scaled(n: int) -> Callable[[], bool]:
        def check() -> bool:
            st = ready.apps.read_namespaced_stateful_set(sts_name, "edp")
            pods = ready.owned_by(ready.pods("edp"), st)
            names = sorted(p.metadata.name for p in pods)
            return (
                names == sorted(f"{sts_name}-{i}" for i in range(n))
                and all(map(is_ready, pods))
                and (st.status.ready_replicas or 0) == n
            )

        return check

    ready.apps.patch_namespaced_stateful_set(sts_name, "edp", {"spec": {"replicas": 3}})
    wait_for(sts_scaled(3), TIMEOUT, "edp-redis at 3")
    claims = {p.metadata.name for p in ready.core.list_namespaced_persistent_volume_claim("edp").items}
    assert {f"redis-data-{sts_name}-{i}" for i in range(3)} <= claims
    ready.apps.patch_namespaced_stateful_set(sts_name, "edp", {"spec": {"replicas": 1}})
    wait_for(sts_scaled(1), TIMEOUT, "edp-redis back at 1")


def test_template_change_makes_a_new_replicaset_and_drains_the_old(ready: Sandbox) -> None:
    ns, name = "chat-history", "chat-history-usvc"
    deploy = ready.apps.read_namespaced_deployment(name, ns)
    [old_rs] = ready.owned_by(ready.apps.list_namespaced_replica_set(ns).items, deploy)
    patch = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
    ready.apps.patch_namespaced_deployment(name, ns, patch)

    def rolled() -> bool:
        d = ready.apps.read_namespaced_deployment(name, ns)
        sets = ready.owned_by(ready.apps.list_namespaced_replica_set(ns).items, d)
        new = [rs for rs in sets if rs.metadata.name != old_rs.metadata.name]
        pods = ready.deployment_pods(ns, name)
        return (
            len(new) == 1
            and len(pods) == 1
            and owner_uid(pods[0]) == new[0].metadata.uid
            and is_ready(pods[0])
            and d.status.updated_replicas == 1
            and d.status.observed_generation == d.metadata.generation
            and d.metadata.annotations.get("deployment.kubernetes.io/revision") == "2"
        )

    wait_for(rolled, TIMEOUT, "rollout to the new ReplicaSet")
    old = ready.apps.read_namespaced_replica_set(old_rs.metadata.name, ns)
    assert old.spec.replicas == 0 and not old.status.replicas

    undo = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": None}}}}}
    ready.apps.patch_namespaced_deployment(name, ns, undo)  # a rollback reuses the old set

    def rolled_back() -> bool:
        d = ready.apps.read_namespaced_deployment(name, ns)
        pods = ready.deployment_pods(ns, name)
        back = ready.apps.read_namespaced_replica_set(old_rs.metadata.name, ns)
        return (
            len(pods) == 1
            and owner_uid(pods[0]) == old_rs.metadata.uid
            and is_ready(pods[0])
            and back.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
            and d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
        )

    wait_for(rolled_back, TIMEOUT, "rollback onto the first ReplicaSet as revision 3")


# ----- robustness ------------------------------------------------------------------------------


def _burst_deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
            },
        },
    }


def test_pod_counts_hold_under_concurrent_scale_delete_and_recreate_bursts(ready: Sandbox) -> None:
    ns, name, final = "ragbot", "burst", 5
    ready.apps.create_namespaced_deployment(ns, _burst_deployment(name, 3))
    failures: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        api = ready.cluster.api_client()
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        try:
            for _ in range(25):
                roll = rng.random()
                try:
                    if roll < 0.45:
                        apps.patch_namespaced_deployment(name, ns, {"spec": {"replicas": rng.randint(0, 8)}})
                    elif roll < 0.85:
                        pods = core.list_namespaced_pod(ns, label_selector=f"app={name}").items
                        if pods:
                            delete(core.delete_namespaced_pod, rng.choice(pods).metadata.name, ns)
                    elif roll < 0.93:
                        apps.delete_namespaced_deployment(name, ns)
                    else:
                        apps.create_namespaced_deployment(ns, _burst_deployment(name, rng.randint(0, 8)))
                except ApiException as exc:
                    if exc.status not in (404, 409):
                        raise
        except BaseException as exc:  # surfaced in the main thread below
            failures.append(exc)
        finally:
            api.close()

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not failures, failures

    try:
        ready.apps.patch_namespaced_deployment(name, ns, {"spec": {"replicas": final}})
    except ApiException as exc:
        assert exc.status == 404
        ready.apps.create_namespaced_deployment(ns, _burst_deployment(name, final))

    def settled() -> bool:
        pods = ready.pods(ns, f"app={name}")
        ours = ready.deployment_pods(ns, name)
        d = ready.apps.read_namespaced_deployment(name, ns)
        return (
            len(pods) == len(ours) == final
            and all(map(is_ready, pods))
            and d.status.ready_replicas == final
        )

    wait_for(settled, TIMEOUT, f"{name} settled at {final} ready pods")
    ready.wait_idle()
    pods = ready.pods(ns, f"app={name}")
    assert len(pods) == final  # nothing extra appeared afterwards
    assert len({p.metadata.name for p in pods}) == final
    deploy = ready.apps.read_namespaced_deployment(name, ns)
    live_sets = ready.owned_by(ready.apps.list_namespaced_replica_set(ns).items, deploy)
    all_sets = ready.apps.list_namespaced_replica_set(ns).items
    assert {rs.metadata.uid for rs in all_sets} == {rs.metadata.uid for rs in live_sets}
    assert ready.controller.error_count == 0


def test_a_failing_reconcile_is_retried_with_backoff(sandbox: Sandbox) -> None:
    real = sandbox.controller.reconcilers["ReplicaSet"]
    calls: list[str] = []

    class Flaky:
        """Fails the first three passes over the burst set, then behaves."""

        def reconcile(self, namespace: str, name: str) -> float | None:
            if name.startswith("flaky-") and len(calls) < 3:
                calls.append(name)
                raise RuntimeError("injected reconcile failure")
            return real.reconcile(namespace, name)

    sandbox.controller.reconcilers["ReplicaSet"] = Flaky()
    sandbox.apps.create_namespaced_deployment("ragbot", _burst_deployment("flaky", 2))
    wait_for(
        lambda: len([p for p in sandbox.deployment_pods("ragbot", "flaky") if is_ready(p)]) == 2,
        TIMEOUT,
        "flaky deployment's pods Ready after retries",
    )
    assert len(calls) == 3
    assert sandbox.controller.error_count >= 3
    assert all(t.is_alive() for t in sandbox.controller.threads)


# ----- Enterprise RAG's GMC simulation -----------------------------------------------------------


def test_gmc_recreates_a_deleted_model_server_while_it_runs(ready: Sandbox) -> None:
    ns, name, svc = "chatqa", "torchserve-embedding-svc-deployment", "torchserve-embedding-svc"
    ready.apps.delete_namespaced_deployment(name, ns)
    delete(ready.core.delete_namespaced_service, svc, ns)

    def back() -> bool:
        pods = ready.deployment_pods(ns, name)
        try:
            ready.core.read_namespaced_service(svc, ns)
        except ApiException:
            return False
        return len(pods) == 1 and is_ready(pods[0])

    wait_for(back, TIMEOUT, "model server and its Service recreated by GMC")
    deploy = ready.apps.read_namespaced_deployment(name, ns)
    assert deploy.metadata.labels["app.kubernetes.io/instance"] == "torchserve_embedding"


def test_gmc_waits_for_its_controller_to_be_ready(ready: Sandbox) -> None:
    gmc = ready.apps.read_namespaced_deployment("gmc-controller", "system")
    gmc_body = manifest(ready.client, gmc)
    ready.apps.delete_namespaced_deployment("gmc-controller", "system")
    ns, name = "chatqa", "vllm-service-m-deployment"
    ready.apps.delete_namespaced_deployment(name, ns)
    wait_for(lambda: not ready.pods(ns, "app.kubernetes.io/instance=vllm"), TIMEOUT, "vllm pods gone")
    ready.wait_idle()
    names = [d.metadata.name for d in ready.apps.list_namespaced_deployment(ns).items]
    assert name not in names  # no GMC, no model server

    ready.apps.create_namespaced_deployment("system", gmc_body)  # as a restore brings it back
    wait_for(
        lambda: [p for p in ready.deployment_pods(ns, name) if is_ready(p)],
        TIMEOUT,
        "vllm recreated once gmc-controller is ready",
    )


# ----- lifecycle ---------------------------------------------------------------------------------


def test_stop_is_prompt_and_ends_every_thread(sandbox: Sandbox) -> None:
    sandbox.wait_all_ready()
    controller = sandbox.controller
    started = time.monotonic()
    sandbox.cluster.stop()
    assert time.monotonic() - started < 1.0
    assert not [t.name for t in controller.threads if t.is_alive()]


def test_snapshot_keeps_the_gmc_memory(tmp_path: Any) -> None:
    """A sandbox stopped without its model servers still recreates them after a restart."""
    path = tmp_path / "state.json"
    first = Sandbox(SandboxCluster(pod_ready_seconds=READY_SECONDS, snapshot_path=path).start())
    try:
        first.wait_all_ready()
        first.apps.delete_namespaced_deployment("gmc-controller", "system")
        first.apps.delete_namespaced_deployment("torchserve-reranking-svc-deployment", "chatqa")
    finally:
        first.close()
    second = Sandbox(SandboxCluster(pod_ready_seconds=READY_SECONDS, snapshot_path=path).start())
    try:
        gmc = _burst_deployment("gmc-controller", 1)
        gmc["metadata"]["namespace"] = "system"
        second.apps.create_namespaced_deployment("system", gmc)
        wait_for(
            lambda: [p for p in second.deployment_pods("chatqa", "torchserve-reranking-svc-deployment") if is_ready(p)],
            TIMEOUT,
            "model server recreated from the snapshot's memory",
        )
    finally:
        second.close()
