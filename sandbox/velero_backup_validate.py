"""Backup validation: the request Velero prepares before it runs a backup.

What ragbot shows a user when a backup cannot start is Velero's `validationErrors`, and
what it later reads back (`spec.ttl`, `spec.storageLocation`, the storage-location
label, `status.expiration`) is what this preparation wrote, so it follows
prepareBackupRequest and validateAndGetSnapshotLocations of backup_controller.go
(v1.16.2) message for message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .velero_common import (
    BACKUP_FORMAT_VERSION,
    BACKUP_VERSION,
    DEFAULT_CSI_SNAPSHOT_TIMEOUT_NS,
    DEFAULT_ITEM_OPERATION_TIMEOUT_NS,
    DEFAULT_TTL_NS,
    EXCLUDE_FROM_BACKUP_LABEL,
    RESOURCE_TIMEOUT,
    STORAGE_LOCATION_LABEL,
    Obj,
    duration_ns,
    format_duration_ns,
    stamp,
    valid_label_value,
)

if TYPE_CHECKING:
    from .velero import VeleroSimulator


def includes_excludes_errors(includes: list[str], excludes: list[str]) -> list[str]:
    """collections.ValidateIncludesExcludes."""
    errs = []
    inc, exc = set(includes), set(excludes)
    if len(inc) > 1 and "*" in inc:
        errs.append("includes list must either contain '*' only, or a non-empty list of items")
    if "*" in exc:
        errs.append("excludes list cannot contain '*'")
    errs += [f"excludes list cannot contain an item in the includes list: {i}" for i in sorted(exc) if i in inc]
    return errs


def prepare_backup(sim: VeleroSimulator, backup: Obj) -> tuple[Obj, list[str], Obj | None]:
    """The prepared request: (backup with defaults written, validation errors, its BSL)."""
    out = dict(backup)
    spec = dict(out.get("spec") or {})
    status = dict(out.get("status") or {})
    meta = dict(out["metadata"])
    errs: list[str] = []
    now = sim.clock()
    status["version"] = BACKUP_VERSION
    status["formatVersion"] = BACKUP_FORMAT_VERSION
    ttl_ns = duration_ns(spec.get("ttl"))
    if not ttl_ns:
        ttl_ns = DEFAULT_TTL_NS
        spec["ttl"] = format_duration_ns(ttl_ns)
    if not duration_ns(spec.get("csiSnapshotTimeout")):
        spec["csiSnapshotTimeout"] = format_duration_ns(DEFAULT_CSI_SNAPSHOT_TIMEOUT_NS)
    if not duration_ns(spec.get("itemOperationTimeout")):
        spec["itemOperationTimeout"] = format_duration_ns(DEFAULT_ITEM_OPERATION_TIMEOUT_NS)
    status["expiration"] = stamp(now + ttl_ns / 1e9)
    if spec.get("defaultVolumesToRestic") is True:
        spec["defaultVolumesToFsBackup"] = True
    spec.setdefault("defaultVolumesToFsBackup", False)
    spec.setdefault("snapshotMoveData", False)

    server_specified = False
    if not spec.get("storageLocation"):
        spec["storageLocation"] = "default"  # the server's --default-backup-storage-location
        for loc in sim.list(sim.rt("backupstoragelocations")):
            if (loc.get("spec") or {}).get("default"):
                spec["storageLocation"] = loc["metadata"]["name"]
                break
        server_specified = True
    loc_name = spec["storageLocation"]
    bsl = sim.bsl(loc_name)
    if bsl is None:
        err = f'backupstoragelocations.velero.io "{loc_name}" not found'
        where = (
            f"the server default {loc_name} does not exist"
            if server_specified
            else f"the default {loc_name} was not found"
        )
        errs.append(
            "an existing backup storage location was not specified at backup creation time and "
            f"{where}. Please address this issue (see `velero backup-location -h` for options) "
            f"and create a new backup. Error: {err}"
        )
    else:
        if (bsl.get("spec") or {}).get("accessMode") == "ReadOnly":
            errs.append(
                f"backup can't be created because backup storage location {loc_name} is "
                "currently in read-only mode"
            )
        if (bsl.get("status") or {}).get("phase") != "Available":
            errs.append(
                f"backup can't be created because BackupStorageLocation {loc_name} is in "
                "Unavailable status. please create a new backup after the BSL becomes available"
            )
    meta["labels"] = {**(meta.get("labels") or {}), STORAGE_LOCATION_LABEL: valid_label_value(loc_name)}

    vsl_names, vsl_errs = _snapshot_locations(sim, spec)
    errs += vsl_errs
    if not vsl_errs:
        if vsl_names:
            spec["volumeSnapshotLocations"] = vsl_names
        else:
            spec.pop("volumeSnapshotLocations", None)

    version = sim.server_version()
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        "velero.io/source-cluster-k8s-gitversion": version.get("gitVersion", ""),
        "velero.io/source-cluster-k8s-major-version": version.get("major", ""),
        "velero.io/source-cluster-k8s-minor-version": version.get("minor", ""),
        "velero.io/resource-timeout": RESOURCE_TIMEOUT,
    }
    ns_rt = sim.store.registry.lookup("", "v1", "namespaces")
    if ns_rt is not None:
        for ns in sim.store.list(ns_rt)[0]:
            if (ns["metadata"].get("labels") or {}).get(EXCLUDE_FROM_BACKUP_LABEL) == "true":
                spec["excludedNamespaces"] = [*(spec.get("excludedNamespaces") or []), ns["metadata"]["name"]]

    old_filters = any(spec.get(k) for k in ("includedResources", "excludedResources")) or (
        spec.get("includeClusterResources") is not None
    )
    new_filters = any(
        spec.get(k)
        for k in (
            "includedClusterScopedResources",
            "excludedClusterScopedResources",
            "includedNamespaceScopedResources",
            "excludedNamespaceScopedResources",
        )
    )
    if old_filters and new_filters:
        errs.append(
            "include-resources, exclude-resources and include-cluster-resources are old filter "
            "parameters.\ninclude-cluster-scoped-resources, exclude-cluster-scoped-resources, "
            "include-namespace-scoped-resources and exclude-namespace-scoped-resources are new "
            "filter parameters.\nThey cannot be used together"
        )
    errs += [
        f"Invalid included/excluded resource lists: {e}"
        for e in includes_excludes_errors(spec.get("includedResources") or [], spec.get("excludedResources") or [])
    ]
    errs += [
        f"Invalid included/excluded namespace lists: {e}"
        for e in includes_excludes_errors(spec.get("includedNamespaces") or [], spec.get("excludedNamespaces") or [])
    ]
    if spec.get("orLabelSelectors") is not None and spec.get("labelSelector") is not None:
        errs.append(
            "encountered labelSelector as well as orLabelSelectors in backup spec, only one can be specified"
        )
    out["spec"], out["status"], out["metadata"] = spec, status, meta
    return out, errs, bsl


def _snapshot_locations(sim: VeleroSimulator, spec: Obj) -> tuple[list[str], list[str]]:
    """validateAndGetSnapshotLocations: one VolumeSnapshotLocation per provider."""
    errs: list[str] = []
    chosen: dict[str, str] = {}
    rt = sim.rt("volumesnapshotlocations")
    for name in spec.get("volumeSnapshotLocations") or []:
        loc = sim.get(rt, name)
        if loc is None:
            errs.append(
                f"a VolumeSnapshotLocation CRD for the location {name} with the name specified in "
                "the backup spec needs to be created before this snapshot can be executed. Error: "
                f'volumesnapshotlocations.velero.io "{name}" not found'
            )
            continue
        provider = (loc.get("spec") or {}).get("provider", "")
        if provider in chosen and chosen[provider] != name:
            errs.append(
                f"more than one VolumeSnapshotLocation name specified for provider {provider}: "
                f"{name}; unexpected name was {chosen[provider]}"
            )
            continue
        chosen[provider] = name
    if errs:
        return [], errs
    by_provider: dict[str, list[str]] = {}
    for loc in sim.list(rt):
        by_provider.setdefault((loc.get("spec") or {}).get("provider", ""), []).append(loc["metadata"]["name"])
    for provider, names in by_provider.items():
        if provider in chosen:
            continue
        if len(names) > 1:
            errs.append(
                f"provider {provider} has more than one possible volume snapshot location, and "
                "none were specified explicitly or as a default"
            )
            continue
        chosen[provider] = names[0]
    return ([] if errs else list(chosen.values())), errs
