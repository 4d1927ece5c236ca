"""The sandbox's workload controllers: what makes pods exist, start and turn Ready.

In a real cluster kube-controller-manager (Deployment, ReplicaSet, StatefulSet, PV
controllers), the scheduler, the CSI provisioner and the kubelets turn the objects
ragbot deletes and Velero restores into running pods. The sandbox API server only
stores objects, so `WorkloadController` does their work in-process, the way they do
it: watches feed a work queue of object keys, and one worker thread reconciles each
key by reading the current state and converging it (level-triggered, idempotent, so
a lost or duplicated event only costs a redundant pass). Timers (a pod becoming
Ready) and retries (a reconcile that raised, with exponential backoff) are delayed
queue entries, not sleeping threads. A periodic resync re-reconciles everything, as
the real controllers' informers do.

The controllers themselves live beside this module: `workloads_apps` (Deployments,
ReplicaSets), `workloads_sts`, `workloads_pods` (scheduler, kubelet, the node),
`workloads_storage` (claim binding) and `workloads_gmc` (Enterprise RAG's GMC).
Cascading deletion is the store's garbage collector; nothing here duplicates it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .apiserver.resources import ResourceType
from .apiserver.store import Store, Watcher
from .workloads_apps import DeploymentController, ReplicaSetController
from .workloads_gmc import GmcSimulation
from .workloads_kube import NODE_NAME, Kube, Obj, controller_ref
from .workloads_pods import PodLifecycle, ensure_node
from .workloads_storage import ClaimBinder
from .workloads_sts import StatefulSetController

__all__ = ["NODE_NAME", "WorkQueue", "WorkloadController"]

log = logging.getLogger("sandbox.workloads")

Key = tuple[str, str, str]  # (kind, namespace, name); ("gmc", "", "") for the GMC pass
Clock = Callable[[], float]
_GMC: Key = ("gmc", "", "")
_OWNER_KINDS = {"ReplicaSet", "StatefulSet", "Deployment"}


class Reconciler(Protocol):
    def reconcile(self, namespace: str, name: str) -> float | None:
        """Converge one object; return seconds after which to look again, or None."""
        ...


class WorkQueue:
    """Keys to reconcile: deduplicated while waiting, optionally after a delay.

    A key re-added while it is being processed is processed again afterwards, so a
    change that lands during a reconcile is never lost.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._delayed: list[tuple[float, int, Key]] = []
        self._seq = itertools.count()
        self._busy = False
        self._closed = False

    def add(self, key: Key, after: float = 0.0) -> None:
        with self._cond:
            if self._closed:
                return
            if after > 0:
                heapq.heappush(self._delayed, (self.clock() + after, next(self._seq), key))
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
            self._cond.notify_all()

    def get(self, max_wait: float) -> Key | None:
        """The next key due, waiting up to max_wait seconds; None on timeout or close."""
        deadline = time.monotonic() + max_wait
        with self._cond:
            while not self._closed:
                self._promote()
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    self._busy = True
                    return key
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if self._delayed:
                    due_in = self._delayed[0][0] - self.clock()
                    remaining = min(remaining, max(due_in, 0.0005))
                self._cond.wait(remaining)
            return None

    def done(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def idle(self) -> bool:
        """Nothing queued, nothing due, nothing in progress (future timers may remain)."""
        with self._cond:
            self._promote()
            return not self._ready and not self._busy

    def wait(self, seconds: float) -> None:
        """Sleep until the queue changes or `seconds` pass (for idle polling)."""
        with self._cond:
            self._cond.wait(seconds)

    def _promote(self) -> None:
        now = self.clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)


