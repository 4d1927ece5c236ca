"""Facts and small helpers shared by the pieces of the simulated Velero server.

The simulation is split by controller (backup, restore, download, deletion) like
Velero's own `pkg/controller`; what they all need to agree on lives here: Velero's
label names and defaults, its name shortening for label values, its include/exclude
matching, its `results.Result` shape, and the outcomes a test can inject. Facts come
from Velero v1.16.2 (reference/velero-api.md, and the source files named below).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config.durations import DurationError, format_go_duration_ns, parse_go_duration_ns

from .apiserver.resources import Registry, ResourceType

Obj = dict[str, Any]

GROUP = "velero.io"
BACKUP_NAME_LABEL = "velero.io/backup-name"
BACKUP_UID_LABEL = "velero.io/backup-uid"
RESTORE_NAME_LABEL = "velero.io/restore-name"
SCHEDULE_NAME_LABEL = "velero.io/schedule-name"
STORAGE_LOCATION_LABEL = "velero.io/storage-location"
EXCLUDE_FROM_BACKUP_LABEL = "velero.io/exclude-from-backup"
VOLUME_SNAPSHOT_LABEL = "velero.io/volume-snapshot-name"
VSCLASS_SELECTOR_LABEL = "velero.io/csi-volumesnapshot-class"
MUST_INCLUDE_ANNOTATION = "backup.velero.io/must-include-additional-items"
EXTERNAL_RESOURCES_FINALIZER = "restores.velero.io/external-resources-finalizer"

#: pkg/backup: BackupVersion (deprecated status.version) and BackupFormatVersion.
BACKUP_VERSION = 1
BACKUP_FORMAT_VERSION = "1.1.0"
#: Server defaults (pkg/cmd/server/config): --default-backup-ttl, CSI and item timeouts.
DEFAULT_TTL_NS = 720 * 3600 * 10**9
DEFAULT_CSI_SNAPSHOT_TIMEOUT_NS = 10 * 60 * 10**9
DEFAULT_ITEM_OPERATION_TIMEOUT_NS = 4 * 3600 * 10**9
RESOURCE_TIMEOUT = "10m0s"
#: persistence.DownloadURLTTL
DOWNLOAD_URL_TTL = 600.0
#: backup_deletion_controller: processed requests older than this are removed.
DELETE_REQUEST_MAX_AGE = 24 * 3600.0

#: restore_controller.go nonRestorableResources: appended to every Restore's excludes.
NON_RESTORABLE = (
    "nodes",
    "events",
    "events.events.k8s.io",
    "backups.velero.io",
    "restores.velero.io",
    "resticrepositories.velero.io",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
    "backuprepositories.velero.io",
)
#: pkg/cmd/server/config defaultRestorePriorities (group-resource strings, typos included).
RESTORE_HIGH_PRIORITIES = (
    "customresourcedefinitions",
    "namespaces",
    "storageclasses",
    "volumesnapshotclass.snapshot.storage.k8s.io",
    "volumesnapshotcontents.snapshot.storage.k8s.io",
    "volumesnapshots.snapshot.storage.k8s.io",
    "datauploads.velero.io",
    "persistentvolumes",
    "persistentvolumeclaims",
    "serviceaccounts",
    "secrets",
    "configmaps",
    "limitranges",
    "pods",
    "replicasets.apps",
    "clusterclasses.cluster.x-k8s.io",
    "endpoints",
    "services",
)
RESTORE_LOW_PRIORITIES = (
    "clusterbootstraps.run.tanzu.vmware.com",
    "clusters.cluster.x-k8s.io",
    "clusterresourcesets.addons.cluster.x-k8s.io",
    "apps.kappctrl.k14s.io",
    "packageinstalls.packaging.carvel.dev",
)
#: pkg/restore resourceMustHave: restored whatever the filters say.
RESTORE_MUST_HAVE = ("datauploads.velero.io", "volumesnapshotcontents.snapshot.storage.k8s.io")
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"

# Backup and Restore phases (backup_types.go, restore_types.go).
NEW = "New"
FAILED_VALIDATION = "FailedValidation"
IN_PROGRESS = "InProgress"
WAITING = "WaitingForPluginOperations"
WAITING_PARTIALLY_FAILED = "WaitingForPluginOperationsPartiallyFailed"
FINALIZING = "Finalizing"
FINALIZING_PARTIALLY_FAILED = "FinalizingPartiallyFailed"
COMPLETED = "Completed"
PARTIALLY_FAILED = "PartiallyFailed"
FAILED = "Failed"
DELETING = "Deleting"
QUEUED = "Queued"
READY_TO_START = "ReadyToStart"
TERMINAL = frozenset({FAILED_VALIDATION, COMPLETED, PARTIALLY_FAILED, FAILED})


def valid_label_value(name: str) -> str:
    """label.GetValidName: names over 63 characters become 57 + 6 hex of their sha256."""
    if len(name) <= 63:
        return name
    return name[:57] + hashlib.sha256(name.encode()).hexdigest()[:6]


def stamp(when: float) -> str:
    """metav1.Time as JSON: RFC 3339 in UTC, second resolution."""
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_ns(text: Any) -> int:
    """A metav1.Duration field's value in nanoseconds; absent or invalid counts as 0."""
    if not isinstance(text, str) or not text:
        return 0
    try:
        return parse_go_duration_ns(text)
    except DurationError:
        return 0


def format_duration_ns(ns: int) -> str:
    return format_go_duration_ns(ns)


def group_resource(rt: ResourceType) -> str:
    """schema.GroupResource.String(): `plural.group`, core resources without a group."""
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def resource_key(obj: Mapping[str, Any]) -> str:
    """The BackupResourceList key Velero writes: `<groupVersion>/<Kind>`."""
    return f"{obj.get('apiVersion', '')}/{obj.get('kind', '')}"


