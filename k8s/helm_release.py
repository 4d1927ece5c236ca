"""The Helm release record: decode and encode the Secrets Helm keeps its releases in.

ragbot has to do `helm uninstall` through the Kubernetes API alone (no `helm` binary in
the bot's image, and the playbook's `Helm/<release>` cleanup entries must still work).
That needs Helm's storage format read exactly as Helm reads it, including its quirks:
two base64 layers on the wire, gzip only when the magic bytes say so, the latest
revision chosen by integer version and never by the label string, the manifest split
at `---` lines and sorted in Helm's UninstallOrder, and `helm.sh/resource-policy`
read from the stored manifest. The sandbox seed writes release records with the same
code, so a record the seed writes is one Helm could read and vice versa.

Everything here is pure: no I/O, no clock. Facts are from
reference/helm-release-storage.md (helm v4.2.4, checked against v3.21.4).
"""

from __future__ import annotations

import base64
import binascii
import copy
import gzip
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

#: Kubernetes rejects a Secret whose data values sum to more than this many bytes
#: ("data: Too long: must have at most 1048576 bytes"); Helm never splits a record.
MAX_SECRET_DATA_BYTES = 1_048_576
SECRET_TYPE = "helm.sh/release.v1"
_GZIP_MAGIC = b"\x1f\x8b\x08"
_RELEASE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

#: helm pkg/release/v1/util/kind_sorter.go, UninstallOrder (v4.2.4). Unlisted kinds,
#: i.e. every custom resource, go last in alphabetical order.
UNINSTALL_ORDER: tuple[str, ...] = (
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "Ingress",
    "IngressClass",
    "Service",
    "CronJob",
    "Job",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "Deployment",
    "ReplicaSet",
    "ReplicationController",
    "Pod",
    "DaemonSet",
    "RoleBindingList",
    "RoleBinding",
    "RoleList",
    "Role",
    "ClusterRoleBindingList",
    "ClusterRoleBinding",
    "ClusterRoleList",
    "ClusterRole",
    "CustomResourceDefinition",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "ConfigMap",
    "SecretList",
    "Secret",
    "ServiceAccount",
    "PodDisruptionBudget",
    "PodSecurityPolicy",
    "LimitRange",
    "ResourceQuota",
    "NetworkPolicy",
    "Namespace",
    "PriorityClass",
)
_ORDER_INDEX = {kind: i for i, kind in enumerate(UNINSTALL_ORDER)}
RESOURCE_POLICY_ANNOTATION = "helm.sh/resource-policy"


class CorruptReleaseError(ValueError):
    """A release record Helm itself could not use (bad base64/gzip/JSON or manifest YAML)."""


class ReleaseTooLargeError(ValueError):
    """The encoded record exceeds the Secret size limit; the API server would refuse it."""


@dataclass(frozen=True)
class HelmHook:
    """A chart hook stored with the release; an API-only uninstall must report those it skips."""

    name: str
    kind: str
    events: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class HelmRelease:
    """One decoded revision of a release.

    `raw` is the whole JSON document, kept so an uninstall can store the record back
    with a new status (see `release_dict_with_status`) without losing fields Helm
    wrote that this class does not model. It takes no part in equality.
    """

    name: str
    namespace: str
    version: int
    status: str
    manifest: str
    hooks: tuple[HelmHook, ...]
    chart_name: str
    chart_version: str
    description: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def secret_name(self) -> str:
        """The storage key Helm derives from the JSON name and version."""
        return secret_name(self.name, self.version)


@dataclass(frozen=True)
class ManifestObject:
    """One object of a release manifest, as `helm uninstall` addresses it.

    `namespace` is the document's own or the release namespace; for cluster-scoped
    kinds the caller must drop it (scope comes from discovery, as in Helm).
    `resource_policy` is the raw `helm.sh/resource-policy` annotation (None when
    absent). Helm deletes only objects without it: `keep` objects are skipped and
    reported, any other value silently drops the object (Helm's quirk).
    """

    api_version: str
    kind: str
    name: str
    namespace: str
    keep: bool = False
    resource_policy: str | None = None

    @property
    def helm_deletes(self) -> bool:
        """True when `helm uninstall` would issue a DELETE for this object."""
        return self.resource_policy is None


