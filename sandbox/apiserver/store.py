"""The sandbox cluster's state: objects, resourceVersions, history and watchers.

One lock serialises writes, which gives the same linearisable view etcd gives the real
apiserver: every write bumps one global resourceVersion, is appended to a bounded event
history (watch resume reads it; an older resourceVersion gets 410 Gone), and is handed
to every matching watcher before the lock is released, so no watcher misses an event.
Stored dicts are never mutated after a write.

Store is composed of mixins: watches live in store_watch.py (WatchHub), deletion
propagation, GC finalizers, the owner index and namespace teardown in store_gc.py
(GarbageCollector). This module keeps reads, create/update/patch and the commit path.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from config.selectors import LabelSelector

from . import errors
from .fields import FieldSelector
from .objects import clone, generate_name, meta, rfc3339
from .resources import Registry, ResourceType
from .store_gc import GarbageCollector, Key
from .store_watch import Event, Watcher, WatchHub

Validator = Callable[[ResourceType, dict[str, Any], dict[str, Any] | None], None]
__all__ = ["Event", "Key", "Store", "Validator", "Watcher"]


class Store(WatchHub, GarbageCollector):
    """In-memory object storage with Kubernetes semantics for versions, watches and GC."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        history_size: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry or Registry()
        self.lock = threading.RLock()
        self.clock = clock
        self._rv = 1
        self._objects: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
        self._history: deque[Event] = deque(maxlen=history_size)
        self._compacted_rv = 0  # watches from below this get 410
        self._watchers: set[Watcher] = set()
        self._dependents: dict[str, set[tuple[tuple[str, str], Key]]] = {}
        self.validators: list[Validator] = []

    # ----- reads -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.get(rt.key, {}).get((namespace if rt.namespaced else "", name))
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def try_get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(rt.key, {}).get((namespace if rt.namespaced else "", name))

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        *,
        start_after: Key | None = None,
        limit: int = 0,
    ) -> tuple[list[dict[str, Any]], int, Key | None, int]:
        """Matching objects sorted by (namespace, name) like etcd keys.

        Returns (items, resourceVersion, last key if more remain, remaining count).
        """
        labels = labels or LabelSelector()
        fields = fields or FieldSelector()
        with self.lock:
            rv = self._rv
            bucket = self._objects.get(rt.key, {})
            keys = sorted(bucket)
            items: list[dict[str, Any]] = []
            last: Key | None = None
            remaining = 0
            for key in keys:
                if namespace and key[0] != namespace:
                    continue
                if start_after is not None and key <= start_after:
                    continue
                obj = bucket[key]
                if not labels.matches((obj.get("metadata") or {}).get("labels")):
                    continue
                if not fields.matches(obj):
                    continue
                if limit and len(items) >= limit:
                    remaining += 1
                    continue
                items.append(obj)
                last = key
            more = last if remaining else None
            return items, rv, more, remaining

    def namespaces_in_use(self) -> set[str]:
        with self.lock:
            return {k[0] for bucket in self._objects.values() for k in bucket if k[0]}

    # ----- writes ------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _validate(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for v in self.validators:
            v(rt, obj, old)

    def _check_namespace(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns_rt = self.registry.lookup("", "v1", "namespaces")
        assert ns_rt is not None
        ns = self.try_get(ns_rt, "", namespace)
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.forbidden(
                f"{rt.plural} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                rt,
                "",
            )

    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        defaults: Callable[[ResourceType, dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        obj = clone(body)
        m = meta(obj)
        namespace = namespace if rt.namespaced else ""
        with self.lock:
            if rt.namespaced:
                if m.get("namespace") and m["namespace"] != namespace:
                    raise errors.bad_request(
                        "the namespace of the provided object does not match the namespace "
                        "sent on the request"
                    )
                m["namespace"] = namespace
            else:
                m.pop("namespace", None)
            if not m.get("name") and m.get("generateName"):
                m["name"] = generate_name(m["generateName"])
            name = m.get("name") or ""
            obj["apiVersion"] = rt.api_version
            obj["kind"] = rt.kind
            for drop in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                m.pop(drop, None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = rfc3339(self.clock())
            if rt.has_status or rt.is_crd:
                m["generation"] = 1
            if rt.has_status:
                obj.pop("status", None)
            if defaults:
                defaults(rt, obj)
            self._validate(rt, obj, None)
            self._check_namespace(rt, namespace)
            bucket = self._objects.setdefault(rt.key, {})
            if (namespace, name) in bucket:
                raise errors.already_exists(rt, name)
            if dry_run:
                return obj
            meta(obj)["resourceVersion"] = str(self._next_rv())
            self._commit(rt, (namespace, name), obj, None, "ADDED")
            return obj

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        namespace = namespace if rt.namespaced else ""
        with self.lock:
            old = self.get(rt, namespace, name)
            new = clone(body)
            m = meta(new)
            if m.get("name") not in (None, name):
                raise errors.bad_request(
                    f"the name of the object ({m.get('name')}) does not match the name on the "
                    f"URL ({name})"
                )
            rv = m.get("resourceVersion") or ""
            if rv == "" and not rt.unconditional_update:
                raise errors.invalid(
                    rt,
                    name,
                    [
                        (
                            "FieldValueInvalid",
                            "metadata.resourceVersion",
                            "Invalid value: 0: must be specified for an update",
                        )
                    ],
                    use_resource=True,
                )
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name)
            return self._replace(rt, (namespace, name), old, new, subresource, dry_run)

    def _replace(
        self,
        rt: ResourceType,
        key: Key,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Merge what the client may change into a fresh copy of old, then commit."""
        om = old["metadata"]
        if subresource == "status":
            merged = clone(old)
            merged["status"] = clone(new.get("status"))
            if merged["status"] is None:
                merged.pop("status")
        else:
            merged = new
            merged["apiVersion"] = rt.api_version
            merged["kind"] = rt.kind
            m = meta(merged)
            for immutable in ("uid", "creationTimestamp", "namespace", "name", "generation"):
                if immutable in om:
                    m[immutable] = om[immutable]
                else:
                    m.pop(immutable, None)
            if "deletionTimestamp" in om:
                m["deletionTimestamp"] = om["deletionTimestamp"]
                m["deletionGracePeriodSeconds"] = om.get("deletionGracePeriodSeconds", 0)
            else:
                m.pop("deletionTimestamp", None)
                m.pop("deletionGracePeriodSeconds", None)
            if rt.has_status:
                if "status" in old:
                    merged["status"] = old["status"]
                else:
                    merged.pop("status", None)
            if "generation" in om and _spec_changed(rt, old, merged):
                m["generation"] = om["generation"] + 1
        self._validate(rt, merged, old)
        if _same_content(old, merged):
            return old  # a no-op write keeps its resourceVersion, as the apiserver does
        if dry_run:
            return merged
        meta(merged)["resourceVersion"] = str(self._next_rv())
        mm = merged["metadata"]
        if mm.get("deletionTimestamp") and not mm.get("finalizers"):
            self._remove(rt, key, merged)
            return merged
        self._commit(rt, key, merged, old, "MODIFIED")
        return merged

    def apply_update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Read-modify-write under the lock (PATCH): mutate gets a copy of the current object.

        A resourceVersion the mutation leaves in place is a precondition, as in a PATCH body.
        """
        namespace = namespace if rt.namespaced else ""
        with self.lock:
            old = self.get(rt, namespace, name)
            new = mutate(clone(old))
            rv = (new.get("metadata") or {}).get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name)
            return self._replace(rt, (namespace, name), old, new, subresource, dry_run)

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete (or mark for deletion). Returns (object, gone_now).

        Preconditions and dry-run are checked here; propagation (Orphan and Foreground go
        through the garbage collector's finalizers as upstream) is store_gc.py's.
        """
        namespace = namespace if rt.namespaced else ""
        with self.lock:
            old = self.get(rt, namespace, name)
            om = old["metadata"]
            if precondition_uid and precondition_uid != om.get("uid"):
                raise errors.precondition_failed(
                    rt,
                    name,
                    f"the UID in the precondition ({precondition_uid}) does not match the UID "
                    f"in record ({om.get('uid')}). The object might have been deleted and then "
                    "recreated",
                )
            if precondition_rv and precondition_rv != om.get("resourceVersion"):
                raise errors.precondition_failed(
                    rt,
                    name,
                    f"the ResourceVersion in the precondition ({precondition_rv}) does not match "
                    f"the ResourceVersion in record ({om.get('resourceVersion')}). The object "
                    "might have been modified",
                )
            if dry_run:
                return old, not om.get("finalizers")
            return self._delete_propagating(rt, (namespace, name), old, propagation or "Background")

    def _remove(self, rt: ResourceType, key: Key, last: dict[str, Any]) -> None:
        bucket = self._objects.get(rt.key, {})
        old = bucket.pop(key, None)
        self._index_owners(rt, key, old, None)
        self._emit(Event(int(last["metadata"]["resourceVersion"]), rt.key, "DELETED", last, old))
        if rt.kind == "CustomResourceDefinition":
            self.registry.remove_crd(last)
        if key[0]:
            self._finish_namespace(key[0])

    def _commit(
        self,
        rt: ResourceType,
        key: Key,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        kind: str,
    ) -> None:
        self._objects.setdefault(rt.key, {})[key] = obj
        self._index_owners(rt, key, old, obj)
        if rt.kind == "CustomResourceDefinition":
            self.registry.add_crd(obj)
        self._emit(Event(int(obj["metadata"]["resourceVersion"]), rt.key, kind, obj, old))

    # ----- snapshot ----------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self.lock:
            objs = [o for bucket in self._objects.values() for o in bucket.values()]
            return {"resourceVersion": self._rv, "objects": objs}

    def load(self, snapshot: dict[str, Any], types: Iterable[ResourceType] = ()) -> None:
        """Restore a dump: CRDs first so their types exist, then everything else."""
        with self.lock:
            objs = snapshot.get("objects") or []
            crds = [o for o in objs if o.get("kind") == "CustomResourceDefinition"]
            for crd in crds:
                self.registry.add_crd(crd)
            for obj in objs:
                rt = self.registry.by_kind(obj["apiVersion"], obj["kind"])
                if rt is None:
                    continue
                m = obj["metadata"]
                key = (m.get("namespace", "") if rt.namespaced else "", m["name"])
                self._objects.setdefault(rt.key, {})[key] = obj
                self._index_owners(rt, key, None, obj)
            self._rv = max(self._rv, int(snapshot.get("resourceVersion", 1)))
            self._compacted_rv = self._rv


def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    skip = {"metadata", "status"} if rt.has_status else {"metadata"}
    keys = (set(old) | set(new)) - skip - {"apiVersion", "kind"}
    return any(old.get(k) != new.get(k) for k in keys)


def _same_content(old: dict[str, Any], new: dict[str, Any]) -> bool:
    om = {k: v for k, v in old.get("metadata", {}).items() if k != "resourceVersion"}
    nm = {k: v for k, v in new.get("metadata", {}).items() if k != "resourceVersion"}
    if om != nm:
        return False
    keys = (set(old) | set(new)) - {"metadata"}
    return all(old.get(k) == new.get(k) for k in keys)
