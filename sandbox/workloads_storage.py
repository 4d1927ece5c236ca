"""The sandbox's PV controller and CSI provisioner: claims get bound, volumes reclaimed.

A restore deletes the application's PVCs and Velero recreates them; in a real cluster
the CSI provisioner then makes a volume (from the snapshot) and the PV controller binds
the claim, and only then can the StatefulSet's pods start. Here a Pending claim is
bound to the PV it names, to a PV pre-bound to it (claimRef), or to a new `pvc-<uid>`
PV provisioned with its StorageClass's driver (the name Velero's restore simulation
gives the volumes it provisions, so whichever of the two gets there first, the
result is the same). A claim without a class gets the default
class first (retroactive default StorageClass assignment, Kubernetes >= 1.28). When a
claim is deleted, its PV goes too if its reclaim policy is Delete, else it is Released.
Pods waiting for the claim are woken once it is Bound.

Simplifications (README): binding is immediate, no finalizers (pvc-protection,
pv-protection), a class with no matching provisioner is not modelled; a claim naming
a missing StorageClass stays Pending, as it would.
"""

from __future__ import annotations

from collections.abc import Callable

from .apiserver import errors
from .apiserver.objects import clone
from .workloads_kube import Kube, Obj

Enqueue = Callable[[tuple[str, str, str]], None]
_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"


