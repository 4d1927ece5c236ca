"""Files Velero keeps in object storage, fetched the way `velero backup describe` does.

A restore must delete exactly the PVCs a backup holds, and only Velero knows that list:
it sits gzipped in the backup storage location. Asking for it through a DownloadRequest
needs nothing but API access (no S3 credentials, no `velero` binary in a pod): Velero
answers with a pre-signed URL. The request object is deleted afterwards so they do not
pile up in the Velero namespace.
"""

from __future__ import annotations

import gzip
import json
import logging
import urllib.error
import urllib.request
import uuid
import zlib
from typing import Any
from urllib.parse import urlsplit

from . import resources as R
from .client import Cluster
from .errors import ClusterError, Timeout
from .watch import Collection, wait_for

log = logging.getLogger("ragbot.k8s.download")

#: Target kinds whose body is not gzipped (reference/velero-api.md).
NOT_GZIPPED = frozenset({"BackupContents"})
PVC_KEY = "v1/PersistentVolumeClaim"
MAX_BYTES = 256 * 1024 * 1024  # a resource list is kilobytes; refuse to fill memory


class DownloadError(ClusterError):
    """Velero did not hand out the file, or the file could not be fetched or read."""


def download(
    cluster: Cluster, namespace: str, target_kind: str, target_name: str, *, timeout: float = 60.0
) -> bytes:
    """Ask Velero for one file of a backup or restore and return its (gunzipped) bytes."""
    name = f"{target_name}-{uuid.uuid4()}"
    body = {
        "apiVersion": R.DOWNLOAD_REQUEST.api_version,
        "kind": R.DOWNLOAD_REQUEST.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"target": {"kind": target_kind, "name": target_name}},
    }
    what = f"{target_kind} of {target_name}"
    deadline = cluster.monotonic() + timeout
    R.create(cluster, R.DOWNLOAD_REQUEST, namespace, body)
    try:
        url = _wait_url(cluster, namespace, name, what, timeout)
        remaining = max(1.0, deadline - cluster.monotonic())
        data = _fetch(url, what, remaining)
    finally:
        _cleanup(cluster, namespace, name)
    if target_kind in NOT_GZIPPED:
        return data
    return _gunzip(data, what)


def _wait_url(cluster: Cluster, namespace: str, name: str, what: str, timeout: float) -> str:
    def ready(view: Collection) -> str | None:
        obj = view.get(namespace, name)
        if obj is None:
            return None
        status = obj.get("status") or {}
        url = status.get("downloadURL")
        if status.get("phase") == "Processed" and url:
            return str(url)
        return None

    try:
        return wait_for(
            cluster, R.DOWNLOAD_REQUEST, namespace, ready, timeout=timeout,
            what=f"DownloadRequest {name}", field_selector=f"metadata.name={name}",
        )
    except Timeout:
        raise DownloadError(
            f"Velero did not answer DownloadRequest {namespace}/{name} for the {what} within "
            f"{timeout:.0f}s: is the Velero server running, and is the backup in its storage "
            "location?"
        ) from None


def _fetch(url: str, what: str, timeout: float) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"Velero gave an unusable download URL for the {what}: {url[:200]!r}")
    where = f"{parts.scheme}://{parts.netloc}"
    request = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            data: bytes = resp.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"downloading the {what} from {where} failed: HTTP {exc.code} {exc.reason} "
            "(an expired pre-signed URL or wrong storage credentials give 403)"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"cannot download the {what} from {where}: {reason} (if that address is only "
            "reachable inside the cluster, set the BackupStorageLocation's config.publicUrl)"
        ) from None
    if len(data) > MAX_BYTES:
        raise DownloadError(f"the {what} is larger than {MAX_BYTES // 2**20} MiB; refusing it")
    return data


def _gunzip(data: bytes, what: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        raise DownloadError(f"the {what} Velero served is not gzip data ({len(data)} bytes)") from None


def _cleanup(cluster: Cluster, namespace: str, name: str) -> None:
    # Best effort: Velero expires them anyway, and a failure here must not hide the result.
    try:
        R.delete(cluster, R.DOWNLOAD_REQUEST, namespace, name)
    except ClusterError as exc:
        log.warning("could not delete DownloadRequest %s/%s: %s", namespace, name, exc)


def backup_resource_list(
    cluster: Cluster, namespace: str, backup: str, *, timeout: float = 60.0
) -> dict[str, list[str]]:
    """What a backup holds: `{"<group/>version/Kind": ["ns/name" | "name", ...]}`."""
    raw = download(cluster, namespace, "BackupResourceList", backup, timeout=timeout)
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        raise DownloadError(f"the resource list of backup {backup} is not JSON") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in parsed.values()
    ):
        raise DownloadError(
            f"the resource list of backup {backup} is not a map of kind to object names"
        )
    return {str(k): list(v) for k, v in parsed.items()}


def pvcs_in(resource_list: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The (namespace, name) of every PVC in a resource list, in its order, once each."""
    out: dict[tuple[str, str], None] = {}
    for entry in resource_list.get(PVC_KEY, []):
        ns, sep, name = entry.partition("/")
        if sep and ns and name:
            out.setdefault((ns, name), None)
    return list(out)
