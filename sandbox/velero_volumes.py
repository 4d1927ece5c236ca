"""The CSI provisioner's part of a restore: a restored PVC comes back Bound.

A Restore recreates PVCs without their old volume (Velero clears `volumeName` and
points `dataSource` at the VolumeSnapshot); in a real cluster the external-provisioner
then creates a new PV from the snapshot and the PV controller binds the two. The
sandbox has neither, and ragbot's readiness checks (and the StatefulSets' pods) need
the claims Bound, so the simulation does both at once, the way they leave the objects:
a PV `pvc-<claim uid>` with a claimRef, the claim's `volumeName`, binding annotations
and `status.phase: Bound`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .apiserver import errors as api_errors
from .velero_common import Obj

if TYPE_CHECKING:
    from .velero import VeleroSimulator


def bind_restored_claim(sim: VeleroSimulator, pvc: Obj) -> None:
    """Provision and bind a just-created claim (call with the store lock held)."""
    store, reg = sim.store, sim.store.registry
    pv_rt = reg.lookup("", "v1", "persistentvolumes")
    pvc_rt = reg.lookup("", "v1", "persistentvolumeclaims")
    sc_rt = reg.lookup("storage.k8s.io", "v1", "storageclasses")
    if pv_rt is None or pvc_rt is None:
        return
    m, spec = pvc["metadata"], pvc.get("spec") or {}
    ns, name = m["namespace"], m["name"]
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    modes = spec.get("accessModes") or ["ReadWriteOnce"]
    volume = spec.get("volumeName")
    driver = ""
    if volume:
        pv = store.try_get(pv_rt, "", volume)
        if pv is None:
            return  # a static claim whose volume is not there stays Pending, as in Kubernetes
        size = ((pv.get("spec") or {}).get("capacity") or {}).get("storage", size)
        driver = ((pv.get("spec") or {}).get("csi") or {}).get("driver", "")
        ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": name}

        def claim(cur: Obj) -> Obj:
            cur.setdefault("spec", {})["claimRef"] = {**ref, "uid": m["uid"]}
            return cur

        try:
            store.apply_update(pv_rt, "", volume, claim)
            store.apply_update(pv_rt, "", volume, _phase("Bound"), subresource="status")
        except api_errors.ApiError:
            return
    else:
        sc_name = spec.get("storageClassName")
        sc = store.try_get(sc_rt, "", sc_name) if sc_rt and sc_name else None
        if sc is None:
            return  # nothing would provision it
        driver = sc.get("provisioner", "")
        volume = f"pvc-{m['uid']}"
        pv_body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": volume,
                "annotations": {"pv.kubernetes.io/provisioned-by": driver},
            },
            "spec": {
                "accessModes": modes,
                "capacity": {"storage": size},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": ns,
                    "name": name,
                    "uid": m["uid"],
                },
                "csi": {
                    "driver": driver,
                    "volumeHandle": f"{driver}#{volume}",
                    "volumeAttributes": dict(sc.get("parameters") or {}),
                },
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": sc_name,
                "volumeMode": spec.get("volumeMode", "Filesystem"),
            },
        }
        try:
            store.create(pv_rt, "", pv_body)
            store.apply_update(pv_rt, "", volume, _phase("Bound"), subresource="status")
        except api_errors.ApiError:
            return

    def bind(cur: Obj) -> Obj:
        cur["spec"]["volumeName"] = volume
        ann = cur["metadata"].setdefault("annotations", {})
        ann["pv.kubernetes.io/bind-completed"] = "yes"
        ann["pv.kubernetes.io/bound-by-controller"] = "yes"
        if driver:
            ann["volume.kubernetes.io/storage-provisioner"] = driver
            ann["volume.beta.kubernetes.io/storage-provisioner"] = driver
        return cur

    def bound(cur: Obj) -> Obj:
        cur["status"] = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}
        return cur

    try:
        store.apply_update(pvc_rt, ns, name, bind)
        store.apply_update(pvc_rt, ns, name, bound, subresource="status")
    except api_errors.ApiError:
        return


def _phase(phase: str) -> Any:
    def mutate(cur: Obj) -> Obj:
        cur["status"] = {"phase": phase}
        return cur

    return mutate
