"""The one declaration of what ragbot may do in the cluster, derived from its config.

The bot can delete an application's workloads, so its RBAC is part of the product
(STYLE.md: Botkube's default lets its bot read every Secret cluster-wide; ours must not).
Every verb on every resource the code uses is declared here, per namespace, from the
config: the Velero objects in `velero.namespace`; the bot's own ConfigMaps (restore
records, the restore lock, schedule state, alerts) and its leader Lease in
`ragbot.namespace`; and in each namespace of `namespaceOrder` exactly what a restore
cleans up (the kinds of the configured cleanup entries, the kinds Enterprise RAG's Helm
releases ship when the namespace has a `Helm/` entry, Helm release Secrets, PVCs) plus
read access to pods. Cluster-scoped reads are a short fixed list (namespaces by name,
and the storage classes, PVs and VolumeSnapshotClasses `ragbot check` inspects); CRDs
are found through discovery, which needs no grant.

`render_roles` turns the rules into Role/RoleBinding objects per namespace and one
ClusterRole/ClusterRoleBinding; the Helm chart renders the same objects from its values
and tests/chart asserts the two are equal, so the chart cannot drift from the code.
tests/integration/test_least_privilege.py runs every code path as a service account that
holds exactly these roles against the sandbox with RBAC enforced.

Limits: a Helm release whose manifest holds kinds outside `HELM_RELEASE_KINDS` (or a
cleanup entry naming a kind this module cannot map without discovery, such as a custom
resource) needs the chart's `rbac.extraRules`; `unmapped_kinds(cfg)` lists those kinds.
Pure: no I/O, no cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from config.cleanup import HelmRelease, NamedDelete, SelectorDelete
from config.models import Config

from .resources import _KNOWN, Resource

#: The kinds the Enterprise RAG Helm releases ship in their namespaces (taken from the
#: releases sandbox/seed.py models on a real deployment). A `Helm/<release>` cleanup
#: entry uninstalls a release by deleting every object of its manifest.
HELM_RELEASE_KINDS: tuple[str, ...] = ("ConfigMap", "Deployment", "Secret", "Service", "StatefulSet")

#: The leader election Lease in the bot's namespace.
LEASE_NAME = "ragbot-leader"

#: Verbs to remove an object and wait until it is gone (get its uid, watch it go).
CLEANUP_VERBS: tuple[str, ...] = ("get", "list", "watch", "delete")

SERVICE_ACCOUNT = "ragbot"
ROLE_NAME = "ragbot"
RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"

_VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, bound to a namespace (None: cluster scope)."""

    namespace: str | None
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
        }
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        out["verbs"] = list(self.verbs)
        return out


def _verbs(*verbs: str) -> tuple[str, ...]:
    return tuple(v for v in _VERB_ORDER if v in verbs)


def _resource_for_kind(kind: str) -> Resource | None:
    for res in _KNOWN.values():
        if res.kind == kind:
            return res
    return None


def _namespace_kinds(cfg: Config, namespace: str) -> set[str]:
    """Kinds a restore deletes in `namespace`: cleanup entries plus Helm release kinds."""
    kinds: set[str] = set()
    for entry in cfg.velero.backup.backupConfig.deployments.get(namespace, ()):
        if isinstance(entry, HelmRelease):
            kinds.update(HELM_RELEASE_KINDS)
        elif isinstance(entry, (NamedDelete, SelectorDelete)):
            kinds.add(entry.kind)
    return kinds


def unmapped_kinds(cfg: Config) -> list[str]:
    """Cleanup kinds that need `rbac.extraRules`: not resolvable without discovery."""
    found: set[str] = set()
    for ns in cfg.velero.backup.backupConfig.namespaceOrder:
        for kind in _namespace_kinds(cfg, ns):
            res = _resource_for_kind(kind)
            if res is None or not res.namespaced:
                found.add(kind)
    return sorted(found)


def _app_rules(cfg: Config, namespace: str) -> list[Rule]:
    """An application namespace: what a restore removes there, PVCs, pods to read."""
    kinds = _namespace_kinds(cfg, namespace)
    has_helm = any(
        isinstance(e, HelmRelease)
        for e in cfg.velero.backup.backupConfig.deployments.get(namespace, ())
    )
    by_group: dict[str, set[str]] = {}
    for kind in kinds:
        res = _resource_for_kind(kind)
        if res is None or not res.namespaced or kind in ("Secret", "PersistentVolumeClaim", "Pod"):
            continue
        by_group.setdefault(res.group, set()).add(res.plural)
    rules = [
        Rule(namespace, ("",), ("pods",), _verbs("get", "list", "watch")),
        Rule(namespace, ("",), ("persistentvolumeclaims",), CLEANUP_VERBS),
    ]
    if has_helm or "Secret" in kinds:
        # Helm release records are Secrets `sh.helm.release.v1.<release>.v<n>`: listed
        # by label, the latest marked `uninstalling` (update), then deleted.
        verbs = _verbs(*CLEANUP_VERBS, "update") if has_helm else CLEANUP_VERBS
        rules.append(Rule(namespace, ("",), ("secrets",), verbs))
    for group in sorted(by_group):
        rules.append(Rule(namespace, (group,), tuple(sorted(by_group[group])), CLEANUP_VERBS))
    return rules