class WorkloadController:
    """kube-controller-manager, scheduler and kubelet for the sandbox, in one object.

    `start()` creates the node, remembers the model-serving workloads for the GMC
    simulation and starts the threads; `stop()` ends them within about a second.
    """

    def __init__(
        self,
        store: Store,
        *,
        pod_ready_seconds: float = 0.5,
        clock: Clock = time.monotonic,
        resync_seconds: float = 30.0,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.kube = Kube(store)
        self.clock = clock
        self.pod_ready_seconds = pod_ready_seconds
        self.resync_seconds = resync_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.queue = WorkQueue(clock)
        self.gmc = GmcSimulation(self.kube)
        self.pods = PodLifecycle(self.kube, ready_seconds=pod_ready_seconds, clock=clock)
        self.reconcilers: dict[str, Reconciler] = {
            "Deployment": DeploymentController(self.kube),
            "ReplicaSet": ReplicaSetController(self.kube),
            "StatefulSet": StatefulSetController(self.kube),
            "Pod": self.pods,
            "PersistentVolumeClaim": ClaimBinder(self.kube, self.queue.add),
            "gmc": self.gmc,
        }
        #: Reconciles that raised since start (each is retried with backoff).
        self.error_count = 0
        self._failures: dict[Key, int] = {}
        self._watchers: list[Watcher] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Create the node, remember GMC's model servers, start watching (once only)."""
        if self._threads:
            return
        ensure_node(self.kube)
        self.gmc.capture()
        k = self.kube.kinds
        watched: tuple[tuple[str, ResourceType], ...] = (
            ("Deployment", k.deployments),
            ("ReplicaSet", k.replicasets),
            ("StatefulSet", k.statefulsets),
            ("Pod", k.pods),
            ("PersistentVolumeClaim", k.pvcs),
            ("Service", k.services),
        )
        for kind, rt in watched:
            watcher = self.store.watch(rt)
            self._watchers.append(watcher)
            self._threads.append(
                threading.Thread(
                    target=self._pump,
                    args=(kind, watcher),
                    name=f"sandbox-workloads-watch-{kind.lower()}",
                    daemon=True,
                )
            )
        self.queue.add(_GMC)
        self._threads.append(
            threading.Thread(target=self._work, name="sandbox-workloads", daemon=True)
        )
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop watching and working; joins every thread within `timeout` seconds."""
        self._stopping.set()
        for w in self._watchers:
            self.store.stop_watch(w)
        self.queue.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("workload controller threads still running after stop: %s", alive)

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The watch pumps and the worker (for health checks and tests)."""
        return tuple(self._threads)

    def dump(self) -> dict[str, Any]:
        """Controller state for a sandbox snapshot; `load` takes it back before `start`.

        Only the GMC simulation's memory needs keeping: a sandbox stopped while the
        model servers were deleted must still know how to recreate them.
        """
        return {"gmc": self.gmc.dump()}

    def load(self, state: Mapping[str, Any]) -> None:
        """Take back what `dump` returned (call before `start`)."""
        self.gmc = GmcSimulation(self.kube, state.get("gmc"))
        self.reconcilers["gmc"] = self.gmc

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once every event is consumed and every due reconcile has run.

        Pending timers (pods still starting) do not count: this is the barrier a test
        needs before asserting that something did *not* happen.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            drained = all(w.events.unfinished_tasks == 0 for w in self._watchers)
            if drained and self.queue.idle():
                return True
            self.queue.wait(0.005)
        return False

    # ----- threads -----------------------------------------------------------------------

    def _pump(self, kind: str, watcher: Watcher) -> None:
        """Turn one watch stream into work-queue keys until the watch is stopped."""
        while True:
            item = watcher.events.get()
            try:
                if item is None:
                    return
                event_type, obj = item
                for key in self._keys_for(kind, event_type, obj):
                    self.queue.add(key)
            except Exception:  # a malformed object must not end the stream
                log.exception("workload controller: cannot map %s event", kind)
            finally:
                watcher.events.task_done()

    def _keys_for(self, kind: str, event_type: str, obj: Obj) -> list[Key]:
        m = obj.get("metadata") or {}
        ns, name = m.get("namespace", ""), m.get("name", "")
        keys: list[Key] = [] if kind == "Service" else [(kind, ns, name)]
        ref = controller_ref(obj)
        if ref and ref.get("kind") in _OWNER_KINDS and kind in ("Pod", "ReplicaSet"):
            keys.append((ref["kind"], ns, ref.get("name", "")))
        if kind in ("Deployment", "Service") and self.gmc.concerns(kind, ns, name):
            keys.append(_GMC)
        return keys

    def _work(self) -> None:
        next_resync = self.clock() + self.resync_seconds
        while not self._stopping.is_set():
            key = self.queue.get(max(min(next_resync - self.clock(), 1.0), 0.0))
            if key is not None:
                try:
                    self._process(key)
                finally:
                    self.queue.done()
            if self.clock() >= next_resync:
                next_resync = self.clock() + self.resync_seconds
                self._resync()

    def _process(self, key: Key) -> None:
        kind, ns, name = key
        try:
            again = self.reconcilers[kind].reconcile(ns, name)
        except Exception:
            self.error_count += 1
            attempt = self._failures.get(key, 0) + 1
            self._failures[key] = attempt
            delay = min(0.05 * 2 ** (attempt - 1), self.max_backoff_seconds)
            log.warning(
                "reconcile of %s %s/%s failed (attempt %d); retrying in %.2fs",
                kind,
                ns,
                name,
                attempt,
                delay,
                exc_info=attempt == 1,
            )
            self.queue.add(key, delay)
            return
        self._failures.pop(key, None)
        if again is not None:
            self.queue.add(key, max(again, 0.001))

    def _resync(self) -> None:
        """Re-reconcile everything, as informers' periodic resync does."""
        try:
            k = self.kube.kinds
            for kind, rt in (
                ("Deployment", k.deployments),
                ("ReplicaSet", k.replicasets),
                ("StatefulSet", k.statefulsets),
                ("Pod", k.pods),
                ("PersistentVolumeClaim", k.pvcs),
            ):
                for obj in self.kube.list(rt):
                    m = obj["metadata"]
                    self.queue.add((kind, m.get("namespace", ""), m["name"]))
            self.queue.add(_GMC)
        except Exception:
            log.exception("workload controller: resync failed")
