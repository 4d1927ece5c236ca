"""Probes of apiserver semantics that ragbot relies on, run alike on the sandbox and upstream.

Each probe takes a `Cluster` (an admin ApiClient plus the few per-cluster adapters that
cannot be written once: making a resourceVersion too old, a client for an unprivileged
ServiceAccount) and returns a NORMALISED, JSON-able answer: HTTP statuses, Status
reason/message/details, watch event (type, name) sequences, the names left after a
cascading delete. Namespaces, uids, resourceVersions, continue tokens and timestamps are
replaced by placeholders, so the answers of two clusters compare with `==`
(tests/cluster/test_conformance.py; recorded upstream answers in upstream_answers.json).

Every probe works in its own fresh namespace `conf-<probe>-<random>` with fixed object
names, and labels its objects `conformance=<probe>` so objects a cluster adds on its own
(upstream's `kube-root-ca.crt` ConfigMap in every namespace) stay out of lists and watches.
Waits are conditions with deadlines, never sleeps.

What makes a resourceVersion "too old" (probe `gone`): the real kube-apiserver serves
watches, and with ListFromCacheSnapshot also `resourceVersionMatch=Exact` lists and
continue tokens, from its watch cache, which neither sees nor cares about etcd
compaction: after an etcd compaction alone, a watch from an old RV still replays events
and an Exact list still answers 200 (measured on v1.36.3). A watch gets 410 only for an
RV older than its cacher's window (the RV of the cacher's initial list, or the oldest
event after eviction); evictions need the cache to be full of events older than 75 s,
which no fast test can arrange. What does work, deterministically: a CRD's cacher is
torn down when the CRD's spec changes and a new one starts (listing at the current RV)
on the next request. So the upstream adapter compacts etcd to its current revision
(POST /v3/kv/compaction on etcd's gRPC gateway) and then changes the probe CRD's schema
description; after that a watch from the noted RV gets `ERROR` 410 from the new cacher,
and an Exact list or a continue token at the noted RV falls through to etcd, which
answers 410 because of the compaction. The sandbox adapter is its own compaction
(`POST /sandbox/compact`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

Answer = dict[str, Any]

PROBE_GROUP = "conformance.ragbot.test"
WIDGETS = f"widgets.{PROBE_GROUP}"
VELERO = "velero.io"


# ----- clusters ----------------------------------------------------------------------------


@dataclass
class Cluster:
    """What a probe needs of one cluster."""

    kind: str  # "sandbox" | "upstream"
    admin: client.ApiClient
    # Make every resourceVersion up to now too old for widgets in the namespace: after it
    # returns, a watch / Exact list / continue from an older RV must fail (410).
    make_too_old: Callable[[Cluster, str, str], None]
    # An ApiClient authenticated as ServiceAccount `name` of `namespace` (which exists).
    sa_client: Callable[[Cluster, str, str], client.ApiClient]
    _clients: list[client.ApiClient] = field(default_factory=list)

    def close(self) -> None:
        for c in self._clients:
            c.close()

    def token_client(self, token: str) -> client.ApiClient:
        """The admin's server and CA with a bearer token as the only credential."""
        base = self.admin.configuration
        cfg = client.Configuration()
        cfg.host = base.host
        cfg.ssl_ca_cert = base.ssl_ca_cert
        cfg.verify_ssl = base.verify_ssl
        cfg.api_key = {"authorization": f"Bearer {token}"}
        api = client.ApiClient(cfg)
        self._clients.append(api)
        return api


def sandbox_cluster(sim: Any) -> Cluster:
    """Adapters for a running `sandbox.cluster.SandboxCluster` (with rbac=True)."""

    def too_old(c: Cluster, namespace: str, noted_rv: str) -> None:
        status, body = request(c.admin, "POST", "/sandbox/compact")
        assert status == 200, body

    def sa(c: Cluster, namespace: str, name: str) -> client.ApiClient:
        # the sandbox's ServiceAccount tokens are the user names themselves
        return c.token_client(f"system:serviceaccount:{namespace}:{name}")

    return Cluster("sandbox", sim.api_client(), too_old, sa)


