"""Kind-agnostic object access: get, list, create, patch, delete any resource as dicts.

A restore deletes whatever kinds a Helm release manifest names, so the service layer
cannot be written against one typed API per kind. Named groups go through
CustomObjectsApi (it addresses any `/apis/<group>/<version>` path); the core group goes
through CoreV1Api's `<verb>_namespaced_<kind>` methods. Both exist unchanged in client
33.x and 37.x. Unknown kinds are resolved through discovery and cached per handle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .client import Cluster
from .errors import ClusterError, NotFound


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _r(api_version: str, plural: str, kind: str, namespaced: bool = True) -> Resource:
    group, _, version = api_version.rpartition("/")
    return Resource(group, version, plural, kind, namespaced)


BACKUP = _r("velero.io/v1", "backups", "Backup")
RESTORE = _r("velero.io/v1", "restores", "Restore")
DOWNLOAD_REQUEST = _r("velero.io/v1", "downloadrequests", "DownloadRequest")
DELETE_BACKUP_REQUEST = _r("velero.io/v1", "deletebackuprequests", "DeleteBackupRequest")
BSL = _r("velero.io/v1", "backupstoragelocations", "BackupStorageLocation")
SCHEDULE = _r("velero.io/v1", "schedules", "Schedule")
POD = _r("v1", "pods", "Pod")
PVC = _r("v1", "persistentvolumeclaims", "PersistentVolumeClaim")
SECRET = _r("v1", "secrets", "Secret")
CONFIGMAP = _r("v1", "configmaps", "ConfigMap")
NAMESPACE = _r("v1", "namespaces", "Namespace", False)
LEASE = _r("coordination.k8s.io/v1", "leases", "Lease")
CRD = _r("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", False)
VOLUME_SNAPSHOT_CLASS = _r("snapshot.storage.k8s.io/v1", "volumesnapshotclasses", "VolumeSnapshotClass", False)
DEPLOYMENT = _r("apps/v1", "deployments", "Deployment")

# Kinds whose plural is not simply lower(kind)+"s", and cluster-scoped ones.
_KNOWN: dict[tuple[str, str], Resource] = {
    (r.api_version, r.kind): r
    for r in (
        BACKUP, RESTORE, DOWNLOAD_REQUEST, DELETE_BACKUP_REQUEST, BSL, SCHEDULE, POD, PVC,
        SECRET, CONFIGMAP, NAMESPACE, LEASE, CRD, VOLUME_SNAPSHOT_CLASS, DEPLOYMENT,
        _r("v1", "services", "Service"),
        _r("v1", "serviceaccounts", "ServiceAccount"),
        _r("v1", "endpoints", "Endpoints"),
        _r("v1", "persistentvolumes", "PersistentVolume", False),
        _r("apps/v1", "statefulsets", "StatefulSet"),
        _r("apps/v1", "replicasets", "ReplicaSet"),
        _r("apps/v1", "daemonsets", "DaemonSet"),
        _r("batch/v1", "jobs", "Job"),
        _r("batch/v1", "cronjobs", "CronJob"),
        _r("networking.k8s.io/v1", "ingresses", "Ingress"),
        _r("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"),
        _r("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget"),
        _r("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
        _r("rbac.authorization.k8s.io/v1", "roles", "Role"),
        _r("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
        _r("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
        _r("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
        _r("storage.k8s.io/v1", "storageclasses", "StorageClass", False),
    )
}


def _snake(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def resolve(cluster: Cluster, api_version: str, kind: str) -> Resource:
    """The resource serving apiVersion/kind: from the table, else from discovery."""
    known = _KNOWN.get((api_version, kind))
    if known is not None:
        return known
    cache: dict[tuple[str, str], Resource] = cluster._apis.setdefault("discovery", {})
    if (api_version, kind) in cache:
        return cache[(api_version, kind)]
    group, _, version = api_version.rpartition("/")
    what = f"discover {api_version} {kind}"
    if group:
        listing = cluster.raw(what, cluster.custom.get_api_resources, group, version)
    else:
        listing = cluster.raw(what, cluster.core.get_api_resources)
    for entry in listing.get("resources") or []:
        if entry.get("kind") == kind and "/" not in entry.get("name", ""):
            res = Resource(group, version, entry["name"], kind, bool(entry.get("namespaced")))
            cache[(api_version, kind)] = res
            return res
    raise ClusterError(f"the cluster does not serve {kind} in {api_version}")


def _core_method(cluster: Cluster, verb: str, res: Resource) -> Any:
    scope = "namespaced_" if res.namespaced else ""
    if verb == "list" and not res.namespaced:
        name = f"list_{_snake(res.kind)}"
    else:
        name = f"{verb}_{scope}{_snake(res.kind)}"
    fn = getattr(cluster.core, name, None)
    if fn is None:
        raise ClusterError(f"core kind {res.kind} is not supported by this client")
    return fn


def _where(res: Resource, namespace: str | None, name: str = "") -> str:
    target = f"{res.qualified} {namespace}/{name}" if namespace else f"{res.qualified} {name}"
    return target.strip()


def get(cluster: Cluster, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
    what = f"read {_where(res, namespace, name)}"
    if res.group:
        if res.namespaced:
            return cluster.raw(what, cluster.custom.get_namespaced_custom_object, res.group, res.version, namespace, res.plural, name)
        return cluster.raw(what, cluster.custom.get_cluster_custom_object, res.group, res.version, res.plural, name)
    fn = _core_method(cluster, "read", res)
    return cluster.raw(what, fn, name, namespace) if res.namespaced else cluster.raw(what, fn, name)


def try_get(cluster: Cluster, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        return get(cluster, res, namespace, name)
    except NotFound:
        return None


def list_page(
    cluster: Cluster,
    res: Resource,
    namespace: str | None,
    *,
    label_selector: str = "",
    field_selector: str = "",
    limit: int = 500,
    continue_token: str = "",
) -> dict[str, Any]:
    kw: dict[str, Any] = {"limit": limit}
    if label_selector:
        kw["label_selector"] = label_selector
    if field_selector:
        kw["field_selector"] = field_selector
    if continue_token:
        kw["_continue"] = continue_token
    what = f"list {res.qualified}" + (f" in {namespace}" if namespace else "")
    if res.group:
        if res.namespaced and namespace:
            return cluster.raw(what, cluster.custom.list_namespaced_custom_object, res.group, res.version, namespace, res.plural, **kw)
        return cluster.raw(what, cluster.custom.list_cluster_custom_object, res.group, res.version, res.plural, **kw)
    if res.namespaced and namespace:
        return cluster.raw(what, _core_method(cluster, "list", res), namespace, **kw)
    fn = getattr(cluster.core, f"list_{_snake(res.kind)}_for_all_namespaces" if res.namespaced else f"list_{_snake(res.kind)}")
    return cluster.raw(what, fn, **kw)


def list_all(
    cluster: Cluster,
    res: Resource,
    namespace: str | None,
    *,
    label_selector: str = "",
    field_selector: str = "",
    page_size: int = 500,
) -> tuple[list[dict[str, Any]], str]:
    """Every matching object, page by page (limit/continue). Returns (items, list RV)."""
    items: list[dict[str, Any]] = []
    token = ""
    rv = ""
    while True:
        page = list_page(cluster, res, namespace, label_selector=label_selector, field_selector=field_selector, limit=page_size, continue_token=token)
        items.extend(page.get("items") or [])
        meta = page.get("metadata") or {}
        rv = rv or str(meta.get("resourceVersion", ""))
        token = meta.get("continue") or ""
        if not token:
            return items, str(meta.get("resourceVersion", rv))


def create(cluster: Cluster, res: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
    name = (body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get("generateName", "")
    what = f"create {_where(res, namespace, name)}"
    if res.group:
        if res.namespaced:
            return cluster.raw(what, cluster.custom.create_namespaced_custom_object, res.group, res.version, namespace, res.plural, body)
        return cluster.raw(what, cluster.custom.create_cluster_custom_object, res.group, res.version, res.plural, body)
    fn = _core_method(cluster, "create", res)
    return cluster.raw(what, fn, namespace, body) if res.namespaced else cluster.raw(what, fn, body)


def replace(cluster: Cluster, res: Resource, namespace: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT with the body's resourceVersion: Conflict if someone wrote in between."""
    what = f"update {_where(res, namespace, name)}"
    if res.group:
        if res.namespaced:
            return cluster.raw(what, cluster.custom.replace_namespaced_custom_object, res.group, res.version, namespace, res.plural, name, body)
        return cluster.raw(what, cluster.custom.replace_cluster_custom_object, res.group, res.version, res.plural, name, body)
    fn = _core_method(cluster, "replace", res)
    return cluster.raw(what, fn, name, namespace, body) if res.namespaced else cluster.raw(what, fn, name, body)


