"""What a Backup captures: Velero's item collection, replayed over the sandbox Store.

A backup's content decides what a later restore can bring back, so the selection
follows pkg/backup/item_collector.go and item_backupper.go of v1.16.2: namespace and
resource includes/excludes, `labelSelector` or the OR of `orLabelSelectors`, Velero's
namespace tracking (a Namespace is kept when the namespace filter names it, its labels
match a selector, or an item of it was taken), the `velero.io/exclude-from-backup`
label, cluster-scoped types only for an all-namespaces backup (or
`includeClusterResources: true`), the PV of every PVC taken, and the CSI plugin's
VolumeSnapshot / VolumeSnapshotContent / VolumeSnapshotClass for each snapshotted PVC.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config.selectors import LabelSelector, SelectorError, from_api

from .apiserver.objects import clone
from .apiserver.resources import ResourceType
from .velero_common import (
    BACKUP_NAME_LABEL,
    EXCLUDE_FROM_BACKUP_LABEL,
    MUST_INCLUDE_ANNOTATION,
    SNAPSHOT_GROUP,
    VOLUME_SNAPSHOT_LABEL,
    VSCLASS_SELECTOR_LABEL,
    IncludesExcludes,
    LogBuffer,
    Obj,
    group_resource,
    log_hook_message,
    new_result,
    result_add,
    stamp,
    valid_label_value,
)

if TYPE_CHECKING:
    from .velero import VeleroSimulator


@dataclass
class CsiSnapshot:
    """One CSI VolumeSnapshot the backup took (what BackupVolumeInfos describes)."""

    pvc_namespace: str
    pvc_name: str
    pv_name: str
    driver: str
    size: str
    vs_name: str
    vsc_name: str
    vs_class: str
    handle: str
    reclaim_policy: str
    pv_labels: dict[str, str]


@dataclass
class Capture:
    items: list[dict[str, Any]] = field(default_factory=list)  # {groupResource, version, object}
    errors: dict[str, Any] = field(default_factory=new_result)
    warnings: dict[str, Any] = field(default_factory=new_result)
    csi: list[CsiSnapshot] = field(default_factory=list)
    pv_for_pvc: dict[str, str] = field(default_factory=dict)

    def resource_list(self, upto: int | None = None) -> dict[str, list[str]]:
        """BackupResourceList: `<groupVersion>/<Kind>` -> sorted `ns/name` (or name)."""
        out: dict[str, list[str]] = {}
        for entry in self.items[:upto]:
            obj = entry["object"]
            m = obj.get("metadata") or {}
            key = f"{obj['apiVersion']}/{obj['kind']}"
            ns = m.get("namespace") or ""
            out.setdefault(key, []).append(f"{ns}/{m['name']}" if ns else m["name"])
        for names in out.values():
            names.sort()
        return out


def _selectors(spec: Obj) -> tuple[LabelSelector | None, list[LabelSelector]]:
    single = from_api(spec["labelSelector"]) if spec.get("labelSelector") is not None else None
    ors = [from_api(s) for s in spec.get("orLabelSelectors") or []]
    return single, ors


def _selected(labels: dict[str, str] | None, single: LabelSelector | None, ors: list[LabelSelector]) -> bool:
    if ors:
        return any(s.matches(labels) for s in ors)
    return single.matches(labels) if single is not None else True


def _stored(obj: Obj) -> Obj:
    """The item as the sandbox keeps it in the tarball (resourceVersion and uid dropped)."""
    out = clone(obj)
    m = out.get("metadata") or {}
    m.pop("resourceVersion", None)
    m.pop("uid", None)
    return out


def capture_backup(sim: VeleroSimulator, backup: Obj, log: LogBuffer) -> Capture:
    """Collect the backup's items now, as Velero's item collector lists them at start."""
    store, reg = sim.store, sim.store.registry
    spec = backup.get("spec") or {}
    cap = Capture()
    res_filter = IncludesExcludes.of(spec.get("includedResources"), spec.get("excludedResources"), reg)
    ns_filter = IncludesExcludes.of(spec.get("includedNamespaces"), spec.get("excludedNamespaces"))
    include_cluster = spec.get("includeClusterResources")
    try:
        single, ors = _selectors(spec)
    except SelectorError as err:
        result_add(cap.errors, None, log_hook_message(f"error parsing label selector: {err}"))
        return cap
    cluster_ok = include_cluster is True or (include_cluster is None and ns_filter.include_everything())
    taken: set[tuple[str, str, str]] = set()
    tracked: set[str] = set()
    name = backup["metadata"]["name"]

    def take(rt: ResourceType, obj: Obj, *, must: bool = False) -> bool:
        m = obj.get("metadata") or {}
        key = (group_resource(rt), m.get("namespace") or "", m.get("name", ""))
        if key in taken:
            return False
        if not must and (m.get("labels") or {}).get(EXCLUDE_FROM_BACKUP_LABEL) == "true":
            return False
        if m.get("deletionTimestamp"):
            return False
        taken.add(key)
        cap.items.append({"groupResource": key[0], "version": rt.version, "object": _stored(obj)})
        log.info(
            "Backed up item", resource=key[0], namespace=key[1], name=key[2], backup=f"{sim.namespace}/{name}"
        )
        return True

    types = sorted(reg.all(), key=lambda rt: (rt.group, rt.plural))
    ns_rt = reg.lookup("", "v1", "namespaces")
    pvcs: list[Obj] = []
    for rt in types:
        gr = group_resource(rt)
        if rt is ns_rt or not res_filter.should_include(gr):
            continue
        if not rt.namespaced and not cluster_ok:
            continue
        for obj in store.list(rt)[0]:
            ns = (obj.get("metadata") or {}).get("namespace") or ""
            if rt.namespaced and not ns_filter.should_include(ns):
                continue
            if not _selected((obj.get("metadata") or {}).get("labels"), single, ors):
                continue
            if take(rt, obj) and rt.namespaced:
                tracked.add(ns)
                if rt.kind == "PersistentVolumeClaim" and not rt.group:
                    pvcs.append(obj)

    if ns_rt is not None and res_filter.should_include("namespaces"):
        existing = {n["metadata"]["name"]: n for n in store.list(ns_rt)[0]}
        for ns_name in spec.get("includedNamespaces") or ():
            if ns_name != "*" and ns_name not in existing:
                msg = f"fail to get the namespace {ns_name} specified in backup.Spec.IncludedNamespaces"
                log.error(msg, resource="namespaces")
                result_add(cap.errors, None, log_hook_message(msg, resource="namespaces"))
        for ns_name, ns_obj in existing.items():
            labels = (ns_obj.get("metadata") or {}).get("labels")
            if (single is not None and single.matches(labels)) or any(s.matches(labels) for s in ors):
                tracked.add(ns_name)
            elif ns_filter.include_everything() and (single is not None or ors):
                continue
            elif ns_filter.should_include(ns_name):
                tracked.add(ns_name)
        for ns_name in sorted(tracked):
            if ns_name in existing:
                take(ns_rt, existing[ns_name])

    _volumes(sim, backup, cap, pvcs, take, log)
    _crds_of_custom_resources(sim, cap, take, include_cluster)
    return cap


def _volumes(
    sim: VeleroSimulator, backup: Obj, cap: Capture, pvcs: list[Obj], take: Any, log: LogBuffer
) -> None:
    """The PV of each PVC (backup_pv_action) and the CSI plugin's snapshot of it."""
    reg, store = sim.store.registry, sim.store
    pv_rt = reg.lookup("", "v1", "persistentvolumes")
    sc_rt = reg.lookup("storage.k8s.io", "v1", "storageclasses")
    vsclass_rt = reg.lookup(SNAPSHOT_GROUP, "v1", "volumesnapshotclasses")
    vs_rt = reg.lookup(SNAPSHOT_GROUP, "v1", "volumesnapshots")
    vsc_rt = reg.lookup(SNAPSHOT_GROUP, "v1", "volumesnapshotcontents")
    spec = backup.get("spec") or {}
    csi_on = sim.csi_enabled() and spec.get("snapshotVolumes") is not False
    name = backup["metadata"]["name"]
    res_filter = IncludesExcludes.of(spec.get("includedResources"), spec.get("excludedResources"), reg)
    pv_excluded = spec.get("includeClusterResources") is False or res_filter.excluded("persistentvolumes")
    for pvc in pvcs:
        m, pvc_spec = pvc["metadata"], pvc.get("spec") or {}
        pv = store.try_get(pv_rt, "", pvc_spec["volumeName"]) if pv_rt and pvc_spec.get("volumeName") else None
        if pv is None:
            continue
        cap.pv_for_pvc[f"{m['namespace']}/{m['name']}"] = pv["metadata"]["name"]
        if not pv_excluded:
            take(pv_rt, pv, must=True)
        csi = (pv.get("spec") or {}).get("csi")
        if not csi_on or not csi or not pvc_spec.get("storageClassName"):
            continue
        sc = store.try_get(sc_rt, "", pvc_spec["storageClassName"]) if sc_rt else None
        provisioner = (sc or {}).get("provisioner", "")
        classes = [c for c in (store.list(vsclass_rt)[0] if vsclass_rt else []) if c.get("driver") == provisioner]
        chosen = next((c for c in classes if VSCLASS_SELECTOR_LABEL in (c["metadata"].get("labels") or {})), None)
        if chosen is None and len(classes) == 1:
            chosen = classes[0]
        if sc is None or chosen is None:
            if sc is None:
                reason = f'error getting storage class: storageclasses.storage.k8s.io "{pvc_spec["storageClassName"]}" not found'
            else:
                reason = (
                    f"failed to get VolumeSnapshotClass for StorageClass {sc['metadata']['name']}: "
                    "error getting VolumeSnapshotClass: failed to get VolumeSnapshotClass for "
                    f"provisioner {provisioner}, ensure that the desired VolumeSnapshot class has "
                    f"the {VSCLASS_SELECTOR_LABEL} label"
                )
            error = (
                f"error executing custom action (groupResource=persistentvolumeclaims, "
                f"namespace={m['namespace']}, name={m['name']}): rpc error: code = Unknown desc = {reason}"
            )
            log.error("Error backing up item", name=m["name"], namespace=m["namespace"], error=error)
            msg = log_hook_message("Error backing up item", resource="persistentvolumeclaims", name=m["name"], error=error)
            result_add(cap.errors, m["namespace"], msg)
            _drop(cap, "persistentvolumeclaims", m["namespace"], m["name"])
            continue
        snap = CsiSnapshot(
            pvc_namespace=m["namespace"],
            pvc_name=m["name"],
            pv_name=pv["metadata"]["name"],
            driver=provisioner,
            size=((pvc_spec.get("resources") or {}).get("requests") or {}).get("storage", ""),
            vs_name=f"velero-{m['name']}-{secrets.token_hex(3)[:5]}",
            vsc_name=f"snapcontent-{uuid.uuid4()}",
            vs_class=chosen["metadata"]["name"],
            handle=f"snapshot-{uuid.uuid4()}",
            reclaim_policy=(pv.get("spec") or {}).get("persistentVolumeReclaimPolicy", "Delete"),
            pv_labels=dict(pv["metadata"].get("labels") or {}),
        )
        cap.csi.append(snap)
        _label_pvc(cap, snap, name)
        for rt, obj in _snapshot_objects(sim, snap, name, chosen, vs_rt, vsc_rt, vsclass_rt):
            take(rt, obj, must=True)


