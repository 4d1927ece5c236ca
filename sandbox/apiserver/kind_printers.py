"""Row cells of the built-in kinds other than pods: what `kubectl get <kind>` shows.

One function per kind, transcribed from the print<Kind> functions of k8s.io/kubernetes
pkg/printers/internalversion/printers.go and checked cell by cell against a v1.36
apiserver: READY as `ready/desired`, the job status reasons, service ports as
`80:30080/TCP`, PVC access modes as `RWO`, the default StorageClass marked in its NAME,
and so on. printer_table.py pairs them with their column definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .objects import parse_rfc3339
from .printers import (
    Obj,
    container_cells,
    dig,
    dig_list,
    format_labels,
    format_selector,
    human_duration,
    selector_string,
    since,
)

_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)
_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
Row = Callable[[Obj, float], list[Any]]


def _access_modes(modes: Any) -> str:
    return ",".join(short for mode, short in _ACCESS_MODES if mode in (modes or ()))


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def age(o: Obj, now: float) -> str:
    return since(dig(o, "metadata", "creationTimestamp"), now)


def _workload(o: Obj) -> list[Any]:
    return container_cells(dig(o, "spec", "template", "spec"))


def _storage_class(o: Obj, spec: Obj) -> str:
    annotated = dig(o, "metadata", "annotations", _STORAGE_CLASS_ANNOTATION)
    return str(annotated or spec.get("storageClassName") or "")


def deployment(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    ready = f"{_int(st.get('readyReplicas'))}/{_int(dig(o, 'spec', 'replicas'))}"
    counts = [_int(st.get("updatedReplicas")), _int(st.get("availableReplicas"))]
    selector = selector_string(dig(o, "spec", "selector"))
    return [ready, *counts, age(o, now), *_workload(o), selector]


def replicaset(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    counts = [_int(dig(o, "spec", "replicas")), _int(st.get("replicas"))]
    counts.append(_int(st.get("readyReplicas")))
    selector = format_selector(dig(o, "spec", "selector"))
    return [*counts, age(o, now), *_workload(o), selector]


def statefulset(o: Obj, now: float) -> list[Any]:
    ready = f"{_int(dig(o, 'status', 'readyReplicas'))}/{_int(dig(o, 'spec', 'replicas'))}"
    return [ready, age(o, now), *_workload(o)]


_DAEMONSET_COUNTS = (
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
)


def daemonset(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    counts = [_int(st.get(k)) for k in _DAEMONSET_COUNTS]
    node_selector = format_labels(dig(o, "spec", "template", "spec", "nodeSelector"))
    selector = format_selector(dig(o, "spec", "selector"))
    return [*counts, node_selector, age(o, now), *_workload(o), selector]


def job(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    ok = _int(st.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{ok}/{spec['completions']}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{ok}/1 of {spec['parallelism']}"
    else:
        completions = f"{ok}/1"
    start, end = st.get("startTime"), st.get("completionTime")
    took = ""
    if start:
        took = human_duration((parse_rfc3339(end) if end else now) - parse_rfc3339(start))
    first = {c.get("type"): c.get("status") == "True" for c in reversed(dig_list(st, "conditions"))}
    if first.get("Complete"):
        state = "Complete"
    elif first.get("Failed"):
        state = "Failed"
    elif dig(o, "metadata", "deletionTimestamp"):
        state = "Terminating"
    elif first.get("Suspended"):
        state = "Suspended"
    else:
        state = "FailureTarget" if first.get("FailureTarget") else "Running"
    selector = format_selector(spec.get("selector"))
    return [state, completions, took, age(o, now), *_workload(o), selector]


def cronjob(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    last = since(st["lastScheduleTime"], now) if st.get("lastScheduleTime") else "<none>"
    tmpl = dig(spec, "jobTemplate", "spec")
    return [
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        _bool_text(spec.get("suspend")),
        len(dig_list(st, "active")),
        last,
        age(o, now),
        *container_cells(dig(tmpl, "template", "spec")),
        format_selector(dig(tmpl, "selector")),
    ]


def _lb_ingress(o: Obj) -> str:
    ingress = dig_list(o, "status", "loadBalancer", "ingress")
    return ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)


def service(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    svc_type = spec.get("type", "ClusterIP")
    cluster_ip = (dig_list(spec, "clusterIPs") or [spec.get("clusterIP")])[0] or "<none>"
    external = ",".join(dig_list(spec, "externalIPs"))
    if svc_type == "LoadBalancer":
        external = ",".join(x for x in (_lb_ingress(o), external) if x) or "<pending>"
    elif svc_type == "ExternalName":
        external = spec.get("externalName", "")
    else:
        external = external or "<none>"
    ports = []
    for p in dig_list(spec, "ports"):
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node_port}/{p.get('protocol', 'TCP')}")
    selector = format_labels(spec.get("selector"))
    return [svc_type, cluster_ip, external, ",".join(ports) or "<none>", age(o, now), selector]


def _phase(o: Obj, st: Obj) -> str:
    return "Terminating" if dig(o, "metadata", "deletionTimestamp") else str(st.get("phase", ""))


def pvc(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    bound = bool(spec.get("volumeName"))
    capacity = (dig(st, "capacity", "storage") or "") if bound else ""
    modes = _access_modes(st.get("accessModes")) if bound else ""
    return [
        _phase(o, st),
        spec.get("volumeName", ""),
        capacity,
        modes,
        _storage_class(o, spec),
        spec.get("volumeAttributesClassName") or "<unset>",
        age(o, now),
        spec.get("volumeMode") or "<unset>",
    ]


def pv(o: Obj, now: float) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    claim = spec.get("claimRef")
    return [
        dig(spec, "capacity", "storage") or "0",
        _access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        _phase(o, st),
        f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
        _storage_class(o, spec),
        spec.get("volumeAttributesClassName") or "<unset>",
        st.get("reason", ""),
        age(o, now),
        spec.get("volumeMode") or "<unset>",
    ]


def event(o: Obj, now: float) -> list[Any]:
    first = since(o.get("firstTimestamp") or o.get("eventTime"), now)
    last = since(o.get("lastTimestamp"), now) if o.get("lastTimestamp") else first
    count = _int(o.get("count")) or 1
    if o.get("series"):
        last = since(dig(o, "series", "lastObservedTime"), now)
        count = _int(dig(o, "series", "count"))
    inv = o.get("involvedObject") or {}
    kind = str(inv.get("kind", "")).lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    component = dig(o, "source", "component") or o.get("reportingController") or ""
    host = dig(o, "source", "host") or o.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    message = str(o.get("message", "")).strip()
    return [
        last,
        o.get("type", ""),
        o.get("reason", ""),
        target,
        inv.get("fieldPath", ""),
        source,
        message,
        first,
        count,
        dig(o, "metadata", "name"),
    ]


def node(o: Obj, now: float) -> list[Any]:
    st = o.get("status") or {}
    ready = next((c for c in dig_list(st, "conditions") if c.get("type") == "Ready"), None)
    if ready is None:
        state = ["Unknown"]
    else:
        state = ["Ready" if ready.get("status") == "True" else "NotReady"]
    if dig(o, "spec", "unschedulable"):
        state.append("SchedulingDisabled")
    labels = dig(o, "metadata", "labels") or {}
    prefix = "node-role.kubernetes.io/"
    roles = {k.removeprefix(prefix) for k in labels if k.startswith(prefix) and k != prefix}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    addr = {a.get("type"): a.get("address") for a in reversed(dig_list(st, "addresses"))}
    info = st.get("nodeInfo") or {}
    return [
        ",".join(state),
        ",".join(sorted(roles)) or "<none>",
        age(o, now),
        info.get("kubeletVersion", ""),
        addr.get("InternalIP") or "<none>",
        addr.get("ExternalIP") or "<none>",
        *(info.get(k) or "<unknown>" for k in ("osImage", "kernelVersion")),
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def binding(o: Obj, now: float) -> list[Any]:
    ref = o.get("roleRef") or {}
    subjects = dig_list(o, "subjects")

    def named(kind: str) -> str:
        picked = [s for s in subjects if s.get("kind") == kind]
        if kind == "ServiceAccount":
            return ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in picked)
        return ", ".join(s.get("name", "") for s in picked)

    role = f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return [role, age(o, now), named("User"), named("Group"), named("ServiceAccount")]


_DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def _bool_text(value: Any) -> str:
    """printBoolPtr."""
    return "<unset>" if value is None else "True" if value else "False"


def storageclass(o: Obj, now: float) -> list[Any]:
    """printStorageClass: the whole row, since the NAME cell marks the default class."""
    annotations = dig(o, "metadata", "annotations") or {}
    name = str(dig(o, "metadata", "name") or "")
    if any(annotations.get(a) == "true" for a in _DEFAULT_CLASS):
        name += " (default)"
    return [
        name,
        o.get("provisioner", ""),
        o.get("reclaimPolicy") or "Delete",
        o.get("volumeBindingMode") or "Immediate",
        bool(o.get("allowVolumeExpansion")),
        age(o, now),
    ]


def ingress(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    rules = dig_list(spec, "rules")
    hosts = [r["host"] for r in rules if r.get("host")][:3]
    host_text = ",".join(hosts) or "*"
    if len(rules) > 3 and hosts:
        host_text += f" + {len(rules) - 3} more..."
    ports = "80, 443" if spec.get("tls") else "80"
    klass = spec.get("ingressClassName") or "<none>"
    return [klass, host_text, _lb_ingress(o), ports, age(o, now)]


def pdb(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    bounds = [
        "N/A" if spec.get(k) is None else str(spec[k]) for k in ("minAvailable", "maxUnavailable")
    ]
    return [*bounds, _int(dig(o, "status", "disruptionsAllowed")), age(o, now)]


def hpa(o: Obj, now: float) -> list[Any]:
    """printHorizontalPodAutoscaler; TARGETS only for Resource utilization metrics."""
    spec = o.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics = dig_list(spec, "metrics")
    targets = []
    for i, m in enumerate(metrics[:2]):
        if m.get("type") != "Resource":
            targets.append("<unknown type>")
            continue
        res = m.get("resource") or {}
        cur = dig(o, "status", "currentMetrics", i, "resource", "current", "averageUtilization")
        want = dig(res, "target", "averageUtilization")
        cur_text = "<unknown>" if cur is None else f"{cur}%"
        want_text = "<auto>" if want is None else f"{want}%"
        targets.append(f"{res.get('name', '')}: {cur_text}/{want_text}")
    text = ", ".join(targets) or "<none>"
    if len(metrics) > 2:
        text += f" + {len(metrics) - 2} more..."
    min_pods = "<unset>" if spec.get("minReplicas") is None else str(spec["minReplicas"])
    return [
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        text,
        min_pods,
        _int(spec.get("maxReplicas")),
        _int(dig(o, "status", "currentReplicas")),
        age(o, now),
    ]


def endpoints(o: Obj) -> str:
    out = []
    for subset in dig_list(o, "subsets"):
        ports = dig_list(subset, "ports") or [None]
        for p in ports:
            for a in dig_list(subset, "addresses"):
                out.append(f"{a.get('ip')}:{p.get('port')}" if p else str(a.get("ip")))
    if not out:
        return "<none>"
    return ",".join(out[:3]) + (f" + {len(out) - 3} more..." if len(out) > 3 else "")
