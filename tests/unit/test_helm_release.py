"""The Helm release codec reads and writes records exactly as Helm's storage driver does."""

from __future__ import annotations

import base64
import gzip
import json
import random
from typing import Any

import pytest

from k8s.helm_release import (
    MAX_SECRET_DATA_BYTES,
    UNINSTALL_ORDER,
    CorruptReleaseError,
    HelmRelease,
    ManifestObject,
    ReleaseTooLargeError,
    decode_release_secret,
    encode_release_secret,
    latest_release,
    manifest_objects,
    release_dict_with_status,
)

MANIFEST = """---
# Source: vdb/templates/svc.yaml
apiVersion: v1
kind: Service
metadata:
  name: vdb
"""


def release(
    name: str = "vdb", version: int = 2, status: str = "deployed", manifest: str = MANIFEST
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "rag",
        "version": version,
        "info": {
            "first_deployed": "2025-01-01T00:00:00Z",
            "last_deployed": "2025-01-02T00:00:00Z",
            "description": "Upgrade complete",
            "status": status,
        },
        "chart": {"metadata": {"apiVersion": "v2", "name": "vdb", "version": "1.2.0"}},
        "config": {},
        "manifest": manifest,
        "hooks": [
            {
                "name": "vdb-cleanup",
                "kind": "Job",
                "path": "vdb/templates/cleanup.yaml",
                "manifest": "apiVersion: batch/v1\nkind: Job\n",
                "events": ["pre-delete"],
                "delete_policies": ["hook-succeeded"],
            }
        ],
    }


def raw_secret(payload: bytes, name: str = "sh.helm.release.v1.vdb.v1") -> dict[str, Any]:
    """A Secret whose Helm string is base64(payload), as the API returns it."""
    helm_text = base64.b64encode(payload)
    return {
        "metadata": {"name": name, "namespace": "rag"},
        "data": {"release": base64.b64encode(helm_text).decode()},
    }


def with_manifest(manifest: str, namespace: str = "rag") -> HelmRelease:
    return HelmRelease("r", namespace, 1, "deployed", manifest, (), "c", "1")


def test_round_trip() -> None:
    secret = encode_release_secret(release(), "rag")
    assert secret["metadata"]["name"] == "sh.helm.release.v1.vdb.v2"
    assert secret["metadata"]["namespace"] == "rag"
    assert secret["type"] == "helm.sh/release.v1"
    labels = secret["metadata"]["labels"]
    assert labels["name"] == "vdb" and labels["owner"] == "helm"
    assert labels["status"] == "deployed" and labels["version"] == "2"
    assert labels["modifiedAt"] == labels["createdAt"] == "1735776000"
    assert list(secret["data"]) == ["release"]
    # Wire value of a gzip record starts SDRzSU; one decode leaves Helm's H4sI string.
    assert secret["data"]["release"].startswith("SDRzSU")
    assert base64.b64decode(secret["data"]["release"]).startswith(b"H4sI")

    rel = decode_release_secret(json.loads(json.dumps(secret)))
    assert (rel.name, rel.namespace, rel.version, rel.status) == ("vdb", "rag", 2, "deployed")
    assert rel.manifest == MANIFEST
    assert (rel.chart_name, rel.chart_version) == ("vdb", "1.2.0")
    assert rel.description == "Upgrade complete"
    assert rel.secret_name == "sh.helm.release.v1.vdb.v2"
    assert rel.hooks[0].name == "vdb-cleanup" and rel.hooks[0].kind == "Job"
    assert rel.hooks[0].events == ("pre-delete",)
    assert rel.hooks[0].path == "vdb/templates/cleanup.yaml"
    assert dict(rel.raw) == release()


def test_encoding_is_deterministic() -> None:
    assert encode_release_secret(release(), "rag") == encode_release_secret(release(), "rag")


def test_decodes_uncompressed_json_record() -> None:
    rel = decode_release_secret(raw_secret(json.dumps(release(version=1)).encode()))
    assert rel.version == 1 and rel.manifest == MANIFEST


def test_decodes_gzip_of_any_compressor() -> None:
    body = gzip.compress(json.dumps(release(version=3)).encode(), compresslevel=1)
    assert decode_release_secret(raw_secret(body)).version == 3


@pytest.mark.parametrize(
    "secret",
    [
        {"metadata": {"name": "x"}, "data": {}},
        {"metadata": {"name": "x"}, "data": {"release": "!!not base64!!"}},
        # Only one base64 layer: the bytes after one decode are gzip, not base64 text.
        {"data": {"release": base64.b64encode(gzip.compress(b"{}")).decode()}},
        raw_secret(b"\x1f\x8b\x08 truncated gzip"),
        raw_secret(b"not json"),
        raw_secret(b"[1, 2]"),
        raw_secret(json.dumps({**release(), "version": "2"}).encode()),
    ],
)
def test_undecodable_records_are_corrupt(secret: dict[str, Any]) -> None:
    with pytest.raises(CorruptReleaseError, match="corrupted release record"):
        decode_release_secret(secret)


def test_latest_is_by_integer_version_not_label_string() -> None:
    secrets = [
        encode_release_secret(release(version=v, status=s), "rag")
        for v, s in ((9, "superseded"), (10, "deployed"), (2, "superseded"))
    ]
    assert sorted(s["metadata"]["labels"]["version"] for s in secrets)[-1] == "9"
    latest = latest_release(secrets)
    assert latest is not None and latest.version == 10 and latest.status == "deployed"


