"""Optional RBAC of the sandbox API server, driven through the official client over HTTP.

ragbot's least-privilege chart and its 403 handling are tested against this, so each
case checks what real RBAC decides (Role vs ClusterRole, RoleBinding vs
ClusterRoleBinding, subjects, resourceNames, subresources) and the exact 403 `Status`
the kube-apiserver sends, byte for byte in the message.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client import ApiException

import sandbox
from sandbox.apiserver import builtin_rules
from sandbox.apiserver.rbac import RbacAuthorizer
from sandbox.apiserver.server import ApiServer
from sandbox.apiserver.store import Store

ADMIN = "sandbox-admin-token"
SA = "system:serviceaccount:ragbot:ragbot"
RBAC_V1 = "rbac.authorization.k8s.io"
CRD_DIR = Path(sandbox.__file__).parent / "crds"


@functools.cache
def backup_crd() -> str:
    """The Velero Backup CRD as JSON text (parsed once: YAML parsing is the slow part)."""
    return json.dumps(yaml.safe_load((CRD_DIR / "velero.io_backups.yaml").read_text()))


def api_client(url: str, token: str) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg)


class Cluster:
    """A server with RBAC on (or off), an admin client and the ragbot SA's client."""

    def __init__(self, rbac: bool) -> None:
        self.store = Store()
        self.store.validators.append(builtin_rules.validate)
        self.server = ApiServer(
            self.store,
            admin_token=ADMIN,
            authorizer=RbacAuthorizer(self.store) if rbac else None,
            defaults=builtin_rules.apply_defaults,
        ).start()
        self.admin = api_client(self.server.url, ADMIN)
        self.sa = api_client(self.server.url, SA)
        core = client.CoreV1Api(self.admin)
        for ns in ("ragbot", "velero", "default"):
            core.create_namespace({"metadata": {"name": ns}})
        crd = json.loads(backup_crd())
        client.ApiextensionsV1Api(self.admin).create_custom_resource_definition(crd)

    def grant(self, kind: str, name: str, rules: list[dict[str, Any]], namespace: str = "") -> None:
        body = {"metadata": {"name": name}, "rules": rules}
        rbac = client.RbacAuthorizationV1Api(self.admin)
        if kind == "Role":
            rbac.create_namespaced_role(namespace, body)
        else:
            rbac.create_cluster_role(body)

    def bind(
        self,
        name: str,
        role_kind: str,
        role: str,
        namespace: str = "",
        subjects: list[dict[str, Any]] | None = None,
    ) -> None:
        body = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC_V1, "kind": role_kind, "name": role},
            "subjects": subjects
            or [{"kind": "ServiceAccount", "name": "ragbot", "namespace": "ragbot"}],
        }
        rbac = client.RbacAuthorizationV1Api(self.admin)
        if namespace:
            rbac.create_namespaced_role_binding(namespace, body)
        else:
            rbac.create_cluster_role_binding(body)

    def close(self) -> None:
        self.server.stop()
        self.admin.close()
        self.sa.close()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster(rbac=True)
    yield c
    c.close()


def backup(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {"name": name},
        "spec": {"includedNamespaces": ["default"], "ttl": "720h0m0s"},
    }


class Backups:
    """The Backup calls of CustomObjectsApi for one client, without the repetition."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(api)

    def create(self, ns: str, name: str) -> Any:
        return self.api.create_namespaced_custom_object(*VELERO, ns, "backups", backup(name))

    def get(self, ns: str, name: str) -> Any:
        return self.api.get_namespaced_custom_object(*VELERO, ns, "backups", name)

    def list(self, ns: str = "") -> list[str]:
        if ns:
            found = self.api.list_namespaced_custom_object(*VELERO, ns, "backups")
        else:
            found = self.api.list_cluster_custom_object(*VELERO, "backups")
        return [o["metadata"]["name"] for o in found["items"]]

    def patch(self, ns: str, name: str, body: Any) -> Any:
        return self.api.patch_namespaced_custom_object(*VELERO, ns, "backups", name, body)

    def replace(self, ns: str, name: str, body: Any) -> Any:
        return self.api.replace_namespaced_custom_object(*VELERO, ns, "backups", name, body)

    def delete(self, ns: str, name: str) -> Any:
        return self.api.delete_namespaced_custom_object(*VELERO, ns, "backups", name)

    def watch_first(self, ns: str) -> dict[str, Any]:
        stream = watch.Watch().stream(
            self.api.list_namespaced_custom_object, *VELERO, ns, "backups", timeout_seconds=5
        )
        try:
            return dict(next(stream))
        finally:
            stream.close()


def rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


def forbidden(exc: pytest.ExceptionInfo[ApiException]) -> str:
    """Check the 403 Status shape and return its message."""
    err = exc.value
    assert (err.status, err.reason) == (403, "Forbidden")
    body = json.loads(err.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert (body["reason"], body["code"]) == ("Forbidden", 403)
    return str(body["message"])


def who(verb: str, resource: str, group: str, namespace: str = "") -> str:
    """The apiserver's `User "..." cannot ...` clause (responsewriters.forbiddenMessage)."""
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return f'User "{SA}" cannot {verb} resource "{resource}" in API group "{group}" {where}'


