"""Both official-client versions' wire quirks, sent as raw HTTP with exact headers.

Observed on the wire (reference/kube-wire-protocol.md): 33.x sends
`Content-Type: application/json` on POST/PUT/DELETE and booleans as `True`; 37.x sends no
Content-Type on POST/PUT/DELETE and lower-case booleans. PATCH always carries the patch
media type. The server must answer both alike. `tests/compat/` runs the real 33.1.0 client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ApiServerHandle, RawResponse


@dataclass(frozen=True)
class ClientStyle:
    name: str
    write_headers: dict[str, str]  # on POST/PUT/DELETE
    true: str
    false: str
    user_agent: str

    def headers(self, method: str) -> dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": self.user_agent}
        if method in ("POST", "PUT", "DELETE"):
            h.update(self.write_headers)
        return h


V33 = ClientStyle(
    "33.x", {"Content-Type": "application/json"}, "True", "False", "OpenAPI-Generator/33.1.0/python"
)
V37 = ClientStyle("37.x", {}, "true", "false", "OpenAPI-Generator/37.0.2/python")
STYLES = pytest.mark.parametrize("style", [V33, V37], ids=lambda s: s.name)
CM_PATH = "/api/v1/namespaces/default/configmaps"
BACKUPS = "/apis/velero.io/v1/namespaces/velero/backups"


def call(api: ApiServerHandle, style: ClientStyle, method: str, path: str, body: Any = None,
         extra: dict[str, str] | None = None) -> RawResponse:
    headers = style.headers(method)
    headers.update(extra or {})
    resp = api.raw(method, path, body, headers)
    assert resp.headers["Content-Type"] == "application/json", resp.headers
    return resp


def stream_lines(api: ApiServerHandle, path: str, headers: dict[str, str], n: int) -> tuple[Any, list[dict[str, Any]]]:
    """Open a watch, read n events, close. Returns (response, events)."""
    conn = api.connect(timeout=5)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    events = []
    try:
        while len(events) < n:
            line = resp.readline()
            if not line:
                break
            events.append(json.loads(line))
    finally:
        conn.close()
    return resp, events


@STYLES
def test_crud_round_trip(api_server: ApiServerHandle, style: ClientStyle) -> None:
    created = call(api_server, style, "POST", CM_PATH,
                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}})
    assert created.status == 201, created.data
    obj = created.json()
    assert obj["metadata"]["resourceVersion"] == str(api_server.rv())

    obj["data"] = {"k": "2"}
    updated = call(api_server, style, "PUT", f"{CM_PATH}/a", obj)
    assert updated.status == 200 and updated.json()["data"] == {"k": "2"}

    stale = call(api_server, style, "PUT", f"{CM_PATH}/a", obj)
    assert stale.status == 409 and stale.json()["reason"] == "Conflict"

    patched = call(api_server, style, "PATCH", f"{CM_PATH}/a", {"data": {"x": "y"}},
                   {"Content-Type": "application/merge-patch+json"})
    assert patched.status == 200 and patched.json()["data"] == {"k": "2", "x": "y"}
    strategic = call(api_server, style, "PATCH", f"{CM_PATH}/a", {"metadata": {"labels": {"l": "1"}}},
                     {"Content-Type": "application/strategic-merge-patch+json"})
    assert strategic.status == 200 and strategic.json()["metadata"]["labels"] == {"l": "1"}
    jsonpatch = call(api_server, style, "PATCH", f"{CM_PATH}/a", [{"op": "remove", "path": "/data/x"}],
                     {"Content-Type": "application/json-patch+json"})
    assert jsonpatch.status == 200 and jsonpatch.json()["data"] == {"k": "2"}

    got = call(api_server, style, "GET", f"{CM_PATH}/a")
    assert got.status == 200 and got.json()["data"] == {"k": "2"}
    listed = call(api_server, style, "GET", f"{CM_PATH}?labelSelector=l%3D1&limit=10")
    assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["a"]

    dry = call(api_server, style, "DELETE", f"{CM_PATH}/a?dryRun=All")
    assert dry.status == 200
    assert call(api_server, style, "GET", f"{CM_PATH}/a").status == 200
    deleted = call(api_server, style, "DELETE", f"{CM_PATH}/a")
    assert deleted.status == 200
    assert deleted.json()["status"] == "Success" and deleted.json()["details"]["name"] == "a"
    missing = call(api_server, style, "DELETE", f"{CM_PATH}/a")
    assert missing.status == 404 and missing.json()["message"] == 'configmaps "a" not found'


@STYLES
def test_delete_with_options_body(api_server: ApiServerHandle, style: ClientStyle) -> None:
    owner = call(api_server, style, "POST", CM_PATH, {"metadata": {"name": "owner"}}).json()
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    call(api_server, style, "POST", CM_PATH, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    answer = call(api_server, style, "DELETE", f"{CM_PATH}/owner",
                  {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Orphan"})
    assert answer.status == 200, answer.data
    child = call(api_server, style, "GET", f"{CM_PATH}/child").json()
    assert "ownerReferences" not in child["metadata"]


@STYLES
def test_custom_resource_create_and_errors(api_server: ApiServerHandle, style: ClientStyle) -> None:
    body = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "b1"},
            "spec": {"ttl": "1h0m0s"}}
    assert call(api_server, style, "POST", BACKUPS, body).status == 201
    again = call(api_server, style, "POST", BACKUPS, body)
    assert again.status == 409 and again.json()["reason"] == "AlreadyExists"
    invalid = call(api_server, style, "POST", BACKUPS, {**body, "metadata": {"name": "b2"}, "spec": {"ttl": 1}})
    assert invalid.status == 422 and invalid.json()["reason"] == "Invalid"
    dry = call(api_server, style, "POST", f"{BACKUPS}?dryRun=All", {**body, "metadata": {"name": "b3"}})
    assert dry.status == 201
    assert call(api_server, style, "GET", f"{BACKUPS}/b3").status == 404
    no_rv = call(api_server, style, "PUT", f"{BACKUPS}/b1", body)
    assert no_rv.status == 422
    merge = call(api_server, style, "PATCH", f"{BACKUPS}/b1", {"status": {"phase": "New"}},
                 {"Content-Type": "application/merge-patch+json"})
    assert merge.status == 200 and merge.json()["status"] == {"phase": "New"}


@STYLES
def test_watch_query_booleans(api_server_factory: Any, style: ClientStyle) -> None:
    api = api_server_factory(bookmark_interval=0.05)
    call(api, style, "POST", CM_PATH, {"metadata": {"name": "a"}})
    t = style.true
    resp, events = stream_lines(
        api, f"{CM_PATH}?allowWatchBookmarks={t}&watch={t}&timeoutSeconds=5",
        style.headers("GET"), 2,
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["resourceVersion"] == str(api.rv())

    rv = api.rv()
    call(api, style, "POST", CM_PATH, {"metadata": {"name": "b"}})
    resp, events = stream_lines(
        api, f"{CM_PATH}?resourceVersion={rv}&watch={t}&timeoutSeconds=5", style.headers("GET"), 1
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


@pytest.mark.parametrize("false", ["False", "false", "0"])
def test_watch_false_is_a_list(api_server: ApiServerHandle, false: str) -> None:
    resp = api_server.raw("GET", f"{CM_PATH}?watch={false}")
    assert resp.status == 200 and resp.json()["kind"] == "ConfigMapList"


def test_bookmarks_not_sent_unless_asked(api_server_factory: Any) -> None:
    """33.x spells the refusal `False` (37.x's `false` is covered with the real client)."""
    style = V33
    api = api_server_factory(bookmark_interval=0.05)
    query = f"watch={style.true}&allowWatchBookmarks={style.false}&timeoutSeconds=1"
    resp = api.raw("GET", f"{CM_PATH}?{query}", headers=style.headers("GET"))
    assert resp.status == 200 and resp.data == b""


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", None],
)
def test_create_accepts_json_with_or_without_content_type(
    api_server: ApiServerHandle, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = api_server.raw("POST", CM_PATH, {"metadata": {"name": "a"}}, headers)
    assert resp.status == 201


def test_patch_without_patch_content_type_is_415(api_server: ApiServerHandle) -> None:
    api_server.raw("POST", CM_PATH, {"metadata": {"name": "a"}})
    for headers in ({}, {"Content-Type": "application/json"}):
        resp = api_server.raw("PATCH", f"{CM_PATH}/a", {"data": {}}, headers)
        assert resp.status == 415, headers
        assert resp.json()["reason"] == "UnsupportedMediaType"
        assert resp.headers["Content-Type"] == "application/json"


def test_malformed_json_body_is_400(api_server: ApiServerHandle) -> None:
    resp = api_server.raw("POST", CM_PATH, b"{not json", {"Content-Type": "application/json"})
    assert resp.status == 400 and resp.json()["reason"] == "BadRequest"
    # The connection stays usable for the next request (keep-alive after an error).
    conn = api_server.connect()
    try:
        for _ in range(3):
            conn.request("POST", CM_PATH, body=b"[1,", headers={"Content-Length": "3"})
            r = conn.getresponse()
            r.read()
            assert r.status == 400
        conn.request("GET", CM_PATH)
        ok = conn.getresponse()
        assert ok.status == 200 and json.loads(ok.read())["kind"] == "ConfigMapList"
    finally:
        conn.close()


def test_keep_alive_serves_many_requests_on_one_connection(api_server: ApiServerHandle) -> None:
    conn = api_server.connect()
    try:
        for i in range(20):
            body = json.dumps({"metadata": {"name": f"c{i}"}}).encode()
            conn.request("POST", CM_PATH, body=body, headers={"Content-Length": str(len(body))})
            r = conn.getresponse()
            r.read()
            assert r.status == 201
    finally:
        conn.close()
    assert len(api_server.raw("GET", CM_PATH).json()["items"]) == 20


def test_unauthorized_token_is_401(api_server: ApiServerHandle) -> None:
    resp = api_server.raw("GET", CM_PATH, headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401
    assert resp.json()["reason"] == "Unauthorized"


def test_discovery_for_velero(api_server: ApiServerHandle) -> None:
    group = api_server.raw("GET", "/apis/velero.io/v1").json()
    backups = next(r for r in group["resources"] if r["name"] == "backups")
    assert backups["kind"] == "Backup" and backups["namespaced"] is True
    assert not any(r["name"] == "backups/status" for r in group["resources"])


def test_watch_on_a_named_path_streams_only_that_object(api_server: ApiServerHandle) -> None:
    for name in "abc":
        api_server.raw("POST", CM_PATH, {"metadata": {"name": name}})
    resp, events = stream_lines(api_server, f"{CM_PATH}/b?watch=true&timeoutSeconds=5", {}, 1)
    assert resp.status == 200
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]
    rv = api_server.rv()
    api_server.raw("PATCH", f"{CM_PATH}/a", {"data": {"x": "1"}}, {"Content-Type": "application/merge-patch+json"})
    api_server.raw("PATCH", f"{CM_PATH}/b", {"data": {"x": "1"}}, {"Content-Type": "application/merge-patch+json"})
    _, events = stream_lines(api_server, f"{CM_PATH}/b?watch=true&resourceVersion={rv}&timeoutSeconds=5", {}, 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("MODIFIED", "b")]


@pytest.mark.parametrize("query", ["limit=abc", "watch=true&timeoutSeconds=soon"])
def test_non_integer_parameters_are_400(api_server: ApiServerHandle, query: str) -> None:
    resp = api_server.raw("GET", f"{CM_PATH}?{query}")
    assert resp.status == 400 and resp.json()["reason"] == "BadRequest"


def test_non_positive_limit_means_no_limit(api_server: ApiServerHandle) -> None:
    for name in "ab":
        api_server.raw("POST", CM_PATH, {"metadata": {"name": name}})
    for limit in ("0", "-1"):
        body = api_server.raw("GET", f"{CM_PATH}?limit={limit}").json()
        assert [i["metadata"]["name"] for i in body["items"]] == ["a", "b"]
        assert "continue" not in body["metadata"]
