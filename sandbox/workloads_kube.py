"""Store access for the sandbox's in-process controllers, with the API's guarantees.

The controllers of `sandbox.workloads` play kube-controller-manager, the scheduler
and the kubelet, but they talk to the `Store` directly instead of over HTTP. Every
write still goes through the store's create/update paths (defaults, validation,
resourceVersions, watch events), so clients cannot tell who wrote what. This module
gathers the few things all of them need: the resource types, reads, writes guarded by
the object's uid (a write meant for a deleted object must never land on its same-named
successor), creation of dependents that is atomic with the check that their owner
still exists, and the names and hashes Kubernetes uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config.selectors import from_api

from .apiserver import builtin_rules, errors
from .apiserver.objects import clone, rfc3339
from .apiserver.resources import ResourceType
from .apiserver.store import Store

Obj = dict[str, Any]
log = logging.getLogger("sandbox.workloads")

NODE_NAME = "sandbox-node-1"
# rand.SafeEncodeString's alphabet: Kubernetes spells pod-template-hash with it.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class Kinds:
    """The built-in resource types the controllers touch, resolved once."""

    pods: ResourceType
    deployments: ResourceType
    replicasets: ResourceType
    statefulsets: ResourceType
    pvcs: ResourceType
    pvs: ResourceType
    nodes: ResourceType
    services: ResourceType
    storageclasses: ResourceType
    namespaces: ResourceType

    @classmethod
    def resolve(cls, store: Store) -> Kinds:
        def rt(group: str, plural: str) -> ResourceType:
            found = store.registry.lookup(group, "v1", plural)
            if found is None:  # pragma: no cover - the built-in table always has these
                raise LookupError(f"sandbox registry lacks {plural}.{group or 'core'}")
            return found

        return cls(
            pods=rt("", "pods"),
            deployments=rt("apps", "deployments"),
            replicasets=rt("apps", "replicasets"),
            statefulsets=rt("apps", "statefulsets"),
            pvcs=rt("", "persistentvolumeclaims"),
            pvs=rt("", "persistentvolumes"),
            nodes=rt("", "nodes"),
            services=rt("", "services"),
            storageclasses=rt("storage.k8s.io", "storageclasses"),
            namespaces=rt("", "namespaces"),
        )


class Kube:
    """Reads and uid-guarded writes on the store, as the controllers need them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.kinds = Kinds.resolve(store)

    # ----- reads -------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        return self.store.try_get(rt, namespace, name)

    def list(
        self, rt: ResourceType, namespace: str | None = None, selector: Obj | None = None
    ) -> list[Obj]:
        labels = from_api(selector) if selector else None
        items, _, _, _ = self.store.list(rt, namespace, labels)
        return items

    def owned(self, rt: ResourceType, owner: Obj, selector: Obj | None = None) -> list[Obj]:
        """Live (not terminating) objects whose controller reference is `owner`."""
        uid = owner["metadata"]["uid"]
        return [
            o
            for o in self.list(rt, owner["metadata"]["namespace"], selector)
            if controller_uid(o) == uid and not o["metadata"].get("deletionTimestamp")
        ]

    def now(self) -> str:
        """Wall-clock time as object timestamps spell it (the store's clock)."""
        return rfc3339(self.store.clock())

    # ----- writes ------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str, body: Obj) -> Obj:
        """Create with the apiserver's defaulting, as a request through HTTP would."""
        return self.store.create(rt, namespace, body, defaults=builtin_rules.apply_defaults)

    def create_owned(self, rt: ResourceType, body: Obj, owner_rt: ResourceType, owner: Obj) -> Obj | None:
        """Create a dependent only if its owner (same uid) still exists and is not going.

        The check and the create happen under the store's lock: a Deployment deleted by
        a client between our read and our write would otherwise leave a pod whose owner
        is gone, which the store's delete-time garbage collection never sees again.
        """
        m = owner["metadata"]
        with self.store.lock:
            current = self.get(owner_rt, m.get("namespace", ""), m["name"])
            if current is None or current["metadata"].get("uid") != m.get("uid"):
                return None
            if current["metadata"].get("deletionTimestamp"):
                return None
            return self.create(rt, body["metadata"].get("namespace", ""), body)

    def adopt(
        self,
        rt: ResourceType,
        owner: Obj,
        owner_rt: ResourceType,
        accept: Callable[[Obj], bool] = lambda _: True,
    ) -> list[Obj]:
        """Give orphans matching the owner's selector the owner as controller.

        What client-go's ControllerRefManager does: after `delete --cascade=orphan` and a
        re-create, the new owner takes the old dependents over instead of duplicating
        them. Checked and written under the store's lock, like `create_owned`.
        """
        selector = (owner.get("spec") or {}).get("selector")
        if not selector:
            return []
        ns = owner["metadata"]["namespace"]
        orphans = [
            o
            for o in self.list(rt, ns, selector)
            if controller_ref(o) is None and not o["metadata"].get("deletionTimestamp") and accept(o)
        ]
        if not orphans:
            return []
        ref = owner_reference(owner)

        def put(obj: Obj) -> None:
            obj["metadata"]["ownerReferences"] = [*(obj["metadata"].get("ownerReferences") or []), ref]

        adopted: list[Obj] = []
        with self.store.lock:
            current = self.get(owner_rt, ns, owner["metadata"]["name"])
            if current is None or current["metadata"].get("uid") != ref["uid"]:
                return []
            for orphan in orphans:
                done = self.update(rt, orphan, put)
                if done is not None:
                    adopted.append(done)
        return adopted

    def update(
        self, rt: ResourceType, obj: Obj, mutate: Callable[[Obj], None], *, status: bool = False
    ) -> Obj | None:
        """Read-modify-write of the current version of `obj` (same uid), conflict-free.

        `mutate` changes the copy in place. Returns the stored object, or None when the
        object is gone or was replaced by a same-named successor meanwhile.
        """
        m = obj["metadata"]
        uid = m.get("uid")

        def apply(current: Obj) -> Obj:
            if current["metadata"].get("uid") != uid:
                raise errors.conflict(rt, m["name"])
            mutate(current)
            return current

        try:
            return self.store.apply_update(
                rt, m.get("namespace", ""), m["name"], apply, subresource="status" if status else ""
            )
        except errors.ApiError as exc:
            if exc.code in (404, 409):
                return None
            raise

    def write_status(self, rt: ResourceType, obj: Obj, status: Obj) -> Obj | None:
        """Replace the status if it differs (an equal status costs no write, no event)."""
        if obj.get("status") == status:
            return obj

        def put(current: Obj) -> None:
            current["status"] = clone(status)

        return self.update(rt, obj, put, status=True)

    def delete(self, rt: ResourceType, obj: Obj) -> bool:
        """Delete this very object (uid precondition); False if it was already gone."""
        m = obj["metadata"]
        try:
            self.store.delete(
                rt, m.get("namespace", ""), m["name"], precondition_uid=m.get("uid")
            )
        except errors.ApiError as exc:
            if exc.code in (404, 409):
                return False
            raise
        return True


