"""Enterprise RAG's GMC, simulated: the model servers come back after a restore.

Backups skip the model-serving workloads on purpose (the default orSelectors exclude
`app.kubernetes.io/instance` torchserve_embedding, vllm, ...): in a real Enterprise RAG
cluster the `gmc` controller (Deployment `gmc-controller` in `system`) renders them
from its GMConnector and recreates them whenever they are missing. The sandbox has no
GMConnector, so it remembers the model-serving Deployments and Services it saw at
start and recreates any that is missing while `gmc-controller` has a ready replica.
Without this a restore in the sandbox would never bring the model servers back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .apiserver.objects import clone
from .workloads_kube import Kube, Obj

#: `app.kubernetes.io/instance` values of model servers (the playbook's orSelectors).
MODEL_SERVING_INSTANCES = frozenset(
    {"torchserve_embedding", "vllm_embedding", "torchserve_reranking", "vllm", "vllm-gaudi"}
)
GMC_NAMESPACE, GMC_DEPLOYMENT = "system", "gmc-controller"
_INSTANCE = "app.kubernetes.io/instance"
_KINDS = ("Deployment", "Service")

Key = tuple[str, str, str]  # (kind, namespace, name)


class GmcSimulation:
    """Remembers the model-serving objects and recreates them while GMC is up."""

    def __init__(self, kube: Kube, state: Mapping[str, Any] | None = None) -> None:
        self.kube = kube
        self._manifests: dict[Key, Obj] = {}
        for manifest in (state or {}).get("manifests") or ():
            self._remember(manifest)

    def capture(self) -> None:
        """Remember the model-serving Deployments and Services present now."""
        k = self.kube.kinds
        for rt in (k.deployments, k.services):
            for obj in self.kube.list(rt):
                labels = obj["metadata"].get("labels") or {}
                if labels.get(_INSTANCE) in MODEL_SERVING_INSTANCES:
                    self._remember(obj)

    def _remember(self, obj: Obj) -> None:
        m = obj["metadata"]
        key = (obj["kind"], m.get("namespace", ""), m["name"])
        if obj["kind"] not in _KINDS or key in self._manifests:
            return
        meta: Obj = {"name": m["name"], "namespace": m.get("namespace", "")}
        for field in ("labels", "annotations"):
            if m.get(field):
                meta[field] = clone(m[field])
        (meta.get("annotations") or {}).pop("deployment.kubernetes.io/revision", None)
        spec = clone(obj.get("spec") or {})
        if obj["kind"] == "Service" and spec.get("clusterIP") != "None":
            spec.pop("clusterIP", None)  # a recreated Service gets a new address
            spec.pop("clusterIPs", None)
        self._manifests[key] = {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": obj["kind"],
            "metadata": meta,
            "spec": spec,
        }

    def concerns(self, kind: str, namespace: str, name: str) -> bool:
        """Whether an event on this object may call for a GMC pass."""
        if kind == "Deployment" and (namespace, name) == (GMC_NAMESPACE, GMC_DEPLOYMENT):
            return True
        return (kind, namespace, name) in self._manifests

    def reconcile(self, _namespace: str = "", _name: str = "") -> float | None:
        k = self.kube.kinds
        gmc = self.kube.get(k.deployments, GMC_NAMESPACE, GMC_DEPLOYMENT)
        if gmc is None or gmc["metadata"].get("deletionTimestamp"):
            return None
        if int((gmc.get("status") or {}).get("readyReplicas") or 0) < 1:
            return None
        for (kind, ns, name), manifest in self._manifests.items():
            rt = k.deployments if kind == "Deployment" else k.services
            if self.kube.get(rt, ns, name) is not None:
                continue
            namespace = self.kube.get(k.namespaces, "", ns)
            if namespace is None or namespace["metadata"].get("deletionTimestamp"):
                continue  # GMC cannot create into a missing namespace either
            self.kube.create(rt, ns, clone(manifest))
        return None

    def dump(self) -> dict[str, Any]:
        """What to keep in a sandbox snapshot so a restarted sandbox still knows them."""
        return {"manifests": [clone(m) for m in self._manifests.values()]}
