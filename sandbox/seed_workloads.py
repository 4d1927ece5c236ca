"""The workloads of an Enterprise RAG 2.x deployment, as plain Kubernetes objects.

Split from `sandbox.seed` to keep each module readable: this one knows what the Helm
charts render (Deployments, StatefulSets, Services, ConfigMaps, Secrets) and what the
StatefulSet controller and the CSI provisioner would have created beside them (bound
PVCs and their PVs); `sandbox.seed` assembles namespaces, release records, Velero and
the order of creation. Every object must be accepted by a real kube-apiserver, because
the upstream test cluster loads the same seed through the API.

Names and shapes follow reference/enterprise-rag-backup.md ("Where the user data
lives"); images and chart versions are plausible, not load-bearing.
"""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field
from string import Template
from typing import Any, ClassVar

import yaml

Obj = dict[str, Any]

PART_OF = {"app.kubernetes.io/part-of": "enterprise-rag"}
MANAGED_BY_HELM = {"app.kubernetes.io/managed-by": "Helm"}
STORAGE_CLASS = "nfs-csi"
CSI_DRIVER = "nfs.csi.k8s.io"
ERAG_VERSION = "2.1.1"
#: `app.kubernetes.io/instance` values of the model servers the backup must skip.
MODEL_SERVING = ("torchserve_embedding", "torchserve_reranking", "vllm")
_PV_UUID_NS = uuid.UUID("6f1c1b0e-2f7a-4c55-9d0e-7a1f3b9e5d21")
_OPEA = "docker.io/opea"
_BITNAMI = "docker.io/bitnami"


def b64(text: str) -> str:
    """Secret `data` values are base64 on the wire."""
    return base64.b64encode(text.encode()).decode("ascii")


