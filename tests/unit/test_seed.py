"""The Enterprise RAG seed is a cluster a real apiserver would accept, and self-consistent.

Everything ragbot's backup and restore logic keys on must agree: release manifests and
live objects, selectors and templates, PVC names and StatefulSets, the default
orSelectors and the model-serving labels.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kubernetes import client

from config.selectors import from_api, parse_selector
from k8s.helm_release import decode_release_secret, latest_release, manifest_objects
from sandbox.seed import (
    DEFAULT_ORDER,
    enterprise_rag_seed,
    snapshot_crd_documents,
    velero_crd_documents,
)
from sandbox.seed_workloads import MODEL_SERVING

OR_SELECTORS = [
    parse_selector("app.kubernetes.io/component=deployment-manifest"),
    parse_selector(
        "app.kubernetes.io/instance notin "
        "(torchserve_embedding,vllm_embedding,torchserve_reranking,vllm,vllm-gaudi)"
    ),
]
#: The playbook's default cleanup list (reference/enterprise-rag-backup.md).
HELM_RELEASES = {
    "gmc": "system",
    "keycloak": "auth",
    "fingerprint": "fingerprint",
    "chat-history": "chat-history",
    "edp": "edp",
    "seaweedfs": "seaweedfs",
    "vdb": "vdb",
}
NAMED_SECRETS = [
    ("fingerprint", "mongo-database-secret"),
    ("chat-history", "mongo-database-secret"),
    ("edp", "vector-database-config"),
    ("edp", "tls-secret"),
    ("vdb", "vector-database-config"),
]
CLUSTER_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "StorageClass",
    "PersistentVolume",
    "VolumeSnapshotClass",
    "ClusterRoleBinding",
}
REFERENCE_CRDS = Path("/work/shared/reference/velero-crds")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{LABEL_NAME}$")
LABEL_VALUE = re.compile(rf"^({LABEL_NAME})?$")


@pytest.fixture(scope="module")
def seed() -> list[dict[str, Any]]:
    return enterprise_rag_seed()


def ident(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def of_kind(seed: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in seed if o["kind"] == kind]


def selected_by_backup(labels: dict[str, str] | None) -> bool:
    return any(s.matches(labels or {}) for s in OR_SELECTORS)


def is_release_record(obj: dict[str, Any]) -> bool:
    return obj["kind"] == "Secret" and obj.get("type") == "helm.sh/release.v1"


def is_velero(obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    return (
        meta.get("namespace") == "velero"
        or meta["name"] == "velero"
        or obj["apiVersion"].startswith("velero.io")
        or obj.get("spec", {}).get("group") == "velero.io"
    )


def test_every_object_is_addressable(seed: list[dict[str, Any]]) -> None:
    json.dumps(seed)  # plain JSON, as the API takes it
    for obj in seed:
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"], obj
        namespaced = obj["kind"] not in CLUSTER_KINDS
        assert bool(obj["metadata"].get("namespace")) == namespaced, ident(obj)
    assert len({ident(o) for o in seed}) == len(seed), "duplicate objects"


def test_no_pods_or_replicasets(seed: list[dict[str, Any]]) -> None:
    assert not [o for o in seed if o["kind"] in ("Pod", "ReplicaSet", "Job")]


def test_names_and_labels_are_valid(seed: list[dict[str, Any]]) -> None:
    for obj in seed:
        meta = obj["metadata"]
        pattern = DNS_LABEL if obj["kind"] in ("Namespace", "Service") else DNS_SUBDOMAIN
        assert pattern.match(meta["name"]) and len(meta["name"]) <= 253, ident(obj)
        label_sets = [meta.get("labels") or {}]
        template = obj.get("spec", {}).get("template")
        if template:
            label_sets.append(template["metadata"]["labels"])
        for labels in label_sets:
            for key, value in labels.items():
                assert LABEL_KEY.match(key), (ident(obj), key)
                assert isinstance(value, str) and LABEL_VALUE.match(value), (ident(obj), value)


def test_objects_deserialize_into_the_official_client_models(seed: list[dict[str, Any]]) -> None:
    """The client's models enforce required fields (container name, selector, template...)."""
    api = client.ApiClient()
    for obj in seed:
        model = getattr(client, f"V1{obj['kind']}", None)
        if model is None or obj["apiVersion"].startswith(("velero.io", "snapshot.")):
            continue
        api._ApiClient__deserialize(copy.deepcopy(obj), f"V1{obj['kind']}")  # type: ignore[attr-defined]