def merge_patch(cluster: Cluster, res: Resource, namespace: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch for custom resources; strategic merge (same effect on maps) for core."""
    what = f"patch {_where(res, namespace, name)}"
    if res.group:
        if res.namespaced:
            return cluster.raw(what, cluster.custom.patch_namespaced_custom_object, res.group, res.version, namespace, res.plural, name, patch)
        return cluster.raw(what, cluster.custom.patch_cluster_custom_object, res.group, res.version, res.plural, name, patch)
    fn = _core_method(cluster, "patch", res)
    return cluster.raw(what, fn, name, namespace, patch) if res.namespaced else cluster.raw(what, fn, name, patch)


def delete(
    cluster: Cluster,
    res: Resource,
    namespace: str | None,
    name: str,
    *,
    propagation: str = "Background",
    missing_ok: bool = True,
) -> bool:
    """Delete; returns False when it was already gone (404 is success, as in Helm)."""
    what = f"delete {_where(res, namespace, name)}"
    body = {"propagationPolicy": propagation}
    try:
        if res.group:
            if res.namespaced:
                cluster.raw(what, cluster.custom.delete_namespaced_custom_object, res.group, res.version, namespace, res.plural, name, body=body)
            else:
                cluster.raw(what, cluster.custom.delete_cluster_custom_object, res.group, res.version, res.plural, name, body=body)
        else:
            fn = _core_method(cluster, "delete", res)
            if res.namespaced:
                cluster.raw(what, fn, name, namespace, body=body)
            else:
                cluster.raw(what, fn, name, body=body)
    except NotFound:
        if missing_ok:
            return False
        raise
    return True
