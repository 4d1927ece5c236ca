"""Load object dicts into a real kube-apiserver through its REST API, as a client would.

The Enterprise RAG seed (`sandbox.seed.enterprise_rag_seed`) is plain data, created in
order: CRDs first (we wait for `Established` before going on), then everything else.
Where a seeded object carries a `status` and its kind has the `/status` subresource, the
status is written there after the create (the apiserver drops it from a create), the
same thing `sandbox.cluster.load_objects` does against the sandbox store.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]


def request(
    api: ApiClient,
    method: str,
    path: str,
    body: Any = None,
    timeout: float = 30,
    content_type: str = "application/json",
) -> Any:
    """One REST call; returns the decoded JSON body; raises ApiException on non-2xx."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    # straight to the client's urllib3 pool (TLS + client cert already configured): the
    # kubernetes client's own rest layer changed between releases (v34+ returns unread
    # responses, re-encodes string bodies), and bytes are what we mean to send
    r = api.rest_client.pool_manager.request(
        method,
        api.configuration.host + path,
        headers=headers,
        body=None if body is None else json.dumps(body).encode(),
        timeout=timeout,
    )
    data = r.data
    if not 200 <= r.status <= 299:
        err = ApiException(status=r.status, reason=r.reason)
        err.body = data.decode(errors="replace")
        raise err
    return json.loads(data) if data else None


def _gv_path(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


class Resources:
    """kind -> (plural, namespaced, has_status) from discovery, refetched on a miss."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self._gv: dict[str, dict[str, tuple[str, bool, bool]]] = {}

    def _load(self, api_version: str) -> dict[str, tuple[str, bool, bool]]:
        doc = request(self.api, "GET", _gv_path(api_version))
        names = {r["name"] for r in doc["resources"]}
        out = {
            r["kind"]: (r["name"], r["namespaced"], f"{r['name']}/status" in names)
            for r in doc["resources"]
            if "/" not in r["name"]
        }
        self._gv[api_version] = out
        return out

    def lookup(self, api_version: str, kind: str, timeout: float = 30) -> tuple[str, bool, bool]:
        deadline = time.monotonic() + timeout
        while True:
            known = self._gv.get(api_version)
            if known and kind in known:
                return known[kind]
            try:
                known = self._load(api_version)
            except ApiException as e:  # a new CRD's group can lag behind Established
                if e.status != 404:
                    raise
                known = {}
            if kind in known:
                return known[kind]
            if time.monotonic() > deadline:
                raise LookupError(f"apiserver does not serve {api_version} {kind}")
            time.sleep(0.2)

    def path(self, obj: Obj, *, name: bool = False) -> tuple[str, bool]:
        plural, namespaced, has_status = self.lookup(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        p = _gv_path(obj["apiVersion"])
        if namespaced:
            p += f"/namespaces/{meta.get('namespace') or 'default'}"
        p += f"/{plural}"
        if name:
            p += f"/{meta['name']}"
        return p, has_status


def wait_established(api: ApiClient, names: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        name = pending[0]
        crd = request(api, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conds = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions", [])}
        if conds.get("Established") == "True":
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {name} not Established after {timeout}s: {conds}")
        time.sleep(0.1)


def create_objects(api: ApiClient, objects: list[Obj], *, exist_ok: bool = False) -> int:
    """Create `objects` in order (CRDs are waited for), then write their status. Returns count."""
    res = Resources(api)
    crds: list[str] = []
    prebound: dict[tuple[str, str], str] = {}  # (ns, claim) -> PV whose claimRef has no uid
    n = 0
    for obj in objects:
        if obj["kind"] != "CustomResourceDefinition" and crds:
            wait_established(api, crds)
            crds = []
        path, has_status = res.path(obj)
        body = {k: v for k, v in obj.items() if k != "status" or obj["kind"] == "Node"}
        try:
            created = request(api, "POST", path, body)
        except ApiException as e:
            if not (exist_ok and e.status == 409):
                raise RuntimeError(
                    f"create {obj['kind']} {obj['metadata'].get('namespace', '')}/"
                    f"{obj['metadata']['name']}: {e.status} {e.body}"
                ) from e
            created = request(api, "GET", res.path(obj, name=True)[0])
        n += 1
        ref = (obj.get("spec") or {}).get("claimRef") or {}
        if obj["kind"] == "PersistentVolume" and ref.get("name") and not ref.get("uid"):
            prebound[(ref.get("namespace", ""), ref["name"])] = obj["metadata"]["name"]
        if obj["kind"] == "PersistentVolumeClaim":
            key = (created["metadata"]["namespace"], created["metadata"]["name"])
            if key in prebound:
                bind_volume(api, prebound.pop(key), created)
        if obj["kind"] == "CustomResourceDefinition":
            crds.append(obj["metadata"]["name"])
        if has_status and obj.get("status") and obj["kind"] != "Node":
            write_status(api, res.path(obj, name=True)[0], created, obj["status"])
    if crds:
        wait_established(api, crds)
    return n


def write_status(api: ApiClient, path: str, current: Obj, status: Obj, tries: int = 10) -> Obj:
    """PUT .../status with `status`, re-reading on a 409 (controllers may race us)."""
    for _ in range(tries):
        try:
            return request(api, "PUT", path + "/status", {**current, "status": status})
        except ApiException as e:
            if e.status != 409:
                raise
            current = request(api, "GET", path)
    raise RuntimeError(f"status of {path}: still conflicting after {tries} tries")


def bind_volume(api: ApiClient, pv: str, claim: Obj) -> None:
    """Give a seeded PV's claimRef the uid of the claim just created.

    The seed (plain data) cannot know a claim's uid, and a real cluster's bound PV always
    carries it: kube-controller-manager's persistentvolume-binder marks a claim annotated
    `pv.kubernetes.io/bind-completed` whose volume's claimRef.uid differs `Lost`
    ("ClaimMisbound"). The PVC is created first (its uid exists only then), so this
    patch races the binder by milliseconds; if the binder wins, its next resync (15 s)
    binds the claim again (bind() on a matching uid).
    """
    patch = {
        "spec": {
            "claimRef": {
                "uid": claim["metadata"]["uid"],
                "resourceVersion": claim["metadata"]["resourceVersion"],
            }
        }
    }
    request(
        api,
        "PATCH",
        f"/api/v1/persistentvolumes/{pv}",
        patch,
        content_type="application/merge-patch+json",
    )
