"""Find the resource behind a bare Kind, as the playbook's cleanup entries name them.

Enterprise RAG's cleanup list says `Secret/tls-secret` or `Deployment/selector: ...`:
a Kind without an apiVersion (the playbook hands it to `kubernetes.core.k8s`, which
looks it up in discovery). `k8s.resources.resolve` needs the apiVersion, so this module
answers "which resource serves Kind X?" the same way: the built-in table first, then
the discovery documents (`/api/v1`, then the preferred version of every group of
`/apis`), cached on the cluster handle.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as kclient

from .client import Cluster
from .errors import ClusterError
from .resources import _KNOWN, Resource

#: Kinds that are cluster-scoped in every Kubernetes release (for planning without I/O).
CLUSTER_SCOPED_KINDS = frozenset(
    {r.kind for r in _KNOWN.values() if not r.namespaced}
    | {
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
        "IngressClass", "PriorityClass", "PodSecurityPolicy", "CSIDriver", "VolumeSnapshotClass",
        "VolumeSnapshotContent", "Node",
    }
)  # fmt: skip


def _table_lookup(kind: str) -> Resource | None:
    for res in _KNOWN.values():
        if res.kind == kind:
            return res
    return None


def resolve_kind(cluster: Cluster, kind: str) -> Resource:
    """The resource serving `kind` (core group first, then groups in discovery order)."""
    known = _table_lookup(kind)
    if known is not None:
        return known
    cache: dict[str, Resource] = cluster._apis.setdefault("kinds", {})
    if kind in cache:
        return cache[kind]
    core = cluster.raw("discover the core API", cluster.core.get_api_resources)
    found = _find(core, "", "v1", kind)
    if found is None:
        apis = kclient.ApisApi(cluster.api_client)
        groups = cluster.raw("discover API groups", apis.get_api_versions)
        for group in groups.get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("version")
            if not preferred:
                continue
            name = str(group.get("name", ""))
            listing = cluster.raw(
                f"discover {name}/{preferred}", cluster.custom.get_api_resources, name, preferred
            )
            found = _find(listing, name, str(preferred), kind)
            if found is not None:
                break
    if found is None:
        raise ClusterError(f"the cluster serves no resource of kind {kind}")
    cache[kind] = found
    return found


def _find(listing: dict[str, Any], group: str, version: str, kind: str) -> Resource | None:
    for entry in listing.get("resources") or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("kind") == kind and "/" not in str(entry.get("name", "")):
            return Resource(group, version, str(entry["name"]), kind, bool(entry.get("namespaced")))
    return None
