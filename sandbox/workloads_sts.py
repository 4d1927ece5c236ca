"""The StatefulSet controller of the sandbox: ordinal pods and their claims.

Enterprise RAG keeps its data in StatefulSets (vdb-redis-cluster, edp-postgresql,
seaweedfs, ...). A restore deletes them and their PVCs and Velero recreates both; the
pods must then come back as `<sts>-0..N-1`, each mounting `<template>-<sts>-<ordinal>`,
in order (OrderedReady: ordinal i+1 only once i is Running and Ready), exactly as the
real controller brings them back. Claims are created if missing and, as in a real
cluster, not owned by the StatefulSet, so deleting it leaves the data behind.

Simplifications (README): no ControllerRevision objects (the revision is a hash of the
template), scale-down removes one pod per pass without waiting for graceful
termination, persistentVolumeClaimRetentionPolicy is ignored (Retain).
"""

from __future__ import annotations

import re

from .apiserver.objects import clone
from .workloads_apps import pod_from_template
from .workloads_kube import Kube, Obj, controller_uid, pod_ready, template_hash


class StatefulSetController:
    """StatefulSet → pods `<name>-<ordinal>` and PVCs `<template>-<name>-<ordinal>`."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def reconcile(self, namespace: str, name: str) -> float | None:
        k = self.kube.kinds
        sts = self.kube.get(k.statefulsets, namespace, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return None
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        parallel = spec.get("podManagementPolicy") == "Parallel"
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        pods = self._pods_by_ordinal(sts)
        for ordinal in range(replicas):
            # Claims first, ordinal by ordinal, as the real controller makes them.
            self._ensure_claims(sts, ordinal)
            pod = pods.get(ordinal)
            if pod is None:
                pod = self._create_pod(sts, ordinal, revision)
                if pod is None:
                    return None  # the StatefulSet went away meanwhile
                pods[ordinal] = pod
                if not parallel:
                    break
            elif not parallel and (pod["metadata"].get("deletionTimestamp") or not pod_ready(pod)):
                break  # OrderedReady: wait for this one before the next
        else:
            self._scale_down_or_update(sts, pods, replicas, revision, parallel)
        self._write_status(sts, revision)
        return None

    def _pods_by_ordinal(self, sts: Obj) -> dict[int, Obj]:
        name = sts["metadata"]["name"]
        pattern = re.compile(rf"^{re.escape(name)}-(\d+)$")
        k = self.kube.kinds
        self.kube.adopt(k.pods, sts, k.statefulsets, lambda p: bool(pattern.match(p["metadata"]["name"])))
        out: dict[int, Obj] = {}
        for pod in self.kube.list(self.kube.kinds.pods, sts["metadata"]["namespace"]):
            match = pattern.match(pod["metadata"]["name"])
            if match and controller_uid(pod) == sts["metadata"]["uid"]:
                out[int(match.group(1))] = pod
        return out

    def _scale_down_or_update(
        self, sts: Obj, pods: dict[int, Obj], replicas: int, revision: str, parallel: bool
    ) -> None:
        """Remove ordinals >= replicas (highest first), then roll outdated pods."""
        k = self.kube.kinds
        extra = sorted((o for o in pods if o >= replicas), reverse=True)
        if extra:
            for ordinal in extra if parallel else extra[:1]:
                self.kube.delete(k.pods, pods[ordinal])
            return
        strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type")
        if strategy == "OnDelete":
            return
        live = [pods[o] for o in range(replicas)]
        if any(p["metadata"].get("deletionTimestamp") or not pod_ready(p) for p in live):
            return
        outdated = [
            o
            for o in range(replicas)
            if (pods[o]["metadata"].get("labels") or {}).get("controller-revision-hash") != revision
        ]
        if outdated:
            self.kube.delete(k.pods, pods[max(outdated)])

    def _ensure_claims(self, sts: Obj, ordinal: int) -> None:
        """Create the claims of one ordinal that are missing, Pending for the binder."""
        k = self.kube.kinds
        spec, meta = sts.get("spec") or {}, sts["metadata"]
        match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
        for tpl in spec.get("volumeClaimTemplates") or ():
            tmeta = tpl.get("metadata") or {}
            claim = f"{tmeta.get('name')}-{meta['name']}-{ordinal}"
            if self.kube.get(k.pvcs, meta["namespace"], claim) is not None:
                continue
            body: Obj = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": claim,
                    "namespace": meta["namespace"],
                    "labels": {**(tmeta.get("labels") or {}), **match_labels},
                },
                "spec": clone(tpl.get("spec") or {}),
            }
            if tmeta.get("annotations"):
                body["metadata"]["annotations"] = clone(tmeta["annotations"])
            # Only while the set exists, so a deleted set does not grow claims back.
            self.kube.create_owned(k.pvcs, body, k.statefulsets, sts)

    def _create_pod(self, sts: Obj, ordinal: int, revision: str) -> Obj | None:
        spec, meta = sts.get("spec") or {}, sts["metadata"]
        template = spec.get("template") or {}
        pod_name = f"{meta['name']}-{ordinal}"
        labels = {
            **((template.get("metadata") or {}).get("labels") or {}),
            "controller-revision-hash": revision,
            "statefulset.kubernetes.io/pod-name": pod_name,
            "apps.kubernetes.io/pod-index": str(ordinal),
        }
        body = pod_from_template(template, meta["namespace"], sts, labels)
        body["metadata"]["name"] = pod_name
        pod_spec = body["spec"]
        pod_spec["hostname"] = pod_name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        claims = {
            (tpl.get("metadata") or {}).get("name"): {
                "name": (tpl.get("metadata") or {}).get("name"),
                "persistentVolumeClaim": {
                    "claimName": f"{(tpl.get('metadata') or {}).get('name')}-{meta['name']}-{ordinal}"
                },
            }
            for tpl in spec.get("volumeClaimTemplates") or ()
        }
        volumes = [v for v in pod_spec.get("volumes") or () if v.get("name") not in claims]
        if claims or volumes:
            pod_spec["volumes"] = [*claims.values(), *volumes]
        k = self.kube.kinds
        return self.kube.create_owned(k.pods, body, k.statefulsets, sts)

    def _write_status(self, sts: Obj, revision: str) -> None:
        k = self.kube.kinds
        pods = [p for p in self._pods_by_ordinal(sts).values() if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in pods if pod_ready(p))
        updated = sum(
            1
            for p in pods
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == revision
        )
        old = sts.get("status") or {}
        # currentRevision catches up with updateRevision once every pod runs it.
        current_revision = old.get("currentRevision") or revision
        if updated == len(pods) == int((sts.get("spec") or {}).get("replicas", 1)):
            current_revision = revision
        current = sum(
            1
            for p in pods
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash")
            == current_revision
        )
        status: Obj = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
        }
        for field, value in (
            ("readyReplicas", ready),
            ("currentReplicas", current),
            ("updatedReplicas", updated),
        ):
            if value:
                status[field] = value
        status.update(
            currentRevision=current_revision,
            updateRevision=revision,
            collisionCount=int(old.get("collisionCount") or 0),
            availableReplicas=ready,
        )
        self.kube.write_status(k.statefulsets, sts, status)
