"""The simulated object storage behind each BackupStorageLocation.

Velero keeps everything about a backup in a bucket, not in the cluster: the tarball of
items, the resource list, results, logs. ragbot reads some of it back through
DownloadRequests, and a Restore reads the tarball, so the sandbox keeps the same files
under Velero's own key layout (pkg/persistence/object_store_layout.go). Objects are
held as (kind, JSON-able payload) and rendered to bytes only when served, which keeps
`dump()`/`load()` plain JSON for the sandbox snapshot file.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from typing import Any

from .velero_common import BACKUP_FORMAT_VERSION, Obj

#: Payload kinds: plain JSON, gzipped JSON, gzipped text, and a backup tarball.
JSON, JSON_GZ, TEXT_GZ, TARBALL = "json", "json.gz", "text.gz", "tar.gz"


class Layout:
    """ObjectStoreLayout: keys under the BSL's optional prefix."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.strip("/")

    def _join(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def backup_dir(self, backup: str) -> str:
        return self._join("backups", backup) + "/"

    def restore_dir(self, restore: str) -> str:
        return self._join("restores", restore) + "/"

    def backup(self, backup: str, suffix: str) -> str:
        """`suffix` "" is velero-backup.json; otherwise `<backup><suffix>`."""
        name = "velero-backup.json" if not suffix else f"{backup}{suffix}"
        return self._join("backups", backup, name)

    def restore(self, restore: str, suffix: str) -> str:
        return self._join("restores", restore, f"restore-{restore}{suffix}")

    def restore_volume_info(self, restore: str) -> str:
        return self._join("restores", restore, f"{restore}-volumeinfo.json.gz")

    def download_key(self, kind: str, name: str) -> str | None:
        """objectBackupStore.GetDownloadURL's target kind -> key table."""
        backup_suffixes = {
            "BackupContents": ".tar.gz",
            "BackupLog": "-logs.gz",
            "BackupVolumeSnapshots": "-volumesnapshots.json.gz",
            "BackupItemOperations": "-itemoperations.json.gz",
            "BackupResourceList": "-resource-list.json.gz",
            "BackupResults": "-results.gz",
            "CSIBackupVolumeSnapshots": "-csi-volumesnapshots.json.gz",
            "CSIBackupVolumeSnapshotContents": "-csi-volumesnapshotcontents.json.gz",
            "BackupVolumeInfos": "-volumeinfo.json.gz",
        }
        restore_suffixes = {
            "RestoreLog": "-logs.gz",
            "RestoreResults": "-results.gz",
            "RestoreResourceList": "-resource-list.json.gz",
            "RestoreItemOperations": "-itemoperations.json.gz",
        }
        if kind in backup_suffixes:
            return self.backup(name, backup_suffixes[kind])
        if kind in restore_suffixes:
            return self.restore(name, restore_suffixes[kind])
        if kind == "RestoreVolumeInfo":
            return self.restore_volume_info(name)
        return None


class ObjectStore:
    """Buckets keyed by BSL name; each maps an object key to (kind, payload)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[str, tuple[str, Any]]] = {}

    def put(self, bsl: str, key: str, kind: str, payload: Any) -> None:
        with self._lock:
            self._buckets.setdefault(bsl, {})[key] = (kind, payload)

    def get(self, bsl: str, key: str) -> tuple[str, Any] | None:
        with self._lock:
            return self._buckets.get(bsl, {}).get(key)

    def payload(self, bsl: str, key: str) -> Any:
        entry = self.get(bsl, key)
        return None if entry is None else entry[1]

    def read(self, bsl: str, key: str) -> bytes | None:
        """The object's bytes as the S3 endpoint would return them."""
        entry = self.get(bsl, key)
        return None if entry is None else render(*entry)

    def keys(self, bsl: str, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(k for k in self._buckets.get(bsl, {}) if k.startswith(prefix))

    def delete_prefix(self, bsl: str, prefix: str) -> int:
        with self._lock:
            bucket = self._buckets.get(bsl, {})
            doomed = [k for k in bucket if k.startswith(prefix)]
            for k in doomed:
                del bucket[k]
            return len(doomed)

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                bsl: {key: [kind, payload] for key, (kind, payload) in bucket.items()}
                for bsl, bucket in self._buckets.items()
            }

    def load(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._buckets = {
                bsl: {key: (entry[0], entry[1]) for key, entry in bucket.items()}
                for bsl, bucket in (state or {}).items()
            }


def render(kind: str, payload: Any) -> bytes:
    if kind == JSON:
        return json.dumps(payload).encode()
    if kind == JSON_GZ:
        return gzip.compress(json.dumps(payload).encode(), mtime=0)
    if kind == TEXT_GZ:
        return gzip.compress(str(payload).encode(), mtime=0)
    if kind == TARBALL:
        return _tarball(payload)
    raise ValueError(f"unknown object kind {kind!r}")


def _tarball(items: list[dict[str, Any]]) -> bytes:
    """The backup tarball: metadata/version plus resources/<gr>/[<v>-preferredversion/]
    {namespaces/<ns>,cluster}/<name>.json for every item, as item_backupper writes it.

    Each payload entry is {"groupResource", "version", "object"}.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        _add(tar, "metadata/version", BACKUP_FORMAT_VERSION.encode())
        for entry in items:
            obj: Obj = entry["object"]
            m = obj.get("metadata") or {}
            ns, name = m.get("namespace") or "", m.get("name", "")
            scope = f"namespaces/{ns}" if ns else "cluster"
            data = json.dumps(obj).encode()
            gr = entry["groupResource"]
            _add(tar, f"resources/{gr}/{scope}/{name}.json", data)
            _add(tar, f"resources/{gr}/{entry['version']}-preferredversion/{scope}/{name}.json", data)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o755
    tar.addfile(info, io.BytesIO(data))