def test_creation_order(seed: list[dict[str, Any]]) -> None:
    created: set[tuple[str, str]] = set()
    crds = {
        (d["spec"]["group"], d["spec"]["names"]["kind"])
        for d in of_kind(seed, "CustomResourceDefinition")
    }
    for obj in seed:
        ns = obj["metadata"].get("namespace")
        if ns and ns != "default":
            assert ("Namespace", ns) in created, f"{ident(obj)} before its namespace"
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        if (group, obj["kind"]) in crds:
            assert ("CRD", f"{group}/{obj['kind']}") in created, ident(obj)
        if obj["kind"] == "PersistentVolumeClaim":
            assert ("PersistentVolume", obj["spec"]["volumeName"]) in created
        created.add((obj["kind"], obj["metadata"]["name"]))
        if obj["kind"] == "CustomResourceDefinition":
            created.add(("CRD", f"{obj['spec']['group']}/{obj['spec']['names']['kind']}"))


def test_namespaces(seed: list[dict[str, Any]]) -> None:
    names = [o["metadata"]["name"] for o in of_kind(seed, "Namespace")]
    assert names == [n for n in DEFAULT_ORDER if n != "default"] + ["velero"]
    used = {o["metadata"].get("namespace") for o in seed} - {None}
    assert used == set(DEFAULT_ORDER) | {"velero"}


def test_release_records_match_live_objects(seed: list[dict[str, Any]]) -> None:
    live = {ident(o) for o in seed}
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in seed:
        if is_release_record(obj):
            rel = decode_release_secret(obj)
            assert obj["metadata"]["name"] == rel.secret_name
            assert obj["metadata"]["namespace"] == rel.namespace
            records[rel.name].append(obj)
    assert {r: decode_release_secret(s[0]).namespace for r, s in records.items()} == HELM_RELEASES

    owned: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
    for obj in seed:
        ann = obj["metadata"].get("annotations") or {}
        if "meta.helm.sh/release-name" in ann:
            release = ann["meta.helm.sh/release-name"]
            assert ann["meta.helm.sh/release-namespace"] == obj["metadata"]["namespace"]
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/instance"] == release
            owned[release].add(ident(obj))

    for name, secrets in records.items():
        latest = latest_release(secrets)
        assert latest is not None and latest.status == "deployed"
        assert [decode_release_secret(s).status for s in secrets].count("deployed") == 1
        objects = manifest_objects(latest)
        assert objects and not any(o.keep for o in objects)
        in_manifest = {(o.api_version, o.kind, o.namespace, o.name) for o in objects}
        assert in_manifest <= live, in_manifest - live
        assert in_manifest == owned[name], f"{name}: manifest and live ownership differ"
        assert {o.kind for o in objects} <= {
            "Deployment",
            "StatefulSet",
            "Service",
            "ConfigMap",
            "Secret",
        }


def test_history_exercises_latest_by_integer(seed: list[dict[str, Any]]) -> None:
    by_release: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in filter(is_release_record, seed):
        by_release[obj["metadata"]["labels"]["name"]].append(obj)
    assert {s["metadata"]["labels"]["version"] for s in by_release["edp"]} == {"9", "10"}
    assert latest_release(by_release["edp"]).version == 10  # type: ignore[union-attr]
    vdb = sorted((decode_release_secret(s) for s in by_release["vdb"]), key=lambda r: r.version)
    assert [(r.version, r.status) for r in vdb] == [(1, "superseded"), (2, "deployed")]
    hooks = {
        h.name: h for s in seed if is_release_record(s) for h in decode_release_secret(s).hooks
    }
    assert hooks["keycloak-test-connection"].events == ("test",)
    assert not [h for h in hooks.values() if {"pre-delete", "post-delete"} & set(h.events)]


def test_cleanup_list_targets_exist(seed: list[dict[str, Any]]) -> None:
    secrets = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in of_kind(seed, "Secret")}
    assert set(NAMED_SECRETS) <= secrets
    for obj in of_kind(seed, "Secret"):
        if obj["metadata"]["name"] in {n for _, n in NAMED_SECRETS}:
            assert "meta.helm.sh/release-name" not in (obj["metadata"].get("annotations") or {})
    tls = next(o for o in of_kind(seed, "Secret") if o["metadata"]["name"] == "tls-secret")
    assert tls["type"] == "kubernetes.io/tls" and {"tls.crt", "tls.key"} <= set(tls["data"])
    managed = parse_selector("app.kubernetes.io/managed-by=Helm")
    chatqa = [o for o in of_kind(seed, "Deployment") if o["metadata"]["namespace"] == "chatqa"]
    assert len(chatqa) >= 6 and all(managed.matches(o["metadata"]["labels"]) for o in chatqa)