def container(name: str, image: str, ports: dict[str, int], **extra: Any) -> Obj:
    """A container with named TCP ports; no probes, so readiness is the simulator's call."""
    out: Obj = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent"}
    if ports:
        out["ports"] = [
            {"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()
        ]
    out.update(extra)
    return out


def service_ports(ports: dict[str, int]) -> list[Obj]:
    return [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports.items()]


_CLAIM = Template("""
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $volume
  labels: {app.kubernetes.io/part-of: enterprise-rag}
  annotations: {pv.kubernetes.io/provisioned-by: $driver}
spec:
  accessModes: [ReadWriteOnce]
  capacity: {storage: $size}
  claimRef: {apiVersion: v1, kind: PersistentVolumeClaim, namespace: $ns, name: $name}
  csi:
    driver: $driver
    volumeHandle: "nfs-server.nfs.svc.cluster.local#share#$volume##"
    volumeAttributes: {server: nfs-server.nfs.svc.cluster.local, share: /share, subdir: $volume}
  persistentVolumeReclaimPolicy: Delete
  storageClassName: $sc
  volumeMode: Filesystem
status: {phase: Bound}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: $name
  namespace: $ns
  annotations:
    pv.kubernetes.io/bind-completed: "yes"
    pv.kubernetes.io/bound-by-controller: "yes"
    volume.beta.kubernetes.io/storage-provisioner: $driver
    volume.kubernetes.io/storage-provisioner: $driver
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: $size}}
  storageClassName: $sc
  volumeMode: Filesystem
  volumeName: $volume
status: {phase: Bound, accessModes: [ReadWriteOnce], capacity: {storage: $size}}
""")


def bound_claim(namespace: str, name: str, labels: dict[str, str], size: str) -> tuple[Obj, Obj]:
    """A PVC bound to a CSI PV, as the NFS CSI provisioner and the PV controller leave them.

    The PV is pre-bound (claimRef) and the claim names it (volumeName), so a real
    controller-manager keeps them Bound instead of waiting for a provisioner that is
    not there. The PV name is deterministic, like `pvc-<uid>` but stable across runs.
    """
    volume = f"pvc-{uuid.uuid5(_PV_UUID_NS, f'{namespace}/{name}')}"
    text = _CLAIM.substitute(
        ns=namespace, name=name, volume=volume, size=size, sc=STORAGE_CLASS, driver=CSI_DRIVER
    )
    pv, pvc = yaml.safe_load_all(text)
    pvc["metadata"]["labels"] = dict(labels)
    return pv, pvc


def statefulset_claims(sts: Obj) -> list[tuple[Obj, Obj]]:
    """The PVCs the StatefulSet controller creates: `<template>-<statefulset>-<ordinal>`.

    Labels are the claim template's plus the selector's matchLabels, as the real
    controller sets them.
    """
    spec, meta = sts["spec"], sts["metadata"]
    out: list[tuple[Obj, Obj]] = []
    for tpl in spec.get("volumeClaimTemplates") or ():
        labels = {**tpl["metadata"].get("labels", {}), **spec["selector"]["matchLabels"]}
        size = tpl["spec"]["resources"]["requests"]["storage"]
        for ordinal in range(spec.get("replicas", 1)):
            name = f"{tpl['metadata']['name']}-{meta['name']}-{ordinal}"
            out.append(bound_claim(meta["namespace"], name, labels, size))
    return out


def hook(name: str, kind: str, path: str, events: list[str], policy: str, phase: str = "") -> Obj:
    """A stored chart hook (release JSON `hooks[]`); the manifest is a stub, never applied."""
    return {
        "name": name,
        "kind": kind,
        "path": path,
        "manifest": f"kind: {kind}\nmetadata:\n  name: {name}\n",
        "events": events,
        "weight": 0,
        "delete_policies": [policy],
        "last_run": {"started_at": "", "completed_at": "", "phase": phase},
    }


@dataclass
class Chart:
    """One Helm release: what its chart renders, plus the release record's metadata.

    `revisions` lists the stored revision numbers, oldest first; the last is
    `deployed`, the others `superseded`. Workload methods add the Services a chart
    renders beside them, named as the Bitnami-style charts name them.
    """

    release: str
    namespace: str
    chart: str
    version: str = ERAG_VERSION
    app_version: str = ERAG_VERSION
    revisions: tuple[int, ...] = (1,)
    explicit_namespace: bool = False
    hooks: list[Obj] = field(default_factory=list)
    docs: list[tuple[str, Obj]] = field(default_factory=list)

    def labels(self, component: str) -> tuple[dict[str, str], dict[str, str]]:
        """(object labels, selector labels) in the Helm chart convention."""
        selector = {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": self.release}
        chart = {"helm.sh/chart": f"{self.chart}-{self.version}"}
        return {**selector, **MANAGED_BY_HELM, **PART_OF, **chart}, selector

    def _add(self, component: str, kind: str, api_version: str, name: str, body: Obj) -> None:
        meta: Obj = {"name": name, "labels": self.labels(component)[0]}
        if self.explicit_namespace:
            meta["namespace"] = self.namespace
        # Deep-copied so no dict is shared: shared dicts would dump as YAML anchors.
        doc = copy.deepcopy({"apiVersion": api_version, "kind": kind, "metadata": meta, **body})
        self.docs.append((f"{self.chart}/templates/{component}/{kind.lower()}.yaml", doc))

    def secret(self, name: str, component: str, data: dict[str, str]) -> None:
        body = {"type": "Opaque", "data": {k: b64(v) for k, v in data.items()}}
        self._add(component, "Secret", "v1", name, body)

    def config_map(self, name: str, component: str, data: dict[str, str]) -> None:
        self._add(component, "ConfigMap", "v1", name, {"data": data})

    def service(
        self, name: str, component: str, ports: dict[str, int], *, headless: bool = False
    ) -> None:
        spec: Obj = {
            "type": "ClusterIP",
            "selector": self.labels(component)[1],
            "ports": service_ports(ports),
        }
        if headless:
            spec.update(clusterIP="None", publishNotReadyAddresses=True)
        self._add(component, "Service", "v1", name, {"spec": spec})

    def _pod(self, component: str, ctr: Obj) -> tuple[Obj, Obj]:
        selector = self.labels(component)[1]
        labels = {**selector, **MANAGED_BY_HELM, **PART_OF}
        return {"matchLabels": selector}, {
            "metadata": {"labels": labels},
            "spec": {"containers": [ctr]},
        }

    def deployment(self, name: str, component: str, image: str, ports: dict[str, int]) -> None:
        """A Deployment, and its Service of the same name when it has ports."""
        selector, template = self._pod(component, container(component, image, ports))
        spec = {"replicas": 1, "selector": selector, "template": template}
        self._add(component, "Deployment", "apps/v1", name, {"spec": spec})
        if ports:
            self.service(name, component, ports)

    def statefulset(
        self,
        name: str,
        component: str,
        image: str,
        ports: dict[str, int],
        claims: dict[str, str] | None = None,
        headless: str = "-headless",
        client_service: bool = True,
        replicas: int = 1,
    ) -> None:
        """A StatefulSet with its governing headless Service `<name><headless>`.

        `claims` maps volumeClaimTemplate names to sizes (mounted at /<name>);
        `client_service` adds the ClusterIP Service `<name>` clients use.
        """
        claims = claims or {}
        mounts = [{"name": c, "mountPath": f"/{c}"} for c in claims]
        ctr = container(component, image, ports, **({"volumeMounts": mounts} if mounts else {}))
        selector, template = self._pod(component, ctr)
        spec: Obj = {
            "replicas": replicas,
            "serviceName": name + headless,
            "podManagementPolicy": "OrderedReady",
            "selector": selector,
            "template": template,
        }
        if claims:
            spec["volumeClaimTemplates"] = [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": c, "labels": template["metadata"]["labels"]},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": size}},
                    },
                }
                for c, size in claims.items()
            ]
        self._add(component, "StatefulSet", "apps/v1", name, {"spec": spec})
        self.service(name + headless, component, ports, headless=True)
        if client_service:
            self.service(name, component, ports)

    _INSTALL_ORDER: ClassVar[dict[str, int]] = {
        k: i for i, k in enumerate(("Secret", "ConfigMap", "Service", "Deployment", "StatefulSet"))
    }

    def _ordered(self) -> list[tuple[str, Obj]]:
        """Documents in (a subset of) Helm's InstallOrder, as Helm writes the manifest."""
        return sorted(self.docs, key=lambda d: self._INSTALL_ORDER[d[1]["kind"]])

    def manifest(self) -> str:
        """The release `manifest` string: `---\\n# Source: ...\\n<yaml>` per document."""
        return "".join(
            f"---\n# Source: {src}\n{yaml.safe_dump(doc, sort_keys=False)}"
            for src, doc in self._ordered()
        )

    def live_objects(self) -> list[Obj]:
        """The objects as Helm created them: namespace set, ownership annotations stamped."""
        out: list[Obj] = []
        for _, doc in self._ordered():
            live = copy.deepcopy(doc)
            live["metadata"]["namespace"] = self.namespace
            live["metadata"]["annotations"] = {
                "meta.helm.sh/release-name": self.release,
                "meta.helm.sh/release-namespace": self.namespace,
            }
            out.append(live)
        return out


