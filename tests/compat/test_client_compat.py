"""The sandbox API server against whichever official `kubernetes` client is installed.

Written for both client generations: 33.x (run by `tests/compat/run.sh` in its own venv)
and 37.x (the main suite). Each test uses only API surface both share; where their
answers differ in shape (a typed V1Status vs a dict), `as_dict` evens it out. The wire
quirks of each version (Content-Type on writes, spelling of booleans) are recorded on
the server side and checked against what reference/kube-wire-protocol.md observed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes
import pytest
from kubernetes import watch
from kubernetes.client import ApiException

from sandbox.apiserver import server as server_module
from tests.conftest import VELERO, ApiServerHandle, WatchCollector

CLIENT_VERSION = kubernetes.__version__
MAJOR = int(CLIENT_VERSION.split(".")[0])


@dataclass(frozen=True)
class Quirks:
    write_content_type: str | None  # on POST / PUT / DELETE
    true: str  # how a True query parameter is spelled


OBSERVED = {33: Quirks("application/json", "True"), 37: Quirks(None, "true")}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[Seen]:
    """Every request the sandbox receives in this test, as the server saw it."""
    seen: list[Seen] = []
    original = server_module._Handler._dispatch

    def recording(self: Any, method: str) -> None:
        split = urlsplit(self.path)
        seen.append(Seen(method, split.path, parse_qs(split.query), self.headers.get("Content-Type")))
        original(self, method)

    monkeypatch.setattr(server_module._Handler, "_dispatch", recording)
    return seen


def as_dict(answer: Any) -> dict[str, Any]:
    """A Status (or object) as a camelCase dict, from a 33.x model or a 37.x dict."""
    if isinstance(answer, dict):
        return answer
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(answer)


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def backup(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name},
            "spec": {"ttl": "720h0m0s", **spec}}


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "a:1"},
                                                      {"name": "side", "image": "s:1"}]}}},
    }


def test_client_version(record_property: Callable[[str, Any], None]) -> None:
    print(f"kubernetes client {CLIENT_VERSION}")
    record_property("kubernetes_client", CLIENT_VERSION)
    assert MAJOR >= 33


@pytest.mark.skipif(MAJOR not in OBSERVED, reason=f"no observed wire quirks for {CLIENT_VERSION}")
def test_wire_quirks_of_this_client(api_server: ApiServerHandle, wire: list[Seen]) -> None:
    quirks = OBSERVED[MAJOR]
    core = api_server.core
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    cur = core.read_namespaced_config_map("a", "default")
    core.replace_namespaced_config_map("a", "default", cur)
    core.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
    w = WatchCollector(core.list_namespaced_config_map, "default", allow_watch_bookmarks=True)
    w.wait_count(1)
    w.stop()
    core.delete_namespaced_config_map("a", "default")

    by_method = {s.method: s for s in wire}
    for method in ("POST", "PUT", "DELETE"):
        assert by_method[method].content_type == quirks.write_content_type, (method, wire)
    assert by_method["PATCH"].content_type == "application/strategic-merge-patch+json"
    watch_req = next(s for s in wire if "watch" in s.query)
    assert watch_req.query["watch"] == [quirks.true]
    assert watch_req.query["allowWatchBookmarks"] == [quirks.true]


def test_patch_content_types(api_server: ApiServerHandle, wire: list[Seen]) -> None:
    api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup("b1"))
    api_server.custom.patch_namespaced_custom_object(*VELERO, "velero", "backups", "b1", {"spec": {}})
    api_server.apps.create_namespaced_deployment("default", deployment("web"))
    api_server.apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 2}})
    api_server.apps.patch_namespaced_deployment(
        "web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    )
    assert [s.content_type for s in wire if s.method == "PATCH"] == [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
    ]


def test_typed_create_get_list_update_delete(api_server: ApiServerHandle) -> None:
    core = api_server.core
    made, code, _ = core.create_namespaced_config_map_with_http_info(
        "default", {"metadata": {"name": "a", "labels": {"app": "x"}}, "data": {"k": "1"}}
    )
    assert code == 201 and made.metadata.resource_version == str(api_server.rv())
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    assert err.value.status == 409
    assert status_of(err.value)["message"] == 'configmaps "a" already exists'
    core.create_namespaced_config_map("default", {"metadata": {"name": "b", "labels": {"app": "y"}}})
    listed = core.list_namespaced_config_map("default", label_selector="app in (x)")
    assert [i.metadata.name for i in listed.items] == ["a"]
    assert listed.metadata.resource_version == str(api_server.rv())
    paged = core.list_namespaced_config_map("default", limit=1)
    assert paged.metadata.remaining_item_count == 1
    rest = core.list_namespaced_config_map("default", limit=1, _continue=paged.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["b"]

    made.data = {"k": "2"}
    updated = core.replace_namespaced_config_map("a", "default", made)
    assert updated.data == {"k": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", "default", made)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"

    dry = as_dict(core.delete_namespaced_config_map("a", "default", dry_run="All"))
    assert dry["status"] == "Success"
    gone = as_dict(core.delete_namespaced_config_map("a", "default"))
    assert gone["status"] == "Success" and gone["details"]["name"] == "a"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("a", "default")
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'configmaps "a" not found'


def test_custom_objects(api_server: ApiServerHandle) -> None:
    custom = api_server.custom
    args = (*VELERO, "velero", "backups")
    body = backup("b1")
    body["metadata"]["labels"] = {"keep": "1", "drop": "1"}
    made = custom.create_namespaced_custom_object(*args, body)
    assert made["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*args, backup("b2", ttl=5))
    assert err.value.status == 422
    assert status_of(err.value)["message"] == (
        'Backup.velero.io "b2" is invalid: spec.ttl: Invalid value: "integer": spec.ttl in body '
        'must be of type string: "integer"'
    )
    patched = custom.patch_namespaced_custom_object(
        *args, "b1", {"metadata": {"labels": {"drop": None}}, "status": {"phase": "New"}}
    )
    assert patched["metadata"]["labels"] == {"keep": "1"} and patched["status"] == {"phase": "New"}
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(*args, "b1", backup("b1"))
    assert err.value.status == 422
    assert status_of(err.value)["message"] == (
        'backups.velero.io "b1" is invalid: metadata.resourceVersion: Invalid value: 0: must be '
        "specified for an update"
    )
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object_status(*args, "b1")
    assert err.value.status == 404
    assert [i["metadata"]["name"] for i in custom.list_namespaced_custom_object(*args)["items"]] == ["b1"]
    deleted = custom.delete_namespaced_custom_object(*args, "b1")
    assert deleted["status"] == "Success"
    assert deleted["details"] == {"name": "b1", "group": "velero.io", "kind": "backups",
                                  "uid": made["metadata"]["uid"]}


def test_finalizers(api_server: ApiServerHandle) -> None:
    args = (*VELERO, "velero", "backups")
    body = backup("b1")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    api_server.custom.create_namespaced_custom_object(*args, body)
    marked = api_server.custom.delete_namespaced_custom_object(*args, "b1")
    assert marked["metadata"]["deletionTimestamp"]
    assert api_server.custom.get_namespaced_custom_object(*args, "b1")
    api_server.custom.patch_namespaced_custom_object(*args, "b1", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        api_server.custom.get_namespaced_custom_object(*args, "b1")
    assert err.value.status == 404


def test_strategic_and_json_patch(api_server: ApiServerHandle) -> None:
    apps = api_server.apps
    apps.create_namespaced_deployment("default", deployment("web"))
    merged = apps.patch_namespaced_deployment(
        "web", "default", {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}}
    )
    assert [(c.name, c.image) for c in merged.spec.template.spec.containers] == [("app", "a:2"), ("side", "s:1")]
    patched = apps.patch_namespaced_deployment(
        "web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 4}]
    )
    assert patched.spec.replicas == 4
    apps.delete_namespaced_deployment("web", "default", propagation_policy="Foreground")
    assert apps.list_namespaced_deployment("default").items == []


def test_watch_initial_live_and_resume(api_server: ApiServerHandle) -> None:
    core = api_server.core
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    w = WatchCollector(core.list_namespaced_config_map, "default")
    assert [(e["type"], e["object"].metadata.name) for e in w.wait_count(1)] == [("ADDED", "a")]
    api_server.wait_watchers(1)
    rv = str(api_server.rv())
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("a", "default")
    assert [e["type"] for e in w.wait_count(3)] == ["ADDED", "MODIFIED", "DELETED"]
    w.stop()
    resumed = WatchCollector(core.list_namespaced_config_map, "default", resource_version=rv)
    assert [e["type"] for e in resumed.wait_count(2)] == ["MODIFIED", "DELETED"]
    resumed.stop()


def test_watch_custom_objects_with_bookmarks_and_timeout(api_server_factory: Any) -> None:
    api = api_server_factory(bookmark_interval=0.05)
    args = (*VELERO, "velero", "backups")
    api.custom.create_namespaced_custom_object(*args, backup("b1"))
    events = list(watch.Watch().stream(
        api.custom.list_namespaced_custom_object, *args,
        allow_watch_bookmarks=True, timeout_seconds=1,
    ))
    types = [e["type"] for e in events]
    assert types[0] == "ADDED" and events[0]["object"]["metadata"]["name"] == "b1"
    assert "BOOKMARK" in types
    assert events[-1]["raw_object"]["metadata"]["resourceVersion"] == str(api.rv())


def test_watch_410_after_compaction(api_server: ApiServerHandle) -> None:
    core = api_server.core
    old = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    assert api_server.raw("POST", "/sandbox/compact").status == 200
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                      resource_version=old, timeout_seconds=5):
            pytest.fail("no event expected")
    assert err.value.status == 410
    assert err.value.reason.startswith(f"Expired: too old resource version: {old} (")
