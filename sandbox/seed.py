"""The Enterprise RAG 2.x cluster seed: the objects a deployment leaves in a cluster.

ragbot backs up, deletes and restores an application it must never touch in
production while being developed, so the sandbox API server starts with a copy of
one, and the upstream test cluster (a real kube-apiserver) loads the very same list
through the API. That is why this is plain data (a list of object dicts, created in
order), valid for a real apiserver, and why everything the backup and restore logic
keys on is consistent: Helm release Secrets (real encoding, via k8s.helm_release)
whose manifests list exactly the live objects of the release; the Helm ownership
labels/annotations; PVCs named as the StatefulSet controller names them; model-serving
workloads labelled so the default orSelectors skip them; Velero with a default
BackupStorageLocation and a VolumeSnapshotClass labelled for it.

No Pods or ReplicaSets: controllers (the sandbox's or kube-controller-manager's) make
those. Facts: reference/enterprise-rag-backup.md, helm-release-storage.md,
velero-api.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from string import Template
from typing import Any

import yaml

from k8s.helm_release import encode_release_secret
from sandbox.seed_workloads import (
    CSI_DRIVER,
    ERAG_VERSION,
    PART_OF,
    STORAGE_CLASS,
    Chart,
    Obj,
    b64,
    chatqa_objects,
    erag_charts,
    loose_secrets,
    statefulset_claims,
)

#: `backup.backupConfig.namespaceOrder` default of the Enterprise RAG playbook.
DEFAULT_ORDER: tuple[str, ...] = (
    *("system", "auth", "fingerprint", "chatqa", "chat-history"),
    *("edp", "seaweedfs", "vdb", "default"),
)
#: Enterprise RAG keeps its backups in its own SeaweedFS S3 endpoint.
DEFAULT_S3_URL = "http://seaweedfs-s3.seaweedfs.svc.cluster.local:8333"
SNAPSHOT_CLASS = "csi-snapclass"
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
#: Namespaces that exist in every cluster; the seed puts objects there but never creates them.
PREEXISTING_NAMESPACES = frozenset({"default"})
_T0 = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)
_VELERO_LABELS = {"component": "velero"}
_VELERO_IMAGE = "velero/velero:v1.16.2"


def _packaged_crds(directory: Traversable | Path | None, group: str) -> list[Obj]:
    """CRDs of `group` from `sandbox/crds/*.yaml` (or `directory`), in file-name order."""
    folder = directory if directory is not None else resources.files("sandbox") / "crds"
    try:
        entries = sorted((e for e in folder.iterdir() if e.name.endswith(".yaml")), key=str)
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    return [
        doc
        for entry in entries
        for doc in yaml.safe_load_all(entry.read_text(encoding="utf-8"))
        if isinstance(doc, dict)
        and doc.get("kind") == "CustomResourceDefinition"
        and (doc.get("spec") or {}).get("group") == group
    ]


def velero_crd_documents(directory: Traversable | Path | None = None) -> list[Obj]:
    """The Velero v1.16 CRDs shipped in `sandbox/crds/velero.io_*.yaml`.

    `directory` reads another folder of the same layout (tests use it); the product
    always reads the package data so the sandbox runs without anything outside it.
    """
    docs = _packaged_crds(directory, "velero.io")
    if not docs:
        raise FileNotFoundError(f"no Velero CRDs (*.yaml) found in {directory or 'sandbox/crds'}")
    return docs


#: external-snapshotter v1 CRDs, trimmed to a compact structural schema: a real
#: apiserver refuses a VolumeSnapshotClass without its CRD, and Velero's CSI path needs
#: VolumeSnapshot/VolumeSnapshotContent. Required fields and enums are kept; nested
#: specs and statuses are left open.
_SNAPSHOT_CRDS = """
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: volumesnapshotclasses.snapshot.storage.k8s.io
  labels: {app.kubernetes.io/part-of: enterprise-rag}
  annotations: {api-approved.kubernetes.io: "$approved"}
