"""The sandbox's scheduler and kubelet: pods get a node, start, and turn Ready.

ragbot's restore ends by waiting until every pod of the application is Running with
all containers ready, and the playbook it replaces checks the same fields. So a pod
here goes through the states a kubelet reports: Pending with ContainerCreating right
after scheduling, then, `ready_seconds` later, Running with containerStatuses
(ready, started, state.running.startedAt), the PodScheduled / Initialized /
ContainersReady / Ready conditions and a podIP. A pod whose PersistentVolumeClaim is
missing or unbound waits, as a kubelet waits for the volume to mount. Pods owned by a
Job run to Succeeded instead. Timers are the controller's requeue delays, not threads.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
from collections.abc import Callable

from .workloads_kube import NODE_NAME, Kube, Obj, condition, controller_ref

Clock = Callable[[], float]
_UNSCHEDULABLE = (
    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)
_NODE_IP = "172.18.0.2"
_POD_NET = int(ipaddress.IPv4Address("10.244.0.0"))


class PodLifecycle:
    """Reconciles one pod towards Running and Ready (or Succeeded for Job pods)."""

    def __init__(self, kube: Kube, *, ready_seconds: float, clock: Clock) -> None:
        self.kube = kube
        self.ready_seconds = ready_seconds
        self.clock = clock
        self._due: dict[tuple[str, str], tuple[str, float]] = {}  # key -> (uid, ready at)
        self._ips: itertools.count[int] | None = None

    def pending_timers(self) -> int:
        return len(self._due)

    def reconcile(self, namespace: str, name: str) -> float | None:
        key = (namespace, name)
        pod = self.kube.get(self.kube.kinds.pods, namespace, name)
        phase = ((pod or {}).get("status") or {}).get("phase") or "Pending"
        if pod is None or pod["metadata"].get("deletionTimestamp") or phase != "Pending":
            self._due.pop(key, None)
            return None
        spec = pod.get("spec") or {}
        unbound = self._unbound_claims(pod)
        if not spec.get("nodeName"):
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                return None  # another scheduler's pod: stays Pending, as it would
            if unbound:
                self._write_unschedulable(pod)
                return None  # the claim binder wakes us when the volume binds
            bound = self.kube.update(self.kube.kinds.pods, pod, _bind)
            if bound is None:
                return None
            pod = bound
        uid = pod["metadata"]["uid"]
        entry = self._due.get(key)
        if entry is None or entry[0] != uid:
            self._write_creating(pod)
            if unbound:
                return None
            self._due[key] = (uid, self.clock() + self.ready_seconds)
            return self.ready_seconds
        if unbound:  # the claim went away again: wait for it anew
            self._due.pop(key, None)
            return None
        remaining = entry[1] - self.clock()
        if remaining > 0:
            return remaining
        self._write_started(pod)
        self._due.pop(key, None)
        return None

    def _next_ip(self) -> str:
        """Pod IPs from 10.244.0.0/16, after any in use (a snapshot may hold running pods)."""
        if self._ips is None:
            used = [
                int(ipaddress.IPv4Address(ip)) - _POD_NET
                for p in self.kube.list(self.kube.kinds.pods)
                if (ip := (p.get("status") or {}).get("podIP"))
                and 0 <= int(ipaddress.IPv4Address(ip)) - _POD_NET < 65536
            ]
            self._ips = itertools.count(max(used, default=9) + 1)
        offset = 10 + (next(self._ips) - 10) % 65500
        return str(ipaddress.IPv4Address(_POD_NET + offset))

    def _unbound_claims(self, pod: Obj) -> list[str]:
        out = []
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.kube.get(self.kube.kinds.pvcs, pod["metadata"]["namespace"], claim)
            if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
                out.append(claim)
        return out

    def _write_unschedulable(self, pod: Obj) -> None:
        status = dict(pod.get("status") or {})
        status["conditions"] = [
            _cond(
                pod,
                "PodScheduled",
                "False",
                self.kube.now(),
                reason="Unschedulable",
                message=_UNSCHEDULABLE,
            )
        ]
        self.kube.write_status(self.kube.kinds.pods, pod, status)

    def _write_creating(self, pod: Obj) -> None:
        """Scheduled, volumes pending or mounting, containers being created."""
        now = self.kube.now()
        old = pod.get("status") or {}
        names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or ()]
        not_ready = f"containers with unready status: [{' '.join(names)}]"
        status: Obj = {
            "phase": "Pending",
            "conditions": [
                _cond(pod, "PodReadyToStartContainers", "False", now),
                _cond(pod, "Initialized", "True", now),
                _cond(pod, "Ready", "False", now, reason="ContainersNotReady", message=not_ready),
                _cond(
                    pod, "ContainersReady", "False", now, reason="ContainersNotReady", message=not_ready
                ),
                _cond(pod, "PodScheduled", "True", now),
            ],
            "hostIP": _NODE_IP,
            "hostIPs": [{"ip": _NODE_IP}],
            "startTime": old.get("startTime") or now,
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {},
                }
                for c in (pod.get("spec") or {}).get("containers") or ()
            ],
            "qosClass": old.get("qosClass", "BestEffort"),
        }
        self.kube.write_status(self.kube.kinds.pods, pod, status)

    def _write_started(self, pod: Obj) -> None:
        """Running and Ready; a Job's pod has run to completion instead."""
        now = self.kube.now()
        old = pod.get("status") or {}
        ref = controller_ref(pod)
        done = bool(ref and ref.get("kind") == "Job")
        ip = self._next_ip()
        ready = "False" if done else "True"
        why = {"reason": "PodCompleted"} if done else {}
        status: Obj = {
            "phase": "Succeeded" if done else "Running",
            "conditions": [
                _cond(pod, "PodReadyToStartContainers", ready, now),
                _cond(pod, "Initialized", "True", now, **why),
                _cond(pod, "Ready", ready, now, **why),
                _cond(pod, "ContainersReady", ready, now, **why),
                _cond(pod, "PodScheduled", "True", now),
            ],
            "hostIP": _NODE_IP,
            "hostIPs": [{"ip": _NODE_IP}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": old.get("startTime") or now,
            "containerStatuses": [_container_status(pod, c, now, done) for c in _containers(pod)],
            "qosClass": old.get("qosClass", "BestEffort"),
        }
        self.kube.write_status(self.kube.kinds.pods, pod, status)


def _bind(pod: Obj) -> None:
    pod["spec"]["nodeName"] = NODE_NAME


def _containers(pod: Obj) -> list[Obj]:
    return list((pod.get("spec") or {}).get("containers") or ())


def _container_status(pod: Obj, ctr: Obj, now: str, done: bool) -> Obj:
    image = ctr.get("image", "")
    seed = f"{pod['metadata']['uid']}/{ctr.get('name')}".encode()
    digest = hashlib.sha256(image.encode()).hexdigest()
    if done:
        state = {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": now,
                "finishedAt": now,
                "containerID": f"containerd://{hashlib.sha256(seed).hexdigest()}",
            }
        }
    else:
        state = {"running": {"startedAt": now}}
    return {
        "name": ctr.get("name", ""),
        "image": image,
        "imageID": f"{image.split(':')[0]}@sha256:{digest}",
        "containerID": f"containerd://{hashlib.sha256(seed).hexdigest()}",
        "ready": not done,
        "started": not done,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    }


