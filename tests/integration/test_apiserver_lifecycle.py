"""Deletion semantics and dry runs: finalizers, propagationPolicy, namespaces, dryRun=All."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiException, V1DeleteOptions

from tests.conftest import VELERO, ApiServerHandle, WatchCollector, wait_for
from tests.integration.test_apiserver_crud import backup, cm, deployment


def owner_ref(kind: str, obj: Any, api_version: str = "apps/v1") -> dict[str, Any]:
    meta = obj.metadata
    return {"apiVersion": api_version, "kind": kind, "name": meta.name, "uid": meta.uid,
            "controller": True, "blockOwnerDeletion": True}


def make_app(api: ApiServerHandle, name: str = "web") -> tuple[Any, Any, list[Any]]:
    """A Deployment owning a ReplicaSet owning two Pods, linked by ownerReferences."""
    dep = api.apps.create_namespaced_deployment("default", deployment(name))
    rs_body = deployment(f"{name}-5d9c7")
    rs_body["kind"] = "ReplicaSet"
    rs_body["metadata"]["ownerReferences"] = [owner_ref("Deployment", dep)]
    rs_body["spec"].pop("template")
    rs_body["spec"]["selector"] = {"matchLabels": {"app": f"{name}-5d9c7"}}
    rs_body["spec"]["template"] = {"metadata": {"labels": {"app": f"{name}-5d9c7"}},
                                   "spec": {"containers": [{"name": "app", "image": "app:1"}]}}
    rs = api.apps.create_namespaced_replica_set("default", rs_body)
    pods = [
        api.core.create_namespaced_pod("default", {
            "metadata": {"name": f"{name}-5d9c7-{i}", "labels": {"app": f"{name}-5d9c7"},
                         "ownerReferences": [owner_ref("ReplicaSet", rs)]},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        })
        for i in range(2)
    ]
    return dep, rs, pods


def names(items: Any) -> list[str]:
    return [i.metadata.name for i in items]


# ----- finalizers -----------------------------------------------------------------------


def test_finalizer_delays_deletion_until_removed(api_server: ApiServerHandle) -> None:
    body = backup("b1")
    body["metadata"]["finalizers"] = ["example.com/protect"]
    made = api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", body)
    start = made["metadata"]["resourceVersion"]
    events = WatchCollector(
        api_server.custom.list_namespaced_custom_object, *VELERO, "velero", "backups",
        resource_version=start,
    )
    marked = api_server.custom.delete_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert marked["kind"] == "Backup"  # the object, not a Status: it is still there
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["example.com/protect"]
    still = api_server.custom.get_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert still["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    # A second delete changes nothing.
    again = api_server.custom.delete_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    # Updates still work while terminating; the deletionTimestamp cannot be cleared.
    kept = api_server.custom.patch_namespaced_custom_object(
        *VELERO, "velero", "backups", "b1",
        {"metadata": {"labels": {"x": "y"}, "deletionTimestamp": None}},
    )
    assert kept["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    gone = api_server.custom.patch_namespaced_custom_object(
        *VELERO, "velero", "backups", "b1", {"metadata": {"finalizers": None}}
    )
    assert not gone["metadata"].get("finalizers") and gone["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as err:
        api_server.custom.get_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert err.value.status == 404
    got = events.wait_count(3)
    events.stop()
    assert [e["type"] for e in got] == ["MODIFIED", "MODIFIED", "DELETED"]
    assert got[0]["raw_object"]["metadata"]["deletionTimestamp"]
    last = got[2]["raw_object"]
    assert int(last["metadata"]["resourceVersion"]) > int(got[1]["raw_object"]["metadata"]["resourceVersion"])


def test_finalizer_removed_by_update(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a", finalizers=["a/b", "c/d"]))
    api_server.core.delete_namespaced_config_map("a", "default")
    cur = api_server.core.read_namespaced_config_map("a", "default")
    assert cur.metadata.deletion_timestamp is not None
    cur.metadata.finalizers = ["c/d"]
    cur = api_server.core.replace_namespaced_config_map("a", "default", cur)
    assert cur.metadata.finalizers == ["c/d"]
    cur.metadata.finalizers = []
    api_server.core.replace_namespaced_config_map("a", "default", cur)
    assert api_server.core.list_namespaced_config_map("default").items == []


# ----- propagationPolicy ----------------------------------------------------------------


@pytest.mark.parametrize("policy", [None, "Background"])
def test_background_deletes_dependents(api_server: ApiServerHandle, policy: str | None) -> None:
    make_app(api_server)
    make_app(api_server, "other")
    answer = api_server.apps.delete_namespaced_deployment("web", "default", propagation_policy=policy)
    assert answer["status"] == "Success"
    assert names(api_server.apps.list_namespaced_deployment("default").items) == ["other"]
    assert names(api_server.apps.list_namespaced_replica_set("default").items) == ["other-5d9c7"]
    assert names(api_server.core.list_namespaced_pod("default").items) == [
        "other-5d9c7-0", "other-5d9c7-1"
    ]


def test_orphan_keeps_dependents_without_owner_reference(api_server: ApiServerHandle) -> None:
    _, rs, _ = make_app(api_server)
    api_server.apps.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    assert api_server.apps.list_namespaced_deployment("default").items == []
    left = api_server.apps.read_namespaced_replica_set(rs.metadata.name, "default")
    assert left.metadata.owner_references is None
    assert int(left.metadata.resource_version) > int(rs.metadata.resource_version)
    pods = api_server.core.list_namespaced_pod("default").items
    assert len(pods) == 2
    assert all(p.metadata.owner_references[0].uid == rs.metadata.uid for p in pods)


def test_orphan_dependents_option_in_body(api_server: ApiServerHandle) -> None:
    _, rs, _ = make_app(api_server)
    api_server.apps.delete_namespaced_deployment(
        "web", "default", body=V1DeleteOptions(orphan_dependents=True)
    )
    assert api_server.apps.read_namespaced_replica_set(rs.metadata.name, "default")


def test_foreground_deletes_dependents_before_owner(api_server: ApiServerHandle) -> None:
    make_app(api_server)
    start = str(api_server.rv())
    pods = WatchCollector(api_server.core.list_namespaced_pod, "default", resource_version=start)
    deps = WatchCollector(
        api_server.apps.list_namespaced_deployment, "default", resource_version=start
    )
    api_server.apps.delete_namespaced_deployment("web", "default", propagation_policy="Foreground")
    assert api_server.apps.list_namespaced_replica_set("default").items == []
    assert api_server.core.list_namespaced_pod("default").items == []
    pod_events = pods.wait_count(2)
    # The owner is first MODIFIED (deletionTimestamp + the foregroundDeletion finalizer, as
    # upstream answers the DELETE), and only DELETED once its dependents are gone.
    wait_for(lambda: any(e["type"] == "DELETED" for e in deps.snapshot()), 5,
             "the Deployment's DELETED event")  # fmt: skip
    dep_events = deps.snapshot()
    pods.stop()
    deps.stop()
    assert {e["type"] for e in pod_events} == {"DELETED"}
    assert dep_events[-1]["type"] == "DELETED"
    last_pod_rv = max(int(e["raw_object"]["metadata"]["resourceVersion"]) for e in pod_events)
    assert int(dep_events[-1]["raw_object"]["metadata"]["resourceVersion"]) > last_pod_rv


def test_invalid_propagation_policy_is_422(api_server: ApiServerHandle) -> None:
    make_app(api_server)
    with pytest.raises(ApiException) as err:
        api_server.apps.delete_namespaced_deployment("web", "default", propagation_policy="Sideways")
    assert err.value.status == 422
    assert 'Unsupported value: "Sideways"' in json.loads(err.value.body)["message"]


def test_dependent_with_a_live_second_owner_survives(api_server: ApiServerHandle) -> None:
    a = api_server.core.create_namespaced_config_map("default", cm("owner-a"))
    b = api_server.core.create_namespaced_config_map("default", cm("owner-b"))
    refs = [owner_ref("ConfigMap", o, "v1") | {"controller": False} for o in (a, b)]
    api_server.core.create_namespaced_config_map("default", cm("child", ownerReferences=refs))
    api_server.core.delete_namespaced_config_map("owner-a", "default")
    assert names(api_server.core.list_namespaced_config_map("default").items) == ["child", "owner-b"]
    api_server.core.delete_namespaced_config_map("owner-b", "default")
    assert api_server.core.list_namespaced_config_map("default").items == []


# ----- namespaces -----------------------------------------------------------------------


def test_namespace_deletion_removes_its_contents(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespace({"metadata": {"name": "doomed"}})
    api_server.core.create_namespaced_config_map("doomed", cm("a"))
    api_server.core.create_namespaced_secret("doomed", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    api_server.custom.create_namespaced_custom_object(
        *VELERO, "doomed", "backups", {**backup("b1"), "metadata": {"name": "b1"}}
    )
    api_server.core.create_namespaced_config_map("default", cm("survivor"))
    events = WatchCollector(api_server.core.list_namespace, resource_version=str(api_server.rv()))
    api_server.core.delete_namespace("doomed")
    with pytest.raises(ApiException) as err:
        api_server.core.read_namespace("doomed")
    assert err.value.status == 404
    assert api_server.core.list_namespaced_config_map("doomed").items == []
    assert api_server.core.list_namespaced_secret("doomed").items == []
    assert api_server.custom.list_namespaced_custom_object(*VELERO, "doomed", "backups")["items"] == []
    assert names(api_server.core.list_namespaced_config_map("default").items) == ["survivor"]
    got = events.wait_count(2)
    events.stop()
    assert [e["type"] for e in got] == ["MODIFIED", "DELETED"]
    assert got[0]["raw_object"]["status"]["phase"] == "Terminating"


def test_terminating_namespace_refuses_new_content(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespace({"metadata": {"name": "slow"}})
    api_server.core.create_namespaced_config_map("slow", cm("held", finalizers=["x/y"]))
    api_server.core.delete_namespace("slow")
    ns = api_server.core.read_namespace("slow")
    assert ns.status.phase == "Terminating"
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("slow", cm("new"))
    assert err.value.status == 403
    assert json.loads(err.value.body)["message"] == (
        "configmaps is forbidden: unable to create new content in namespace slow because it "
        "is being terminated"
    )
    api_server.core.patch_namespaced_config_map("held", "slow", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        api_server.core.read_namespace("slow")
    assert err.value.status == 404


# ----- dryRun ---------------------------------------------------------------------------


def _no_events_since(api: ApiServerHandle, rv: str) -> None:
    """Nothing was written after rv: a sentinel write is the first event a resumed watch sees."""
    w = WatchCollector(api.core.list_namespaced_config_map, "default", resource_version=rv)
    api.core.create_namespaced_config_map("default", cm("sentinel"))
    first = w.wait_count(1)[0]
    w.stop()
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "sentinel")


def test_dry_run_create(api_server: ApiServerHandle) -> None:
    rv = api_server.rv()
    made = api_server.core.create_namespaced_config_map("default", cm("a"), dry_run="All")
    assert made.metadata.name == "a" and made.metadata.uid
    assert api_server.rv() == rv
    with pytest.raises(ApiException) as err:
        api_server.core.read_namespaced_config_map("a", "default")
    assert err.value.status == 404
    # Validation still runs and answers as a real create would.
    with pytest.raises(ApiException) as err:
        api_server.custom.create_namespaced_custom_object(
            *VELERO, "velero", "backups", backup("b1", ttl=5), dry_run="All"
        )
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("nope", cm("a"), dry_run="All")
    assert err.value.status == 404
    api_server.core.create_namespaced_config_map("default", cm("b"))
    rv = api_server.rv()
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("default", cm("b"), dry_run="All")
    assert err.value.status == 409
    _no_events_since(api_server, str(rv))


def test_dry_run_update_patch_delete(api_server: ApiServerHandle) -> None:
    made = api_server.core.create_namespaced_config_map("default", cm("a", labels={"v": "1"}))
    rv = api_server.rv()
    made.data = {"k": "dry"}
    answer = api_server.core.replace_namespaced_config_map("a", "default", made, dry_run="All")
    assert answer.data == {"k": "dry"}
    patched = api_server.core.patch_namespaced_config_map(
        "a", "default", {"metadata": {"labels": {"v": "2"}}}, dry_run="All"
    )
    assert patched.metadata.labels == {"v": "2"}
    deleted = api_server.core.delete_namespaced_config_map("a", "default", dry_run="All")
    assert deleted["status"] == "Success"
    current = api_server.core.read_namespaced_config_map("a", "default")
    assert current.data == {"k": "v"} and current.metadata.labels == {"v": "1"}
    assert current.metadata.resource_version == made.metadata.resource_version
    assert api_server.rv() == rv
    # Stale resourceVersion and validation errors are still reported.
    stale = api_server.core.read_namespaced_config_map("a", "default")
    stale.metadata.resource_version = "1"
    with pytest.raises(ApiException) as err:
        api_server.core.replace_namespaced_config_map("a", "default", stale, dry_run="All")
    assert err.value.status == 409
    api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    rv = api_server.rv()
    with pytest.raises(ApiException) as err:
        api_server.custom.patch_namespaced_custom_object(
            *VELERO, "velero", "backups", "b1", {"spec": {"ttl": 1}}, dry_run="All"
        )
    assert err.value.status == 422
    api_server.custom.delete_namespaced_custom_object(*VELERO, "velero", "backups", "b1", dry_run="All")
    assert api_server.custom.get_namespaced_custom_object(*VELERO, "velero", "backups", "b1")
    assert api_server.rv() == rv
    _no_events_since(api_server, str(rv))


def test_dry_run_delete_keeps_dependents(api_server: ApiServerHandle) -> None:
    make_app(api_server)
    rv = api_server.rv()
    api_server.apps.delete_namespaced_deployment("web", "default", dry_run="All")
    assert len(api_server.core.list_namespaced_pod("default").items) == 2
    assert len(api_server.apps.list_namespaced_replica_set("default").items) == 1
    assert api_server.rv() == rv


def test_dry_run_delete_with_finalizers_keeps_object_unmarked(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a", finalizers=["x/y"]))
    api_server.core.delete_namespaced_config_map("a", "default", dry_run="All")
    assert api_server.core.read_namespaced_config_map("a", "default").metadata.deletion_timestamp is None