_IMAGES = {
    "gmc": f"{_OPEA}/erag-gmcmanager:{ERAG_VERSION}",
    "fingerprint": f"{_OPEA}/erag-fingerprint:{ERAG_VERSION}",
    "chat-history": f"{_OPEA}/erag-chat-history:{ERAG_VERSION}",
    "edp": f"{_OPEA}/erag-enhanced-dataprep:{ERAG_VERSION}",
    "dataprep": f"{_OPEA}/erag-dataprep:{ERAG_VERSION}",
    "keycloak": f"{_BITNAMI}/keycloak:26.1.4-debian-12-r0",
    "postgresql": f"{_BITNAMI}/postgresql:17.4.0-debian-12-r11",
    "mongodb": f"{_BITNAMI}/mongodb:8.0.5-debian-12-r0",
    "redis": f"{_BITNAMI}/redis:7.4.2-debian-12-r6",
    "redis-cluster": f"{_BITNAMI}/redis-cluster:7.4.2-debian-12-r6",
    "ferretdb": "ghcr.io/ferretdb/ferretdb:2.1.0",
    "documentdb": "ghcr.io/ferretdb/postgres-documentdb:17-0.102.0-ferretdb-2.1.0",
    "seaweedfs": "docker.io/chrislusf/seaweedfs:3.85",
}


