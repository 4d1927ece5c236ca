"""Is the Velero server process running, and is it a new one?

A dead Velero does nothing: a backup stays New, an InProgress one stays stuck, which is
exactly the failure ragbot must notice. So the simulation only works while the
`velero` Deployment has replicas and (once the workload controllers run its pods) a
ready pod. A different ready pod (the old one was deleted, the Deployment scaled down
and up) is a restarted server, which marks InProgress work Failed as `velero server`
does at start. A simulated OOM kill marks the pod's container OOMKilled and not ready
and stops the server until it is restarted or replaced. In a cluster without pods for
the Deployment (no workload controller), replicas alone decide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from config.selectors import SelectorError, from_api

from .apiserver import errors as api_errors
from .apiserver.objects import clone, rfc3339
from .apiserver.store import Store
from .velero_common import Obj

log = logging.getLogger("sandbox.velero")


class ServerProcess:
    """Tracks the identity of the running Velero process from the Store's objects."""

    def __init__(self, store: Store, namespace: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.namespace = namespace
        self.clock = clock
        self.crashed = False
        self._ident: str | None = None
        self._crash_ident: str | None = None
        self._crashed_pods: list[str] = []
        self._pods_seen = False
        self._was_alive = False
        self._dead_epochs = 0

    def deployment(self) -> Obj | None:
        rt = self.store.registry.lookup("apps", "v1", "deployments")
        return self.store.try_get(rt, self.namespace, "velero") if rt is not None else None

    def pods(self) -> list[Obj]:
        """The live pods of the velero Deployment (by its selector)."""
        deployment = self.deployment()
        pod_rt = self.store.registry.lookup("", "v1", "pods")
        if deployment is None or pod_rt is None:
            return []
        try:
            selector = from_api((deployment.get("spec") or {}).get("selector"))
        except SelectorError:
            return []
        if not selector.requirements:
            return []
        pods = self.store.list(pod_rt, self.namespace, selector)[0]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def csi_enabled(self) -> bool:
        """EnableCSI is still a feature flag in 1.16: read it from the server's args."""
        deployment = self.deployment()
        if deployment is None:
            return True
        template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in template.get("containers") or []:
            for arg in [*(c.get("args") or []), *(c.get("command") or [])]:
                if arg.startswith("--features=") and "EnableCSI" in arg.split("=", 1)[1].split(","):
                    return True
        return False

    def _probe(self) -> tuple[bool, str | None]:
        """(running, identity of the running process)."""
        deployment = self.deployment()
        if deployment is None or (deployment.get("spec") or {}).get("replicas", 1) == 0:
            return False, None
        pods = self.pods()
        if pods:
            self._pods_seen = True
            ready = sorted(p["metadata"].get("uid", "") for p in pods if _pod_ready(p))
            return (True, f"pod:{ready[0]}") if ready else (False, None)
        if self._pods_seen:
            return False, None  # pods are managed in this cluster, and none is running
        return True, f"deployment:{deployment['metadata'].get('uid', '')}:{self._dead_epochs}"

    def check(self) -> tuple[bool, bool]:
        """(the server runs, it is a new process that has just started)."""
        alive, ident = self._probe()
        if not alive:
            if self._was_alive:
                self._dead_epochs += 1
            self._was_alive = False
            return False, False
        self._was_alive = True
        before = self._crash_ident if self.crashed else self._ident
        restarted = _restarted(before, ident)
        if self.crashed and not restarted:
            return False, False
        if restarted:
            log.info("velero: a new server process is running (%s)", ident)
        self._ident = ident
        return True, restarted

    def crash(self) -> None:
        """The container is OOM-killed: the process stops, its pod turns not ready."""
        self.crashed = True
        self._crash_ident = self._ident
        self._crashed_pods = []
        pod_rt = self.store.registry.lookup("", "v1", "pods")
        if pod_rt is None:
            return
        now = rfc3339(self.clock())
        for pod in self.pods():
            name = pod["metadata"]["name"]
            try:
                self.store.apply_update(
                    pod_rt, self.namespace, name, lambda cur: _oom_killed(cur, now), subresource="status"
                )
                self._crashed_pods.append(name)
            except api_errors.ApiError:
                continue

    def recovered(self) -> None:
        """The process runs again: a pod the crash made not ready is ready again."""
        pod_rt = self.store.registry.lookup("", "v1", "pods")
        now = rfc3339(self.clock())
        for name in self._crashed_pods if self.crashed else []:
            if pod_rt is None:
                break
            try:
                self.store.apply_update(
                    pod_rt, self.namespace, name, lambda cur: _running(cur, now), subresource="status"
                )
            except api_errors.ApiError:
                continue
        self.crashed = False
        self._crash_ident = None
        self._crashed_pods = []


def _restarted(before: str | None, after: str | None) -> bool:
    """A different process of the same kind (pod-backed or not) is running.

    The first pod replacing the pod-less start-up state is not a restart: that is the
    workload controller bringing the seeded Deployment up.
    """
    if before is None or after is None or before == after:
        return False
    return before.split(":", 1)[0] == after.split(":", 1)[0]


def _pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _set_condition(status: dict[str, Any], kind: str, value: str, now: str, reason: str = "") -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    cond: dict[str, Any] = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
        cond["message"] = "containers with unready status: [velero]"
    conditions.append(cond)
    status["conditions"] = conditions


def _oom_killed(pod: Obj, now: str) -> Obj:
    """What the kubelet reports after an OOM kill, while the container backs off."""
    st = pod.setdefault("status", {})
    for kind in ("Ready", "ContainersReady"):
        _set_condition(st, kind, "False", now, "ContainersNotReady")
    containers = (pod.get("spec") or {}).get("containers") or [{"name": "velero"}]
    statuses = {c.get("name"): c for c in st.get("containerStatuses") or []}
    out = []
    for c in containers:
        cs = clone(statuses.get(c.get("name")) or {"name": c.get("name"), "image": c.get("image", "")})
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt", now)
        cs.update(
            ready=False,
            started=False,
            restartCount=int(cs.get("restartCount") or 0) + 1,
            state={"waiting": {"reason": "CrashLoopBackOff",
                               "message": f"back-off 10s restarting failed container={c.get('name')}"}},
            lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": started,
                                      "finishedAt": now}},
        )
        out.append(cs)
    st["containerStatuses"] = out
    return pod


def _running(pod: Obj, now: str) -> Obj:
    st = pod.setdefault("status", {})
    for kind in ("Ready", "ContainersReady"):
        _set_condition(st, kind, "True", now)
    for cs in st.get("containerStatuses") or []:
        cs.update(ready=True, started=True, state={"running": {"startedAt": now}})
    return pod