def _drop(cap: Capture, gr: str, ns: str, name: str) -> None:
    cap.items = [
        e
        for e in cap.items
        if not (
            e["groupResource"] == gr
            and e["object"]["metadata"].get("namespace") == ns
            and e["object"]["metadata"]["name"] == name
        )
    ]


def _label_pvc(cap: Capture, snap: CsiSnapshot, backup: str) -> None:
    """The PVC as the CSI PVC action returns it: labelled and annotated with its snapshot."""
    for entry in cap.items:
        m = entry["object"]["metadata"]
        if entry["groupResource"] == "persistentvolumeclaims" and m.get("namespace") == snap.pvc_namespace and m["name"] == snap.pvc_name:
            m.setdefault("labels", {}).update(
                {VOLUME_SNAPSHOT_LABEL: snap.vs_name, BACKUP_NAME_LABEL: valid_label_value(backup)}
            )
            m.setdefault("annotations", {}).update(
                {VOLUME_SNAPSHOT_LABEL: snap.vs_name, MUST_INCLUDE_ANNOTATION: "true"}
            )


def _snapshot_objects(
    sim: VeleroSimulator,
    snap: CsiSnapshot,
    backup: str,
    vs_class: Obj,
    vs_rt: ResourceType | None,
    vsc_rt: ResourceType | None,
    vsclass_rt: ResourceType | None,
) -> list[tuple[ResourceType, Obj]]:
    """The VolumeSnapshot, its content and class, as they stood when backed up.

    Velero deletes the VolumeSnapshot from the cluster once the backup is uploaded, so
    they are not created in the Store, only kept in the tarball.
    """
    now = stamp(sim.clock())
    out: list[tuple[ResourceType, Obj]] = []
    if vs_rt is not None:
        vs = {
            "apiVersion": f"{SNAPSHOT_GROUP}/v1",
            "kind": "VolumeSnapshot",
            "metadata": {
                "name": snap.vs_name,
                "namespace": snap.pvc_namespace,
                "generateName": f"velero-{snap.pvc_name}-",
                "creationTimestamp": now,
                "labels": {BACKUP_NAME_LABEL: valid_label_value(backup)},
            },
            "spec": {
                "source": {"persistentVolumeClaimName": snap.pvc_name},
                "volumeSnapshotClassName": snap.vs_class,
            },
            "status": {
                "boundVolumeSnapshotContentName": snap.vsc_name,
                "creationTime": now,
                "readyToUse": True,
                "restoreSize": snap.size,
            },
        }
        out.append((vs_rt, vs))
    if vsc_rt is not None:
        vsc = {
            "apiVersion": f"{SNAPSHOT_GROUP}/v1",
            "kind": "VolumeSnapshotContent",
            "metadata": {"name": snap.vsc_name, "creationTimestamp": now},
            "spec": {
                "deletionPolicy": "Retain",
                "driver": snap.driver,
                "source": {"volumeHandle": snap.pv_name},
                "volumeSnapshotClassName": snap.vs_class,
                "volumeSnapshotRef": {
                    "apiVersion": f"{SNAPSHOT_GROUP}/v1",
                    "kind": "VolumeSnapshot",
                    "name": snap.vs_name,
                    "namespace": snap.pvc_namespace,
                },
            },
            "status": {"readyToUse": True, "snapshotHandle": snap.handle},
        }
        out.append((vsc_rt, vsc))
    if vsclass_rt is not None:
        out.append((vsclass_rt, vs_class))
    return out


def _crds_of_custom_resources(sim: VeleroSimulator, cap: Capture, take: Any, include_cluster: Any) -> None:
    """Velero backs up the CRD of every custom resource it took (unless told not to)."""
    if include_cluster is False:
        return
    crd_rt = sim.store.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    if crd_rt is None:
        return
    for gr in sorted({e["groupResource"] for e in cap.items if "." in e["groupResource"]}):
        crd = sim.store.try_get(crd_rt, "", gr)
        if crd is not None:
            take(crd_rt, crd, must=True)