def erag_charts() -> list[Chart]:
    """The Helm releases of the default cleanup list, each with what its chart renders."""
    img, pw = _IMAGES, "sandbox-not-secret"
    pg, redis, mongo = {"tcp-postgresql": 5432}, {"tcp-redis": 6379}, {"mongodb": 27017}
    data8 = {"data": "8Gi"}

    gmc = Chart("gmc", "system", "gmc")
    gmc.config_map("gmc-config", "gmc", {"namespaces": "chatqa"})
    gmc.deployment("gmc-controller", "gmc", img["gmc"], {"metrics": 8080})

    kc = Chart("keycloak", "auth", "keycloak", "24.4.11", "26.1.4", explicit_namespace=True)
    test = "keycloak/templates/tests/test-connection.yaml"
    kc.hooks.append(hook("keycloak-test-connection", "Pod", test, ["test"], "before-hook-creation"))
    kc.secret("keycloak", "keycloak", {"admin-password": pw})
    kc.secret("keycloak-postgresql", "postgresql", {"password": pw, "postgres-password": pw})
    kc.config_map("keycloak-env-vars", "keycloak", {"KC_HTTP_PORT": "8080"})
    kc.statefulset("keycloak", "keycloak", img["keycloak"], {"http": 8080})
    kc.statefulset("keycloak-postgresql", "postgresql", img["postgresql"], pg, data8, "-hl")

    fp = Chart("fingerprint", "fingerprint", "fingerprint")
    fp.secret("fingerprint-mongodb", "mongodb", {"mongodb-root-password": pw})
    fp.deployment("fingerprint-usvc", "fingerprint-usvc", img["fingerprint"], {"http": 6012})
    fp.statefulset("fingerprint-mongodb", "mongodb", img["mongodb"], mongo, {"datadir": "8Gi"})

    ch = Chart("chat-history", "chat-history", "chat-history")
    ch.secret("chat-history-mongodb-postgresql", "postgresql", {"password": pw})
    ch.deployment("chat-history-usvc", "chat-history-usvc", img["chat-history"], {"http": 6014})
    ch.deployment("chat-history-mongodb", "ferretdb", img["ferretdb"], mongo)
    name = "chat-history-mongodb-postgresql"
    ch.statefulset(name, "postgresql", img["documentdb"], pg, data8, "-hl")

    edp = Chart("edp", "edp", "edp", revisions=(9, 10))
    edp.secret("edp-postgresql", "postgresql", {"password": pw})
    edp.secret("edp-redis", "redis", {"redis-password": pw})
    edp.config_map("edp-config", "edp-backend", {"CELERY_BROKER_URL": "redis://edp-redis:6379"})
    edp.deployment("edp-backend", "edp-backend", img["edp"], {"http": 5000})
    edp.deployment("edp-celery", "edp-celery", img["edp"], {})
    edp.deployment("edp-dataprep", "edp-dataprep", img["dataprep"], {"http": 9399})
    edp.statefulset("edp-postgresql", "postgresql", img["postgresql"], pg, data8, "-hl")
    edp.statefulset("edp-redis", "redis", img["redis"], redis, {"redis-data": "8Gi"})

    sw = Chart("seaweedfs", "seaweedfs", "seaweedfs", "4.0.0", "3.85")
    path = "seaweedfs/templates/post-install-bucket-hook.yaml"
    sw.hooks.append(hook("seaweedfs-bucket-hook", "Job", path, ["post-install"], "hook-succeeded"))
    sw.secret("seaweedfs-s3-secret", "filer", {"seaweedfs_s3_config": '{"identities": []}'})
    for comp, ports, size in (
        ("master", {"http": 9333, "grpc": 19333}, "1Gi"),
        ("volume", {"http": 8080, "grpc": 18080}, "20Gi"),
        ("filer", {"http": 8888, "s3": 8333}, "5Gi"),
    ):
        claims = {f"data-{comp}": size}
        sw.statefulset(f"seaweedfs-{comp}", comp, img["seaweedfs"], ports, claims, "", False)
    sw.service("seaweedfs-s3", "filer", {"s3": 8333})

    vdb = Chart("vdb", "vdb", "vdb", revisions=(1, 2))
    vdb.secret("vdb-redis-cluster", "redis-cluster", {"redis-password": pw})
    conf = {"redis-default.conf": "cluster-enabled yes\n"}
    vdb.config_map("vdb-redis-cluster-default", "redis-cluster", conf)
    claims, name = {"redis-data": "8Gi"}, "vdb-redis-cluster"
    vdb.statefulset(name, "redis-cluster", img["redis-cluster"], redis, claims, replicas=3)
    return [gmc, kc, fp, ch, edp, sw, vdb]