def required_rules(cfg: Config) -> list[Rule]:
    """Every rule ragbot needs for `cfg`, namespaced first (in a fixed order), then cluster."""
    vns = cfg.velero.namespace
    bns = cfg.ragbot.namespace
    order = cfg.velero.backup.backupConfig.namespaceOrder
    rules: list[Rule] = [
        # Backups: created, watched to a terminal phase, annotated by the reconciler
        # (Slack message, announced). Never deleted directly: expiry and pruning go
        # through DeleteBackupRequests, as `velero backup delete` does.
        Rule(vns, ("velero.io",), ("backups",), _verbs("get", "list", "watch", "create", "patch")),
        Rule(vns, ("velero.io",), ("restores",), _verbs("get", "list", "watch", "create")),
        # The backup's resource list (PVCs a restore replaces): created, awaited, removed.
        Rule(vns, ("velero.io",), ("downloadrequests",), _verbs("get", "list", "watch", "create", "delete")),
        Rule(vns, ("velero.io",), ("deletebackuprequests",), _verbs("get", "list", "create")),
        Rule(vns, ("velero.io",), ("backupstoragelocations",), _verbs("get", "list")),
        # Preflight: a Velero server pod is ready.
        Rule(vns, ("",), ("pods",), _verbs("get", "list")),
    ]  # fmt: skip
    bot_rules = [
        # Restore records, the restore lock, schedule state and alerts.
        Rule(bns, ("",), ("configmaps",), _verbs("get", "list", "watch", "create", "update", "patch", "delete")),
        # Leader election: create the Lease once, then read and renew only that one.
        Rule(bns, ("coordination.k8s.io",), ("leases",), _verbs("create")),
        Rule(bns, ("coordination.k8s.io",), ("leases",), _verbs("get", "update"), (LEASE_NAME,)),
    ]  # fmt: skip
    # One Role per namespace holds every rule of that namespace, whichever roles it
    # plays (the bot may share the Velero namespace, an application may live in either).
    rules += bot_rules
    for ns in order:
        rules += _app_rules(cfg, ns)
    names = tuple(sorted({vns, bns, *order}))
    rules += [
        # A restore checks that every namespace exists and waits for missing ones; by
        # name in the ClusterRole so a missing namespace reads as 404, not 403.
        Rule(None, ("",), ("namespaces",), _verbs("get"), names),
        Rule(None, ("",), ("namespaces",), _verbs("list", "watch")),
        # `ragbot check`: which PVs and storage classes back the PVCs, and a labelled
        # VolumeSnapshotClass for the CSI snapshots.
        Rule(None, ("",), ("persistentvolumes",), _verbs("list")),
        Rule(None, ("storage.k8s.io",), ("storageclasses",), _verbs("list")),
        Rule(None, ("snapshot.storage.k8s.io",), ("volumesnapshotclasses",), _verbs("list")),
    ]
    return rules


def namespaces_of(rules: Iterable[Rule]) -> list[str]:
    """The namespaces of namespaced rules, in first-seen order."""
    return list(dict.fromkeys(r.namespace for r in rules if r.namespace is not None))


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "ragbot", "app.kubernetes.io/component": "rbac"}


def render_roles(
    cfg: Config, *, name: str = ROLE_NAME, service_account: str = SERVICE_ACCOUNT
) -> list[dict[str, Any]]:
    """Role + RoleBinding per namespace, then ClusterRole + ClusterRoleBinding.

    The subject is `service_account` in `ragbot.namespace`. The chart renders exactly
    these objects (labels aside: the test compares kind, name, namespace, rules, roleRef
    and subjects).
    """
    rules = required_rules(cfg)
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": cfg.ragbot.namespace}
    out: list[dict[str, Any]] = []
    for ns in namespaces_of(rules):
        out.append({
            "apiVersion": RBAC_API_VERSION, "kind": "Role",
            "metadata": {"name": name, "namespace": ns, "labels": _labels()},
            "rules": [r.to_api() for r in rules if r.namespace == ns],
        })  # fmt: skip
        out.append({
            "apiVersion": RBAC_API_VERSION, "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns, "labels": _labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject],
        })  # fmt: skip
    cluster_name = f"{name}-{cfg.ragbot.namespace}"
    out.append({
        "apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
        "metadata": {"name": cluster_name, "labels": _labels()},
        "rules": [r.to_api() for r in rules if r.namespace is None],
    })  # fmt: skip
    out.append({
        "apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding",
        "metadata": {"name": cluster_name, "labels": _labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name},
        "subjects": [subject],
    })  # fmt: skip
    return out
