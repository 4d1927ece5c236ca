"""The resource types the sandbox API server serves, built-in and CRD-defined.

Discovery, URL routing, RBAC and kubectl's printing all key on the same facts about a
resource (group, version, plural, kind, scope, subresources), so they live in one table.
CRDs add rows at run time when a CustomResourceDefinition is created, as in a real cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    # The schema of a CRD version (openAPIV3Schema), None for built-ins.
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    # Built-ins with an empty resourceVersion on PUT update unconditionally; CRs refuse.
    unconditional_update: bool = True
    verbs: tuple[str, ...] = ALL_VERBS
    is_crd: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: (group, plural). One version per group here, as in our seed."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """`plural.group` as the API server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _b(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    *,
    short: tuple[str, ...] = (),
    status: bool = False,
    categories: tuple[str, ...] = (),
) -> ResourceType:
    singular = kind.lower()
    return ResourceType(
        group, version, plural, kind, namespaced, singular, short, categories, status
    )


_ALL = ("all",)

BUILTINS: tuple[ResourceType, ...] = (
    _b("", "v1", "namespaces", "Namespace", False, short=("ns",), status=True),
    _b("", "v1", "pods", "Pod", short=("po",), status=True, categories=_ALL),
    _b("", "v1", "services", "Service", short=("svc",), status=True, categories=_ALL),
    _b("", "v1", "secrets", "Secret"),
    _b("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _b("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _b("", "v1", "persistentvolumes", "PersistentVolume", False, short=("pv",), status=True),
    _b("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _b("", "v1", "events", "Event", short=("ev",)),
    _b("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _b("", "v1", "nodes", "Node", False, short=("no",), status=True),
    _b("apps", "v1", "deployments", "Deployment", short=("deploy",), status=True, categories=_ALL),
    _b("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), status=True, categories=_ALL),
    _b("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), status=True, categories=_ALL),
    _b("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), status=True, categories=_ALL),
    _b("batch", "v1", "jobs", "Job", status=True, categories=_ALL),
    _b("batch", "v1", "cronjobs", "CronJob", short=("cj",), status=True, categories=_ALL),
    _b("coordination.k8s.io", "v1", "leases", "Lease"),
    _b("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short=("crd", "crds"),
        status=True,
    ),
    _b("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, short=("sc",)),
    _b("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _b("networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), status=True),
    _b("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",), status=True),
    _b(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short=("hpa",),
        status=True,
    ),
    _b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
    ),
    _b(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
    ),
)

# Group versions a real cluster serves even when we hold no type of them in the table;
# listed so discovery looks like a cluster's. Kept small on purpose.
PREFERRED_ORDER = ("", "apps", "batch", "coordination.k8s.io", "rbac.authorization.k8s.io")


def crd_resource_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a CRD object as resource types (storage version first)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out: list[ResourceType] = []
    versions = sorted(spec.get("versions") or [], key=lambda v: not v.get("storage"))
    for v in versions:
        if not v.get("served", True):
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec.get("group", ""),
                version=v["name"],
                plural=names.get("plural", ""),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names.get("kind", "").lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in (v.get("subresources") or {}),
                schema=schema,
                printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
                unconditional_update=False,
                is_crd=True,
            )
        )
    return out


class Registry:
    """Thread-safe lookup of resource types by URL parts, kind or name."""

    def __init__(self, builtins: Iterable[ResourceType] = BUILTINS) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in builtins:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def add_crd(self, crd: Mapping[str, Any]) -> list[ResourceType]:
        types = crd_resource_types(crd)
        with self._lock:
            for rt in types:
                self._types[(rt.group, rt.version, rt.plural)] = rt
        return types

    def remove_crd(self, crd: Mapping[str, Any]) -> None:
        spec = crd.get("spec") or {}
        plural = (spec.get("names") or {}).get("plural")
        with self._lock:
            for key in [k for k in self._types if k[0] == spec.get("group") and k[2] == plural]:
                del self._types[key]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if rt.group == group and rt.version == version and rt.kind == kind:
                    return rt
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, in a stable, cluster-like order."""
        out: dict[str, list[str]] = {}
        for rt in self.all():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out