def upstream_cluster(up: Any) -> Cluster:
    """Adapters for a running tests.upstream.cluster.Upstream (needs `.etcd_url`)."""
    from kubernetes import config as kube_config

    def too_old(c: Cluster, namespace: str, noted_rv: str) -> None:
        revision = _etcd(up.etcd_url, "/v3/kv/range", {"key": _b64("/")})["header"]["revision"]
        _etcd(up.etcd_url, "/v3/kv/compaction", {"revision": revision, "physical": True})
        ext = client.ApiextensionsV1Api(c.admin)
        crd = ext.read_custom_resource_definition(WIDGETS)
        crd.spec.versions[0].schema.open_apiv3_schema.description = f"bumped {revision}"
        ext.replace_custom_resource_definition(WIDGETS, crd)
        path = f"/apis/{PROBE_GROUP}/v1/namespaces/{namespace}/widgets"

        def new_cacher() -> bool:
            # The CRD handler swaps storage asynchronously (its informer sees the update);
            # once a watch from the noted RV is refused, the new cacher serves.
            events = watch_events(
                c.admin, path, {"resourceVersion": noted_rv}, until=lambda e: True, timeout=5
            )
            return bool(events) and events[0]["type"] == "ERROR"

        wait(new_cacher, 30, "the widgets cacher to restart after the CRD change")

    def sa(c: Cluster, namespace: str, name: str) -> client.ApiClient:
        token = (
            client.CoreV1Api(c.admin)
            .create_namespaced_service_account_token(
                name, namespace, {"spec": {"expirationSeconds": 3600}}
            )
            .status.token
        )
        return c.token_client(token)

    return Cluster("upstream", kube_config.new_client_from_config(str(up.kubeconfig)), too_old, sa)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _etcd(url: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


# ----- HTTP helpers ------------------------------------------------------------------------


def wait(condition: Callable[[], Any], timeout: float, message: str) -> Any:
    """Poll condition until truthy; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _query(query: dict[str, str] | None) -> list[tuple[str, str]]:
    return list((query or {}).items())


def request(
    api: client.ApiClient,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    warnings: list[str] | None = None,
) -> tuple[int, Any]:
    """One request; (HTTP status, parsed JSON body or text). Warning headers go to warnings."""
    m, url, headers, data, post = api.param_serialize(
        method,
        path,
        query_params=_query(query),
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(m, url, headers, data, post, _request_timeout=30)
    raw = resp.read().decode()
    if warnings is not None:
        warnings.extend(resp.response.headers.getlist("Warning"))
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw


def watch_events(
    api: client.ApiClient,
    path: str,
    query: dict[str, str],
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 20,
) -> list[dict[str, Any]]:
    """Watch events up to and including the first for which until(event) holds.

    Also returns (without error) when the server answers with a non-200 or ends the
    stream; then the list holds a pseudo event {"type": "HTTP", "status", "object"}.
    """
    q = {"watch": "true", "timeoutSeconds": str(int(timeout)), **query}
    m, url, headers, data, post = api.param_serialize(
        "GET",
        path,
        query_params=_query(q),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(m, url, headers, data, post, _request_timeout=(10, timeout + 5))
    raw = resp.response
    if resp.status != 200:
        return [{"type": "HTTP", "status": resp.status, "object": json.loads(resp.read())}]
    events: list[dict[str, Any]] = []
    try:
        for line in _lines(raw):
            event = json.loads(line)
            events.append(event)
            if until(event) or event["type"] == "ERROR":
                break
    finally:
        raw.close()
    return events


def _lines(raw: Any) -> Iterator[bytes]:
    buf = b""
    for chunk in raw.stream(amt=None, decode_content=True):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
    if buf.strip():
        yield buf


# ----- normalisation -----------------------------------------------------------------------


class Norm:
    """Replaces a cluster's incidental values by placeholders."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # literal -> placeholder

    def name(self, literal: str, placeholder: str) -> None:
        self.names[literal] = placeholder

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items() if k != "managedFields"}
        if isinstance(value, list):
            return [self(v, key) for v in value]
        if not isinstance(value, str):
            return value
        if key in ("uid",):
            return "<uid>"
        if key in ("resourceVersion",):
            return "<rv>" if value else ""
        if key == "continue":
            return "<continue>" if value else ""
        if key in ("creationTimestamp", "deletionTimestamp", "time"):
            return "<ts>"
        for literal in sorted(self.names, key=len, reverse=True):
            value = value.replace(literal, self.names[literal])
        value = re.sub(
            r"too old resource version: \d+ \(\d+\)", "too old resource version: <rv> (<rv>)", value
        )
        value = re.sub(
            r"ResourceVersion in the precondition \(\d+\)",
            "ResourceVersion in the precondition (<rv>)",
            value,
        )
        return re.sub(
            r"ResourceVersion in record \(\d+\)", "ResourceVersion in record (<rv>)", value
        )