def plain_secret(namespace: str, name: str, data: dict[str, str], kind: str = "Opaque") -> Obj:
    """A Secret the installer creates outside any chart (the cleanup list names these)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
        "type": kind,
        "data": {k: b64(v) for k, v in data.items()},
    }


def loose_secrets() -> list[Obj]:
    """The Secrets of the cleanup list that are not part of a Helm release."""
    vdb_conf = {"VECTOR_DB_ENDPOINT": "redis://vdb-redis-cluster.vdb:6379"}
    pem = "-----BEGIN CERTIFICATE-----\nc2FuZGJveA==\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\nc2FuZGJveA==\n-----END PRIVATE KEY-----\n"
    mongo = {"MONGO_USER": "erag", "MONGO_PASSWORD": "sandbox-not-secret"}
    return [
        plain_secret("fingerprint", "mongo-database-secret", mongo),
        plain_secret("chat-history", "mongo-database-secret", mongo),
        plain_secret("edp", "vector-database-config", vdb_conf),
        plain_secret("edp", "tls-secret", {"tls.crt": pem, "tls.key": key}, "kubernetes.io/tls"),
        plain_secret("vdb", "vector-database-config", vdb_conf),
    ]


#: ChatQnA pipeline: (name, `app.kubernetes.io/instance`, image, port).
_CHATQA = (
    ("router-service", "chatqa", "erag-router", 8080),
    ("embedding-svc", "chatqa", "erag-embedding", 6000),
    ("retriever-svc", "chatqa", "erag-retriever", 6620),
    ("reranking-svc", "chatqa", "erag-reranking", 8000),
    ("prompt-template-svc", "chatqa", "erag-prompt-template", 7900),
    ("llm-svc", "chatqa", "erag-llm", 9000),
    ("torchserve-embedding-svc", "torchserve_embedding", "erag-torchserve", 8090),
    ("torchserve-reranking-svc", "torchserve_reranking", "erag-torchserve", 8090),
    ("vllm-service-m", "vllm", "erag-vllm", 8000),
)


def chatqa_objects() -> tuple[list[Obj], list[Obj]]:
    """(namespaced objects, PVs) of the ChatQnA pipeline.

    Every Deployment is labelled `app.kubernetes.io/managed-by: Helm` (the cleanup
    deletes them by that selector). The model servers carry an `instance` value of
    MODEL_SERVING so the backup's orSelectors skip them, their model cache PVC too.
    """
    ns = "chatqa"
    objects: list[Obj] = []
    pvs: list[Obj] = []
    for name, instance, image, port in _CHATQA:
        selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance}
        labels = {**selector, **MANAGED_BY_HELM, **PART_OF}
        ctr = container(name, f"{_OPEA}/{image}:{ERAG_VERSION}", {"http": port})
        pod_spec: Obj = {"containers": [ctr]}
        if instance == "vllm":
            pv, pvc = bound_claim(ns, "model-volume-vllm", labels, "100Gi")
            pvs.append(pv)
            objects.append(pvc)
            claim = {"claimName": "model-volume-vllm"}
            pod_spec["volumes"] = [{"name": "model-volume", "persistentVolumeClaim": claim}]
            ctr["volumeMounts"] = [{"name": "model-volume", "mountPath": "/data"}]
        meta = {"name": name, "namespace": ns, "labels": labels}
        svc_spec = {
            "type": "ClusterIP",
            "selector": selector,
            "ports": service_ports({"http": port}),
        }
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": svc_spec})
        spec = {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        }
        deploy_meta = {**meta, "name": f"{name}-deployment"}
        objects.append(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": deploy_meta, "spec": spec}
        )
    return copy.deepcopy(objects), pvs