def test_selectors_match_templates_and_services(seed: list[dict[str, Any]]) -> None:
    pods: dict[str, list[dict[str, str]]] = defaultdict(list)
    for obj in seed:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            template = obj["spec"]["template"]
            selector = from_api(obj["spec"]["selector"])
            assert selector.requirements and selector.matches(template["metadata"]["labels"])
            for ctr in template["spec"]["containers"]:
                assert ctr["name"] and ctr["image"] and "readinessProbe" not in ctr
            pods[obj["metadata"]["namespace"]].append(template["metadata"]["labels"])
    for svc in of_kind(seed, "Service"):
        ns, selector = svc["metadata"]["namespace"], svc["spec"]["selector"]
        assert svc["spec"]["ports"], ident(svc)
        assert any(all(p.get(k) == v for k, v in selector.items()) for p in pods[ns]), ident(svc)


def test_statefulsets_have_services_and_claims(seed: list[dict[str, Any]]) -> None:
    def by_key(kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in of_kind(seed, kind)}

    services, pvcs = by_key("Service"), by_key("PersistentVolumeClaim")
    pvs = {o["metadata"]["name"]: o for o in of_kind(seed, "PersistentVolume")}
    expected: set[tuple[str, str]] = set()
    for sts in of_kind(seed, "StatefulSet"):
        ns, name, spec = sts["metadata"]["namespace"], sts["metadata"]["name"], sts["spec"]
        assert services[(ns, spec["serviceName"])]["spec"].get("clusterIP") == "None"
        for tpl in spec.get("volumeClaimTemplates", []):
            for ordinal in range(spec["replicas"]):
                key = (ns, f"{tpl['metadata']['name']}-{name}-{ordinal}")
                expected.add(key)
                assert from_api(spec["selector"]).matches(pvcs[key]["metadata"]["labels"])
    vdb = next(
        s for s in of_kind(seed, "StatefulSet") if s["metadata"]["name"] == "vdb-redis-cluster"
    )
    assert vdb["spec"]["replicas"] == 3
    assert {("vdb", f"redis-data-vdb-redis-cluster-{i}") for i in range(3)} <= expected
    for deploy in of_kind(seed, "Deployment"):
        for vol in deploy["spec"]["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" in vol:
                ns = deploy["metadata"]["namespace"]
                expected.add((ns, vol["persistentVolumeClaim"]["claimName"]))
    assert set(pvcs) == expected
    assert len(pvs) == len(pvcs)
    for (ns, name), pvc in pvcs.items():
        assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["accessModes"]
        assert pvc["spec"]["resources"]["requests"]["storage"]
        ref = pvs[pvc["spec"]["volumeName"]]["spec"]["claimRef"]
        assert (ref["namespace"], ref["name"]) == (ns, name)


def test_backup_selectors_skip_model_serving_only(seed: list[dict[str, Any]]) -> None:
    model = [
        o
        for o in seed
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") in MODEL_SERVING
    ]
    assert {o["kind"] for o in model} == {"Deployment", "Service", "PersistentVolumeClaim"}
    assert {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in model} == set(
        MODEL_SERVING
    )
    for obj in model:
        assert obj["metadata"]["namespace"] == "chatqa"
        assert not selected_by_backup(obj["metadata"]["labels"]), ident(obj)
        template = obj.get("spec", {}).get("template")
        if template:
            assert not selected_by_backup(template["metadata"]["labels"])
    app = [o for o in seed if o["metadata"].get("namespace") in DEFAULT_ORDER]
    user_data = [o for o in app if o not in model]
    for obj in user_data:
        assert selected_by_backup(obj["metadata"].get("labels")), ident(obj)
        template = obj.get("spec", {}).get("template")
        if template:
            assert selected_by_backup(template["metadata"]["labels"]), ident(obj)
    kinds = {o["kind"] for o in user_data}
    assert {"StatefulSet", "Deployment", "PersistentVolumeClaim", "Secret", "ConfigMap"} <= kinds
    manifest = [o for o in app if o["metadata"]["name"] == "erag-deployment-manifest"]
    assert len(manifest) == 1 and manifest[0]["metadata"]["namespace"] == "default"
    assert OR_SELECTORS[0].matches(manifest[0]["metadata"]["labels"])


def test_part_of_label(seed: list[dict[str, Any]]) -> None:
    for obj in seed:
        labels = obj["metadata"].get("labels") or {}
        if is_velero(obj) or is_release_record(obj):
            assert "app.kubernetes.io/part-of" not in labels, ident(obj)
        else:
            assert labels.get("app.kubernetes.io/part-of") == "enterprise-rag", ident(obj)
            template = obj.get("spec", {}).get("template")
            if template:
                assert template["metadata"]["labels"]["app.kubernetes.io/part-of"]


def test_velero(seed: list[dict[str, Any]]) -> None:
    velero = [o for o in seed if o["metadata"].get("namespace") == "velero"]
    deploy = next(o for o in velero if o["kind"] == "Deployment")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert parse_selector(
        "app.kubernetes.io/instance=velero,app.kubernetes.io/name=velero"
    ).matches(pod_labels)
    assert pod_labels["deploy"] == "velero"
    ctr = deploy["spec"]["template"]["spec"]["containers"][0]
    assert ctr["args"] == ["server", "--features=EnableCSI"]
    sa = deploy["spec"]["template"]["spec"]["serviceAccountName"]
    assert any(o["kind"] == "ServiceAccount" and o["metadata"]["name"] == sa for o in velero)
    bsl = next(o for o in velero if o["kind"] == "BackupStorageLocation")
    assert bsl["metadata"]["name"] == "default" and bsl["spec"]["default"] is True
    assert bsl["spec"]["provider"] == "aws" and bsl["spec"]["objectStorage"]["bucket"]
    assert bsl["status"]["phase"] == "Available"
    creds = next(o for o in velero if o["metadata"]["name"] == bsl["spec"]["credential"]["name"])
    assert base64.b64decode(creds["data"]["cloud"]).startswith(b"[default]")
    assert any(o["kind"] == "VolumeSnapshotLocation" for o in velero)
    (vsc,) = of_kind(seed, "VolumeSnapshotClass")
    assert vsc["apiVersion"] == "snapshot.storage.k8s.io/v1"
    assert vsc["metadata"]["name"] == "csi-snapclass"
    assert vsc["metadata"]["labels"]["velero.io/csi-volumesnapshot-class"] == "true"
    assert (vsc["driver"], vsc["deletionPolicy"]) == ("nfs.csi.k8s.io", "Delete")
    (sc,) = of_kind(seed, "StorageClass")
    assert sc["metadata"]["name"] == "nfs-csi" and sc["provisioner"] == vsc["driver"]
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"


def test_custom_resources_validate_against_their_crds(seed: list[dict[str, Any]]) -> None:
    crds = {
        (d["spec"]["group"], d["spec"]["names"]["kind"]): d
        for d in of_kind(seed, "CustomResourceDefinition")
    }
    assert {"BackupStorageLocation", "VolumeSnapshotLocation", "Backup", "Restore"} <= {
        k for g, k in crds if g == "velero.io"
    }
    checked = 0
    for obj in seed:
        group, _, version = obj["apiVersion"].rpartition("/")
        crd = crds.get((group, obj["kind"]))
        if crd is None:
            continue
        (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
        jsonschema.validate(obj, served["schema"]["openAPIV3Schema"])
        checked += 1
    assert checked == 3


def test_velero_crds_match_the_reference() -> None:
    shipped = {d["metadata"]["name"] for d in velero_crd_documents()}
    if REFERENCE_CRDS.is_dir():
        reference = {d["metadata"]["name"] for d in velero_crd_documents(REFERENCE_CRDS)}
        assert shipped == reference
    assert "backups.velero.io" in shipped and len(shipped) == 13
    names = [d["metadata"]["name"] for d in snapshot_crd_documents()]
    assert names == [
        "volumesnapshotclasses.snapshot.storage.k8s.io",
        "volumesnapshots.snapshot.storage.k8s.io",
        "volumesnapshotcontents.snapshot.storage.k8s.io",
    ]


def test_velero_crds_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Velero CRDs"):
        velero_crd_documents(tmp_path)


def test_options() -> None:
    seed = enterprise_rag_seed(
        velero_namespace="backup-system",
        namespace_order=["vdb", "extra", "system"],
        include_crds=False,
        s3_url="http://127.0.0.1:5000",
    )
    assert not of_kind(seed, "CustomResourceDefinition")
    namespaces = [o["metadata"]["name"] for o in of_kind(seed, "Namespace")]
    assert namespaces[:3] == ["vdb", "extra", "system"]
    assert "backup-system" in namespaces and "velero" not in namespaces
    assert set(namespaces) >= {"auth", "edp", "chatqa"} and "default" not in namespaces
    app_order = [o["metadata"]["namespace"] for o in seed if o["metadata"].get("namespace")]
    assert app_order.index("vdb") < app_order.index("system") < app_order.index("auth")
    bsl = next(o for o in seed if o["kind"] == "BackupStorageLocation")
    assert bsl["metadata"]["namespace"] == "backup-system"
    assert bsl["spec"]["config"]["s3Url"] == "http://127.0.0.1:5000"
    crb = next(o for o in seed if o["kind"] == "ClusterRoleBinding")
    assert crb["subjects"][0]["namespace"] == "backup-system"


def test_each_call_returns_fresh_objects() -> None:
    first = enterprise_rag_seed(include_crds=False)
    second = enterprise_rag_seed(include_crds=False)
    assert first == second
    first[0]["metadata"]["name"] = "changed"
    first[-1]["metadata"]["labels"]["x"] = "y"
    assert enterprise_rag_seed(include_crds=False) == second