def item_entry(obj: Mapping[str, Any]) -> str:
    m = obj.get("metadata") or {}
    ns = m.get("namespace") or ""
    return f"{ns}/{m.get('name', '')}" if ns else str(m.get("name", ""))


def resolve_resource(registry: Registry, name: str) -> str:
    """A user's resource name (`pods`, `deployments`, `replicasets.apps`, `deploy`) as the
    group-resource string discovery resolves it to; unknown names stay as written, as
    Velero keeps them (they then match nothing)."""
    if name == "*" or any(ch in name for ch in "*?["):
        return name
    types = registry.all()
    for rt in types:
        if group_resource(rt) == name:
            return name
    plural, _, group = name.partition(".")
    matches = [
        rt
        for rt in types
        if (not group or rt.group == group or rt.group.startswith(group + "."))
        and plural in (rt.plural, rt.singular, rt.kind.lower(), *rt.short_names)
    ]
    if not matches:
        return name
    matches.sort(key=lambda rt: (rt.group != "", rt.group))  # core wins, as discovery does
    return group_resource(matches[0])


@dataclass(frozen=True)
class IncludesExcludes:
    """collections.IncludesExcludes: glob includes and excludes; no includes = everything."""

    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        includes: Iterable[str] | None,
        excludes: Iterable[str] | None,
        registry: Registry | None = None,
    ) -> IncludesExcludes:
        def norm(values: Iterable[str] | None) -> tuple[str, ...]:
            out = [str(v) for v in values or () if v]
            return tuple(resolve_resource(registry, v) for v in out) if registry else tuple(out)

        return cls(norm(includes), norm(excludes))

    def include_everything(self) -> bool:
        return not self.excludes and (not self.includes or "*" in self.includes)

    def excluded(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.excludes)

    def should_include(self, name: str) -> bool:
        if self.excluded(name):
            return False
        return not self.includes or "*" in self.includes or any(
            fnmatch.fnmatchcase(name, p) for p in self.includes
        )


def new_result() -> dict[str, Any]:
    """An empty results.Result (every field omitempty)."""
    return {}


def result_add(result: dict[str, Any], namespace: str | None, message: str) -> None:
    """results.Result.Add / AddVeleroError: namespace None is Velero's own list."""
    if namespace is None:
        result.setdefault("velero", []).append(message)
    elif namespace == "":
        result.setdefault("cluster", []).append(message)
    else:
        result.setdefault("namespaces", {}).setdefault(namespace, []).append(message)


def result_count(result: Mapping[str, Any]) -> int:
    return (
        len(result.get("velero") or ())
        + len(result.get("cluster") or ())
        + sum(len(v) for v in (result.get("namespaces") or {}).values())
    )


def log_hook_message(message: str, *, resource: str = "", name: str = "", error: str = "") -> str:
    """How Velero's LogHook words a warning/error entry in BackupResults."""
    out = ""
    if resource:
        out += f" resource: /{resource}"
    if name:
        out += f" name: /{name}"
    out += f" message: /{message}"
    if error:
        out += f" error: /{error}"
    return out


class LogBuffer:
    """A backup or restore log in logrus text format, as `velero backup logs` prints it."""

    def __init__(self, clock: Any, **context: str) -> None:
        self._clock = clock
        self._context = context
        self.lines: list[str] = []

    def _write(self, level: str, msg: str, fields: Mapping[str, Any]) -> None:
        when = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [f'time="{when}"', f"level={level}", f'msg="{_escape(msg)}"']
        for key, value in {**self._context, **fields}.items():
            if value in (None, ""):
                continue
            text = str(value)
            parts.append(f'{key}="{_escape(text)}"' if " " in text or '"' in text else f"{key}={text}")
        self.lines.append(" ".join(parts))

    def info(self, msg: str, **fields: Any) -> None:
        self._write("info", msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._write("warning", msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._write("error", msg, fields)

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# ----- injectable outcomes ----------------------------------------------------------------

OUTCOMES = ("Failed", "PartiallyFailed", "FailedValidation", "Stuck")


@dataclass
class Injection:
    """An outcome forced on the next Backup and/or Restore whose name matches `target`.

    `target` None matches any name; otherwise the exact name or a name prefix. `kind` is
    "backup", "restore" or "any". `times` is how many operations it applies to (0 =
    every matching one until cleared).
    """

    outcome: str
    target: str | None = None
    kind: str = "any"
    times: int = 1
    failure_reason: str = ""
    errors: int = 1
    warnings: int = 0
    validation_errors: tuple[str, ...] = ()
    results: dict[str, Any] | None = None
    used: int = 0

    def matches(self, kind: str, name: str) -> bool:
        if self.kind not in ("any", kind):
            return False
        if self.times and self.used >= self.times:
            return False
        return self.target is None or name == self.target or name.startswith(self.target)


@dataclass
class Injections:
    """Thread-safe list of pending injections: tests add, the server thread takes."""

    items: list[Injection] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, injection: Injection) -> Injection:
        if injection.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {injection.outcome!r}; one of {', '.join(OUTCOMES)}")
        if injection.kind not in ("any", "backup", "restore"):
            raise ValueError(f"kind must be backup, restore or any, not {injection.kind!r}")
        with self.lock:
            self.items.append(injection)
        return injection

    def take(self, kind: str, name: str) -> Injection | None:
        with self.lock:
            for inj in self.items:
                if inj.matches(kind, name):
                    inj.used += 1
                    if inj.times and inj.used >= inj.times:
                        self.items.remove(inj)
                    return inj
        return None

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