def test_latest_takes_any_status_skips_corrupt_and_filters_by_name() -> None:
    secrets = [
        encode_release_secret(release(version=4, status="deployed"), "rag"),
        encode_release_secret(release(version=5, status="uninstalling"), "rag"),
        encode_release_secret(release(name="other", version=7), "rag"),
        raw_secret(b"garbage"),
    ]
    assert latest_release(secrets).version == 7  # type: ignore[union-attr]
    latest = latest_release(secrets, name="vdb")
    assert latest is not None and (latest.version, latest.status) == (5, "uninstalling")
    assert latest_release([]) is None
    assert latest_release([raw_secret(b"garbage")]) is None


def test_manifest_objects_sorted_in_uninstall_order() -> None:
    docs = [
        ("v1", "ConfigMap", "cm"),
        ("example.com/v1", "Widget", "w1"),
        ("apps/v1", "Deployment", "d1"),
        ("v1", "Secret", "s"),
        ("example.com/v1", "Anchor", "a"),
        ("apps/v1", "StatefulSet", "sts"),
        ("v1", "Service", "svc"),
        ("apps/v1", "Deployment", "d2"),
        ("v1", "PersistentVolumeClaim", "pvc"),
        ("example.com/v1", "Widget", "w0"),
        ("v1", "Namespace", "ns"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "vwc"),
    ]
    manifest = "".join(
        f"---\n# Source: c/templates/{n}.yaml\napiVersion: {a}\nkind: {k}\nmetadata:\n  name: {n}\n"
        for a, k, n in docs
    )
    names = [o.name for o in manifest_objects(with_manifest(manifest))]
    # Known kinds by UninstallOrder, same kind in manifest order, unknown kinds last A-Z.
    assert names == ["vwc", "svc", "sts", "d1", "d2", "pvc", "cm", "s", "ns", "a", "w1", "w0"]


def test_uninstall_order_is_helms_list() -> None:
    assert UNINSTALL_ORDER[:6] == (
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "Ingress",
        "IngressClass",
        "Service",
    )
    assert UNINSTALL_ORDER[-3:] == ("NetworkPolicy", "Namespace", "PriorityClass")
    assert len(UNINSTALL_ORDER) == len(set(UNINSTALL_ORDER)) == 38


def test_namespaces_empty_documents_and_lists() -> None:
    manifest = """---
# Source: c/templates/empty.yaml
---
# only a comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: elsewhere
  namespace: other
--- # Source: c/templates/list.yaml
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: listed}
- apiVersion: v1
  kind: Service
  metadata: {name: listed-svc, namespace: ns2}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBindingList
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: rb}
"""
    objs = manifest_objects(with_manifest(manifest))
    assert [(o.kind, o.name, o.namespace) for o in objs] == [
        ("RoleBinding", "rb", "rag"),
        ("ConfigMap", "elsewhere", "other"),
        # `List` is an unlisted kind: last, its items flattened in place.
        ("Secret", "listed", "rag"),
        ("Service", "listed-svc", "ns2"),
    ]


def test_resource_policy_keep() -> None:
    def obj(policy: str | None) -> ManifestObject:
        ann = "" if policy is None else f"  annotations:\n    helm.sh/resource-policy: {policy!r}\n"
        manifest = f"---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n{ann}"
        return manifest_objects(with_manifest(manifest))[0]

    assert obj(None) == ManifestObject("v1", "Secret", "s", "rag", keep=False)
    assert obj(None).helm_deletes
    for value in ("keep", " Keep ", "KEEP"):
        kept = obj(value)
        assert kept.keep and not kept.helm_deletes and kept.resource_policy == value
    # Any other value: not kept, and Helm silently leaves the object alone.
    other = obj("delete")
    assert not other.keep and not other.helm_deletes
    assert not obj("").helm_deletes


@pytest.mark.parametrize(
    "manifest",
    [
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: [unclosed\n",
        "---\napiVersion: v1\nkind: Secret\n  bad: indent\n",
        "---\n- just\n- a list\n",
        "---\napiVersion: v1\nkind: Secret\nmetadata: {}\n",
    ],
)
def test_corrupted_manifest(manifest: str) -> None:
    with pytest.raises(CorruptReleaseError, match=r"^corrupted release record"):
        manifest_objects(with_manifest(manifest))


def test_size_limit() -> None:
    noise = base64.b64encode(random.Random(0).randbytes(900_000)).decode()
    with pytest.raises(ReleaseTooLargeError, match=str(MAX_SECRET_DATA_BYTES)):
        encode_release_secret(release(manifest=noise), "rag")
    # Compressible manifests far above 1 MiB raw still fit, as with Helm.
    big = MANIFEST * 20_000
    assert len(big) > MAX_SECRET_DATA_BYTES
    assert (
        decode_release_secret(encode_release_secret(release(manifest=big), "rag")).manifest == big
    )


@pytest.mark.parametrize(
    ("name", "version"),
    [("Bad_Name", 1), ("x" * 54, 1), ("ok", 0), ("ok", "1"), ("ok", True)],
)
def test_encode_rejects_invalid_identity(name: str, version: Any) -> None:
    with pytest.raises(ValueError, match="invalid release"):
        encode_release_secret({**release(), "name": name, "version": version}, "rag")


def test_status_update_round_trip() -> None:
    rel = decode_release_secret(encode_release_secret(release(), "rag"))
    doc = release_dict_with_status(
        rel,
        "uninstalling",
        description="Deletion in progress (or silently failed)",
        deleted="2025-02-01T00:00:00Z",
    )
    assert rel.raw["info"]["status"] == "deployed"  # the original is untouched
    secret = encode_release_secret(doc, "rag")
    assert secret["metadata"]["name"] == rel.secret_name
    assert secret["metadata"]["labels"]["status"] == "uninstalling"
    again = decode_release_secret(secret)
    assert again.status == "uninstalling" and again.raw["info"]["deleted"] == "2025-02-01T00:00:00Z"
    assert again.manifest == rel.manifest and again.hooks == rel.hooks
