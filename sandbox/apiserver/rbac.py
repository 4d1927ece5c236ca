"""Optional RBAC: authorize requests against the Roles and bindings stored in the sandbox.

ragbot must run with least privilege and must handle a 403 well, so its tests need a
cluster that refuses what real RBAC refuses and nothing else. This is a transcription of
the kube-apiserver's RBAC authorizer (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac
and pkg/registry/rbac/validation): ClusterRoleBindings first, then the RoleBindings of
the request's namespace; subjects of kind User, Group and ServiceAccount; a rule allows
when its verbs, apiGroups, resources (`*`, `pods/status`, `*/status`) and resourceNames
all match. A binding whose role is missing adds `RBAC: <error>` to the 403 message, as
the real server does. Not modelled: the bootstrap roles (a real cluster ships
`cluster-admin`, `view`, ... and binds discovery to every authenticated user; here
discovery is served before authorization and roles exist only if something creates
them) and the Node and Webhook authorizers. Aggregated ClusterRoles are resolved here as
the clusterrole-aggregation controller would have written them. The decisions and 403
messages were compared with a real kube-apiserver v1.36 (RBAC mode) request by request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from config.selectors import LabelSelector, SelectorError, from_api

from .auth import SA_PREFIX, RequestAttributes, UserInfo
from .resources import ResourceType
from .store import Store

RBAC_GROUP = "rbac.authorization.k8s.io"

Rule = Mapping[str, Any]


class RoleNotFound(Exception):
    """A binding's roleRef names a role that does not exist (the lister's NotFound)."""


class RbacAuthorizer:
    """`Authorizer` for ApiServer: None when allowed, else the (possibly empty) reason.

    The reason is "" when no rule matched, or `RBAC: <errors>` when some bindings could
    not be resolved; the apiserver appends a non-empty reason to its 403 message.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, attrs: RequestAttributes) -> str | None:
        errors: list[str] = []
        for rules in self._rule_sets(attrs.user, attrs.namespace, errors):
            if any(rule_allows(attrs, rule) for rule in rules):
                return None
        if not errors:
            return ""
        unique = list(dict.fromkeys(errors))
        joined = unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
        return f"RBAC: {joined}"

    def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        """Every rule that applies to user in namespace (`kubectl auth can-i --list`)."""
        return [rule for rules in self._rule_sets(user, namespace, []) for rule in rules]

    # ----- resolution, in the order of DefaultRuleResolver.VisitRulesFor ----------------

    def _rule_sets(
        self, user: UserInfo, namespace: str, errors: list[str]
    ) -> Iterable[Sequence[Rule]]:
        for binding in self._objects("clusterrolebindings", None):
            if applies_to(user, binding.get("subjects") or (), ""):
                try:
                    yield self._role_rules(binding.get("roleRef") or {}, "")
                except RoleNotFound as exc:
                    errors.append(str(exc))
        if not namespace:
            return
        for binding in self._objects("rolebindings", namespace):
            if applies_to(user, binding.get("subjects") or (), namespace):
                try:
                    yield self._role_rules(binding.get("roleRef") or {}, namespace)
                except RoleNotFound as exc:
                    errors.append(str(exc))

    def _role_rules(self, ref: Mapping[str, Any], namespace: str) -> Sequence[Rule]:
        kind, name = ref.get("kind", ""), ref.get("name", "")
        if kind == "Role":
            role = self._get("roles", namespace, name)
            if role is None:
                raise RoleNotFound(f'role.{RBAC_GROUP} "{name}" not found')
            return role.get("rules") or ()
        if kind == "ClusterRole":
            role = self._get("clusterroles", "", name)
            if role is None:
                raise RoleNotFound(f'clusterrole.{RBAC_GROUP} "{name}" not found')
            return self._cluster_role_rules(role, set())
        raise RoleNotFound(f'unsupported role reference kind: "{kind}"')

    def _cluster_role_rules(self, role: Mapping[str, Any], seen: set[str]) -> Sequence[Rule]:
        """Stored rules, or for an aggregated role the union the controller would store."""
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return role.get("rules") or ()
        name = (role.get("metadata") or {}).get("name", "")
        seen = seen | {name}
        out: list[Rule] = []
        for raw in aggregation.get("clusterRoleSelectors") or ():
            try:
                selector = from_api(raw)
            except SelectorError:
                continue
            matching = sorted(
                (r for r in self._objects("clusterroles", None) if _labels_match(selector, r)),
                key=lambda r: (r.get("metadata") or {}).get("name", ""),
            )
            for other in matching:
                if (other.get("metadata") or {}).get("name") in seen:
                    continue
                for rule in self._cluster_role_rules(other, seen):
                    if rule not in out:
                        out.append(rule)
        return out

    # ----- store access -------------------------------------------------------------------

    def _type(self, plural: str) -> ResourceType:
        rt = self.store.registry.lookup(RBAC_GROUP, "v1", plural)
        if rt is None:  # pragma: no cover - the RBAC kinds are built in
            raise LookupError(plural)
        return rt

    def _objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        items, _, _, _ = self.store.list(self._type(plural), namespace)
        return items

    def _get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.try_get(self._type(plural), namespace, name)


def _labels_match(selector: LabelSelector, obj: Mapping[str, Any]) -> bool:
    return selector.matches((obj.get("metadata") or {}).get("labels"))


def applies_to(user: UserInfo, subjects: Iterable[Mapping[str, Any]], namespace: str) -> bool:
    """appliesTo: does any subject of a binding name this user (or one of its groups)?"""
    for subject in subjects:
        kind = subject.get("kind")
        name = subject.get("name", "")
        if kind == "User" and user.name == name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount":
            sa_namespace = subject.get("namespace") or namespace
            if sa_namespace and user.name == f"{SA_PREFIX}{sa_namespace}:{name}":
                return True
    return False


def rule_allows(attrs: RequestAttributes, rule: Rule) -> bool:
    """RuleAllows from plugin/pkg/auth/authorizer/rbac/rbac.go."""
    verbs = rule.get("verbs") or ()
    if not ("*" in verbs or attrs.verb in verbs):
        return False
    if not attrs.resource_request:
        return _non_resource_url_matches(rule.get("nonResourceURLs") or (), attrs.path)
    groups = rule.get("apiGroups") or ()
    if not ("*" in groups or attrs.api_group in groups):
        return False
    combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    if not _resource_matches(rule.get("resources") or (), combined, attrs.subresource):
        return False
    names = rule.get("resourceNames") or ()
    return not names or attrs.name in names


def _resource_matches(resources: Iterable[str], combined: str, subresource: str) -> bool:
    for resource in resources:
        if resource in ("*", combined):
            return True
        if (
            subresource
            and len(resource) == len(subresource) + 2
            and resource.startswith("*/")
            and resource.endswith(subresource)
        ):
            return True
    return False


def _non_resource_url_matches(urls: Iterable[str], path: str) -> bool:
    for url in urls:
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False