def status_answer(norm: Norm, status: int, body: Any) -> Answer:
    """HTTP status + the Status fields a client keys on (or the kind of object returned)."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        keep = {
            k: body.get(k) for k in ("status", "reason", "message", "code", "details", "metadata")
        }
        causes = (keep.get("details") or {}).get("causes")
        if causes and len(causes) > 1 and keep["message"].endswith("]"):
            # The CRD schema validator walks properties in Go map order: upstream lists
            # several causes in a random order, so compare them sorted.
            head, _, _ = keep["message"].partition(": [")
            parts = sorted(f"{c.get('field')}: {c.get('message')}" for c in causes)
            assert all(p in keep["message"] for p in parts), keep["message"]
            keep["message"] = f"{head}: [{', '.join(parts)}]"
            keep["details"] = {
                **keep["details"],
                "causes": sorted(causes, key=lambda c: (c.get("field", ""), c.get("message", ""))),
            }
        return {"http": status, "status": norm({k: v for k, v in keep.items() if v is not None})}
    if isinstance(body, dict):
        m = body.get("metadata") or {}
        return {
            "http": status,
            "object": {
                "kind": body.get("kind"),
                "name": m.get("name"),
                "deletionTimestamp": bool(m.get("deletionTimestamp")),
                "finalizers": m.get("finalizers") or [],
            },
        }
    return {"http": status, "body": body}


def event_seq(norm: Norm, events: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for e in events:
        obj = e.get("object") or {}
        if e["type"] in ("ERROR", "HTTP"):
            out.append([e["type"], status_answer(norm, e.get("status", 200), obj)])
        elif e["type"] == "BOOKMARK":
            out.append(["BOOKMARK", norm(obj)])
        else:
            out.append([e["type"], (obj.get("metadata") or {}).get("name")])
    return out


# ----- setup helpers -----------------------------------------------------------------------


def new_namespace(c: Cluster, probe: str, norm: Norm) -> str:
    ns = f"conf-{probe}-{secrets.token_hex(3)}"
    client.CoreV1Api(c.admin).create_namespace({"metadata": {"name": ns}})
    norm.name(ns, "<ns>")
    return ns


def cleanup(c: Cluster, ns: str) -> None:
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(c.admin).delete_namespace(ns)


def cm(name: str, probe: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"conformance": probe}, **meta},
        "data": {"k": name},
    }


def _established(c: Cluster, name: str) -> bool:
    status, body = request(
        c.admin, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    )
    conds = (body.get("status") or {}).get("conditions") or [] if status == 200 else []
    return any(x.get("type") == "Established" and x.get("status") == "True" for x in conds)


def ensure_crd(c: Cluster, doc: dict[str, Any]) -> None:
    name = doc["metadata"]["name"]
    status, body = request(
        c.admin, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=doc
    )
    assert status in (201, 409), body
    wait(lambda: _established(c, name), 30, f"CRD {name} Established")


def ensure_velero_crds(c: Cluster) -> None:
    from sandbox.seed import velero_crd_documents

    for doc in velero_crd_documents():
        if doc["metadata"]["name"].endswith("." + VELERO):
            status, _ = request(
                c.admin,
                "GET",
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{doc['metadata']['name']}",
            )
            if status == 404:
                ensure_crd(c, doc)


def widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": WIDGETS},
        "spec": {
            "group": PROBE_GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "conformance probe",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


# ----- probes ------------------------------------------------------------------------------


def probe_watch_resume(c: Cluster) -> Answer:
    """Note an RV, change things, watch from the RV: exactly the later events, in order."""
    norm = Norm()
    ns = new_namespace(c, "resume", norm)
    try:
        core = client.CoreV1Api(c.admin)
        path = f"/api/v1/namespaces/{ns}/configmaps"
        core.create_namespaced_config_map(ns, cm("a", "resume"))
        noted = core.create_namespaced_config_map(ns, cm("b", "resume")).metadata.resource_version
        core.patch_namespaced_config_map("a", ns, {"data": {"k": "a2"}})
        core.create_namespaced_config_map(ns, cm("c", "resume"))
        core.delete_namespaced_config_map("b", ns)
        core.patch_namespaced_config_map("c", ns, {"metadata": {"labels": {"conformance": "gone"}}})
        core.create_namespaced_config_map(ns, cm("zz-end", "resume"))
        core.patch_namespaced_config_map("a", ns, {"data": {"k": "a-end"}})

        def is_end(e: dict[str, Any]) -> bool:
            return (e["object"].get("metadata") or {}).get("name") == "zz-end"

        def is_a_end(e: dict[str, Any]) -> bool:
            return (e["object"].get("data") or {}).get("k") == "a-end"

        def no_bookmarks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [e for e in events if e["type"] != "BOOKMARK"]

        selected = watch_events(
            c.admin, path, {"resourceVersion": noted, "labelSelector": "conformance=resume"}, is_end
        )
        everything = watch_events(c.admin, path, {"resourceVersion": noted}, is_end)
        one = watch_events(
            c.admin, path, {"resourceVersion": noted, "fieldSelector": "metadata.name=a"}, is_a_end
        )
        return {
            "labelSelector": event_seq(norm, no_bookmarks(selected)),
            "all": event_seq(
                norm,
                [
                    e
                    for e in no_bookmarks(everything)
                    if e["object"]["metadata"]["name"] != "kube-root-ca.crt"
                ],
            ),
            "fieldSelector name=a": event_seq(norm, no_bookmarks(one)),
        }
    finally:
        cleanup(c, ns)


def probe_gone(c: Cluster) -> Answer:
    """A watch, an Exact list and a continue token from a resourceVersion made too old."""
    norm = Norm()
    ensure_crd(c, widget_crd())
    ns = new_namespace(c, "gone", norm)
    try:
        co = client.CustomObjectsApi(c.admin)
        path = f"/apis/{PROBE_GROUP}/v1/namespaces/{ns}/widgets"

        def widget(name: str) -> dict[str, Any]:
            body = {"apiVersion": f"{PROBE_GROUP}/v1", "kind": "Widget", "metadata": {"name": name}}
            return co.create_namespaced_custom_object(PROBE_GROUP, "v1", ns, "widgets", body)

        noted = widget("a")["metadata"]["resourceVersion"]
        widget("b")
        status, page = request(c.admin, "GET", path, {"limit": "1"})
        assert status == 200 and page["metadata"].get("continue"), page
        widget("c")
        c.make_too_old(c, ns, noted)
        watch = watch_events(c.admin, path, {"resourceVersion": noted}, lambda e: True)
        exact = request(
            c.admin, "GET", path, {"resourceVersion": noted, "resourceVersionMatch": "Exact"}
        )
        cont = request(
            c.admin, "GET", path, {"limit": "1", "continue": page["metadata"]["continue"]}
        )
        current = request(
            c.admin, "GET", path, {"resourceVersion": noted, "resourceVersionMatch": "NotOlderThan"}
        )
        numbers = re.findall(r"\d+", (watch[0].get("object") or {}).get("message", ""))
        fresh = ((cont[1] if isinstance(cont[1], dict) else {}).get("metadata") or {}).get(
            "continue"
        )
        resumed = request(c.admin, "GET", path, {"continue": fresh}) if fresh else (0, {})
        return {
            "watch": event_seq(norm, watch),
            "watch floor is newer than the noted RV": len(numbers) == 2
            and int(numbers[1]) > int(numbers[0]) == int(noted),
            "list Exact": status_answer(norm, *exact),
            "list with the continue token of the 410": {
                "http": resumed[0],
                "items": [i["metadata"]["name"] for i in resumed[1].get("items", [])],
            },
            "list continue": status_answer(norm, *cont),
            "list NotOlderThan": {
                "http": current[0],
                "items": [i["metadata"]["name"] for i in current[1].get("items", [])],
            },
        }
    finally:
        cleanup(c, ns)


def probe_bookmarks(c: Cluster) -> Answer:
    """sendInitialEvents: the initial ADDEDs then the initial-events-end BOOKMARK; the 422s."""
    norm = Norm()
    ns = new_namespace(c, "bookmarks", norm)
    try:
        core = client.CoreV1Api(c.admin)
        path = f"/api/v1/namespaces/{ns}/configmaps"
        core.create_namespaced_config_map(ns, cm("b", "bookmarks"))
        core.create_namespaced_config_map(ns, cm("a", "bookmarks"))
        stream = {
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
            "labelSelector": "conformance=bookmarks",
        }
        last_rv = int(core.read_namespaced_config_map("a", ns).metadata.resource_version)

        def change_after_bookmark(e: dict[str, Any]) -> bool:
            if e["type"] == "BOOKMARK":  # a change after the initial events streams live
                core.patch_namespaced_config_map("b", ns, {"data": {"k": "b2"}})
            return e["type"] == "MODIFIED"

        events = watch_events(c.admin, path, stream, change_after_bookmark)
        bookmark = next((e for e in events if e["type"] == "BOOKMARK"), {"object": {}})
        bookmark_rv = int(bookmark["object"].get("metadata", {}).get("resourceVersion", 0))
        answer: Answer = {
            "initial events": event_seq(norm, events),
            "bookmark RV at or after the last write": bookmark_rv >= last_rv,
        }
        invalid = {
            "sendInitialEvents without resourceVersionMatch": {
                "sendInitialEvents": "true",
                "allowWatchBookmarks": "true",
            },
            "sendInitialEvents without allowWatchBookmarks": {
                "sendInitialEvents": "true",
                "resourceVersionMatch": "NotOlderThan",
            },
            "resourceVersionMatch without sendInitialEvents": {
                "resourceVersionMatch": "NotOlderThan"
            },
            "sendInitialEvents with Exact": {
                "sendInitialEvents": "true",
                "resourceVersionMatch": "Exact",
                "allowWatchBookmarks": "true",
                "resourceVersion": "1",
            },
        }
        for label, q in invalid.items():
            got = watch_events(
                c.admin, path, {**q, "timeoutSeconds": "1"}, lambda e: True, timeout=1
            )
            answer[f"watch {label}"] = event_seq(norm, got[:1])
        lists = {
            "list sendInitialEvents": {"sendInitialEvents": "true"},
            "list resourceVersionMatch without resourceVersion": {"resourceVersionMatch": "Exact"},
            "list resourceVersionMatch bogus": {
                "resourceVersion": "1",
                "resourceVersionMatch": "Bogus",
            },
        }
        for label, q in lists.items():
            answer[label] = status_answer(norm, *request(c.admin, "GET", path, q))
        return answer
    finally:
        cleanup(c, ns)


def probe_concurrency(c: Cluster) -> Answer:
    """Stale resourceVersion on update and patch, preconditions on delete, create twice."""
    norm = Norm()
    ns = new_namespace(c, "occ", norm)
    try:
        path = f"/api/v1/namespaces/{ns}/configmaps"
        status, first = request(c.admin, "POST", path, body=cm("x", "occ"))
        assert status == 201, first
        stale = first["metadata"]["resourceVersion"]
        uid = first["metadata"]["uid"]
        status, second = request(c.admin, "PUT", f"{path}/x", body={**first, "data": {"k": "2"}})
        assert status == 200, second
        norm.name(uid, "<uid>")
        stale_put = {**first, "data": {"k": "3"}}
        out: Answer = {
            "update stale": status_answer(
                norm, *request(c.admin, "PUT", f"{path}/x", body=stale_put)
            ),
            "merge patch stale": status_answer(
                norm,
                *request(
                    c.admin,
                    "PATCH",
                    f"{path}/x",
                    body={"metadata": {"resourceVersion": stale}, "data": {"k": "4"}},
                    content_type="application/merge-patch+json",
                ),
            ),
            "create existing": status_answer(
                norm, *request(c.admin, "POST", path, body=cm("x", "occ"))
            ),
        }
        bad_uid = "00000000-0000-0000-0000-000000000000"
        norm.name(bad_uid, "<other-uid>")
        out["delete precondition rv"] = status_answer(
            norm,
            *request(
                c.admin, "DELETE", f"{path}/x", body={"preconditions": {"resourceVersion": stale}}
            ),
        )
        out["delete precondition uid"] = status_answer(
            norm, *request(c.admin, "DELETE", f"{path}/x", body={"preconditions": {"uid": bad_uid}})
        )
        no_rv = dict(second)
        no_rv["metadata"] = {k: v for k, v in second["metadata"].items() if k != "resourceVersion"}
        no_rv["data"] = {"k": "5"}
        out["update without resourceVersion"] = status_answer(
            norm, *request(c.admin, "PUT", f"{path}/x", body=no_rv)
        )
        # the same on a custom resource: its store words things by resource and group
        ensure_crd(c, widget_crd())
        wpath = f"/apis/{PROBE_GROUP}/v1/namespaces/{ns}/widgets"
        body = {"apiVersion": f"{PROBE_GROUP}/v1", "kind": "Widget", "metadata": {"name": "w"}}
        status, w1 = request(c.admin, "POST", wpath, body=body)
        assert status == 201, w1
        status, w2 = request(c.admin, "PUT", f"{wpath}/w", body={**w1, "spec": {"n": 1}})
        assert status == 200, w2
        norm.name(w1["metadata"]["uid"], "<uid>")
        out["widget update stale"] = status_answer(
            norm, *request(c.admin, "PUT", f"{wpath}/w", body={**w1, "spec": {"n": 2}})
        )
        w_no_rv = {**w2, "metadata": {"name": "w"}, "spec": {"n": 3}}
        out["widget update without resourceVersion"] = status_answer(
            norm, *request(c.admin, "PUT", f"{wpath}/w", body=w_no_rv)
        )
        out["widget create existing"] = status_answer(
            norm, *request(c.admin, "POST", wpath, body=body)
        )
        out["widget delete precondition rv"] = status_answer(
            norm,
            *request(
                c.admin,
                "DELETE",
                f"{wpath}/w",
                body={"preconditions": {"resourceVersion": w1["metadata"]["resourceVersion"]}},
            ),
        )
        return out
    finally:
        cleanup(c, ns)


def probe_cascade(c: Cluster) -> Answer:
    """An owner ConfigMap deleted per propagationPolicy: the DELETE answer, what remains."""
    norm = Norm()
    ns = new_namespace(c, "cascade", norm)
    try:
        core = client.CoreV1Api(c.admin)
        path = f"/api/v1/namespaces/{ns}/configmaps"
        out: Answer = {}
        for policy in ("Background", "Foreground", "Orphan"):
            p = policy.lower()
            owner = core.create_namespaced_config_map(ns, cm(f"{p}-owner", "cascade"))
            uid = owner.metadata.uid
            ref = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner.metadata.name,
                "uid": uid,
                "blockOwnerDeletion": True,
            }
            for i in (1, 2):
                core.create_namespaced_config_map(
                    ns, cm(f"{p}-dep{i}", "cascade", ownerReferences=[ref])
                )
            # a dependent with a second, living owner survives every policy
            keeper = core.create_namespaced_config_map(ns, cm(f"{p}-keeper", "cascade"))
            other = {**ref, "name": keeper.metadata.name, "uid": keeper.metadata.uid}
            core.create_namespaced_config_map(
                ns, cm(f"{p}-shared", "cascade", ownerReferences=[ref, other])
            )
            answer = status_answer(
                norm,
                *request(
                    c.admin, "DELETE", f"{path}/{p}-owner", body={"propagationPolicy": policy}
                ),
            )

            def settled(p: str = p, uid: str = uid) -> list[Any] | None:
                items = core.list_namespaced_config_map(
                    ns, label_selector="conformance=cascade"
                ).items
                mine = [i for i in items if i.metadata.name.startswith(p + "-")]
                if any(i.metadata.name == f"{p}-owner" for i in mine):
                    return None
                if any(r.uid == uid for i in mine for r in i.metadata.owner_references or []):
                    return None
                return sorted(
                    [i.metadata.name, [r.name for r in i.metadata.owner_references or []]]
                    for i in mine
                )

            out[policy] = {
                "delete": answer,
                "remaining": wait(settled, 60, f"GC after {policy} delete"),
            }
        return out
    finally:
        cleanup(c, ns)


def probe_cascade_deployment(c: Cluster) -> Answer:
    """Deployments deleted per propagationPolicy: which ReplicaSets and Pods remain.

    Needs the workload controllers (sandbox: WorkloadController; upstream: the deployment
    and replicaset controllers, kube-scheduler and kwok). ReplicaSet and Pod names carry
    hashes and random suffixes, so the answer counts them and names their owners' kinds.
    """
    norm = Norm()
    ns = new_namespace(c, "cascade-deploy", norm)
    apps = client.AppsV1Api(c.admin)
    core = client.CoreV1Api(c.admin)
    policies = ("Background", "Foreground", "Orphan")
    try:
        for policy in policies:
            app = f"web-{policy.lower()}"
            labels = {"app": app}
            apps.create_namespaced_deployment(
                ns,
                {
                    "metadata": {"name": app},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                        },
                    },
                },
            )

        def state(app: str) -> dict[str, Any]:
            sel = f"app={app}"
            rss = apps.list_namespaced_replica_set(ns, label_selector=sel).items
            pods = core.list_namespaced_pod(ns, label_selector=sel).items
            deps = [d.metadata.name for d in apps.list_namespaced_deployment(ns).items]
            return {
                "deployment": app in deps,
                "replicasets": sorted(
                    [r.kind for r in rs.metadata.owner_references or []] for rs in rss
                ),
                "pods": sorted([r.kind for r in p.metadata.owner_references or []] for p in pods),
                "terminating": sum(
                    1 for o in [*rss, *pods] if o.metadata.deletion_timestamp is not None
                ),
            }

        for policy in policies:
            app = f"web-{policy.lower()}"
            wait(lambda app=app: len(state(app)["pods"]) == 2, 60, f"2 pods of {app}")
        out: Answer = {}
        for policy in policies:
            app = f"web-{policy.lower()}"
            status, body = request(
                c.admin,
                "DELETE",
                f"/apis/apps/v1/namespaces/{ns}/deployments/{app}",
                body={"propagationPolicy": policy},
            )
            answer = status_answer(norm, status, body)

            def settled(app: str = app, policy: str = policy) -> dict[str, Any] | None:
                now = state(app)
                if now["deployment"] or now["terminating"]:
                    return None
                if any("Deployment" in kinds for kinds in now["replicasets"]):
                    return None
                if policy != "Orphan" and (now["replicasets"] or now["pods"]):
                    return None  # the GC is still at work
                return now

            out[policy] = {"delete": answer, "remaining": wait(settled, 60, f"GC of {app}")}
        return out
    finally:
        cleanup(c, ns)


def probe_crd_validation(c: Cluster) -> Answer:
    """Invalid Velero objects: 422 Invalid with the schema's causes."""
    norm = Norm()
    ensure_velero_crds(c)
    ns = new_namespace(c, "crdval", norm)
    try:

        def post(plural: str, kind: str, name: str, spec: Any) -> Answer:
            body = {
                "apiVersion": "velero.io/v1",
                "kind": kind,
                "metadata": {"name": name},
                "spec": spec,
            }
            return status_answer(
                norm,
                *request(
                    c.admin, "POST", f"/apis/velero.io/v1/namespaces/{ns}/{plural}", body=body
                ),
            )

        def unknown(validation: str | None) -> Answer:
            name = f"unknown-{(validation or 'default').lower()}"
            body = {
                "apiVersion": "velero.io/v1",
                "kind": "Backup",
                "metadata": {"name": name},
                "spec": {"ttl": "1h0m0s", "bogus": 1},
            }
            q = {"fieldValidation": validation} if validation else None
            warnings: list[str] = []
            path = f"/apis/velero.io/v1/namespaces/{ns}/backups"
            status, got = request(c.admin, "POST", path, q, body, warnings=warnings)
            answer = status_answer(norm, status, got)
            if status == 201:
                answer["spec"] = got.get("spec")
            answer["warnings"] = warnings
            return answer

        bsl = {"provider": "aws", "objectStorage": {"bucket": "b"}}
        return {
            "backup ttl integer": post("backups", "Backup", "ttl-int", {"ttl": 5}),
            "backup includedNamespaces string": post(
                "backups", "Backup", "ns-str", {"includedNamespaces": "a"}
            ),
            "backup two wrong types": post(
                "backups", "Backup", "two", {"snapshotVolumes": "yes", "ttl": True}
            ),
            "bsl accessMode enum": post(
                "backupstoragelocations",
                "BackupStorageLocation",
                "mode",
                {**bsl, "accessMode": "Sometimes"},
            ),
            "bsl missing provider": post(
                "backupstoragelocations",
                "BackupStorageLocation",
                "noprov",
                {"objectStorage": {"bucket": "b"}},
            ),
            "schedule missing required": post("schedules", "Schedule", "empty", {}),
            "restore backupName integer": post("restores", "Restore", "bn", {"backupName": 7}),
            "backup spec not an object": post("backups", "Backup", "spec-str", "x"),
            "backup invalid name": post("backups", "Backup", "Bad_Name", {}),
            "backup unknown field": unknown(None),
            "backup unknown field Strict": unknown("Strict"),
            "backup unknown field Ignore": unknown("Ignore"),
        }
    finally:
        cleanup(c, ns)


