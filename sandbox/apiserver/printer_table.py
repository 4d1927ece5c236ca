"""The table of built-in printers: which columns and rows each kind gets from the server.

Pairs the column definitions of k8s.io/kubernetes pkg/printers/internalversion
printers.go (v1.33) with the row functions of kind_printers.py and printers.py, keyed by
(group, kind). Kinds without a printer there (Role, ClusterRole,
CustomResourceDefinition) get rest.defaultTableConvertor's `NAME  CREATED AT`, as on a
real server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import kind_printers as k
from .printers import (
    AGE,
    CONTAINERS_DESC,
    CREATED_AT,
    IMAGES_DESC,
    NAME,
    NAME_DESC,
    POD_COLUMNS,
    Column,
    Obj,
    col,
    created_at,
    dig,
    dig_list,
    format_selector,
    pod_cells,
)

Row = Callable[[Obj, float], list[Any]]


def _simple(*cells: Callable[[Obj], Any]) -> Row:
    """A row of a few one-field cells followed by AGE."""

    def row(o: Obj, now: float) -> list[Any]:
        return [*(c(o) for c in cells), k.age(o, now)]

    return row


def _cols(*names: str) -> list[Column]:
    """Plain string columns, or `Name:type` for other types."""
    return [col(n.partition(":")[0], n.partition(":")[2] or "string") for n in names]


_WIDE = [
    col("Containers", desc=CONTAINERS_DESC, priority=1),
    col("Images", desc=IMAGES_DESC, priority=1),
]
_SELECTOR = col("Selector", desc="A label query over pods.", priority=1)
_WORKLOAD = [AGE, *_WIDE, _SELECTOR]
_SVC_SELECTOR = col("Selector", priority=1)
_EXPANSION = col("AllowVolumeExpansion")
_READY = col("Ready", desc="Number of the pod with ready state")
_BINDING = [
    NAME,
    col("Role", desc="RoleRef can reference a Role or a ClusterRole."),
    AGE,
    *(col(n, desc=f"{n} in the roleBinding", priority=1) for n in ("Users", "Groups")),
    col("ServiceAccounts", desc="ServiceAccounts in the roleBinding", priority=1),
]
_WEBHOOKS_DESC = "Webhooks indicates the number of webhooks registered in this configuration"
_WEBHOOKS = (
    [NAME, col("Webhooks", "integer", _WEBHOOKS_DESC), AGE],
    _simple(lambda o: len(dig_list(o, "webhooks"))),
)
_DEPLOY_SELECTOR = (
    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the "
    "ones affected by this deployment. It must match the pod template's labels."
)
_EVENT_COLUMNS = [
    col("Last Seen", desc="The time at which the most recent occurrence was recorded."),
    *_cols("Type", "Reason", "Object"),
    col("Subobject", priority=1),
    col("Source", priority=1),
    col("Message"),
    col("First Seen", priority=1),
    col("Count", priority=1),
    col("Name", desc=NAME_DESC, priority=1, fmt="name"),
]

Printer = tuple[list[Column], Row]
PRINTERS: dict[tuple[str, str], Printer] = {
    ("apps", "Deployment"): (
        [
            NAME,
            _READY,
            col("Up-to-date", desc="Total number of non-terminating pods targeted by this "
                "deployment that have the desired template spec."),
            col("Available", desc="Total number of available non-terminating pods (ready for at "
                "least minReadySeconds) targeted by this deployment."),
            AGE,
            *_WIDE,
            col("Selector", desc=_DEPLOY_SELECTOR, priority=1),
        ],
        k.deployment,
    ),
    ("apps", "ReplicaSet"): (
        [NAME, *_cols("Desired:integer", "Current:integer", "Ready:integer"), *_WORKLOAD],
        k.replicaset,
    ),
    ("apps", "StatefulSet"): ([NAME, _READY, AGE, *_WIDE], k.statefulset),
    ("apps", "DaemonSet"): (
        [
            NAME,
            *_cols("Desired:integer", "Current:integer", "Ready:integer"),
            *_cols("Up-to-date:integer", "Available:integer", "Node Selector"),
            AGE,
            *_WIDE,
            _SELECTOR,
        ],
        k.daemonset,
    ),
    ("batch", "Job"): (
        [NAME, *_cols("Status", "Completions", "Duration"), AGE, *_WIDE, _SELECTOR],
        k.job,
    ),
    ("batch", "CronJob"): (
        [
            NAME,
            *_cols("Schedule", "Timezone", "Suspend:boolean", "Active:integer", "Last Schedule"),
            AGE,
            *_WIDE,
            _SELECTOR,
        ],
        k.cronjob,
    ),
    ("", "Service"): (
        [NAME, *_cols("Type", "Cluster-IP", "External-IP", "Port(s)"), AGE, _SVC_SELECTOR],
        k.service,
    ),
    ("", "ConfigMap"): (
        [NAME, col("Data", desc="Data contains the configuration data."), AGE],
        _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
    ),
    ("", "Secret"): (
        [NAME, col("Type", desc="Used to facilitate programmatic handling of secret data."),
         col("Data", desc="Data contains the secret data."), AGE],
        _simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {})),
    ),
    ("", "Namespace"): (
        [NAME, col("Status", desc="The status of the namespace"), AGE],
        _simple(lambda o: dig(o, "status", "phase") or ""),
    ),
    ("", "ServiceAccount"): ([NAME, AGE], _simple()),
    ("", "Endpoints"): ([NAME, col("Endpoints"), AGE], _simple(k.endpoints)),
    ("", "PersistentVolumeClaim"): (
        [
            NAME,
            *_cols("Status", "Volume", "Capacity", "Access Modes", "StorageClass"),
            col("VolumeAttributesClass"),
            AGE,
            col("VolumeMode", priority=1),
        ],
        k.pvc,
    ),
    ("", "PersistentVolume"): (
        [
            NAME,
            *_cols("Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim"),
            *_cols("StorageClass", "VolumeAttributesClass", "Reason"),
            AGE,
            col("VolumeMode", priority=1),
        ],
        k.pv,
    ),
    ("", "Event"): (_EVENT_COLUMNS, k.event),
    ("", "Node"): (
        [
            NAME,
            col("Status", desc="The status of the node"),
            col("Roles", desc="The roles of the node"),
            AGE,
            col("Version"),
            *(col(n, priority=1) for n in ("Internal-IP", "External-IP", "OS-Image")),
            *(col(n, priority=1) for n in ("Kernel-Version", "Container-Runtime")),
        ],
        k.node,
    ),
    ("coordination.k8s.io", "Lease"): (
        [NAME, col("Holder"), AGE],
        _simple(lambda o: dig(o, "spec", "holderIdentity") or ""),
    ),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_BINDING, k.binding),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (_BINDING, k.binding),
    ("storage.k8s.io", "StorageClass"): (
        [NAME, *_cols("Provisioner", "ReclaimPolicy", "VolumeBindingMode"), _EXPANSION, AGE],
        k.storageclass,
    ),
    ("networking.k8s.io", "NetworkPolicy"): (
        [NAME, col("Pod-Selector"), AGE],
        _simple(lambda o: format_selector(dig(o, "spec", "podSelector"))),
    ),
    ("networking.k8s.io", "Ingress"): (
        [NAME, *_cols("Class", "Hosts", "Address", "Ports"), AGE],
        k.ingress,
    ),
    ("policy", "PodDisruptionBudget"): (
        [NAME, *_cols("Min Available", "Max Unavailable", "Allowed Disruptions:integer"), AGE],
        k.pdb,
    ),
    ("autoscaling", "HorizontalPodAutoscaler"): (
        [NAME, *_cols("Reference", "Targets", "MinPods", "MaxPods", "Replicas"), AGE],
        k.hpa,
    ),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _WEBHOOKS,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _WEBHOOKS,
}
# Row functions that return the NAME cell themselves (the others get it prepended).
_FULL_ROWS = {"Event", "StorageClass"}
# Roles, ClusterRoles and kinds without a printer get rest.defaultTableConvertor's columns.
DEFAULT_COLUMNS = [NAME, CREATED_AT]


def builtin_columns(group: str, kind: str) -> list[Column]:
    if (group, kind) == ("", "Pod"):
        return POD_COLUMNS
    printer = PRINTERS.get((group, kind))
    return printer[0] if printer else DEFAULT_COLUMNS


def builtin_cells(group: str, kind: str, obj: Obj, now: float | None = None) -> list[Any]:
    now = time.time() if now is None else now
    if (group, kind) == ("", "Pod"):
        return pod_cells(obj, now)
    printer = PRINTERS.get((group, kind))
    if printer is None:
        return [dig(obj, "metadata", "name") or "", created_at(obj)]
    cells = printer[1](obj, now)
    return cells if kind in _FULL_ROWS else [dig(obj, "metadata", "name") or "", *cells]
