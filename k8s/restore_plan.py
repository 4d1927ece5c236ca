"""The restore plan: every step of a restore and every object each step touches.

A restore first removes a large part of Enterprise RAG (Helm releases, selected
Deployments, named Secrets, the backup's PVCs) and only then asks Velero to bring the
backup back. The playbook does this blind. ragbot shows the whole plan before anything
runs, so an approver knows what goes offline, which Helm hooks an API-only uninstall
skips, which objects a `helm.sh/resource-policy` keeps, and which deleted objects the
backup cannot bring back. The same plan, stored in the restore record, is what the
executor runs step by step.

Order (reference/enterprise-rag-backup.md, Restore steps 3-7): the cleanup entries of
namespaceOrder in the playbook's three passes (selector deletes, Helm uninstalls, named
deletes; see `BackupConfig.cleanup_entries`), then the PVCs of the backup's resource
list, then "create the Restore", "wait for Velero", "wait for the application".

`plan_restore` is pure (config + resource list + `ClusterFacts` -> plan);
`gather_facts`/`build_plan` do the reading. `plan_to_dict`/`plan_from_dict` give the
JSON form stored in the record and printed by `ragbot restore plan -o json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from config.cleanup import HelmRelease, NamedDelete, SelectorDelete
from config.models import Config

from .client import Cluster
from .helm_release import CorruptReleaseError, latest_release, manifest_objects
from .helm_release import HelmRelease as ReleaseRecord
from .kinds import CLUSTER_SCOPED_KINDS, resolve_kind
from .resources import NAMESPACE, PVC, SECRET, list_all, try_get

SELECTOR_DELETE = "selector-delete"
HELM_UNINSTALL = "helm-uninstall"
NAMED_DELETE = "named-delete"
PVC_DELETE = "pvc-delete"
CREATE_RESTORE = "create-restore"
WAIT_VELERO = "wait-velero"
WAIT_READY = "wait-ready"
CLEANUP_ACTIONS = (SELECTOR_DELETE, HELM_UNINSTALL, NAMED_DELETE)

#: Restore step 5 of the playbook: what Velero must not restore.
EXCLUDED_RESOURCES = (
    "instrumentations.opentelemetry.io",
    "pods",
    "replicasets.apps",
    "gmconnectors.gmc.opea.io",
    "validatingwebhookconfigurations.admissionregistration.k8s.io",
)
#: What users lose while a namespace is cleaned up (DESIGN.md: why approval exists).
OFFLINE_EFFECTS = {
    "auth": "Keycloak user logins",
    "edp": "document ingestion pipelines",
    "chatqa": "the ChatQnA pipeline",
    "chat-history": "chat history",
    "vdb": "the vector database",
    "seaweedfs": "stored documents",
    "fingerprint": "the fingerprint service",
    "system": "the GMC manager",
}
_DELETE_HOOK_EVENTS = frozenset({"pre-delete", "post-delete"})


@dataclass(frozen=True)
class ObjectRef:
    """One object a step deletes, creates or keeps. `in_backup` None: not applicable."""

    kind: str
    namespace: str
    name: str
    api_version: str = ""
    in_backup: bool | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclass(frozen=True)
class SkippedHook:
    """A pre/post-delete hook `helm uninstall` would run and an API-only uninstall skips."""

    release: str
    name: str
    kind: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class PlanStep:
    """One durable step. `key` is stable and unique in the plan (the record keys on it)."""

    key: str
    action: str
    namespace: str
    title: str
    entry: str = ""
    kind: str = ""
    selector: str = ""
    name: str = ""
    objects: tuple[ObjectRef, ...] = ()
    kept: tuple[ObjectRef, ...] = ()
    hooks_skipped: tuple[SkippedHook, ...] = ()
    notes: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RestorePlan:
    backup: str
    velero_namespace: str
    steps: tuple[PlanStep, ...]
    offline: tuple[str, ...]
    ready_namespaces: tuple[str, ...]
    skipped_namespaces: tuple[str, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseFacts:
    """The newest record of a release and the names of all its revision Secrets."""

    release: ReleaseRecord
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class ClusterFacts:
    """What the planner needs to know about the cluster as it is now."""

    selector_matches: Mapping[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    releases: Mapping[tuple[str, str], ReleaseFacts | None] = field(default_factory=dict)
    present: Mapping[tuple[str, str, str], bool] = field(default_factory=dict)
    pvcs_present: frozenset[tuple[str, str]] = frozenset()


# ------------------------------------------------------------------------ resource list


def _group_of(key: str) -> str:
    gv = key.rpartition("/")[0]
    return gv.rpartition("/")[0] if "/" in gv else ""


class BackupContents:
    """The backup's resource list (`{"apps/v1/Deployment": ["ns/name", ...]}`) as a lookup."""

    def __init__(self, resource_list: Mapping[str, Sequence[str]]) -> None:
        self._items: set[tuple[str, str, str, str]] = set()
        self.pods: set[str] = set()
        self.pvcs: list[tuple[str, str]] = []
        for key, entries in resource_list.items():
            kind = key.rpartition("/")[2]
            group = _group_of(key)
            for entry in entries:
                ns, _, name = entry.rpartition("/")
                self._items.add((group, kind, ns, name))
                if key == "v1/Pod":
                    self.pods.add(ns)
                if key == "v1/PersistentVolumeClaim":
                    self.pvcs.append((ns, name))

    def has(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        return (group, kind, namespace, name) in self._items

    def has_kind(self, kind: str, namespace: str, name: str) -> bool:
        return any(k == kind and n == namespace and m == name for _, k, n, m in self._items)


# ------------------------------------------------------------------------ the pure core


def _ref(kind: str, ns: str, name: str, contents: BackupContents, api_version: str = "") -> ObjectRef:
    scoped_ns = "" if kind in CLUSTER_SCOPED_KINDS else ns
    if api_version:
        in_backup = contents.has(api_version, kind, scoped_ns, name)
    else:
        in_backup = contents.has_kind(kind, scoped_ns, name)
    return ObjectRef(kind, scoped_ns, name, api_version, in_backup)


def _selector_step(e: SelectorDelete, facts: ClusterFacts, contents: BackupContents) -> PlanStep:
    sel = str(e.selector)
    names = facts.selector_matches.get((e.namespace, e.kind, sel), ())
    objects = tuple(_ref(e.kind, e.namespace, n, contents) for n in names)
    notes = () if names else (f"no {e.kind} in {e.namespace} matches {sel} now",)
    return PlanStep(
        key=f"{SELECTOR_DELETE}:{e.namespace}:{e.kind}:{sel}",
        action=SELECTOR_DELETE, namespace=e.namespace, entry=str(e), kind=e.kind,
        selector=sel, title=f"{e.namespace}: delete every {e.kind} matching {sel}",
        objects=objects, notes=notes,
    )  # fmt: skip


def _helm_step(e: HelmRelease, facts: ClusterFacts, contents: BackupContents) -> PlanStep:
    key = f"{HELM_UNINSTALL}:{e.namespace}:{e.release}"
    title = f"{e.namespace}: uninstall Helm release {e.release}"
    found = facts.releases.get((e.namespace, e.release))
    if found is None:
        note = f"release {e.release} not found in {e.namespace}: nothing to uninstall"
        return PlanStep(key=key, action=HELM_UNINSTALL, namespace=e.namespace, entry=str(e),
                        name=e.release, title=title, notes=(note,))  # fmt: skip
    rel = found.release
    deleted: list[ObjectRef] = []
    kept: list[ObjectRef] = []
    notes = [f"revision {rel.version} ({rel.status}), chart {rel.chart_name}-{rel.chart_version}"]
    try:
        objects = manifest_objects(rel)
    except CorruptReleaseError as err:
        objects = []
        first = str(err).splitlines()[0]
        notes.append(f"{first}: the uninstall will stop here, as helm uninstall would")
    for obj in objects:
        ref = _ref(obj.kind, obj.namespace, obj.name, contents, obj.api_version)
        if obj.helm_deletes:
            deleted.append(ref)
        else:
            kept.append(ref)
            notes.append(f"kept: {ref} (helm.sh/resource-policy: {obj.resource_policy})")
    deleted += [_ref("Secret", e.namespace, s, contents, "v1") for s in found.secrets]
    hooks = tuple(
        SkippedHook(rel.name, h.name, h.kind, h.events)
        for h in rel.hooks
        if _DELETE_HOOK_EVENTS.intersection(h.events)
    )
    notes += [
        f"hook skipped (API-only uninstall acts like --no-hooks): {h.kind} {h.name} "
        f"({', '.join(h.events)})"
        for h in hooks
    ]
    return PlanStep(
        key=key, action=HELM_UNINSTALL, namespace=e.namespace, entry=str(e), name=e.release,
        title=title, objects=tuple(deleted), kept=tuple(kept), hooks_skipped=hooks,
        notes=tuple(notes),
    )  # fmt: skip


def _named_step(e: NamedDelete, facts: ClusterFacts, contents: BackupContents) -> PlanStep:
    present = facts.present.get((e.namespace, e.kind, e.name), False)
    objects = (_ref(e.kind, e.namespace, e.name, contents),) if present else ()
    notes = () if present else (f"{e.kind} {e.namespace}/{e.name} is not there: nothing to do",)
    return PlanStep(
        key=f"{NAMED_DELETE}:{e.namespace}:{e.kind}:{e.name}", action=NAMED_DELETE,
        namespace=e.namespace, entry=str(e), kind=e.kind, name=e.name,
        title=f"{e.namespace}: delete {e.kind} {e.name}", objects=objects, notes=notes,
    )  # fmt: skip


def restore_spec(cfg: Config, backup: str) -> dict[str, Any]:
    """The Restore spec the playbook creates (reference: Restore step 5)."""
    return {
        "backupName": backup,
        "excludedResources": list(EXCLUDED_RESOURCES),
        "existingResourcePolicy": "update",
        "itemOperationTimeout": str(cfg.velero.backup.itemOperationTimeout),
    }


def plan_restore(
    cfg: Config, backup: str, resource_list: Mapping[str, Sequence[str]], facts: ClusterFacts
) -> RestorePlan:
    """The ordered steps of restoring `backup` into a cluster described by `facts`."""
    contents = BackupContents(resource_list)
    order = cfg.velero.backup.backupConfig.namespaceOrder
    steps: list[PlanStep] = []
    for entry in cfg.velero.backup.backupConfig.cleanup_entries():
        if isinstance(entry, SelectorDelete):
            steps.append(_selector_step(entry, facts, contents))
        elif isinstance(entry, HelmRelease):
            steps.append(_helm_step(entry, facts, contents))
        else:
            steps.append(_named_step(entry, facts, contents))
    pvcs = tuple(dict.fromkeys(contents.pvcs))
    pvc_refs = tuple(ObjectRef("PersistentVolumeClaim", ns, n, "v1", True) for ns, n in pvcs)
    absent = [f"{ns}/{n}" for ns, n in pvcs if (ns, n) not in facts.pvcs_present]
    steps.append(PlanStep(
        key=PVC_DELETE, action=PVC_DELETE, namespace="", objects=pvc_refs,
        title=f"delete the {len(pvcs)} PersistentVolumeClaims of the backup",
        notes=(f"already absent: {', '.join(absent)}",) if absent else (),
    ))  # fmt: skip
    vns = cfg.velero.namespace
    prefix = cfg.velero.backup.restore_prefix
    steps.append(PlanStep(
        key=CREATE_RESTORE, action=CREATE_RESTORE, namespace=vns,
        title=f"create Velero Restore {prefix}-<timestamp> of {backup}",
        objects=(ObjectRef("Restore", vns, f"{prefix}-<timestamp>", "velero.io/v1"),),
        params={"spec": restore_spec(cfg, backup),
                "labels": dict(cfg.velero.backup.restore_labels)},
    ))  # fmt: skip
    steps.append(PlanStep(key=WAIT_VELERO, action=WAIT_VELERO, namespace=vns,
                          title="wait for Velero to finish the Restore"))  # fmt: skip
    ready = tuple(ns for ns in order if ns in contents.pods)
    skipped = tuple(ns for ns in order if ns not in contents.pods)
    steps.append(PlanStep(
        key=WAIT_READY, action=WAIT_READY, namespace="",
        title=f"wait for the application to be ready ({_namespaces_judged(ready, skipped)})",
        notes=tuple(f"{ns}: no pods in the backup, not required to have any" for ns in skipped),
        params={"namespaces": list(ready), "skipped": list(skipped)},
    ))  # fmt: skip
    touched = {o.namespace for s in steps if s.action in (*CLEANUP_ACTIONS, PVC_DELETE)
               for o in s.objects}  # fmt: skip
    offline = tuple(ns for ns in order if ns in touched)
    warnings = tuple(
        f"{o} will be deleted but is not in backup {backup}: the restore cannot bring it back"
        for s in steps
        if s.action in CLEANUP_ACTIONS
        for o in s.objects
        if o.in_backup is False
    ) + tuple(n for s in steps for n in s.notes if n.startswith("corrupted release record"))
    return RestorePlan(backup, vns, tuple(steps), offline, ready, skipped, warnings)


# --------------------------------------------------------------------------- the reading


def gather_facts(cluster: Cluster, cfg: Config, pvcs: Sequence[tuple[str, str]]) -> ClusterFacts:
    """Read what the planner needs: selector matches, release records, named objects, PVCs."""
    matches: dict[tuple[str, str, str], tuple[str, ...]] = {}
    releases: dict[tuple[str, str], ReleaseFacts | None] = {}
    present: dict[tuple[str, str, str], bool] = {}
    for e in cfg.velero.backup.backupConfig.cleanup_entries():
        if isinstance(e, SelectorDelete):
            res = resolve_kind(cluster, e.kind)
            items, _ = list_all(cluster, res, e.namespace, label_selector=str(e.selector))
            matches[(e.namespace, e.kind, str(e.selector))] = tuple(
                sorted(str(o["metadata"]["name"]) for o in items)
            )
        elif isinstance(e, HelmRelease):
            releases[(e.namespace, e.release)] = read_release(cluster, e.namespace, e.release)
        elif isinstance(e, NamedDelete):
            res = resolve_kind(cluster, e.kind)
            ns = e.namespace if res.namespaced else None
            present[(e.namespace, e.kind, e.name)] = try_get(cluster, res, ns, e.name) is not None
    found: set[tuple[str, str]] = set()
    for ns in sorted({ns for ns, _ in pvcs}):
        if try_get(cluster, NAMESPACE, None, ns) is None:
            continue
        items, _ = list_all(cluster, PVC, ns)
        found |= {(ns, str(o["metadata"]["name"])) for o in items}
    return ClusterFacts(matches, releases, present, frozenset(found))


def read_release(cluster: Cluster, namespace: str, release: str) -> ReleaseFacts | None:
    """The newest record of `release` (by JSON version) and its Secrets; None if none."""
    selector = f"owner=helm,name={release}"
    secrets, _ = list_all(cluster, SECRET, namespace, label_selector=selector)
    latest = latest_release(secrets, name=release)
    if latest is None:
        return None
    names = sorted(
        (str(s["metadata"]["name"]) for s in secrets),
        key=lambda n: (int(n.rpartition(".v")[2]) if n.rpartition(".v")[2].isdigit() else 0, n),
    )
    return ReleaseFacts(latest, tuple(names))


def build_plan(cluster: Cluster, cfg: Config, backup: Mapping[str, Any]) -> RestorePlan:
    """The plan for restoring `backup` (a Backup object) into the cluster as it is now."""
    from .download import backup_resource_list

    name = str((backup.get("metadata") or {}).get("name", ""))
    resource_list = backup_resource_list(cluster, cfg.velero.namespace, name)
    contents = BackupContents(resource_list)
    facts = gather_facts(cluster, cfg, contents.pvcs)
    return plan_restore(cfg, name, resource_list, facts)


# ---------------------------------------------------------------------------- rendering


def plan_to_dict(plan: RestorePlan) -> dict[str, Any]:
    """JSON-ready form (stored in the record, printed by `-o json`)."""
    out: dict[str, Any] = json.loads(json.dumps(asdict(plan)))  # tuples become lists
    return out


def plan_from_dict(data: Mapping[str, Any]) -> RestorePlan:
    """Inverse of plan_to_dict."""
    steps = tuple(
        PlanStep(
            **{k: v for k, v in s.items() if k not in ("objects", "kept", "hooks_skipped", "notes")},
            objects=tuple(ObjectRef(**o) for o in s.get("objects") or ()),
            kept=tuple(ObjectRef(**o) for o in s.get("kept") or ()),
            hooks_skipped=tuple(
                SkippedHook(h["release"], h["name"], h["kind"], tuple(h["events"]))
                for h in s.get("hooks_skipped") or ()
            ),
            notes=tuple(s.get("notes") or ()),
        )
        for s in data["steps"]
    )
    return RestorePlan(
        backup=data["backup"], velero_namespace=data["velero_namespace"], steps=steps,
        offline=tuple(data["offline"]), ready_namespaces=tuple(data["ready_namespaces"]),
        skipped_namespaces=tuple(data["skipped_namespaces"]),
        warnings=tuple(data.get("warnings") or ()),
    )  # fmt: skip


def offline_summary(plan: RestorePlan) -> str:
    """`auth (Keycloak user logins), edp (document ingestion pipelines), vdb, ...`."""
    parts = [f"{ns} ({OFFLINE_EFFECTS[ns]})" if ns in OFFLINE_EFFECTS else ns for ns in plan.offline]
    return ", ".join(parts) or "nothing"


def render_plan(plan: RestorePlan) -> str:
    """The plan for a human: numbered steps, their objects, kept objects, skipped hooks."""
    lines = [
        f"Restore plan for backup {plan.backup} ({len(plan.steps)} steps)",
        f"Goes offline until the restore is done: {offline_summary(plan)}",
    ]
    for i, step in enumerate(plan.steps, 1):
        lines.append(f"{i:>3}. {step.title}")
        for obj in step.objects:
            mark = "  (NOT in the backup)" if obj.in_backup is False else ""
            lines.append(f"       - {obj}{mark}")
        lines += [f"       * {note}" for note in step.notes]
    if plan.warnings:
        lines.append("Warnings:")
        lines += [f"  ! {w}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def _namespaces_judged(with_pods: tuple[str, ...], without: tuple[str, ...]) -> str:
    """`8 namespaces` or `8 namespaces with pods, 1 without`: every one is judged."""
    text = f"{len(with_pods)} namespaces"
    if without:
        text += f" with pods, {len(without)} without"
    return text