def probe_rbac(c: Cluster) -> Answer:
    """A ServiceAccount with a narrow Role: 403s namespaced, named, cluster-scoped, watch."""
    norm = Norm()
    ns = new_namespace(c, "rbac", norm)
    try:
        core = client.CoreV1Api(c.admin)
        rbac = client.RbacAuthorizationV1Api(c.admin)
        core.create_namespaced_service_account(ns, {"metadata": {"name": "narrow"}})
        core.create_namespaced_service_account(ns, {"metadata": {"name": "ghosted"}})
        # bound to a Role that does not exist; created before narrow's binding, so once
        # that one takes effect upstream's RBAC informer has this one too (same informer)
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "ghost"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "ghost",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "ghosted", "namespace": ns}],
            },
        )
        rbac.create_namespaced_role(
            ns,
            {
                "metadata": {"name": "narrow"},
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "narrow"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "narrow",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "narrow", "namespace": ns}],
            },
        )
        core.create_namespaced_config_map(ns, cm("visible", "rbac"))
        user = c.sa_client(c, ns, "narrow")
        base = f"/api/v1/namespaces/{ns}"

        def allowed() -> bool:  # RBAC caches on upstream see the binding a moment later
            return (
                request(user, "GET", f"{base}/configmaps", {"labelSelector": "conformance=rbac"})[0]
                == 200
            )

        wait(allowed, 30, "the RoleBinding to take effect")
        calls = {
            "list configmaps (allowed)": (
                "GET",
                f"{base}/configmaps",
                {"labelSelector": "conformance=rbac"},
                None,
            ),
            "list secrets": ("GET", f"{base}/secrets", None, None),
            "get secret": ("GET", f"{base}/secrets/s", None, None),
            "create configmap": ("POST", f"{base}/configmaps", None, cm("new", "rbac")),
            "delete configmap": ("DELETE", f"{base}/configmaps/visible", None, None),
            "list secrets all namespaces": ("GET", "/api/v1/secrets", None, None),
            "list namespaces": ("GET", "/api/v1/namespaces", None, None),
            "get namespace": ("GET", f"/api/v1/namespaces/{ns}", None, None),
            "get clusterrole": (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
                None,
                None,
            ),
            "list velero backups": (
                "GET",
                f"/apis/velero.io/v1/namespaces/{ns}/backups",
                None,
                None,
            ),
            "patch configmap status-less": (
                "PATCH",
                f"{base}/configmaps/visible",
                None,
                {"data": {"k": "x"}},
            ),
        }
        out: Answer = {}
        for label, (method, path, q, body) in calls.items():
            ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
            status, got = request(user, method, path, q, body, content_type=ctype)
            if label.endswith("(allowed)"):
                out[label] = {
                    "http": status,
                    "items": [i["metadata"]["name"] for i in got["items"]],
                }
            else:
                out[label] = status_answer(norm, status, got)
        watch = watch_events(user, f"{base}/secrets", {}, lambda e: True, timeout=2)
        out["watch secrets"] = event_seq(norm, watch[:1])
        named = watch_events(
            user, f"{base}/secrets", {"fieldSelector": "metadata.name=s"}, lambda e: True, timeout=2
        )
        out["watch secret by name"] = event_seq(norm, named[:1])
        ghosted = c.sa_client(c, ns, "ghosted")
        out["binding to a missing Role"] = status_answer(
            norm, *request(ghosted, "GET", f"{base}/configmaps")
        )
        stranger = c.token_client("not-a-valid-token")
        out["unknown token"] = status_answer(norm, *request(stranger, "GET", f"{base}/configmaps"))
        return out
    finally:
        cleanup(c, ns)


