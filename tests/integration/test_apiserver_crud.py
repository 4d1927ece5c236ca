"""CRUD verbs of the sandbox API server through the official client, errors included.

Every answer is checked as the kube-apiserver gives it: HTTP code, `Status` reason and
the exact message text, since ragbot (and kubectl) key on all three.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes.client import ApiException

from tests.conftest import VELERO, ApiServerHandle

GENERATED = re.compile(r"^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def cm(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta},
            "data": data or {"k": "v"}}


def backup(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero"},
        "spec": {"includedNamespaces": ["default"], "ttl": "720h0m0s", **spec},
    }


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "side:1"},
                    ]
                },
            },
        },
    }


def status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["code"] == exc.status
    return body


def backups(api: ApiServerHandle) -> Any:
    return api.custom


# ----- create ---------------------------------------------------------------------------


def test_create_returns_201_with_server_fields(api_server: ApiServerHandle) -> None:
    before = api_server.rv()
    made, code, headers = api_server.core.create_namespaced_config_map_with_http_info(
        "default", cm("a")
    )
    assert code == 201
    assert headers["Content-Type"] == "application/json"
    assert made.metadata.namespace == "default"
    assert made.metadata.resource_version == str(before + 1)
    assert re.fullmatch(r"[0-9a-f-]{36}", made.metadata.uid)
    stamp = api_server.raw("GET", "/api/v1/namespaces/default/configmaps/a").json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp["metadata"]["creationTimestamp"])
    got = api_server.core.read_namespaced_config_map("a", "default")
    assert got.data == {"k": "v"} and got.metadata.uid == made.metadata.uid


def test_create_custom_object_sets_generation(api_server: ApiServerHandle) -> None:
    made = api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    assert made["kind"] == "Backup" and made["apiVersion"] == "velero.io/v1"
    assert made["metadata"]["generation"] == 1
    assert made["metadata"]["namespace"] == "velero"


def test_generate_name_gets_five_char_suffix(api_server: ApiServerHandle) -> None:
    names = set()
    for _ in range(5):
        made = api_server.core.create_namespaced_config_map(
            "default", {"metadata": {"generateName": "gen-"}, "data": {}}
        )
        assert GENERATED.match(made.metadata.name), made.metadata.name
        assert made.metadata.generate_name == "gen-"
        names.add(made.metadata.name)
    assert len(names) == 5
    cr = api_server.custom.create_namespaced_custom_object(
        *VELERO, "velero", "backups",
        {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"generateName": "gen-"}, "spec": {}},
    )
    assert GENERATED.match(cr["metadata"]["name"])


def test_create_existing_is_409_already_exists(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("default", cm("a"))
    assert err.value.status == 409 and err.value.reason == "Conflict"
    body = status_of(err.value)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "a" already exists'
    assert body["details"] == {"name": "a", "kind": "configmaps"}

    api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    with pytest.raises(ApiException) as err:
        api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    body = status_of(err.value)
    assert body["message"] == 'backups.velero.io "b1" already exists'
    assert body["details"] == {"name": "b1", "group": "velero.io", "kind": "backups"}


def test_create_in_missing_namespace_is_404(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("nope", cm("a"))
    assert err.value.status == 404 and err.value.reason == "Not Found"
    body = status_of(err.value)
    assert body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "namespaces"}


def test_create_invalid_name_is_422(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("default", cm("Bad_Name"))
    body = status_of(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_create_namespace_mismatch_is_400(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("default", cm("a", namespace="velero"))
    assert err.value.status == 400
    assert status_of(err.value)["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


# ----- CRD validation -------------------------------------------------------------------


def test_crd_validation_error_is_422_with_field_error(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1", ttl=5))
    assert err.value.status == 422 and err.value.reason == "Unprocessable Entity"
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'Backup.velero.io "b1" is invalid: spec.ttl: Invalid value: "integer": spec.ttl in body '
        'must be of type string: "integer"'
    )
    assert body["details"] == {
        "name": "b1",
        "group": "velero.io",
        "kind": "Backup",
        "causes": [{
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "integer": spec.ttl in body must be of type string: "integer"',
            "field": "spec.ttl",
        }],
    }
    with pytest.raises(ApiException):
        api_server.custom.get_namespaced_custom_object(*VELERO, "velero", "backups", "b1")


def test_crd_validation_runs_on_update_and_patch(api_server: ApiServerHandle) -> None:
    made = api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    made["spec"]["ttl"] = True
    with pytest.raises(ApiException) as err:
        api_server.custom.replace_namespaced_custom_object(*VELERO, "velero", "backups", "b1", made)
    assert err.value.status == 422
    assert "spec.ttl in body must be of type string" in status_of(err.value)["message"]
    with pytest.raises(ApiException) as err:
        api_server.custom.patch_namespaced_custom_object(
            *VELERO, "velero", "backups", "b1", {"status": {"phase": "bogus"}}
        )
    assert err.value.status == 422
    assert status_of(err.value)["message"].startswith(
        'Backup.velero.io "b1" is invalid: status.phase: Unsupported value: "bogus"'
    )


def test_unknown_fields_are_pruned(api_server: ApiServerHandle) -> None:
    made = api_server.custom.create_namespaced_custom_object(
        *VELERO, "velero", "backups", backup("b1", notAField="x")
    )
    assert "notAField" not in made["spec"]


# ----- get / list -----------------------------------------------------------------------


def test_get_missing_is_404_not_found(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.core.read_namespaced_config_map("missing", "default")
    body = status_of(err.value)
    assert err.value.status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "missing" not found'
    with pytest.raises(ApiException) as err:
        api_server.custom.get_namespaced_custom_object(*VELERO, "velero", "backups", "missing")
    body = status_of(err.value)
    assert body["message"] == 'backups.velero.io "missing" not found'
    assert body["details"] == {"name": "missing", "group": "velero.io", "kind": "backups"}
    with pytest.raises(ApiException) as err:
        api_server.apps.read_namespaced_deployment("missing", "default")
    assert status_of(err.value)["message"] == 'deployments.apps "missing" not found'


def test_unknown_resource_path_is_404(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.custom.list_namespaced_custom_object("velero.io", "v1", "velero", "nonsense")
    body = status_of(err.value)
    assert body["message"] == "the server could not find the requested resource"
    assert body["reason"] == "NotFound"


def test_list_empty_has_items_array_and_list_metadata(api_server: ApiServerHandle) -> None:
    resp = api_server.raw("GET", "/api/v1/namespaces/default/configmaps")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert body["items"] == []
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"] == str(api_server.rv())
    crs = api_server.custom.list_namespaced_custom_object(*VELERO, "velero", "backups")
    assert crs["items"] == [] and crs["kind"] == "BackupList" and crs["apiVersion"] == "velero.io/v1"
    typed = api_server.apps.list_namespaced_deployment("default")
    assert typed.items == [] and typed.kind == "DeploymentList" and typed.api_version == "apps/v1"


def test_list_returns_namespace_contents_sorted(api_server: ApiServerHandle) -> None:
    for name in ("c", "a", "b"):
        api_server.core.create_namespaced_config_map("default", cm(name))
    api_server.core.create_namespaced_config_map("velero", cm("z"))
    listed = api_server.core.list_namespaced_config_map("default")
    assert [i.metadata.name for i in listed.items] == ["a", "b", "c"]
    assert listed.metadata.resource_version == str(api_server.rv())
    everywhere = api_server.core.list_config_map_for_all_namespaces()
    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere.items] == [
        ("default", "a"), ("default", "b"), ("default", "c"), ("velero", "z"),
    ]
    namespaces = api_server.core.list_namespace()
    assert [n.metadata.name for n in namespaces.items] == ["default", "velero"]
    assert namespaces.items[0].status.phase == "Active"


# ----- update ---------------------------------------------------------------------------


def test_update_bumps_resource_version(api_server: ApiServerHandle) -> None:
    made = api_server.core.create_namespaced_config_map("default", cm("a"))
    made.data = {"k": "new"}
    updated = api_server.core.replace_namespaced_config_map("a", "default", made)
    assert updated.data == {"k": "new"}
    assert int(updated.metadata.resource_version) == int(made.metadata.resource_version) + 1
    assert updated.metadata.uid == made.metadata.uid


def test_update_with_stale_resource_version_is_409_conflict(api_server: ApiServerHandle) -> None:
    made = api_server.core.create_namespaced_config_map("default", cm("a"))
    fresh = api_server.core.read_namespaced_config_map("a", "default")
    fresh.data = {"k": "1"}
    api_server.core.replace_namespaced_config_map("a", "default", fresh)
    made.data = {"k": "2"}
    with pytest.raises(ApiException) as err:
        api_server.core.replace_namespaced_config_map("a", "default", made)
    assert err.value.status == 409 and err.value.reason == "Conflict"
    body = status_of(err.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )
    cr = api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    api_server.custom.patch_namespaced_custom_object(*VELERO, "velero", "backups", "b1", {"metadata": {"labels": {"x": "y"}}})
    with pytest.raises(ApiException) as err:
        api_server.custom.replace_namespaced_custom_object(*VELERO, "velero", "backups", "b1", cr)
    assert status_of(err.value)["message"] == (
        'Operation cannot be fulfilled on backups.velero.io "b1": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_update_without_resource_version(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    updated = api_server.core.replace_namespaced_config_map("a", "default", cm("a", {"k": "u"}))
    assert updated.data == {"k": "u"}  # built-ins update unconditionally

    api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    with pytest.raises(ApiException) as err:
        api_server.custom.replace_namespaced_custom_object(*VELERO, "velero", "backups", "b1", backup("b1"))
    assert err.value.status == 422
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'backups.velero.io "b1" is invalid: metadata.resourceVersion: Invalid value: 0: must be '
        "specified for an update"
    )


def test_update_missing_is_404_and_name_mismatch_400(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.core.replace_namespaced_config_map("a", "default", cm("a"))
    assert err.value.status == 404
    api_server.core.create_namespaced_config_map("default", cm("a"))
    with pytest.raises(ApiException) as err:
        api_server.core.replace_namespaced_config_map("a", "default", cm("b"))
    assert err.value.status == 400
    assert status_of(err.value)["message"] == (
        "the name of the object (b) does not match the name on the URL (a)"
    )


def test_noop_update_keeps_resource_version(api_server: ApiServerHandle) -> None:
    made = api_server.core.create_namespaced_config_map("default", cm("a"))
    again = api_server.core.replace_namespaced_config_map("a", "default", made)
    assert again.metadata.resource_version == made.metadata.resource_version


def test_cr_generation_follows_spec_changes(api_server: ApiServerHandle) -> None:
    api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    p = api_server.custom.patch_namespaced_custom_object
    after_label = p(*VELERO, "velero", "backups", "b1", {"metadata": {"labels": {"a": "b"}}})
    assert after_label["metadata"]["generation"] == 1
    after_spec = p(*VELERO, "velero", "backups", "b1", {"spec": {"ttl": "1h0m0s"}})
    assert after_spec["metadata"]["generation"] == 2
    # No status subresource on Velero CRDs: status is part of the object (and its generation).
    after_status = p(*VELERO, "velero", "backups", "b1", {"status": {"phase": "InProgress"}})
    assert after_status["status"] == {"phase": "InProgress"}
    assert after_status["metadata"]["generation"] == 3


# ----- patch ----------------------------------------------------------------------------


def test_merge_patch_custom_object_null_deletes(api_server: ApiServerHandle) -> None:
    api_server.custom.create_namespaced_custom_object(
        *VELERO, "velero", "backups",
        {**backup("b1"), "metadata": {"name": "b1", "labels": {"keep": "1", "drop": "1"}}},
    )
    patched = api_server.custom.patch_namespaced_custom_object(
        *VELERO, "velero", "backups", "b1",
        {"metadata": {"labels": {"drop": None, "new": "2"}}, "spec": {"includedNamespaces": ["x"]}},
    )
    assert patched["metadata"]["labels"] == {"keep": "1", "new": "2"}
    assert patched["spec"]["includedNamespaces"] == ["x"]  # lists are replaced
    assert patched["spec"]["ttl"] == "720h0m0s"


def test_patch_with_stale_resource_version_is_conflict(api_server: ApiServerHandle) -> None:
    made = api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    rv = made["metadata"]["resourceVersion"]
    ok = api_server.custom.patch_namespaced_custom_object(
        *VELERO, "velero", "backups", "b1", {"metadata": {"resourceVersion": rv, "labels": {"a": "1"}}}
    )
    assert ok["metadata"]["labels"] == {"a": "1"}
    with pytest.raises(ApiException) as err:
        api_server.custom.patch_namespaced_custom_object(
            *VELERO, "velero", "backups", "b1", {"metadata": {"resourceVersion": rv, "labels": {"a": "2"}}}
        )
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"


def test_strategic_merge_patch_merges_lists_by_key(api_server: ApiServerHandle) -> None:
    api_server.apps.create_namespaced_deployment("default", deployment("web"))
    patched = api_server.apps.patch_namespaced_deployment(
        "web", "default",
        {
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
            ]}}},
        },
    )
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert containers["app"].image == "app:2"
    assert [(e.name, e.value) for e in containers["app"].env] == [("A", "1"), ("B", "2")]
    assert containers["sidecar"].image == "side:1"
    assert patched.metadata.labels == {"app": "web", "tier": "front"}
    dropped = api_server.apps.patch_namespaced_deployment(
        "web", "default", {"metadata": {"labels": {"tier": None}}}
    )
    assert dropped.metadata.labels == {"app": "web"}
    removed = api_server.apps.patch_namespaced_deployment(
        "web", "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
    )
    assert [c.name for c in removed.spec.template.spec.containers] == ["app"]


def test_json_patch_list_body(api_server: ApiServerHandle) -> None:
    api_server.apps.create_namespaced_deployment("default", deployment("web"))
    patched = api_server.apps.patch_namespaced_deployment(
        "web", "default",
        [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
            {"op": "remove", "path": "/spec/template/spec/containers/1"},
        ],
    )
    assert patched.spec.replicas == 3
    assert patched.metadata.annotations == {"a": "b"}
    assert [c.name for c in patched.spec.template.spec.containers] == ["app"]
    with pytest.raises(ApiException) as err:
        api_server.apps.patch_namespaced_deployment(
            "web", "default", [{"op": "remove", "path": "/spec/nothing/here"}]
        )
    assert err.value.status == 422


def test_patch_missing_object_is_404(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.custom.patch_namespaced_custom_object(*VELERO, "velero", "backups", "nope", {"spec": {}})
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'backups.velero.io "nope" not found'


def test_strategic_merge_on_custom_resource_is_415(api_server: ApiServerHandle) -> None:
    api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    resp = api_server.raw(
        "PATCH", "/apis/velero.io/v1/namespaces/velero/backups/b1", {"spec": {}},
        {"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert resp.status == 415
    assert resp.json()["reason"] == "UnsupportedMediaType"


# ----- delete ---------------------------------------------------------------------------


def test_delete_custom_object_returns_success_status(api_server: ApiServerHandle) -> None:
    made = api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    answer = api_server.custom.delete_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert answer == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "b1", "group": "velero.io", "kind": "backups", "uid": made["metadata"]["uid"]},
    }
    with pytest.raises(ApiException) as err:
        api_server.custom.get_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        api_server.custom.delete_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'backups.velero.io "b1" not found'


def test_delete_builtin(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    answer = api_server.core.delete_namespaced_config_map("a", "default")
    assert answer["status"] == "Success"  # 37.x returns the Status as a dict
    assert answer["details"]["name"] == "a" and answer["details"]["kind"] == "configmaps"
    assert api_server.core.list_namespaced_config_map("default").items == []


def test_delete_preconditions(api_server: ApiServerHandle) -> None:
    from kubernetes.client import V1DeleteOptions, V1Preconditions

    made = api_server.core.create_namespaced_config_map("default", cm("a"))
    with pytest.raises(ApiException) as err:
        api_server.core.delete_namespaced_config_map(
            "a", "default", body=V1DeleteOptions(preconditions=V1Preconditions(uid="other"))
        )
    assert err.value.status == 409
    api_server.core.delete_namespaced_config_map(
        "a", "default",
        body=V1DeleteOptions(preconditions=V1Preconditions(uid=made.metadata.uid)),
    )


def test_delete_collection(api_server: ApiServerHandle) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        api_server.core.create_namespaced_config_map("default", cm(name, labels={"tier": tier}))
    api_server.core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    left = api_server.core.list_namespaced_config_map("default")
    assert [i.metadata.name for i in left.items] == ["c"]


# ----- status subresource ---------------------------------------------------------------


def test_deployment_status_subresource(api_server: ApiServerHandle) -> None:
    body = deployment("web")
    body["status"] = {"replicas": 7}
    made = api_server.apps.create_namespaced_deployment("default", body)
    assert made.status.replicas == 0  # status is not settable on create
    assert made.metadata.generation == 1

    made.status.replicas = 9
    made.spec.replicas = 2
    main = api_server.apps.replace_namespaced_deployment("web", "default", made)
    assert main.spec.replicas == 2 and main.status.replicas == 0  # main PUT ignores .status
    assert main.metadata.generation == 2

    main.spec.replicas = 5
    main.status.replicas = 2
    main.status.ready_replicas = 2
    st = api_server.apps.replace_namespaced_deployment_status("web", "default", main)
    assert st.status.replicas == 2 and st.status.ready_replicas == 2
    assert st.spec.replicas == 2  # /status writes only .status
    assert st.metadata.generation == 2

    patched = api_server.apps.patch_namespaced_deployment_status(
        "web", "default", {"status": {"availableReplicas": 2}, "spec": {"replicas": 8}}
    )
    assert patched.status.available_replicas == 2 and patched.spec.replicas == 2
    main_patch = api_server.apps.patch_namespaced_deployment(
        "web", "default", {"status": {"replicas": 99}}
    )
    assert main_patch.status.replicas == 2
    read = api_server.apps.read_namespaced_deployment_status("web", "default")
    assert read.status.available_replicas == 2


def test_velero_crds_have_no_status_subresource(api_server: ApiServerHandle) -> None:
    api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    for call in (
        lambda: api_server.custom.get_namespaced_custom_object_status(*VELERO, "velero", "backups", "b1"),
        lambda: api_server.custom.patch_namespaced_custom_object_status(
            *VELERO, "velero", "backups", "b1", {"status": {"phase": "Completed"}}
        ),
    ):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 404
        assert status_of(err.value)["message"] == "the server could not find the requested resource"
    # ... so status is written through the main resource, as Velero does.
    done = api_server.custom.patch_namespaced_custom_object(
        *VELERO, "velero", "backups", "b1", {"status": {"phase": "Completed"}}
    )
    assert done["status"]["phase"] == "Completed"


def test_strategic_merge_patch_directives(api_server: ApiServerHandle) -> None:
    """The directives kubectl's strategic patches carry: finalizers merge as a set,
    `$deleteFromPrimitiveList/` removes scalars, `$patch: delete` drops a map."""
    body = deployment("web")
    body["metadata"]["finalizers"] = ["a.io/one", "b.io/two"]
    body["metadata"]["annotations"] = {"x": "1"}
    api_server.apps.create_namespaced_deployment("default", body)
    patch = api_server.apps.patch_namespaced_deployment
    added = patch("web", "default", {"metadata": {"finalizers": ["c.io/three", "a.io/one"]}})
    assert added.metadata.finalizers == ["a.io/one", "b.io/two", "c.io/three"]
    kept = patch("web", "default", {"metadata": {"finalizers": []}})
    assert kept.metadata.finalizers == ["a.io/one", "b.io/two", "c.io/three"]
    removed = patch(
        "web", "default",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/one", "c.io/three"],
                      "$setElementOrder/finalizers": ["b.io/two"]}},
    )
    assert removed.metadata.finalizers == ["b.io/two"]
    dropped = patch("web", "default", {"metadata": {"annotations": {"$patch": "delete"}}})
    assert dropped.metadata.annotations is None
    raw = api_server.raw("GET", "/apis/apps/v1/namespaces/default/deployments/web").json()
    assert "annotations" not in raw["metadata"]