def secret_name(release: str, version: int) -> str:
    """`sh.helm.release.v1.<release>.v<version>`, the Secret name Helm uses."""
    return f"sh.helm.release.v1.{release}.v{version}"


def _corrupt(secret: Mapping[str, Any], why: str) -> CorruptReleaseError:
    meta = secret.get("metadata") or {}
    where = f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"
    return CorruptReleaseError(f"corrupted release record in Secret {where}: {why}")


def decode_release_json(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The release JSON of a Secret as the API returns it (data values base64 on the wire)."""
    wire = (secret.get("data") or {}).get("release")
    if not isinstance(wire, str) or not wire:
        raise _corrupt(secret, "no data.release")
    try:
        helm_text = base64.b64decode(wire, validate=True)
        payload = base64.b64decode(helm_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _corrupt(secret, f"data.release is not base64 of base64 ({exc})") from exc
    if len(payload) > 3 and payload[:3] == _GZIP_MAGIC:
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as exc:
            raise _corrupt(secret, f"bad gzip stream ({exc})") from exc
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(secret, f"release is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise _corrupt(secret, "release JSON is not an object")
    return doc


def decode_release_secret(secret: Mapping[str, Any]) -> HelmRelease:
    """Decode a release Secret: base64 twice, gunzip if gzip, JSON-parse."""
    doc = decode_release_json(secret)
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _corrupt(secret, f"version {version!r} is not an integer")
    info = doc.get("info") or {}
    chart_meta = (doc.get("chart") or {}).get("metadata") or {}
    hooks = tuple(
        HelmHook(
            name=str(h.get("name", "")),
            kind=str(h.get("kind", "")),
            events=tuple(str(e) for e in h.get("events") or ()),
            path=str(h.get("path", "")),
        )
        for h in doc.get("hooks") or ()
        if isinstance(h, Mapping)
    )
    return HelmRelease(
        name=str(doc.get("name", "")),
        namespace=str(doc.get("namespace", "")),
        version=version,
        status=str(info.get("status", "unknown")),
        manifest=str(doc.get("manifest") or ""),
        hooks=hooks,
        chart_name=str(chart_meta.get("name", "")),
        chart_version=str(chart_meta.get("version", "")),
        description=str(info.get("description", "")),
        raw=doc,
    )


def latest_release(
    secrets: Iterable[Mapping[str, Any]], *, name: str | None = None
) -> HelmRelease | None:
    """The revision `helm uninstall` acts on: the highest JSON version, any status.

    Compared as integers (revision 10 beats 9). Undecodable records are skipped, as
    Helm's storage driver skips them when listing. `name` keeps only that release,
    for callers that listed by `owner=helm` alone.
    """
    best: HelmRelease | None = None
    for secret in secrets:
        try:
            rel = decode_release_secret(secret)
        except CorruptReleaseError:
            continue
        if name is not None and rel.name != name:
            continue
        if best is None or rel.version > best.version:
            best = rel
    return best


_DOC_SPLIT = re.compile(r"(?m)^---")


def _kind_key(kind: str) -> tuple[int, str]:
    idx = _ORDER_INDEX.get(kind)
    return (len(UNINSTALL_ORDER), kind) if idx is None else (idx, "")


def _to_object(doc: Any, release: HelmRelease) -> ManifestObject:
    if not isinstance(doc, Mapping):
        raise CorruptReleaseError(
            f"corrupted release record {release.secret_name}: a manifest item is not a mapping"
        )
    meta = doc.get("metadata") or {}
    kind, api_version, name = doc.get("kind"), doc.get("apiVersion"), meta.get("name")
    if not (kind and api_version and name):
        raise CorruptReleaseError(
            f"corrupted release record {release.secret_name}: a manifest document lacks "
            "apiVersion, kind or metadata.name"
        )
    policy = (meta.get("annotations") or {}).get(RESOURCE_POLICY_ANNOTATION)
    policy = None if policy is None else str(policy)
    return ManifestObject(
        api_version=str(api_version),
        kind=str(kind),
        name=str(name),
        namespace=str(meta.get("namespace") or release.namespace),
        keep=policy is not None and policy.strip().lower() == "keep",
        resource_policy=policy,
    )


def manifest_objects(release: HelmRelease) -> list[ManifestObject]:
    """The objects `helm uninstall` would address, in its deletion order.

    Documents are stable-sorted by their own kind first, then `*List` documents are
    flattened in place, as Helm sorts before its resource builder flattens.
    """
    docs: list[Mapping[str, Any]] = []
    for text in _DOC_SPLIT.split(release.manifest):
        if not text.strip():
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CorruptReleaseError(
                f"corrupted release record {release.secret_name}: {exc}"
            ) from exc
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise CorruptReleaseError(
                f"corrupted release record {release.secret_name}: a manifest document is "
                "not a mapping"
            )
        docs.append(doc)
    docs.sort(key=lambda d: _kind_key(str(d.get("kind") or "")))
    out: list[ManifestObject] = []
    for doc in docs:
        kind = str(doc.get("kind") or "")
        items = doc.get("items")
        if kind.endswith("List") and isinstance(items, list):
            out.extend(_to_object(item, release) for item in items)
        else:
            out.append(_to_object(doc, release))
    return out


def _unix_seconds(stamp: Any) -> int:
    if not isinstance(stamp, str) or not stamp:
        return 0
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def encode_release_secret(release_dict: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The Secret Helm's storage driver would write for this release JSON.

    `data.release` is base64(base64(gzip(json))): Helm's own base64 string, base64'd
    once more because `data` values are base64 on the wire. `createdAt`/`modifiedAt`
    come from `info.last_deployed` (falling back to `first_deployed`) so the result is
    deterministic. Raises ReleaseTooLargeError past the 1 MiB Secret limit.
    """
    name = release_dict.get("name")
    version = release_dict.get("version")
    if not isinstance(name, str) or len(name) > 53 or not _RELEASE_NAME_RE.match(name):
        raise ValueError(f"invalid release name {name!r}: at most 53 chars, DNS-1123")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"invalid release version {version!r}: a positive integer")
    info = release_dict.get("info") or {}
    status = str(info.get("status") or "unknown")
    body = json.dumps(release_dict, separators=(",", ":"), ensure_ascii=False).encode()
    helm_text = base64.b64encode(gzip.compress(body, compresslevel=9, mtime=0))
    if len(helm_text) > MAX_SECRET_DATA_BYTES:
        raise ReleaseTooLargeError(
            f"release {name} v{version} encodes to {len(helm_text)} bytes; a Secret holds "
            f"at most {MAX_SECRET_DATA_BYTES} (data: Too long, helm/helm#7126)"
        )
    stamp = str(
        _unix_seconds(info.get("last_deployed")) or _unix_seconds(info.get("first_deployed"))
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(name, version),
            "namespace": namespace,
            "labels": {
                "name": name,
                "owner": "helm",
                "status": status,
                "version": str(version),
                "createdAt": stamp,
                "modifiedAt": stamp,
            },
        },
        "type": SECRET_TYPE,
        "data": {"release": base64.b64encode(helm_text).decode("ascii")},
    }


def release_dict_with_status(
    release: HelmRelease, status: str, *, description: str | None = None, deleted: str | None = None
) -> dict[str, Any]:
    """A copy of the release JSON with a new `info.status` (and description/deleted time).

    What an uninstall stores back (`uninstalling`, then `uninstalled` with
    --keep-history) before re-encoding it with `encode_release_secret`.
    """
    doc = copy.deepcopy(dict(release.raw))
    info = dict(doc.get("info") or {})
    info["status"] = status
    if description is not None:
        info["description"] = description
    if deleted is not None:
        info["deleted"] = deleted
    doc["info"] = info
    return doc