def probe_errors(c: Cluster) -> Answer:
    """The plain error answers ragbot keys on: 404s, 400s on mismatched bodies."""
    norm = Norm()
    ensure_crd(c, widget_crd())
    ns = new_namespace(c, "errors", norm)
    try:
        base = f"/api/v1/namespaces/{ns}/configmaps"
        wbase = f"/apis/{PROBE_GROUP}/v1/namespaces/{ns}/widgets"
        request(c.admin, "POST", base, body=cm("x", "errors"))
        calls = {
            "get missing": ("GET", f"{base}/nope", None),
            "delete missing": ("DELETE", f"{base}/nope", None),
            "get missing widget": ("GET", f"{wbase}/nope", None),
            "create in a missing namespace": (
                "POST",
                "/api/v1/namespaces/conf-missing-ns/configmaps",
                cm("y", "errors"),
            ),
            "update name mismatch": ("PUT", f"{base}/x", cm("other", "errors")),
            "create with another kind": (
                "POST",
                base,
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}},
            ),
            "create widget with another kind": (
                "POST",
                wbase,
                {"apiVersion": f"{PROBE_GROUP}/v1", "kind": "Gadget", "metadata": {"name": "g"}},
            ),
            "create deployment with another kind": (
                "POST",
                f"/apis/apps/v1/namespaces/{ns}/deployments",
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}},
            ),
            "unknown resource": ("GET", f"/api/v1/namespaces/{ns}/nothings", None),
        }
        return {
            label: status_answer(norm, *request(c.admin, method, path, body=body))
            for label, (method, path, body) in calls.items()
        }
    finally:
        cleanup(c, ns)


PROBES: dict[str, Callable[[Cluster], Answer]] = {
    "watch_resume": probe_watch_resume,
    "gone": probe_gone,
    "bookmarks": probe_bookmarks,
    "concurrency": probe_concurrency,
    "cascade": probe_cascade,
    "cascade_deployment": probe_cascade_deployment,
    "crd_validation": probe_crd_validation,
    "rbac": probe_rbac,
    "errors": probe_errors,
}