def _cond(pod: Obj, kind: str, value: str, now: str, **extra: str) -> Obj:
    """A pod condition keeping its transition time while its status stays the same."""
    old = condition(pod, kind)
    since = old.get("lastTransitionTime", now) if old and old.get("status") == value else now
    return {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": since, **extra}


def node_object(kubelet_version: str = "v1.33.1") -> tuple[Obj, Obj]:
    """(object, status) of the one Ready node every sandbox pod runs on."""
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": NODE_NAME,
        "kubernetes.io/os": "linux",
    }
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": labels},
        "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
    }
    resources = {"cpu": "16", "memory": "65843896Ki", "pods": "110", "ephemeral-storage": "479597808Ki"}
    pressure = (
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    )
    conditions = [
        {"type": t, "status": "False", "reason": r, "message": m} for t, r, m in pressure
    ]
    conditions.append(
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}
    )
    status = {
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": _NODE_IP},
            {"type": "Hostname", "address": NODE_NAME},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "osImage": "Ubuntu 24.04.2 LTS",
            "kernelVersion": "6.8.0-60-generic",
            "containerRuntimeVersion": "containerd://1.7.27",
            "kubeletVersion": kubelet_version,
            "kubeProxyVersion": kubelet_version,
            "machineID": "5a2f7c3e9b1d4e6f8a0b2c4d6e8f0a1b",
            "systemUUID": "5a2f7c3e-9b1d-4e6f-8a0b-2c4d6e8f0a1b",
            "bootID": "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
        },
    }
    return body, status


def ensure_node(kube: Kube) -> None:
    """Create the sandbox node, Ready, unless it exists (a snapshot may hold it)."""
    k = kube.kinds
    if kube.get(k.nodes, "", NODE_NAME) is not None:
        return
    body, status = node_object()
    now = kube.now()
    for c in status["conditions"]:
        c.update(lastHeartbeatTime=now, lastTransitionTime=now)
    created = kube.create(k.nodes, "", body)
    kube.write_status(k.nodes, created, status)
