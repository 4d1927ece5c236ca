"""The Restore controller: validation, then recreating a backup's items over time.

ragbot's restore path deletes the application and relies on a Restore bringing it
back, pods ready again; so this follows restore_controller.go and pkg/restore of
v1.16.2 where ragbot can see it: the validation messages; the non-restorable resources
appended to `spec.excludedResources`; the finalizer; the tarball read back from the
bucket (a backup without one fails the restore, whatever its phase); items recreated
over `seconds` in Velero's priority order (CRDs, namespaces, storage classes, ...,
PVCs, secrets, config maps, ..., services, then the rest alphabetically; one item is
velero_restore_items); progress, the results/log/resource-list files, and Finalizing
-> Completed or PartiallyFailed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config.selectors import SelectorError, from_api

from .velero_backup import DEFAULT_FAILURE
from .velero_backup_validate import includes_excludes_errors
from .velero_common import (
    COMPLETED,
    DEFAULT_ITEM_OPERATION_TIMEOUT_NS,
    EXTERNAL_RESOURCES_FINALIZER,
    FAILED,
    FAILED_VALIDATION,
    FINALIZING,
    FINALIZING_PARTIALLY_FAILED,
    IN_PROGRESS,
    NON_RESTORABLE,
    PARTIALLY_FAILED,
    RESTORE_HIGH_PRIORITIES,
    RESTORE_LOW_PRIORITIES,
    RESTORE_MUST_HAVE,
    SCHEDULE_NAME_LABEL,
    IncludesExcludes,
    Injection,
    LogBuffer,
    Obj,
    duration_ns,
    format_duration_ns,
    result_add,
    result_count,
    stamp,
)
from .velero_objectstore import JSON_GZ, TEXT_GZ, Layout
from .velero_restore_items import restore_item

if TYPE_CHECKING:
    from .velero import VeleroSimulator


@dataclass
class RestoreRun:
    """A restore the simulated server is working on, from InProgress to its end."""

    name: str
    backup: str
    bsl: str
    layout: Layout
    plan: list[tuple[str, str, Obj]]  # (groupResource, target namespace, object from backup)
    injection: Injection | None
    log: LogBuffer
    policy: str = ""
    phase: str = IN_PROGRESS
    elapsed: float = 0.0
    last_write: float = -1.0
    written: tuple[Any, ...] = ()
    done: int = 0
    stuck: bool = False
    warnings: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)
    restored: dict[tuple[str, str, str], str] = field(default_factory=dict)
    provision: set[str] = field(default_factory=set)  # PVs re-provisioned rather than restored
    namespaces: dict[str, Obj] = field(default_factory=dict)  # backed-up Namespaces by name
    preserve_node_ports: bool = False


# ----- validation (validateAndComplete) ---------------------------------------------------


def _validate(sim: VeleroSimulator, restore: Obj) -> tuple[Obj, list[str], Obj | None, Obj | None]:
    """(spec as Velero completes it, validation errors, backup, BSL)."""
    spec = dict(restore.get("spec") or {})
    errs: list[str] = []
    excluded = list(spec.get("excludedResources") or [])
    spec["excludedResources"] = excluded + [r for r in NON_RESTORABLE if r not in excluded]
    included = spec.get("includedResources") or []
    errs += [f"{r} are non-restorable resources" for r in NON_RESTORABLE if r in included]
    errs += [
        f"Invalid included/excluded resource lists: {e}"
        for e in includes_excludes_errors(included, spec["excludedResources"])
    ]
    errs += [
        f"Invalid included/excluded namespace lists: {e}"
        for e in includes_excludes_errors(spec.get("includedNamespaces") or [], spec.get("excludedNamespaces") or [])
    ]
    if spec.get("orLabelSelectors") is not None and spec.get("labelSelector") is not None:
        errs.append("encountered labelSelector as well as orLabelSelectors in restore spec, only one can be specified")
    if not duration_ns(spec.get("itemOperationTimeout")):
        spec["itemOperationTimeout"] = format_duration_ns(DEFAULT_ITEM_OPERATION_TIMEOUT_NS)
    if bool(spec.get("backupName")) == bool(spec.get("scheduleName")):
        errs.append("Either a backup or schedule must be specified as a source for the restore, but not both")
        return spec, errs, None, None
    policy = spec.get("existingResourcePolicy")
    if policy and policy not in ("none", "update"):
        errs.append(f"Invalid ExistingResourcePolicy: {policy}")
    backup_rt = sim.rt("backups")
    if spec.get("scheduleName"):
        backups = sim.list(backup_rt, labels={SCHEDULE_NAME_LABEL: spec["scheduleName"]})
        if not backups:
            errs.append("No backups found for schedule")
        backups.sort(key=lambda b: (b.get("status") or {}).get("startTimestamp") or "", reverse=True)
        latest = next((b for b in backups if (b.get("status") or {}).get("phase") == COMPLETED), None)
        if latest is None:
            errs.append("No completed backups found for schedule")
            return spec, errs, None, None
        spec["backupName"] = latest["metadata"]["name"]
    name = spec["backupName"]
    backup = sim.get(backup_rt, name)
    if backup is None:
        errs.append(
            f"Error retrieving backup: can't find backup {sim.namespace}/{name}: "
            f'backups.velero.io "{name}" not found'
        )
        return spec, errs, None, None
    loc = (backup.get("spec") or {}).get("storageLocation", "")
    bsl = sim.bsl(loc)
    if bsl is None:
        errs.append(f'Error retrieving backup: backupstoragelocations.velero.io "{loc}" not found')
        return spec, errs, None, None
    if (bsl.get("status") or {}).get("phase") != "Available":
        errs.append(
            f"the BSL {loc} is unavailable, cannot retrieve the backup. please retry the restore "
            "after the BSL becomes available"
        )
        return spec, errs, None, None
    if not spec.get("scheduleName"):
        schedule = (backup["metadata"].get("labels") or {}).get(SCHEDULE_NAME_LABEL)
        if schedule:
            spec["scheduleName"] = schedule
    return spec, errs, backup, bsl


def start_restore(sim: VeleroSimulator, restore: Obj) -> RestoreRun | None:
    name = restore["metadata"]["name"]
    injection = sim.injections.take("restore", name)
    spec, errs, backup, bsl = _validate(sim, restore)
    if injection is not None and injection.outcome == "FailedValidation":
        errs += list(injection.validation_errors) or [
            f"the BSL {(backup or {}).get('spec', {}).get('storageLocation', 'default')} is unavailable, "
            "cannot retrieve the backup. please retry the restore after the BSL becomes available"
        ]
    now = stamp(sim.clock())

    def write(cur: Obj) -> None:
        cur["spec"] = spec
        st = cur.setdefault("status", {})
        if errs:
            st["phase"], st["validationErrors"] = FAILED_VALIDATION, errs
        else:
            st["phase"], st["startTimestamp"] = IN_PROGRESS, now

    if sim.patch(sim.rt("restores"), name, write) is None or errs:
        return None
    assert backup is not None and bsl is not None
    layout = Layout(((bsl.get("spec") or {}).get("objectStorage") or {}).get("prefix", ""))
    log = LogBuffer(sim.clock, restore=f"{sim.namespace}/{name}", logSource="pkg/restore/restore.go")
    run = RestoreRun(name, backup["metadata"]["name"], bsl["metadata"]["name"], layout, [], injection, log,
                     policy=spec.get("existingResourcePolicy") or "",
                     preserve_node_ports=spec.get("preserveNodePorts") is True)
    log.info(f"Starting restore of backup {sim.namespace}/{run.backup}")
    items = sim.objects.payload(run.bsl, layout.backup(run.backup, ".tar.gz"))
    if items is None:
        key = layout.backup(run.backup, ".tar.gz")
        _fail(sim, run, f"error downloading backup: rpc error: code = Unknown desc = error getting object "
              f"{key}: NoSuchKey: The specified key does not exist.")
        return None
    if injection is not None and injection.outcome == "Failed":
        _fail(sim, run, injection.failure_reason or DEFAULT_FAILURE)
        return None
    infos = sim.objects.payload(run.bsl, layout.backup(run.backup, "-volumeinfo.json.gz")) or []
    run.provision = {i["pvName"] for i in infos if i.get("backupMethod") == "CSISnapshot"}
    run.namespaces = {e["object"]["metadata"]["name"]: e["object"] for e in items if e["groupResource"] == "namespaces"}
    try:
        run.plan = _plan(sim, {**restore, "spec": spec}, items)
    except SelectorError as err:
        _fail(sim, run, f"error parsing label selector: {err}")
        return None
    return run


def _plan(sim: VeleroSimulator, restore: Obj, items: list[dict[str, Any]]) -> list[tuple[str, str, Obj]]:
    """getOrderedResourceCollection: what will be restored, in order."""
    spec = restore["spec"]
    reg = sim.store.registry
    res_filter = IncludesExcludes.of(spec.get("includedResources"), spec.get("excludedResources"), reg)
    ns_filter = IncludesExcludes.of(spec.get("includedNamespaces"), spec.get("excludedNamespaces"))
    single = from_api(spec["labelSelector"]) if spec.get("labelSelector") is not None else None
    ors = [from_api(s) for s in spec.get("orLabelSelectors") or []]
    mapping = spec.get("namespaceMapping") or {}
    include_cluster = spec.get("includeClusterResources")
    by_gr: dict[str, list[Obj]] = {}
    for entry in items:
        by_gr.setdefault(entry["groupResource"], []).append(entry["object"])
    prio = {*RESTORE_HIGH_PRIORITIES, *RESTORE_LOW_PRIORITIES}
    order = ["customresourcedefinitions", *RESTORE_HIGH_PRIORITIES]
    order += sorted(gr for gr in by_gr if gr not in prio)
    order += list(RESTORE_LOW_PRIORITIES)
    plan: list[tuple[str, str, Obj]] = []
    seen: set[str] = set()
    for gr in order:
        if gr in seen or gr not in by_gr:
            continue
        seen.add(gr)
        must = gr in RESTORE_MUST_HAVE
        if not must and not res_filter.should_include(gr):
            continue
        for obj in sorted(by_gr[gr], key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
            ns = obj["metadata"].get("namespace") or ""
            if ns and not must and not ns_filter.should_include(ns):
                continue
            if not ns and (include_cluster is False or (include_cluster is not True and not ns_filter.include_everything())):
                continue
            labels = obj["metadata"].get("labels")
            if not must:
                if single is not None and not single.matches(labels):
                    continue
                if ors and not any(s.matches(labels) for s in ors):
                    continue
            plan.append((gr, mapping.get(ns, ns) if ns else "", obj))
    return plan


# ----- running ----------------------------------------------------------------------------


def advance_restore(sim: VeleroSimulator, run: RestoreRun, dt: float) -> bool:
    if run.stuck:
        return True
    run.elapsed += dt
    s = max(sim.seconds, 0.0)
    t_ip = 0.75 * s
    if run.phase == IN_PROGRESS:
        frac = 1.0 if t_ip <= 0 else min(1.0, run.elapsed / t_ip)
        target = len(run.plan) if run.elapsed >= t_ip else int(len(run.plan) * frac)
        inj = run.injection
        if inj is not None and inj.outcome == "Stuck" and frac >= 0.4:
            target = min(target, int(len(run.plan) * 0.4))
        while run.done < target:
            gr, ns, obj = run.plan[run.done]
            restore_item(sim, run, gr, ns, obj)
            run.done += 1
        if inj is not None and inj.outcome == "Stuck" and frac >= 0.4:
            _progress(sim, run, force=True)
            run.stuck = True
            sim.crash(f"restore {run.name}")
            return True
        if run.elapsed < t_ip:
            _progress(sim, run)
            return True
        _finish_in_progress(sim, run)
        return True
    if run.phase in (FINALIZING, FINALIZING_PARTIALLY_FAILED) and run.elapsed >= s:
        final = PARTIALLY_FAILED if run.phase == FINALIZING_PARTIALLY_FAILED else COMPLETED
        now = stamp(sim.clock())
        sim.patch(sim.rt("restores"), run.name, lambda cur: cur.setdefault("status", {}).update(
            phase=final, completionTimestamp=now))
        return False
    return True


def _progress(sim: VeleroSimulator, run: RestoreRun, force: bool = False) -> None:
    if not force and not sim.due(run, (run.done,)):
        return
    total, done = len(run.plan), run.done
    sim.patch(sim.rt("restores"), run.name, lambda cur: cur.setdefault("status", {}).update(
        progress={"totalItems": total, "itemsRestored": done}))


def _finish_in_progress(sim: VeleroSimulator, run: RestoreRun) -> None:
    inj = run.injection
    if inj is not None and inj.outcome == "PartiallyFailed":
        _inject_partial(run, inj)
    run.log.info("restore completed")
    partial = result_count(run.errors) > 0
    run.phase = FINALIZING_PARTIALLY_FAILED if partial else FINALIZING
    _upload(sim, run)
    total = len(run.plan)

    def write(cur: Obj) -> None:
        st = cur.setdefault("status", {})
        st.update(phase=run.phase, progress={"totalItems": total, "itemsRestored": total})
        for key, result in (("warnings", run.warnings), ("errors", run.errors)):
            if result_count(result):
                st[key] = result_count(result)

    sim.patch(sim.rt("restores"), run.name, write)
    sim.restore_slot_free(run.name)


def _inject_partial(run: RestoreRun, inj: Injection) -> None:
    if inj.results is not None:
        for key, target in (("errors", run.errors), ("warnings", run.warnings)):
            res = inj.results.get(key) or {}
            for msg in res.get("velero") or []:
                result_add(target, None, msg)
            for msg in res.get("cluster") or []:
                result_add(target, "", msg)
            for ns, msgs in (res.get("namespaces") or {}).items():
                for msg in msgs:
                    result_add(target, ns, msg)
        return
    namespaces = sorted({ns for _, ns, _ in run.plan if ns}) or ["default"]
    for i in range(inj.errors):
        ns = namespaces[i % len(namespaces)]
        result_add(run.errors, ns, "error restoring simulated item: injected by the sandbox")
    for i in range(inj.warnings):
        ns = namespaces[i % len(namespaces)]
        result_add(run.warnings, ns, "simulated warning: injected by the sandbox")


def _upload(sim: VeleroSimulator, run: RestoreRun) -> None:
    put, lay = sim.objects.put, run.layout
    resources: dict[str, list[str]] = {}
    for (key, ns, name), action in run.restored.items():
        resources.setdefault(key, []).append(f"{ns}/{name}({action})" if ns else f"{name}({action})")
    for entries in resources.values():
        entries.sort()
    put(run.bsl, lay.restore(run.name, "-logs.gz"), TEXT_GZ, run.log.text())
    put(run.bsl, lay.restore(run.name, "-results.gz"), JSON_GZ, {"warnings": run.warnings, "errors": run.errors})
    put(run.bsl, lay.restore(run.name, "-resource-list.json.gz"), JSON_GZ, resources)
    put(run.bsl, lay.restore(run.name, "-itemoperations.json.gz"), JSON_GZ, [])
    put(run.bsl, lay.restore_volume_info(run.name), JSON_GZ, [])


def _fail(sim: VeleroSimulator, run: RestoreRun, reason: str) -> None:
    now = stamp(sim.clock())
    run.log.error(reason)
    sim.patch(sim.rt("restores"), run.name, lambda cur: cur.setdefault("status", {}).update(
        phase=FAILED, failureReason=reason, completionTimestamp=now))
    sim.restore_slot_free(run.name)


def finalize_restore(sim: VeleroSimulator, name: str) -> None:
    """The restore finalizer: on deletion remove the restore's files, then the finalizer."""
    rt = sim.rt("restores")
    restore = sim.get(rt, name)
    if restore is None or not restore["metadata"].get("deletionTimestamp"):
        return
    if EXTERNAL_RESOURCES_FINALIZER not in (restore["metadata"].get("finalizers") or []):
        return
    for bsl in sim.list(sim.rt("backupstoragelocations")):
        prefix = (((bsl.get("spec") or {}).get("objectStorage") or {}).get("prefix", ""))
        sim.objects.delete_prefix(bsl["metadata"]["name"], Layout(prefix).restore_dir(name))

    def drop(cur: Obj) -> None:
        cur["metadata"]["finalizers"] = [
            f for f in cur["metadata"].get("finalizers") or [] if f != EXTERNAL_RESOURCES_FINALIZER
        ]

    sim.patch(rt, name, drop)


def add_finalizer(sim: VeleroSimulator, restore: Obj) -> None:
    if restore["metadata"].get("deletionTimestamp"):
        return
    if EXTERNAL_RESOURCES_FINALIZER in (restore["metadata"].get("finalizers") or []):
        return
    sim.patch(sim.rt("restores"), restore["metadata"]["name"], lambda cur: cur["metadata"].setdefault(
        "finalizers", []).append(EXTERNAL_RESOURCES_FINALIZER))
