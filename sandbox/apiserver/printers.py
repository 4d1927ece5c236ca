"""Server-side printing helpers and the pod printer: why `kubectl get pods` looks familiar.

kubectl prints whatever columns the server's Table carries, so `NAME READY STATUS
RESTARTS AGE` is the server's doing. This module holds what every printer shares (the
`NAME`/`AGE` column definitions, apimachinery's HumanDuration, label formatting) and a
transcription of printPod from k8s.io/kubernetes pkg/printers/internalversion, including
the pod status reasons (`Init:0/1`, `Init:Error`, `CrashLoopBackOff`, `Terminating`,
sidecars, `2 (5m ago)` restarts), checked case by case against a v1.36 apiserver.
kind_printers.py holds the other kinds. Column descriptions are exact for the common
columns and shortened for field-derived ones (kubectl never shows them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from config.selectors import SelectorError, from_api

from .objects import parse_rfc3339

Obj = Mapping[str, Any]
Column = dict[str, Any]

NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATED_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
CONTAINERS_DESC = "Names of each container in the template."
IMAGES_DESC = "Images referenced by each container in the template."


def col(name: str, typ: str = "string", desc: str = "", priority: int = 0, fmt: str = "") -> Column:
    return {
        "name": name,
        "type": typ,
        "format": fmt,
        "description": desc or name,
        "priority": priority,
    }


NAME = col("Name", desc=NAME_DESC, fmt="name")
AGE = col("Age", desc=CREATED_DESC)
CREATED_AT = col("Created At", "date", CREATED_DESC)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return f"{minutes}m{secs % 60}s" if secs % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def since(ts: Any, now: float) -> str:
    """translateTimestampSince: `<unknown>` for a zero time, else a human duration."""
    if not ts or not isinstance(ts, str):
        return "<unknown>"
    try:
        return human_duration(now - parse_rfc3339(ts))
    except ValueError:
        return "<invalid>"


def created_at(obj: Obj) -> str:
    ts = dig(obj, "metadata", "creationTimestamp")
    return ts if isinstance(ts, str) else "0001-01-01T00:00:00Z"


def dig(obj: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(part, int):
            obj = obj[part] if isinstance(obj, list) and len(obj) > part else None
        else:
            obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def dig_list(obj: Any, *path: str) -> list[Any]:
    value = dig(obj, *path)
    return value if isinstance(value, list) else []


def format_labels(labels: Any) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: Any) -> str:
    """labels.Selector.String() of a metav1.LabelSelector ("" for nil or empty)."""
    try:
        reqs = from_api(selector).requirements
    except SelectorError:
        return "<invalid>"
    return ",".join(str(r) for r in sorted(reqs, key=lambda r: r.key))


def format_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector."""
    text = selector_string(selector)
    return "<error>" if text == "<invalid>" else text or "<none>"


def container_cells(template_spec: Any) -> list[str]:
    containers = dig_list(template_spec, "containers")
    names = ",".join(c.get("name", "") for c in containers)
    return [names, ",".join(c.get("image", "") for c in containers)]


# ----- pods --------------------------------------------------------------------------------

POD_COLUMNS = [
    NAME,
    col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
    col("Status", desc="The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        desc="The number of times the containers in this pod have been restarted and when "
        "the last container in this pod has restarted.",
    ),
    AGE,
    col(
        "IP",
        desc="podIP address allocated to the pod. Routable at least within the cluster. "
        "Empty if not yet allocated.",
        priority=1,
    ),
    col("Node", desc="NodeName indicates in which node this pod is scheduled.", priority=1),
    col("Nominated Node", desc="nominatedNodeName is set only when this pod preempts.", priority=1),
    col("Readiness Gates", desc="If specified, all readiness gates will be evaluated.", priority=1),
]
_COMPLETED = {"type": "Completed", "status": "True"}
POD_SUCCEEDED = [
    {**_COMPLETED, "reason": "Succeeded", "message": "The pod has completed successfully."}
]
POD_FAILED = [{**_COMPLETED, "reason": "Failed", "message": "The pod failed."}]


def _terminated_at(status: Any) -> float:
    ts = dig(status, "lastState", "terminated", "finishedAt")
    return parse_rfc3339(ts) if isinstance(ts, str) and ts else 0.0


def _condition_true(conditions: Sequence[Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions)


def pod_cells(pod: Obj, now: float) -> list[Any]:
    """printPod: READY, STATUS (the aggregate reason), RESTARTS, AGE and the wide columns."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    conditions = dig_list(status, "conditions")
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    gated = ("PodScheduled", "SchedulingGated")
    if any((c.get("type"), c.get("reason")) == gated for c in conditions):
        reason = "SchedulingGated"
    init_specs = {c.get("name"): c for c in dig_list(spec, "initContainers")}
    sidecar = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(dig_list(spec, "containers")) + len(sidecar)
    ready = restarts = sidecar_restarts = 0
    last_restart = last_sidecar_restart = 0.0
    initializing = False
    for i, c in enumerate(dig_list(status, "initContainerStatuses")):
        restarts += int(c.get("restartCount", 0))
        last_restart = max(last_restart, _terminated_at(c))
        is_sidecar = c.get("name") in sidecar
        if is_sidecar:
            sidecar_restarts += int(c.get("restartCount", 0))
            last_sidecar_restart = max(last_sidecar_restart, _terminated_at(c))
        term, wait = dig(c, "state", "terminated"), dig(c, "state", "waiting")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if is_sidecar and c.get("started"):
            ready += 1 if c.get("ready") else 0
            continue
        if term is not None:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
        elif wait is not None and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for c in reversed(dig_list(status, "containerStatuses")):
            restarts += int(c.get("restartCount", 0))
            last_restart = max(last_restart, _terminated_at(c))
            term, wait = dig(c, "state", "terminated"), dig(c, "state", "waiting")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                sig = term.get("signal")
                reason = f"Signal:{sig}" if sig else f"ExitCode:{term.get('exitCode', 0)}"
            elif c.get("ready") and dig(c, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"
    deleting = bool(dig(pod, "metadata", "deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"
    gates = dig_list(spec, "readinessGates")
    gate_text = "<none>"
    if gates:
        status_of = {c.get("type"): c.get("status") for c in reversed(conditions)}
        true = sum(1 for g in gates if status_of.get(g.get("conditionType")) == "True")
        gate_text = f"{true}/{len(gates)}"
    ip = dig(status, "podIPs", 0, "ip") or "<none>"
    return [
        dig(pod, "metadata", "name") or "",
        f"{ready}/{total}",
        reason,
        restarts_text,
        since(dig(pod, "metadata", "creationTimestamp"), now),
        ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gate_text,
    ]


def pod_conditions(pod: Obj) -> list[dict[str, str]] | None:
    phase = dig(pod, "status", "phase")
    return POD_SUCCEEDED if phase == "Succeeded" else POD_FAILED if phase == "Failed" else None
