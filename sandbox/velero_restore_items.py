"""One item of a Restore: restoreItem of pkg/restore/restore.go (v1.16.2), simplified.

What ragbot and the application see after a restore is decided here: which backed-up
items are left alone (re-provisioned PVs, completed pods and jobs), what Velero strips
before creating (server-set metadata, `ownerReferences`, status, a Service's cluster
IP, a claim's bound volume), the labels it adds, and what happens when the object
already exists: skipped if unchanged, otherwise a warning (policy none or unset) or a
merge towards the backed-up content (policy update), which the apiserver refuses for a
claim's spec.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from .apiserver import errors as api_errors
from .apiserver.builtin_rules import apply_defaults
from .apiserver.objects import clone
from .velero_common import (
    BACKUP_NAME_LABEL,
    RESTORE_NAME_LABEL,
    SNAPSHOT_GROUP,
    VOLUME_SNAPSHOT_LABEL,
    Obj,
    result_add,
    valid_label_value,
)
from .velero_volumes import bind_restored_claim

if TYPE_CHECKING:
    from .velero import VeleroSimulator
    from .velero_restore import RestoreRun

_RESET_META = (
    "generateName", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences",
)
_BIND_ANNOTATIONS = ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller")


def _reset(obj: Obj) -> Obj:
    out = clone(obj)
    m = out.setdefault("metadata", {})
    for key in _RESET_META:
        m.pop(key, None)
    out.pop("status", None)
    return out


def restore_item(sim: VeleroSimulator, run: RestoreRun, gr: str, ns: str, item: Obj) -> None:
    name = item["metadata"]["name"]
    rkey = (f"{item['apiVersion']}/{item['kind']}", ns, name)
    if rkey in run.restored:
        return
    resource_id = f"{gr}/{ns}/{name}" if ns else f"{gr}/{name}"
    store = sim.store
    rt = store.registry.by_kind(item["apiVersion"], item["kind"])
    if ns:
        _ensure_namespace(sim, run, ns, item["metadata"].get("namespace") or ns)
    if _skip(run, gr, item):
        run.restored[rkey] = "skipped"
        return
    if rt is None:
        result_add(run.errors, ns, f"error restoring {resource_id}: the server could not find the requested resource")
        run.restored[rkey] = "failed"
        return
    with store.lock:
        existing = store.try_get(rt, ns, name)
        obj = _reset(item)
        _item_actions(run, gr, obj, item, exists=existing is not None)
        if ns:
            obj["metadata"]["namespace"] = ns
        labels = obj["metadata"].setdefault("labels", {})
        labels[BACKUP_NAME_LABEL] = valid_label_value(run.backup)
        labels[RESTORE_NAME_LABEL] = valid_label_value(run.name)
        if existing is None:
            try:
                created = store.create(rt, ns, obj, defaults=apply_defaults)
            except api_errors.ApiError as err:
                run.log.error(f"error restoring {name}: {err}", namespace=ns)
                result_add(run.errors, ns, f"error restoring {resource_id}: {err}")
                run.restored[rkey] = "failed"
                return
            run.restored[rkey] = "created"
            run.log.info(f"Restored {item['kind']}: {name}", namespace=ns)
            if rt.kind == "PersistentVolumeClaim" and not rt.group:
                bind_restored_claim(sim, created)
            return
    _existing(sim, run, rt, rkey, resource_id, obj, existing)


def _skip(run: RestoreRun, gr: str, item: Obj) -> bool:
    """Items restoreItem leaves alone: re-provisioned PVs, completed pods/jobs, mirror pods,
    and (a sandbox simplification) the CSI snapshot objects themselves."""
    if gr == "persistentvolumes":
        spec = item.get("spec") or {}
        return item["metadata"]["name"] in run.provision or spec.get("persistentVolumeReclaimPolicy", "Delete") == "Delete"
    if gr.endswith("." + SNAPSHOT_GROUP):
        return True
    status = item.get("status") or {}
    if gr == "pods":
        return status.get("phase") in ("Succeeded", "Failed") or bool(
            (item["metadata"].get("annotations") or {}).get("kubernetes.io/config.mirror"))
    return gr == "jobs.batch" and bool(status.get("completionTime"))


def _item_actions(run: RestoreRun, gr: str, obj: Obj, item: Obj, *, exists: bool) -> None:
    """The built-in RestoreItemActions ragbot's kinds go through (the CSI PVC action
    leaves a claim that already exists alone)."""
    spec = obj.get("spec") or {}
    if gr == "services":
        if spec.get("clusterIP") != "None":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if not run.preserve_node_ports:
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
            spec.pop("healthCheckNodePort", None)
    elif gr == "pods":
        spec.pop("nodeName", None)
    elif gr == "persistentvolumeclaims" and spec.get("volumeName"):
        annotations = obj["metadata"].get("annotations") or {}
        for key in _BIND_ANNOTATIONS:
            annotations.pop(key, None)
        if spec["volumeName"] in run.provision:
            spec.pop("volumeName", None)
        vs_name = (item["metadata"].get("annotations") or {}).get(VOLUME_SNAPSHOT_LABEL)
        if vs_name and not exists:
            spec["dataSource"] = {"apiGroup": SNAPSHOT_GROUP, "kind": "VolumeSnapshot", "name": vs_name}
            spec.pop("dataSourceRef", None)


def _comparable(obj: Obj) -> Obj:
    out = _reset(obj)
    out["metadata"].pop("managedFields", None)
    return out


def _existing(sim: VeleroSimulator, run: RestoreRun, rt: Any, rkey: tuple[str, str, str],
              resource_id: str, obj: Obj, existing: Obj) -> None:
    """The object is already there: compare, then skip, warn or update by policy."""
    ns, name, kind = rkey[1], rkey[2], obj.get("kind", "")
    from_cluster = _comparable(existing)
    from_cluster["metadata"].setdefault("labels", {}).update(
        {k: obj["metadata"]["labels"][k] for k in (BACKUP_NAME_LABEL, RESTORE_NAME_LABEL)})
    if from_cluster == _comparable(obj):
        if run.policy == "update":
            _patch_labels(sim, rt, ns, name, obj)
        run.restored[rkey] = "skipped"
        run.log.info(f"Restore of {name} skipped: it already exists in the cluster and is the same as the backed up version")
        return
    if run.policy == "update":
        if rt.kind == "PersistentVolumeClaim" and not rt.group:
            # The apiserver refuses the patch (a claim's spec is immutable), Velero warns
            # and falls back to patching only its labels.
            msg = (f'PersistentVolumeClaim "{name}" is invalid: spec: Forbidden: spec is immutable after '
                   "creation except resources.requests and volumeAttributesClassName for bound claims")
            result_add(run.warnings, ns, msg)
            run.log.warning(f"patch attempt failed for /v1, Kind={kind} {ns}/{name}: {msg}")
            _patch_labels(sim, rt, ns, name, obj)
            run.restored[rkey] = "failed"
            return
        try:
            sim.store.apply_update(rt, ns, name, lambda cur: _updated(cur, obj))
            run.restored[rkey] = "updated"
        except api_errors.ApiError as err:
            result_add(run.warnings, ns, str(err))
            _patch_labels(sim, rt, ns, name, obj)
            run.restored[rkey] = "failed"
        return
    if run.policy == "none":
        msg = (f'could not restore, {kind} "{name}" already exists. Warning: the in-cluster version '
               "is different than the backed-up version")
    else:
        msg = (f"could not restore, {kind}:{name} already exists. Warning: the in-cluster version "
               "is different than the backed-up version")
    result_add(run.warnings, ns, msg)
    run.log.warning(msg, namespace=ns)
    run.restored[rkey] = "failed"


def _updated(cur: Obj, obj: Obj) -> Obj:
    """The in-cluster object after Velero's merge patch towards the backed-up content.

    Allocated Service addresses survive, as the apiserver keeps them when a patch unsets
    them; status is untouched (both sides had it stripped).
    """
    new: Obj = {"apiVersion": cur["apiVersion"], "kind": cur["kind"], "metadata": cur["metadata"]}
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            new[key] = clone(value)
    if "status" in cur:
        new["status"] = cur["status"]
    if cur["kind"] == "Service":
        old_spec, spec = cur.get("spec") or {}, new.setdefault("spec", {})
        for key in ("clusterIP", "clusterIPs"):
            if key in old_spec and key not in spec:
                spec[key] = old_spec[key]
        old_ports = {p.get("name"): p for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            if "nodePort" in old_ports.get(port.get("name"), {}) and "nodePort" not in port:
                port["nodePort"] = old_ports[port.get("name")]["nodePort"]
    m = new["metadata"]
    for key in ("labels", "annotations", "finalizers"):
        if obj["metadata"].get(key):
            m[key] = clone(obj["metadata"][key])
        else:
            m.pop(key, None)
    return new


def _patch_labels(sim: VeleroSimulator, rt: Any, ns: str, name: str, obj: Obj) -> None:
    wanted = {k: obj["metadata"]["labels"][k] for k in (BACKUP_NAME_LABEL, RESTORE_NAME_LABEL)}

    def mutate(cur: Obj) -> Obj:
        cur["metadata"].setdefault("labels", {}).update(wanted)
        return cur

    with contextlib.suppress(api_errors.ApiError):
        sim.store.apply_update(rt, ns, name, mutate)


def _ensure_namespace(sim: VeleroSimulator, run: RestoreRun, ns: str, original: str) -> None:
    """kube.EnsureNamespaceExistsAndIsReady: the target namespace, made from the backed-up
    Namespace of the original name if the backup has it (labels, annotations)."""
    ns_rt = sim.store.registry.lookup("", "v1", "namespaces")
    if ns_rt is None or sim.store.try_get(ns_rt, "", ns) is not None:
        return
    backed_up = run.namespaces.get(original)
    body: Obj = _reset(backed_up) if backed_up else {"apiVersion": "v1", "kind": "Namespace"}
    body.setdefault("metadata", {})["name"] = ns
    body.pop("spec", None)
    try:
        sim.store.create(ns_rt, "", body, defaults=apply_defaults)
    except api_errors.ApiError:
        return
    run.restored[("v1/Namespace", "", ns)] = "created"
