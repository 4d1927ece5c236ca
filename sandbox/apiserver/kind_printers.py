"""Printers of the built-in kinds other than pods: what `kubectl get <kind>` shows.

The column definitions and cells of k8s.io/kubernetes pkg/printers/internalversion
printers.go (v1.33) for every other kind the sandbox serves, keyed by (group, kind);
kinds without a printer there (Role, ClusterRole, CustomResourceDefinition) get the
generic `NAME  CREATED AT` of rest.defaultTableConvertor, as on a real server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .objects import parse_rfc3339
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
    container_cells,
    created_at,
    dig,
    dig_list,
    format_labels,
    format_selector,
    human_duration,
    pod_cells,
    selector_string,
    since,
)

_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))


def _access_modes(modes: Any) -> str:
    return ",".join(short for mode, short in _ACCESS_MODES if mode in (modes or ()))


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _workload(o: Obj) -> list[Any]:
    return container_cells(dig(o, "spec", "template", "spec"))


def _deployment(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    ready = f"{_int(st.get('readyReplicas'))}/{_int(dig(o, 'spec', 'replicas'))}"
    return [ready, _int(st.get("updatedReplicas")), _int(st.get("availableReplicas")), since(dig(o, "metadata", "creationTimestamp"), now), *_workload(o), selector_string(dig(o, "spec", "selector"))]


def _replicaset(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    return [_int(dig(o, "spec", "replicas")), _int(st.get("replicas")), _int(st.get("readyReplicas")), since(dig(o, "metadata", "creationTimestamp"), now), *_workload(o), format_selector(dig(o, "spec", "selector"))]


def _statefulset(o: Obj, now: float) -> list[Any]:
    return [f"{_int(dig(o, 'status', 'readyReplicas'))}/{_int(dig(o, 'spec', 'replicas'))}", since(dig(o, "metadata", "creationTimestamp"), now), *_workload(o)]


def _daemonset(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    counts = [_int(st.get(k)) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled", "numberAvailable")]
    return [*counts, format_labels(dig(o, "spec", "template", "spec", "nodeSelector")), since(dig(o, "metadata", "creationTimestamp"), now), *_workload(o), format_selector(dig(o, "spec", "selector"))]


def _job(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    ok = _int(st.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{ok}/{spec['completions']}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{ok}/1 of {spec['parallelism']}"
    else:
        completions = f"{ok}/1"
    start, end = st.get("startTime"), st.get("completionTime")
    took = "" if not start else human_duration((parse_rfc3339(end) if end else now) - parse_rfc3339(start))
    conds = dig_list(st, "conditions")
    first = {c.get("type"): c.get("status") == "True" for c in reversed(conds)}
    if first.get("Complete"):
        state = "Complete"
    elif first.get("Failed"):
        state = "Failed"
    elif dig(o, "metadata", "deletionTimestamp"):
        state = "Terminating"
    else:
        state = "Suspended" if first.get("Suspended") else "FailureTarget" if first.get("FailureTarget") else "Running"
    return [state, completions, took, since(dig(o, "metadata", "creationTimestamp"), now), *_workload(o), format_selector(spec.get("selector"))]


def _cronjob(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    last = since(st["lastScheduleTime"], now) if st.get("lastScheduleTime") else "<none>"
    tmpl = dig(spec, "jobTemplate", "spec")
    return [spec.get("schedule", ""), spec.get("timeZone") or "<none>", bool(spec.get("suspend")), len(dig_list(st, "active")), last, since(dig(o, "metadata", "creationTimestamp"), now), *container_cells(dig(tmpl, "template", "spec")), format_selector(dig(tmpl, "selector"))]


def _service(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    svc_type = spec.get("type", "ClusterIP")
    cluster_ip = (dig_list(spec, "clusterIPs") or [spec.get("clusterIP")])[0] or "<none>"
    external = ",".join(dig_list(spec, "externalIPs"))
    if svc_type == "LoadBalancer":
        lb = ",".join(i.get("ip") or i.get("hostname", "") for i in dig_list(o, "status", "loadBalancer", "ingress"))
        external = ",".join(x for x in (lb, external) if x) or "<pending>"
    elif svc_type == "ExternalName":
        external = spec.get("externalName", "")
    else:
        external = external or "<none>"
    ports = ",".join(
        f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort") else f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        for p in dig_list(spec, "ports")
    )
    return [svc_type, cluster_ip, external, ports or "<none>", since(dig(o, "metadata", "creationTimestamp"), now), format_labels(spec.get("selector"))]


def _pvc(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    phase = "Terminating" if dig(o, "metadata", "deletionTimestamp") else st.get("phase", "")
    bound = bool(spec.get("volumeName"))
    capacity = (dig(st, "capacity", "storage") or "") if bound else ""
    klass = dig(o, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class") or spec.get("storageClassName") or ""
    return [phase, spec.get("volumeName", ""), capacity, _access_modes(st.get("accessModes")) if bound else "", klass, spec.get("volumeAttributesClassName") or "<unset>", since(dig(o, "metadata", "creationTimestamp"), now), spec.get("volumeMode") or "<unset>"]


def _pv(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    claim = spec.get("claimRef")
    phase = "Terminating" if dig(o, "metadata", "deletionTimestamp") else st.get("phase", "")
    klass = dig(o, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class") or spec.get("storageClassName") or ""
    return [dig(spec, "capacity", "storage") or "0", _access_modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""), phase, f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "", klass, spec.get("volumeAttributesClassName") or "<unset>", st.get("reason", ""), since(dig(o, "metadata", "creationTimestamp"), now), spec.get("volumeMode") or "<unset>"]


def _event(o: Obj, now: float) -> list[Any]:
    first = since(o.get("firstTimestamp"), now) if o.get("firstTimestamp") else since(o.get("eventTime"), now)
    last = since(o.get("lastTimestamp"), now) if o.get("lastTimestamp") else first
    count = _int(o.get("count")) or 1
    if o.get("series"):
        last, count = since(dig(o, "series", "lastObservedTime"), now), _int(dig(o, "series", "count"))
    inv = o.get("involvedObject") or {}
    target = f"{inv.get('kind', '').lower()}/{inv['name']}" if inv.get("name") else inv.get("kind", "").lower()
    component = dig(o, "source", "component") or o.get("reportingController") or ""
    host = dig(o, "source", "host") or o.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [last, o.get("type", ""), o.get("reason", ""), target, inv.get("fieldPath", ""), source, str(o.get("message", "")).strip(), first, count, dig(o, "metadata", "name")]


def _node(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    ready = next((c for c in dig_list(st, "conditions") if c.get("type") == "Ready"), None)
    state = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"]
    if dig(o, "spec", "unschedulable"):
        state.append("SchedulingDisabled")
    labels = dig(o, "metadata", "labels") or {}
    roles = sorted({k.removeprefix("node-role.kubernetes.io/") for k in labels if k.startswith("node-role.kubernetes.io/") and k != "node-role.kubernetes.io/"} | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set()))
    addr = {a.get("type"): a.get("address") for a in reversed(dig_list(st, "addresses"))}
    info = st.get("nodeInfo") or {}
    return [",".join(state), ",".join(roles) or "<none>", since(dig(o, "metadata", "creationTimestamp"), now), info.get("kubeletVersion", ""), addr.get("InternalIP") or "<none>", addr.get("ExternalIP") or "<none>", info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


def _binding(o: Obj, now: float) -> list[Any]:
    ref = o.get("roleRef") or {}
    subjects = dig_list(o, "subjects")
    pick = lambda kind: ", ".join((f"{s.get('namespace', '')}/{s.get('name', '')}" if kind == "ServiceAccount" else s.get("name", "")) for s in subjects if s.get("kind") == kind)  # noqa: E731
    return [f"{ref.get('kind', '')}/{ref.get('name', '')}", since(dig(o, "metadata", "creationTimestamp"), now), pick("User"), pick("Group"), pick("ServiceAccount")]


def _storageclass(o: Obj, now: float) -> list[Any]:
    return [o.get("provisioner", ""), o.get("reclaimPolicy") or "Delete", o.get("volumeBindingMode") or "Immediate", bool(o.get("allowVolumeExpansion")), since(dig(o, "metadata", "creationTimestamp"), now)]


def _ingress(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    rules = dig_list(spec, "rules")
    hosts = [r["host"] for r in rules if r.get("host")][:3]
    host_text = ",".join(hosts) or "*"
    if len(rules) > 3 and hosts:
        host_text += f" + {len(rules) - 3} more..."
    lb = ",".join(i.get("ip") or i.get("hostname", "") for i in dig_list(o, "status", "loadBalancer", "ingress"))
    return [spec.get("ingressClassName") or "<none>", host_text, lb, "80, 443" if spec.get("tls") else "80", since(dig(o, "metadata", "creationTimestamp"), now)]


def _pdb(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    return [str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A", str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A", _int(dig(o, "status", "disruptionsAllowed")), since(dig(o, "metadata", "creationTimestamp"), now)]


def _hpa(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    targets = []
    for i, m in enumerate(dig_list(spec, "metrics")[:2]):
        res = m.get("resource") or {}
        cur = dig(o, "status", "currentMetrics", i, "resource", "current", "averageUtilization")
        want = dig(res, "target", "averageUtilization")
        targets.append(f"{res.get('name', '')}: {f'{cur}%' if cur is not None else '<unknown>'}/{f'{want}%' if want is not None else '<auto>'}" if m.get("type") == "Resource" else "<unknown type>")
    more = len(dig_list(spec, "metrics")) - 2
    text = ", ".join(targets) + (f" + {more} more..." if more > 0 else "") if targets else "<none>"
    min_pods = str(spec["minReplicas"]) if spec.get("minReplicas") is not None else "<unset>"
    return [f"{ref.get('kind', '')}/{ref.get('name', '')}", text, min_pods, _int(spec.get("maxReplicas")), _int(dig(o, "status", "currentReplicas")), since(dig(o, "metadata", "creationTimestamp"), now)]


def _simple(*cells: Callable[[Obj], Any]) -> Callable[[Obj, float], list[Any]]:
    def row(o: Obj, now: float) -> list[Any]:
        return [*(c(o) for c in cells), since(dig(o, "metadata", "creationTimestamp"), now)]

    return row


_WORKLOAD_WIDE = [col("Containers", desc=CONTAINERS_DESC, priority=1), col("Images", desc=IMAGES_DESC, priority=1)]
_SELECTOR_WIDE = col("Selector", desc="A label query over pods.", priority=1)
_BINDING_COLUMNS = [NAME, col("Role", desc="RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."), AGE, col("Users", desc="Users in the roleBinding", priority=1), col("Groups", desc="Groups in the roleBinding", priority=1), col("ServiceAccounts", desc="ServiceAccounts in the roleBinding", priority=1)]
_WEBHOOKS = ([NAME, col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"), AGE], _simple(lambda o: len(dig_list(o, "webhooks"))))

Printer = tuple[list[Column], Callable[[Obj, float], list[Any]]]
PRINTERS: dict[tuple[str, str], Printer] = {
    ("apps", "Deployment"): ([NAME, col("Ready", desc="Number of the pod with ready state"), col("Up-to-date", desc="Total number of non-terminating pods targeted by this deployment that have the desired template spec."), col("Available", desc="Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment."), AGE, *_WORKLOAD_WIDE, col("Selector", desc="Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.", priority=1)], _deployment),
    ("apps", "ReplicaSet"): ([NAME, col("Desired", "integer", "Replicas is the number of desired pods."), col("Current", "integer", "Replicas is the most recently observed number of non-terminating pods."), col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."), AGE, *_WORKLOAD_WIDE, _SELECTOR_WIDE], _replicaset),
    ("apps", "StatefulSet"): ([NAME, col("Ready", desc="Number of the pod with ready state"), AGE, *_WORKLOAD_WIDE], _statefulset),
    ("apps", "DaemonSet"): ([NAME, *(col(n, "integer") for n in ("Desired", "Current", "Ready", "Up-to-date", "Available")), col("Node Selector"), AGE, *_WORKLOAD_WIDE, _SELECTOR_WIDE], _daemonset),
    ("batch", "Job"): ([NAME, col("Status", desc="Status of the job."), col("Completions"), col("Duration", desc="Time required to complete the job."), AGE, *_WORKLOAD_WIDE, _SELECTOR_WIDE], _job),
    ("batch", "CronJob"): ([NAME, col("Schedule"), col("Timezone"), col("Suspend", "boolean"), col("Active", "integer"), col("Last Schedule"), AGE, *_WORKLOAD_WIDE, _SELECTOR_WIDE], _cronjob),
    ("", "Service"): ([NAME, col("Type"), col("Cluster-IP"), col("External-IP"), col("Port(s)"), AGE, col("Selector", priority=1)], _service),
    ("", "ConfigMap"): ([NAME, col("Data", desc="Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."), AGE], _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    ("", "Secret"): ([NAME, col("Type", desc="Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"), col("Data", desc="Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"), AGE], _simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {}))),
    ("", "Namespace"): ([NAME, col("Status", desc="The status of the namespace"), AGE], _simple(lambda o: dig(o, "status", "phase") or "")),
    ("", "ServiceAccount"): ([NAME, col("Secrets", desc="Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), AGE], _simple(lambda o: len(dig_list(o, "secrets")))),
    ("", "Endpoints"): ([NAME, col("Endpoints"), AGE], _simple(lambda o: ",".join(f"{a.get('ip')}:{p.get('port')}" if p else str(a.get("ip")) for s in dig_list(o, "subsets") for p in (dig_list(s, "ports") or [None]) for a in dig_list(s, "addresses")) or "<none>")),
    ("", "PersistentVolumeClaim"): ([NAME, col("Status"), col("Volume"), col("Capacity"), col("Access Modes"), col("StorageClass", desc="StorageClass of the pvc"), col("VolumeAttributesClass", desc="VolumeAttributesClass of the pvc"), AGE, col("VolumeMode", priority=1)], _pvc),
    ("", "PersistentVolume"): ([NAME, col("Capacity"), col("Access Modes"), col("Reclaim Policy"), col("Status"), col("Claim"), col("StorageClass", desc="StorageClass of the pv"), col("VolumeAttributesClass", desc="VolumeAttributesClass of the pv"), col("Reason"), AGE, col("VolumeMode", priority=1)], _pv),
    ("", "Event"): ([col("Last Seen", desc="The time at which the most recent occurrence of this event was recorded."), col("Type"), col("Reason"), col("Object"), col("Subobject", priority=1), col("Source", priority=1), col("Message"), col("First Seen", priority=1), col("Count", priority=1), col("Name", desc=NAME_DESC, priority=1, fmt="name")], lambda o, now: _event(o, now)),
    ("", "Node"): ([NAME, col("Status", desc="The status of the node"), col("Roles", desc="The roles of the node"), AGE, col("Version"), *(col(n, priority=1) for n in ("Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"))], _node),
    ("coordination.k8s.io", "Lease"): ([NAME, col("Holder"), AGE], _simple(lambda o: dig(o, "spec", "holderIdentity") or "")),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_BINDING_COLUMNS, _binding),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (_BINDING_COLUMNS, _binding),
    ("storage.k8s.io", "StorageClass"): ([NAME, col("Provisioner"), col("ReclaimPolicy"), col("VolumeBindingMode"), col("AllowVolumeExpansion"), AGE], _storageclass),
    ("networking.k8s.io", "NetworkPolicy"): ([NAME, col("Pod-Selector"), AGE], _simple(lambda o: format_selector(dig(o, "spec", "podSelector")))),
    ("networking.k8s.io", "Ingress"): ([NAME, col("Class"), col("Hosts"), col("Address"), col("Ports"), AGE], _ingress),
    ("policy", "PodDisruptionBudget"): ([NAME, col("Min Available"), col("Max Unavailable"), col("Allowed Disruptions", "integer"), AGE], _pdb),
    ("autoscaling", "HorizontalPodAutoscaler"): ([NAME, col("Reference"), col("Targets"), col("MinPods"), col("MaxPods"), col("Replicas"), AGE], _hpa),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _WEBHOOKS,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _WEBHOOKS,
}
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
    name = dig(obj, "metadata", "name") or ""
    printer = PRINTERS.get((group, kind))
    if printer is None:
        return [name, created_at(obj)]
    first = printer[1](obj, now)
    return first if kind == "Event" else [name, *first]