# ----- object helpers ----------------------------------------------------------------------


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def controller_uid(obj: Obj) -> str | None:
    ref = controller_ref(obj)
    return ref.get("uid") if ref else None


def owner_reference(owner: Obj) -> Obj:
    """The controller reference a Kubernetes controller puts on what it creates."""
    m = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return c
    return None


def pod_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return bool(c and c.get("status") == "True") and (pod.get("status") or {}).get(
        "phase"
    ) == "Running"


def merge_condition(old: Obj | None, new: Obj, now: str, *, update_time: bool = False) -> Obj:
    """A condition whose timestamps move only when its status (or reason) changes.

    Keeping them stable makes a recomputed status equal to the stored one, so a
    reconcile that changes nothing writes nothing and wakes no watcher.
    """
    out = dict(new)
    same = old is not None and old.get("status") == new.get("status")
    out["lastTransitionTime"] = old.get("lastTransitionTime", now) if same and old else now
    if update_time:
        unchanged = same and old is not None and old.get("reason") == new.get("reason")
        out["lastUpdateTime"] = old.get("lastUpdateTime", now) if unchanged and old else now
    return out


def template_hash(template: Any) -> str:
    """A 10-character hash of a pod template, spelt like `pod-template-hash`.

    Kubernetes hashes the template with FNV and encodes the decimal digits with
    rand.SafeEncodeString; we do the same with 64-bit FNV-1a over canonical JSON,
    keeping ten digits so every name has the same, familiar length.
    """
    h = 0xCBF29CE484222325
    text = json.dumps(_pruned(template), sort_keys=True, separators=(",", ":"))
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    digits = f"{h % 10**10:010d}"
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in digits)


def _pruned(value: Any) -> Any:
    """Without empty maps, lists and nulls: Go's omitempty makes `{}` and absent the same."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: `25%` of total, or a plain int."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total
        return -(-scaled // 100) if round_up else scaled // 100
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
