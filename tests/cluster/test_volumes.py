"""Claim binding as kube-controller-manager's PV controller does it, on both clusters.

Found by the upstream judge: the seed's pre-bound PVs had a claimRef without the claim's
uid while the claims carried `pv.kubernetes.io/bind-completed`; the real controller marks
such claims Lost (ClaimMisbound) and their pods never schedule. The sandbox's binder now
applies the same rule, and the seed loaders fill the uid in, as a bound pair has it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.targets import Target

_names = itertools.count()


def _pair(ns: str, name: str, *, bind_completed: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    pv = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"{ns}-{name}"},
        "spec": {
            "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": name},
            "csi": {"driver": "example.csi.k8s.io", "volumeHandle": f"{ns}-{name}"},
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
        },
    }  # fmt: skip
    annotations = {"pv.kubernetes.io/bind-completed": "yes"} if bind_completed else {}
    pvc = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "", "volumeName": f"{ns}-{name}",
        },
    }  # fmt: skip
    return pv, pvc


@pytest.fixture
def namespace(target: Target) -> Iterator[str]:
    ns = f"volumes-{int(time.time())}-{next(_names)}"
    with target.admin() as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": ns}})
        try:
            yield ns
        finally:
            core.delete_namespace(ns)
            for pv in core.list_persistent_volume().items:
                if pv.metadata.name.startswith(f"{ns}-"):
                    core.delete_persistent_volume(pv.metadata.name)


def _phase(core: client.CoreV1Api, ns: str, name: str, want: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        phase = core.read_namespaced_persistent_volume_claim(name, ns).status.phase
        if phase == want or time.monotonic() > deadline:
            return str(phase)
        time.sleep(delay)
        delay = min(2 * delay, 1.0)


def test_a_claim_prebound_without_bind_completed_gets_bound(target: Target, namespace: str) -> None:
    pv, pvc = _pair(namespace, "fresh", bind_completed=False)
    with target.admin() as api:
        core = client.CoreV1Api(api)
        core.create_persistent_volume(pv)
        created = core.create_namespaced_persistent_volume_claim(namespace, pvc)
        assert _phase(core, namespace, "fresh", "Bound") == "Bound"
        ref = core.read_persistent_volume(pv["metadata"]["name"]).spec.claim_ref
        assert ref.uid == created.metadata.uid


def test_a_bound_claim_whose_volume_lacks_its_uid_is_lost(target: Target, namespace: str) -> None:
    pv, pvc = _pair(namespace, "misbound", bind_completed=True)
    with target.admin() as api:
        core = client.CoreV1Api(api)
        core.create_persistent_volume(pv)
        core.create_namespaced_persistent_volume_claim(namespace, pvc)
        assert _phase(core, namespace, "misbound", "Lost") == "Lost"