VELERO = ("velero.io", "v1")
BACKUP_RULE = rule(["velero.io"], ["backups"], ["get", "list", "watch", "create", "patch"])
LEASE_RULE = rule(["coordination.k8s.io"], ["leases"], ["*"])
SA_NAMES = {"default", "ragbot", "velero"}


def test_role_allows_its_verbs_and_refuses_the_rest_with_the_apiservers_message(
    cluster: Cluster,
) -> None:
    cluster.grant("Role", "backup-writer", [BACKUP_RULE], "velero")
    cluster.bind("ragbot-backups", "Role", "backup-writer", "velero")
    Backups(cluster.admin).create("velero", "x")
    sa = Backups(cluster.sa)

    assert sa.create("velero", "y")["metadata"]["name"] == "y"
    assert sa.get("velero", "x")["metadata"]["name"] == "x"
    assert sa.list("velero") == ["x", "y"]
    patched = sa.patch("velero", "x", {"metadata": {"labels": {"a": "b"}}})
    assert patched["metadata"]["labels"] == {"a": "b"}
    first = sa.watch_first("velero")
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "x")

    with pytest.raises(ApiException) as exc:
        sa.delete("velero", "x")
    assert forbidden(exc) == (
        'backups.velero.io "x" is forbidden: User "system:serviceaccount:ragbot:ragbot" '
        'cannot delete resource "backups" in API group "velero.io" in the namespace "velero"'
    )
    details = json.loads(exc.value.body)["details"]
    assert details == {"name": "x", "group": "velero.io", "kind": "backups"}
    with pytest.raises(ApiException) as exc:
        sa.replace("velero", "x", patched)
    message = who("update", "backups", "velero.io", "velero")
    assert forbidden(exc) == f'backups.velero.io "x" is forbidden: {message}'


def test_a_role_grants_nothing_in_other_namespaces_or_at_cluster_scope(cluster: Cluster) -> None:
    cluster.grant("Role", "backup-writer", [BACKUP_RULE], "velero")
    cluster.bind("ragbot-backups", "Role", "backup-writer", "velero")
    sa, core = Backups(cluster.sa), client.CoreV1Api(cluster.sa)
    with pytest.raises(ApiException) as exc:
        sa.list("default")
    assert forbidden(exc) == (
        'backups.velero.io is forbidden: User "system:serviceaccount:ragbot:ragbot" cannot list '
        'resource "backups" in API group "velero.io" in the namespace "default"'
    )
    with pytest.raises(ApiException) as exc:
        sa.list()
    assert forbidden(exc) == (
        'backups.velero.io is forbidden: User "system:serviceaccount:ragbot:ragbot" cannot list '
        'resource "backups" in API group "velero.io" at the cluster scope'
    )
    with pytest.raises(ApiException) as exc:
        core.list_namespace()
    assert forbidden(exc) == f"namespaces is forbidden: {who('list', 'namespaces', '')}"
    with pytest.raises(ApiException) as exc:
        core.read_namespace("default")
    # The apiserver files a namespace object under its own namespace, not the cluster scope.
    message = who("get", "namespaces", "", "default")
    assert forbidden(exc) == f'namespaces "default" is forbidden: {message}'


def test_a_rolebinding_can_grant_reading_its_own_namespace_object(cluster: Cluster) -> None:
    cluster.grant("Role", "ns-reader", [rule([""], ["namespaces"], ["get"])], "ragbot")
    cluster.bind("ns-reader", "Role", "ns-reader", "ragbot")
    core = client.CoreV1Api(cluster.sa)
    assert core.read_namespace("ragbot").metadata.name == "ragbot"
    with pytest.raises(ApiException) as exc:
        core.read_namespace("velero")
    message = who("get", "namespaces", "", "velero")
    assert forbidden(exc) == f'namespaces "velero" is forbidden: {message}'


