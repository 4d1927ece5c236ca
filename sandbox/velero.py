"""A Velero 1.16 server, simulated in-process over the sandbox Store.

ragbot drives Velero only through its custom resources, so the sandbox needs something
that answers those resources the way a Velero server does: Backups and Restores moving
through Velero's phases with progress and CSI counts, validation errors worded as
Velero words them, a loopback object store behind DownloadRequests, deletions through
DeleteBackupRequests, and failures on demand (Failed, PartiallyFailed,
FailedValidation, stuck InProgress with the Velero pod "OOM-killed").

One server thread plays the whole Velero process: it is woken by watch events on the
Velero kinds (reconciling by name, level-triggered, plus a periodic resync) and ticks
the running backups and restores. It does nothing while the velero Deployment has no
ready pod (scaled to 0, crashed), and when a new Velero pod comes up it marks
InProgress backups and restores Failed as the real server does at start. The pieces
live beside this module, one job each: velero_backup_validate, velero_capture and
velero_backup (backups), velero_delete (DeleteBackupRequests, expiry), velero_restore,
velero_restore_items and velero_volumes (restores), velero_download (DownloadRequests
and the pre-signed URL server), velero_objectstore (the bucket), velero_process (is the
server running, crash and restart), velero_access (Store access), velero_common.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .apiserver.store import Store, Watcher
from .velero_access import VeleroClient
from .velero_backup import BackupRun, advance_backup, resume_backup, start_backup
from .velero_common import (
    FAILED,
    FINALIZING,
    FINALIZING_PARTIALLY_FAILED,
    GROUP,
    IN_PROGRESS,
    QUEUED,
    READY_TO_START,
    Injection,
    Injections,
    LogBuffer,
    Obj,
    stamp,
)
from .velero_delete import expire_backups, reconcile_delete_request
from .velero_download import DownloadServer, expired_download_requests, reconcile_download_request
from .velero_objectstore import Layout, ObjectStore
from .velero_process import ServerProcess
from .velero_restore import (
    RestoreRun,
    add_finalizer,
    advance_restore,
    finalize_restore,
    start_restore,
)

log = logging.getLogger("sandbox.velero")

_KINDS = ("backups", "restores", "downloadrequests", "deletebackuprequests")
_STOP = ("", "")


class VeleroSimulator(VeleroClient):
    """The simulated Velero server. `start()` / `stop()`; tests steer it with `inject()`.

    `seconds` is how long a Backup or Restore runs (while the server is alive);
    `clock` gives every timestamp it writes and the expiry of download URLs.
    `queued_phases` writes the Queued and ReadyToStart phases of newer Velero releases
    before InProgress, when the installed CRD's phase enum allows them (v1.16's does not).
    `tick` is how often the server thread wakes without events, `progress_interval` the
    least time between two progress writes of one run, `resync_seconds` the period of the
    level-triggered resync of every Velero object.
    """

    def __init__(
        self,
        store: Store,
        *,
        seconds: float = 3.0,
        namespace: str = "velero",
        clock: Callable[[], float] = time.time,
        tick: float = 0.02,
        progress_interval: float = 0.25,
        resync_seconds: float = 1.0,
        queued_phases: bool = False,
    ) -> None:
        super().__init__(store, namespace, clock)
        self.seconds = seconds
        self.tick = tick
        self.progress_interval = progress_interval
        self.resync_seconds = resync_seconds
        self.queued_phases = queued_phases
        self.objects = ObjectStore()
        self.downloads = DownloadServer(self.objects, clock)
        self.injections = Injections()
        self._events: queue.Queue[tuple[str, str]] = queue.Queue()
        self._watchers: dict[str, Watcher] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = False
        self._dirty: set[tuple[str, str]] = set()
        self._pending_backups: set[str] = set()
        self._pending_restores: set[str] = set()
        self.backup_runs: dict[str, BackupRun] = {}
        self.restore_runs: dict[str, RestoreRun] = {}
        self._backup_slot: str | None = None
        self._restore_slot: str | None = None
        self.process = ServerProcess(store, namespace, clock)
        self._alive = False
        self._restart_requested = threading.Event()
        self._restart_done = threading.Event()
        self._last_step = time.monotonic()
        self._last_resync = 0.0

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> VeleroSimulator:
        if self._started:
            return self
        self._started = True
        self.downloads.start()
        self._ensure_watches()
        self._mark_in_progress_failed()  # what `velero server` does when it starts
        self._resume_runs()
        thread = threading.Thread(target=self._run, name="velero-server", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._started = False
        self._events.put(_STOP)
        for w in list(self._watchers.values()):
            self.store.stop_watch(w)
        for t in self._threads:
            t.join(timeout=5)
        self.downloads.stop()

    # ----- public controls ---------------------------------------------------------------

    def inject(self, target: str | None, outcome: str, **options: Any) -> Injection:
        """Force `outcome` on the next Backup/Restore named `target` (or with that prefix;
        None = any): "Failed" (failure_reason), "PartiallyFailed" (errors, warnings counts
        or a `results` dict shaped like BackupResults), "FailedValidation"
        (validation_errors) or "Stuck" (stays InProgress; the Velero pod turns not ready
        as if OOM-killed, and the whole server stops until a restart). Options: kind
        ("backup" | "restore" | "any"), times (0 = until cleared)."""
        return self.injections.add(Injection(outcome=outcome, target=target, **options))

    def clear_injections(self) -> None:
        self.injections.clear()

    def restart(self, timeout: float = 5.0) -> None:
        """Restart the simulated server process: InProgress work is marked Failed, a crashed
        server comes back, and a pod made not ready by a crash is ready again."""
        if not self._started or self._stop.is_set():
            self._server_start()
            return
        self._restart_done.clear()
        self._restart_requested.set()
        self._events.put(("", "wake"))
        self._restart_done.wait(timeout)

    @property
    def alive(self) -> bool:
        """Whether the simulated server was running at its last tick."""
        return self._alive

    @property
    def crashed(self) -> bool:
        """Whether a simulated OOM kill has stopped the server (until it restarts)."""
        return self.process.crashed

    @property
    def download_base_url(self) -> str:
        return self.downloads.base_url

    def dump(self) -> dict[str, Any]:
        """The object storage, for the sandbox snapshot file (runs are not kept: a
        restarted server fails what was InProgress, as Velero does)."""
        return {"version": 1, "objectStorage": self.objects.dump()}

    def load(self, state: Mapping[str, Any]) -> None:
        self.objects.load(dict(state.get("objectStorage") or {}))

    # ----- helpers for the controller modules --------------------------------------------

    def csi_enabled(self) -> bool:
        return self.process.csi_enabled()

    def due(self, run: Any, key: tuple[Any, ...]) -> bool:
        """Throttle status writes: at most one per progress_interval, and only on change."""
        if key == run.written or run.elapsed - run.last_write < self.progress_interval:
            return False
        run.last_write, run.written = run.elapsed, key
        return True

    def backup_slot_free(self, name: str) -> None:
        if self._backup_slot == name:
            self._backup_slot = None

    def restore_slot_free(self, name: str) -> None:
        if self._restore_slot == name:
            self._restore_slot = None

    def backup_in_progress(self, name: str) -> bool:
        """The backupTracker: from InProgress until a terminal phase."""
        return name in self.backup_runs

    def finalize_restore(self, name: str) -> None:
        finalize_restore(self, name)

    def crash(self, reason: str) -> None:
        """The Velero container is OOM-killed: the server stops; its pod turns not ready."""
        log.info("velero: simulated server crash (%s)", reason)
        self.process.crash()

    # ----- the server thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._events.get(timeout=self.tick)
            except queue.Empty:
                item = None
            batch = [item]
            while True:
                try:
                    batch.append(self._events.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                return
            for it in batch:
                if it is not None and it[0]:
                    self._dirty.add(it)
            try:
                self._step()
            except Exception:  # keep the server alive, as a crashing controller would restart
                log.exception("velero: simulated server step failed")

    def _step(self) -> None:
        now = time.monotonic()
        dt, self._last_step = now - self._last_step, now
        if self._restart_requested.is_set():
            self._restart_requested.clear()
            self._server_start()
            self._restart_done.set()
        if now - self._last_resync >= self.resync_seconds:
            self._last_resync = now
            self._ensure_watches()
            self._resync()
        self._alive = self._probe_alive()
        if not self._alive:
            return
        dirty, self._dirty = self._dirty, set()
        for plural, name in sorted(dirty):
            self._reconcile(plural, name)
        self._schedule()
        for name, run in list(self.backup_runs.items()):
            if not advance_backup(self, run, dt):
                self.backup_runs.pop(name, None)
                self.backup_slot_free(name)
        for name, rrun in list(self.restore_runs.items()):
            if not advance_restore(self, rrun, dt):
                self.restore_runs.pop(name, None)
                self.restore_slot_free(name)

    def _ensure_watches(self) -> None:
        for plural in _KINDS:
            if plural in self._watchers:
                continue
            rt = self.store.registry.lookup(GROUP, "v1", plural)
            if rt is None:
                continue
            watcher = self.store.watch(rt, self.namespace)
            self._watchers[plural] = watcher
            thread = threading.Thread(
                target=self._forward, args=(plural, watcher), name=f"velero-watch-{plural}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _forward(self, plural: str, watcher: Watcher) -> None:
        while True:
            item = watcher.events.get()
            if item is None:
                return
            _, obj = item
            self._events.put((plural, obj["metadata"]["name"]))

    def _resync(self) -> None:
        """The periodic enqueue: every object again (level-triggered), plus time-based work."""
        for plural in self._watchers:
            for obj in self.list(self.rt(plural)):
                self._dirty.add((plural, obj["metadata"]["name"]))
        if self._alive and "downloadrequests" in self._watchers:
            for name in expired_download_requests(self):
                self._dirty.add(("downloadrequests", name))
        if self._alive and "backups" in self._watchers and "deletebackuprequests" in self._watchers:
            expire_backups(self)

    def _reconcile(self, plural: str, name: str) -> None:
        if plural == "downloadrequests":
            reconcile_download_request(self, name)
        elif plural == "deletebackuprequests":
            reconcile_delete_request(self, name)
        elif plural == "backups":
            obj = self.get(self.rt("backups"), name)
            if obj is None:
                self.backup_runs.pop(name, None)
                self.backup_slot_free(name)
                self._pending_backups.discard(name)
            elif (obj.get("status") or {}).get("phase") in (None, "", "New") and not obj["metadata"].get(
                "deletionTimestamp"
            ):
                self._pending_backups.add(name)
                self._queued("backups", obj)
        elif plural == "restores":
            obj = self.get(self.rt("restores"), name)
            if obj is None:
                self.restore_runs.pop(name, None)
                self.restore_slot_free(name)
                self._pending_restores.discard(name)
                return
            if obj["metadata"].get("deletionTimestamp"):
                finalize_restore(self, name)
                return
            add_finalizer(self, obj)
            if (obj.get("status") or {}).get("phase") in (None, "", "New"):
                self._pending_restores.add(name)
                self._queued("restores", obj)

    def _phase_allowed(self, plural: str, phase: str) -> bool:
        schema = self.rt(plural).schema or {}
        prop = (((schema.get("properties") or {}).get("status") or {}).get("properties") or {}).get("phase") or {}
        return "enum" not in prop or phase in prop["enum"]

    def _queued(self, plural: str, obj: Obj) -> None:
        if self.queued_phases and self._phase_allowed(plural, QUEUED):
            self.patch(self.rt(plural), obj["metadata"]["name"],
                       lambda cur: cur.setdefault("status", {}).update(phase=QUEUED))

    def _next(self, plural: str, pending: set[str]) -> Obj | None:
        rt = self.rt(plural)
        candidates = []
        for name in list(pending):
            obj = self.get(rt, name)
            phase = (obj or {}).get("status", {}).get("phase") if obj else None
            if obj is None or phase not in (None, "", "New", QUEUED) or obj["metadata"].get("deletionTimestamp"):
                pending.discard(name)
                continue
            candidates.append(obj)
        if not candidates:
            return None
        candidates.sort(key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))
        chosen = candidates[0]
        pending.discard(chosen["metadata"]["name"])
        if self.queued_phases and self._phase_allowed(plural, READY_TO_START):
            chosen = self.patch(rt, chosen["metadata"]["name"],
                                lambda cur: cur.setdefault("status", {}).update(phase=READY_TO_START)) or chosen
        return chosen

    def _schedule(self) -> None:
        """Start waiting work while the one-at-a-time slots are free."""
        while self._backup_slot is None and self._pending_backups:
            backup = self._next("backups", self._pending_backups)
            if backup is None:
                break
            run = start_backup(self, backup)
            if run is not None:
                self.backup_runs[run.name] = run
                self._backup_slot = run.name
        while self._restore_slot is None and self._pending_restores:
            restore = self._next("restores", self._pending_restores)
            if restore is None:
                break
            rrun = start_restore(self, restore)
            if rrun is not None:
                self.restore_runs[rrun.name] = rrun
                self._restore_slot = rrun.name

    # ----- restarts ---------------------------------------------------------------------

    def _probe_alive(self) -> bool:
        alive, restarted = self.process.check()
        if restarted:
            self._server_start()
        return alive

    def _server_start(self) -> None:
        """What a (re)started Velero server does: fail InProgress work, forget its runs."""
        self._mark_in_progress_failed()
        self.process.recovered()

    def _mark_in_progress_failed(self) -> None:
        now = stamp(self.clock())
        for plural, what, runs in (("backups", "backup", self.backup_runs), ("restores", "restore", self.restore_runs)):
            rt = self.store.registry.lookup(GROUP, "v1", plural)
            if rt is None:
                continue
            for obj in self.list(rt):
                name = obj["metadata"]["name"]
                if (obj.get("status") or {}).get("phase") != IN_PROGRESS:
                    continue
                reason = f'found a {what} with status "{IN_PROGRESS}" during the server starting, mark it as "{FAILED}"'
                self.patch(rt, name, _failed(reason, now))
                runs.pop(name, None)
        self._backup_slot = self._backup_slot if self._backup_slot in self.backup_runs else None
        self._restore_slot = self._restore_slot if self._restore_slot in self.restore_runs else None

    def _resume_runs(self) -> None:
        """Backups and restores a previous server left after InProgress are carried on."""
        if self.store.registry.lookup(GROUP, "v1", "backups") is not None:
            for obj in self.list(self.rt("backups")):
                run = resume_backup(self, obj)
                if run is not None:
                    self.backup_runs[run.name] = run
        if self.store.registry.lookup(GROUP, "v1", "restores") is not None:
            for obj in self.list(self.rt("restores")):
                phase = (obj.get("status") or {}).get("phase")
                if phase in (FINALIZING, FINALIZING_PARTIALLY_FAILED):
                    name = obj["metadata"]["name"]
                    self.restore_runs[name] = RestoreRun(
                        name, (obj.get("spec") or {}).get("backupName", ""), "", Layout(), [], None,
                        LogBuffer(self.clock), phase=phase, elapsed=0.75 * self.seconds,
                    )


def _failed(reason: str, now: str) -> Callable[[Obj], None]:
    def mutate(cur: Obj) -> None:
        cur.setdefault("status", {}).update(phase=FAILED, failureReason=reason, completionTimestamp=now)

    return mutate