class ClaimBinder:
    """Reconciles one PersistentVolumeClaim to Bound (or its PV away once it is gone)."""

    def __init__(self, kube: Kube, enqueue: Enqueue) -> None:
        self.kube = kube
        self.enqueue = enqueue

    def reconcile(self, namespace: str, name: str) -> float | None:
        k = self.kube.kinds
        pvc = self.kube.get(k.pvcs, namespace, name)
        if pvc is None or (pvc.get("status") or {}).get("phase") == "Bound":
            self._reclaim(namespace, name, pvc)
        if pvc is None or pvc["metadata"].get("deletionTimestamp"):
            return None
        phase = (pvc.get("status") or {}).get("phase")
        if phase == "Lost":
            return None
        if _BIND_COMPLETED in (pvc["metadata"].get("annotations") or {}) and self._misbound(pvc):
            # The real PV controller (syncBoundClaim): a claim once bound whose volume is
            # gone, or names another claim's uid, is Lost for good.
            self.kube.write_status(k.pvcs, pvc, {**(pvc.get("status") or {}), "phase": "Lost"})
            return None
        if phase == "Bound":
            self._wake_pods(pvc)
            return None
        spec = pvc.get("spec") or {}
        class_name = spec.get("storageClassName")
        if class_name is None:
            class_name = self._default_class()
            if class_name is not None:
                pvc = self._set_spec(pvc, {"storageClassName": class_name})
                if pvc is None:
                    return None
        static = spec.get("volumeName")
        volume_name = static or self._prebound(pvc)
        pv = self.kube.get(k.pvs, "", volume_name) if volume_name else None
        if pv is None and static:
            return None  # a claim naming a volume that is not there stays Pending
        if pv is None:
            sc = self.kube.get(k.storageclasses, "", class_name) if class_name else None
            if sc is None:
                return None  # nothing can provision it: Pending, as in a real cluster
            pv = self._provision(pvc, f"pvc-{pvc['metadata']['uid']}", sc)
        pv = self._claim_volume(pv, pvc)
        if pv is None:
            return None
        annotations = {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
        }
        driver = ((pv.get("spec") or {}).get("csi") or {}).get("driver")
        if driver:
            annotations["volume.kubernetes.io/storage-provisioner"] = driver
            annotations["volume.beta.kubernetes.io/storage-provisioner"] = driver
        pvc = self._set_spec(pvc, {"volumeName": pv["metadata"]["name"]}, annotations)
        if pvc is None:
            return None
        pv_spec = pv.get("spec") or {}
        status = {
            "phase": "Bound",
            "accessModes": clone(pv_spec.get("accessModes") or spec.get("accessModes") or []),
            "capacity": clone(pv_spec.get("capacity") or {}),
        }
        bound = self.kube.write_status(k.pvcs, pvc, status)
        if bound is not None:
            self._wake_pods(bound)
        return None

    def _misbound(self, pvc: Obj) -> bool:
        """Once bound, but its volume is missing or claimed by another uid (upstream: Lost).

        A volume without a claimRef is re-bound by the controller, so it is not misbound;
        one whose claimRef lacks the uid is (kube-controller-manager marks such a claim
        Lost with ClaimMisbound, as the upstream judge showed for a seed without uids).
        """
        volume = (pvc.get("spec") or {}).get("volumeName")
        if not volume:
            return True  # "Bound claim has lost reference to PersistentVolume"
        pv = self.kube.get(self.kube.kinds.pvs, "", volume)
        if pv is None:
            return True
        ref = (pv.get("spec") or {}).get("claimRef")
        return bool(ref) and ref.get("uid") != pvc["metadata"]["uid"]

    def _default_class(self) -> str | None:
        for sc in self.kube.list(self.kube.kinds.storageclasses):
            if (sc["metadata"].get("annotations") or {}).get(_DEFAULT_CLASS) == "true":
                return str(sc["metadata"]["name"])
        return None

    def _prebound(self, pvc: Obj) -> str | None:
        """A PV whose claimRef names this claim (the seed's volumes are such).

        A claimRef carrying another claim's uid belongs to a deleted predecessor: that
        volume is Released, and Kubernetes does not hand it to the new claim.
        """
        m = pvc["metadata"]
        for pv in self.kube.list(self.kube.kinds.pvs):
            ref = (pv.get("spec") or {}).get("claimRef") or {}
            if (ref.get("namespace"), ref.get("name")) != (m["namespace"], m["name"]):
                continue
            if ref.get("uid") in (None, "", m["uid"]):
                return str(pv["metadata"]["name"])
        return None

    def _set_spec(self, pvc: Obj, fields: Obj, annotations: Obj | None = None) -> Obj | None:
        spec = pvc.get("spec") or {}
        have = (pvc["metadata"].get("annotations") or {}).items()
        if all(spec.get(k) == v for k, v in fields.items()) and (annotations or {}).items() <= have:
            return pvc

        def put(obj: Obj) -> None:
            obj.setdefault("spec", {}).update(fields)
            if annotations:
                obj["metadata"].setdefault("annotations", {}).update(annotations)

        return self.kube.update(self.kube.kinds.pvcs, pvc, put)

    def _provision(self, pvc: Obj, volume: str, sc: Obj) -> Obj:
        """Create the PV a CSI provisioner would create for this claim."""
        spec = pvc.get("spec") or {}
        driver = sc.get("provisioner") or "sandbox.csi.k8s.io"
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        body: Obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": volume,
                "annotations": {"pv.kubernetes.io/provisioned-by": driver},
            },
            "spec": {
                "accessModes": clone(spec.get("accessModes") or ["ReadWriteOnce"]),
                "capacity": {"storage": size},
                "csi": {
                    "driver": driver,
                    "volumeHandle": f"{driver}#{volume}",
                    "volumeAttributes": clone(sc.get("parameters") or {}),
                },
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                "storageClassName": sc["metadata"]["name"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
            },
        }
        k = self.kube.kinds
        try:
            return self.kube.create(k.pvs, "", body)
        except errors.ApiError as exc:
            existing = self.kube.get(k.pvs, "", volume)  # made concurrently (Velero)
            if exc.code != 409 or existing is None:
                raise
            return existing

    def _claim_volume(self, pv: Obj, pvc: Obj) -> Obj | None:
        """Point the PV's claimRef at this very claim and mark it Bound."""
        m = pvc["metadata"]
        ref = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": m["namespace"],
            "name": m["name"],
            "uid": m["uid"],
        }
        k = self.kube.kinds
        current = (pv.get("spec") or {}).get("claimRef") or {}
        if any(current.get(key) != value for key, value in ref.items()):

            def put(obj: Obj) -> None:
                obj.setdefault("spec", {})["claimRef"] = {**current, **ref}

            updated = self.kube.update(k.pvs, pv, put)
            if updated is None:
                return None
            pv = updated
        return self.kube.write_status(k.pvs, pv, {"phase": "Bound"})

    def _reclaim(self, namespace: str, name: str, current: Obj | None) -> None:
        """Volumes of a deleted claim: delete them (policy Delete) or release them.

        `current` is a same-named claim that may exist by now (a restore recreates
        claims at once); the volume it is bound to is of course kept.
        """
        k = self.kube.kinds
        for pv in self.kube.list(k.pvs):
            spec = pv.get("spec") or {}
            ref = spec.get("claimRef") or {}
            if ref.get("namespace") != namespace or ref.get("name") != name:
                continue
            if current is not None and (
                ref.get("uid") == current["metadata"]["uid"]
                or (current.get("spec") or {}).get("volumeName") == pv["metadata"]["name"]
            ):
                continue
            if (pv.get("status") or {}).get("phase") not in ("Bound", "Released"):
                continue
            if spec.get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
                self.kube.delete(k.pvs, pv)
            else:
                self.kube.write_status(k.pvs, pv, {"phase": "Released"})

    def _wake_pods(self, pvc: Obj) -> None:
        """Pending pods that mount this claim can go on now."""
        ns, claim = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        for pod in self.kube.list(self.kube.kinds.pods, ns):
            if (pod.get("status") or {}).get("phase", "Pending") != "Pending":
                continue
            for vol in (pod.get("spec") or {}).get("volumes") or ():
                if (vol.get("persistentVolumeClaim") or {}).get("claimName") == claim:
                    self.enqueue(("Pod", ns, pod["metadata"]["name"]))
                    break