def test_watch_is_refused_before_the_stream_starts(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as exc:
        Backups(cluster.sa).watch_first("velero")
    message = who("watch", "backups", "velero.io", "velero")
    assert forbidden(exc) == f"backups.velero.io is forbidden: {message}"


def test_clusterrole_bound_by_rolebinding_applies_in_that_namespace_only(cluster: Cluster) -> None:
    cluster.grant("ClusterRole", "configmap-reader", [rule([""], ["configmaps"], ["get", "list"])])
    cluster.bind("read-cms", "ClusterRole", "configmap-reader", "ragbot")
    core = client.CoreV1Api(cluster.sa)
    assert core.list_namespaced_config_map("ragbot").items == []
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map("default")
    assert forbidden(exc) == f"configmaps is forbidden: {who('list', 'configmaps', '', 'default')}"
    with pytest.raises(ApiException) as exc:
        core.list_config_map_for_all_namespaces()
    assert forbidden(exc) == f"configmaps is forbidden: {who('list', 'configmaps', '')}"


def test_clusterrolebinding_applies_everywhere_and_to_cluster_scoped_kinds(
    cluster: Cluster,
) -> None:
    rules = [rule([""], ["namespaces"], ["get", "list"]), rule(["velero.io"], ["*"], ["list"])]
    cluster.grant("ClusterRole", "viewer", rules)
    cluster.bind("ragbot-viewer", "ClusterRole", "viewer")
    names = {n.metadata.name for n in client.CoreV1Api(cluster.sa).list_namespace().items}
    assert names == SA_NAMES
    sa = Backups(cluster.sa)
    assert sa.list() == sa.list("default") == []
    with pytest.raises(ApiException) as exc:
        sa.get("velero", "x")
    message = who("get", "backups", "velero.io", "velero")
    assert forbidden(exc) == f'backups.velero.io "x" is forbidden: {message}'


def test_resource_names_pin_named_requests_and_never_match_create_or_plain_list(
    cluster: Cluster,
) -> None:
    verbs = ["get", "list", "watch", "create", "update", "delete"]
    state = rule([""], ["configmaps"], verbs, resourceNames=["ragbot-state"])
    cluster.grant("Role", "state", [state], "ragbot")
    cluster.bind("state", "Role", "state", "ragbot")
    admin, core = client.CoreV1Api(cluster.admin), client.CoreV1Api(cluster.sa)
    for name in ("ragbot-state", "other"):
        body = {"metadata": {"name": name}, "data": {"k": "v"}}
        admin.create_namespaced_config_map("ragbot", body)

    assert core.read_namespaced_config_map("ragbot-state", "ragbot").data == {"k": "v"}
    pinned = core.list_namespaced_config_map("ragbot", field_selector="metadata.name=ragbot-state")
    assert [c.metadata.name for c in pinned.items] == ["ragbot-state"]
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("other", "ragbot")
    message = who("get", "configmaps", "", "ragbot")
    assert forbidden(exc) == f'configmaps "other" is forbidden: {message}'
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map("ragbot")
    assert forbidden(exc) == f"configmaps is forbidden: {who('list', 'configmaps', '', 'ragbot')}"
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map("ragbot", field_selector="metadata.name=other")
    message = who("list", "configmaps", "", "ragbot")
    assert forbidden(exc) == f'configmaps "other" is forbidden: {message}'
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("ragbot", {"metadata": {"name": "ragbot-state"}})
    assert forbidden(exc) == f"configmaps is forbidden: {who('create', 'configmaps', '', 'ragbot')}"
    core.delete_namespaced_config_map("ragbot-state", "ragbot")


def test_subresources_match_exactly_or_through_star_slash(cluster: Cluster) -> None:
    apps_admin = client.AppsV1Api(cluster.admin)
    labels = {"app": "bot"}
    pod_spec = {"containers": [{"name": "bot", "image": "bot:1"}]}
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    apps_admin.create_namespaced_deployment(
        "ragbot",
        {
            "metadata": {"name": "bot"},
            "spec": {"selector": {"matchLabels": labels}, "template": template},
        },
    )
    status_rules = [
        rule(["apps"], ["deployments/status"], ["get"]),
        rule(["*"], ["*/status"], ["patch"]),
    ]
    cluster.grant("Role", "status", status_rules, "ragbot")
    cluster.bind("status", "Role", "status", "ragbot")
    apps = client.AppsV1Api(cluster.sa)
    assert apps.read_namespaced_deployment_status("bot", "ragbot").metadata.name == "bot"
    apps.patch_namespaced_deployment_status("bot", "ragbot", {"status": {"observedGeneration": 1}})
    with pytest.raises(ApiException) as exc:
        apps.read_namespaced_deployment("bot", "ragbot")
    message = who("get", "deployments", "apps", "ragbot")
    assert forbidden(exc) == f'deployments.apps "bot" is forbidden: {message}'
    current = apps_admin.read_namespaced_deployment("bot", "ragbot")
    with pytest.raises(ApiException) as exc:
        apps.replace_namespaced_deployment_status("bot", "ragbot", current)
    message = who("update", "deployments/status", "apps", "ragbot")
    assert forbidden(exc) == f'deployments.apps "bot" is forbidden: {message}'


SUBJECTS = {
    "user": ({"kind": "User", "name": SA}, True),
    "namespace-group": ({"kind": "Group", "name": "system:serviceaccounts:ragbot"}, True),
    "authenticated": ({"kind": "Group", "name": "system:authenticated"}, True),
    # A ServiceAccount subject without a namespace means the binding's namespace.
    "sa-without-namespace": ({"kind": "ServiceAccount", "name": "ragbot"}, True),
    "sa-other-namespace": ({"kind": "ServiceAccount", "name": "ragbot", "namespace": "x"}, False),
    "other-sa": ({"kind": "ServiceAccount", "name": "other", "namespace": "ragbot"}, False),
    "bare-user-name": ({"kind": "User", "name": "ragbot"}, False),
    "other-namespace-group": ({"kind": "Group", "name": "system:serviceaccounts:x"}, False),
}


@pytest.mark.parametrize("case", SUBJECTS)
def test_subjects_name_the_service_account_or_grant_nothing(cluster: Cluster, case: str) -> None:
    subject, applies = SUBJECTS[case]
    cluster.grant("Role", "leases", [LEASE_RULE], "ragbot")
    cluster.bind("leases", "Role", "leases", "ragbot", [subject])
    leases = client.CoordinationV1Api(cluster.sa)
    if applies:
        assert leases.list_namespaced_lease("ragbot").items == []
        return
    with pytest.raises(ApiException) as exc:
        leases.list_namespaced_lease("ragbot")
    message = who("list", "leases", "coordination.k8s.io", "ragbot")
    assert forbidden(exc) == f"leases.coordination.k8s.io is forbidden: {message}"


def test_a_dangling_role_ref_is_named_in_the_403(cluster: Cluster) -> None:
    cluster.bind("ghost", "Role", "ghost", "velero")
    cluster.bind("phantom", "ClusterRole", "phantom")
    with pytest.raises(ApiException) as exc:
        Backups(cluster.sa).list("velero")
    assert forbidden(exc) == (
        f"backups.velero.io is forbidden: {who('list', 'backups', 'velero.io', 'velero')}: "
        'RBAC: [clusterrole.rbac.authorization.k8s.io "phantom" not found, '
        'role.rbac.authorization.k8s.io "ghost" not found]'
    )


def test_grants_and_revocations_take_effect_on_the_next_request(cluster: Cluster) -> None:
    cluster.grant("Role", "backup-writer", [BACKUP_RULE], "velero")
    sa = Backups(cluster.sa)
    with pytest.raises(ApiException):
        sa.list("velero")
    cluster.bind("ragbot-backups", "Role", "backup-writer", "velero")
    assert sa.list("velero") == []
    rbac = client.RbacAuthorizationV1Api(cluster.admin)
    rbac.delete_namespaced_role_binding("ragbot-backups", "velero")
    with pytest.raises(ApiException) as exc:
        sa.list("velero")
    forbidden(exc)


def test_aggregated_clusterrole_carries_the_rules_of_the_roles_it_selects(
    cluster: Cluster,
) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.admin)
    label = {"ragbot.io/aggregate": "true"}
    aggregation = {"clusterRoleSelectors": [{"matchLabels": label}]}
    rbac.create_cluster_role(
        {"metadata": {"name": "ragbot-aggregate"}, "aggregationRule": aggregation, "rules": []}
    )
    rbac.create_cluster_role(
        {"metadata": {"name": "ragbot-backups", "labels": label}, "rules": [BACKUP_RULE]}
    )
    cluster.bind("aggregate", "ClusterRole", "ragbot-aggregate", "velero")
    assert Backups(cluster.sa).list("velero") == []


def test_the_admin_token_bypasses_rbac_and_an_unknown_token_gets_401(cluster: Cluster) -> None:
    assert client.CoreV1Api(cluster.admin).list_namespace().items
    for token in ("not-a-token", "system:serviceaccount:ragbot"):
        stranger = api_client(cluster.server.url, token)
        with pytest.raises(ApiException) as exc:
            client.CoreV1Api(stranger).list_namespaced_config_map("ragbot")
        stranger.close()
        assert (exc.value.status, exc.value.reason) == (401, "Unauthorized")
        assert json.loads(exc.value.body) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


def test_rbac_off_allows_every_known_token_everything() -> None:
    c = Cluster(rbac=False)
    try:
        sa = Backups(c.sa)
        sa.create("velero", "x")
        sa.delete("velero", "x")
        names = {n.metadata.name for n in client.CoreV1Api(c.sa).list_namespace().items}
        assert names == SA_NAMES
        stranger = api_client(c.server.url, "not-a-token")
        with pytest.raises(ApiException) as exc:
            client.CoreV1Api(stranger).list_namespace()
        stranger.close()
        assert exc.value.status == 401
    finally:
        c.close()