spec:
  group: snapshot.storage.k8s.io
  names: {kind: VolumeSnapshotClass, listKind: VolumeSnapshotClassList,
          plural: volumesnapshotclasses, singular: volumesnapshotclass,
          shortNames: [vsclass, vsclasses]}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [deletionPolicy, driver]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          driver: {type: string}
          deletionPolicy: {type: string, enum: [Delete, Retain]}
          parameters: {type: object, additionalProperties: {type: string}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: volumesnapshots.snapshot.storage.k8s.io
  labels: {app.kubernetes.io/part-of: enterprise-rag}
  annotations: {api-approved.kubernetes.io: "$approved"}
spec:
  group: snapshot.storage.k8s.io
  names: {kind: VolumeSnapshot, listKind: VolumeSnapshotList, plural: volumesnapshots,
          singular: volumesnapshot, shortNames: [vs]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec: {type: object, required: [source], x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: volumesnapshotcontents.snapshot.storage.k8s.io
  labels: {app.kubernetes.io/part-of: enterprise-rag}
  annotations: {api-approved.kubernetes.io: "$approved"}
spec:
  group: snapshot.storage.k8s.io
  names: {kind: VolumeSnapshotContent, listKind: VolumeSnapshotContentList,
          plural: volumesnapshotcontents, singular: volumesnapshotcontent,
          shortNames: [vsc, vscs]}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec: {type: object, required: [source], x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""

#: The NFS CSI option's default StorageClass and the snapshot class labelled for Velero.
_STORAGE = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $storage_class
  labels: {app.kubernetes.io/part-of: enterprise-rag}
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: $driver
parameters: {server: nfs-server.nfs.svc.cluster.local, share: /share}
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: $snapshot_class
  labels: {app.kubernetes.io/part-of: enterprise-rag, velero.io/csi-volumesnapshot-class: "true"}
driver: $driver
deletionPolicy: Delete
"""

#: What `velero install --features=EnableCSI` leaves (RBAC, credentials, server,
#: default BackupStorageLocation already Available, a VolumeSnapshotLocation).
_VELERO = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: velero, labels: {component: velero}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: velero, namespace: $ns}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: velero, namespace: $ns, labels: {component: velero}}
---
apiVersion: v1
kind: Secret
metadata: {name: cloud-credentials, namespace: $ns, labels: {component: velero}}
type: Opaque
data: {cloud: $credentials}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: velero
  namespace: $ns
  labels: {component: velero, app.kubernetes.io/instance: velero, app.kubernetes.io/name: velero}
spec:
  replicas: 1
  selector: {matchLabels: {deploy: velero}}
  template:
    metadata:
      labels: {component: velero, deploy: velero, app.kubernetes.io/instance: velero,
               app.kubernetes.io/name: velero}
    spec:
      serviceAccountName: velero
      containers:
      - name: velero
        image: $image
        imagePullPolicy: IfNotPresent
        command: [/velero]
        args: [server, --features=EnableCSI]
        ports: [{name: metrics, containerPort: 8085, protocol: TCP}]
        env:
        - {name: VELERO_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: AWS_SHARED_CREDENTIALS_FILE, value: /credentials/cloud}
        volumeMounts: [{name: cloud-credentials, mountPath: /credentials}]
      volumes: [{name: cloud-credentials, secret: {secretName: cloud-credentials}}]
---
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: $ns, labels: {component: velero}}
spec:
  provider: aws
  default: true
  accessMode: ReadWrite
  objectStorage: {bucket: velero}
  credential: {name: cloud-credentials, key: cloud}
  config: {region: us-east-1, s3ForcePathStyle: "true", s3Url: "$s3_url"}
status: {phase: Available, lastValidationTime: "$stamp"}
---
apiVersion: velero.io/v1
kind: VolumeSnapshotLocation
metadata: {name: default, namespace: $ns, labels: {component: velero}}
spec: {provider: aws, config: {region: us-east-1}}
"""


def _load(template: str, **values: str) -> list[Obj]:
    text = Template(template).substitute(**values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def snapshot_crd_documents(directory: Traversable | Path | None = None) -> list[Obj]:
    """The snapshot.storage.k8s.io v1 CRDs (VolumeSnapshotClass, -Snapshot, -Content).

    A fuller copy shipped in `sandbox/crds/` replaces the compact one of the same name.
    """
    approved = "https://github.com/kubernetes-csi/external-snapshotter/pull/814"
    shipped = {d["metadata"]["name"]: d for d in _packaged_crds(directory, SNAPSHOT_GROUP)}
    out = [shipped.get(d["metadata"]["name"], d) for d in _load(_SNAPSHOT_CRDS, approved=approved)]
    for crd in out:  # the installer's own objects carry the application label
        crd["metadata"]["labels"] = {**crd["metadata"].get("labels", {}), **PART_OF}
    return out


def _storage_objects() -> list[Obj]:
    values = {"storage_class": STORAGE_CLASS, "snapshot_class": SNAPSHOT_CLASS}
    return _load(_STORAGE, driver=CSI_DRIVER, **values)


def _velero_objects(ns: str, s3_url: str) -> tuple[list[Obj], list[Obj]]:
    """(cluster-scoped, namespaced) objects of the Velero installation."""
    creds = "[default]\naws_access_key_id=ragbot-sandbox\naws_secret_access_key=ragbot-sandbox\n"
    docs = _load(
        _VELERO,
        ns=ns,
        s3_url=s3_url,
        image=_VELERO_IMAGE,
        credentials=b64(creds),
        stamp=_stamp(_T0),
    )
    return docs[:1], docs[1:]


def _namespace(name: str, labels: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**labels, "kubernetes.io/metadata.name": name}},
    }


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _release_dict(chart: Chart, revision: int, manifest: str) -> Obj:
    """The release JSON Helm stores for one revision (latest deployed, older superseded)."""
    latest = revision == chart.revisions[-1]
    first = chart.revisions[0]
    return {
        "name": chart.release,
        "namespace": chart.namespace,
        "version": revision,
        "info": {
            "first_deployed": _stamp(_T0),
            "last_deployed": _stamp(_T0 + timedelta(days=revision - first)),
            "deleted": "",
            "description": "Install complete" if revision == 1 else "Upgrade complete",
            "status": "deployed" if latest else "superseded",
            "notes": "",
        },
        "chart": {
            "metadata": {
                "apiVersion": "v2",
                "name": chart.chart,
                "version": chart.version,
                "appVersion": chart.app_version,
            },
            "templates": [],
            "values": {},
            "files": [],
        },
        "config": {},
        "manifest": manifest,
        "hooks": list(chart.hooks),
    }


def _deployment_manifest(charts: list[Chart]) -> Obj:
    """`erag-deployment-manifest`: what the installer deployed (backed up by its label)."""
    body = {
        "solution_version": ERAG_VERSION,
        "releases": [
            {"name": c.release, "namespace": c.namespace, "chart": c.chart, "version": c.version}
            for c in charts
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "erag-deployment-manifest",
            "namespace": "default",
            "labels": {
                **PART_OF,
                "app.kubernetes.io/component": "deployment-manifest",
                "app.kubernetes.io/version": ERAG_VERSION,
            },
        },
        "data": {"manifest.yaml": yaml.safe_dump(body, sort_keys=False)},
    }


def enterprise_rag_seed(
    *,
    velero_namespace: str = "velero",
    namespace_order: Sequence[str] = DEFAULT_ORDER,
    include_crds: bool = True,
    s3_url: str = DEFAULT_S3_URL,
) -> list[dict[str, Any]]:
    """Every object of an Enterprise RAG 2.x cluster with Velero, in creation order.

    Order: CRDs (Velero's and the snapshot CRDs; wait for Established before going on
    against a real apiserver), StorageClass and VolumeSnapshotClass, Namespaces,
    cluster-scoped Velero RBAC, PVs, Velero's namespaced objects, then each
    application namespace in `namespace_order`. Application namespaces the order does
    not name are still seeded, after the others (the order says what is backed up,
    not what exists); named namespaces the seed has nothing for are created empty.
    `default` is never created. Each call returns fresh dicts.
    """
    charts = erag_charts()
    by_ns: dict[str, list[Obj]] = {}
    pvs: list[Obj] = []
    for chart in charts:
        live = chart.live_objects()
        claims = [c for o in live if o["kind"] == "StatefulSet" for c in statefulset_claims(o)]
        pvs.extend(pv for pv, _ in claims)
        manifest = chart.manifest()
        records = [
            encode_release_secret(_release_dict(chart, rev, manifest), chart.namespace)
            for rev in chart.revisions
        ]
        pvcs = [pvc for _, pvc in claims]
        by_ns.setdefault(chart.namespace, []).extend(
            [
                *[o for o in live if o["kind"] in ("Secret", "ConfigMap", "Service")],
                *pvcs,
                *[o for o in live if o["kind"] not in ("Secret", "ConfigMap", "Service")],
                *records,
            ]
        )
    chatqa, chatqa_pvs = chatqa_objects()
    pvs.extend(chatqa_pvs)
    by_ns.setdefault("chatqa", []).extend(chatqa)
    for secret in loose_secrets():
        by_ns[secret["metadata"]["namespace"]].insert(0, secret)
    by_ns.setdefault("default", []).append(_deployment_manifest(charts))

    order = list(dict.fromkeys([*namespace_order, *by_ns]))
    velero_cluster, velero_namespaced = _velero_objects(velero_namespace, s3_url)
    namespaces = [
        _namespace(n, _VELERO_LABELS if n == velero_namespace else PART_OF)
        for n in dict.fromkeys([*order, velero_namespace])
        if n not in PREEXISTING_NAMESPACES
    ]

    out: list[Obj] = []
    if include_crds:
        out += velero_crd_documents() + snapshot_crd_documents()
    out += _storage_objects()
    out += namespaces
    out += velero_cluster + pvs + velero_namespaced
    for ns in order:
        out += by_ns.get(ns, [])
    return out
