"""The sandbox cluster's state: objects, resourceVersions, history and watchers.

One lock serialises writes, which gives the same linearisable view etcd gives the real
apiserver: every write bumps one global resourceVersion, is appended to a bounded event
history (watch resume reads it; an older resourceVersion gets 410 Gone), and is handed
to every matching watcher before the lock is released, so no watcher misses an event.
Stored dicts are never mutated after a write.
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
from .store_watch import Event, Watcher, WatchHub

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped
Validator = Callable[[ResourceType, dict[str, Any], dict[str, Any] | None], None]
__all__ = ["Event", "Key", "Store", "Validator", "Watcher"]


class Store(WatchHub):
    """In-memory object storage with Kubernetes semantics for versions and watches."""

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

        Orphan and Foreground go through the garbage collector's finalizers as upstream:
        the object is first marked (deletionTimestamp + `orphan`/`foregroundDeletion`,
        which is what DELETE answers), the GC's work is done, then the finalizer removed.
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
            policy = propagation or "Background"
            if rt.kind == "Namespace":
                return self._delete_namespace(rt, old)
            uid = om.get("uid", "")
            if policy in ("Orphan", "Foreground") and not om.get("deletionTimestamp"):
                gc_finalizer = "orphan" if policy == "Orphan" else "foregroundDeletion"
                marked = clone(old)
                mm = marked["metadata"]
                mm["deletionTimestamp"] = rfc3339(self.clock())
                mm["deletionGracePeriodSeconds"] = 0
                mm["finalizers"] = [*(om.get("finalizers") or []), gc_finalizer]
                mm["resourceVersion"] = str(self._next_rv())
                self._commit(rt, (namespace, name), marked, old, "MODIFIED")
                if policy == "Orphan":
                    self._orphan_dependents(uid)
                else:
                    self._delete_dependents(uid, "Foreground")
                self._drop_finalizer(rt, (namespace, name), gc_finalizer)
                return marked, False
            if om.get("finalizers"):
                if om.get("deletionTimestamp"):
                    return old, False
                marked = clone(old)
                marked["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                marked["metadata"]["resourceVersion"] = str(self._next_rv())
                self._commit(rt, (namespace, name), marked, old, "MODIFIED")
                if policy == "Background":
                    self._delete_dependents(uid, "Background")
                return marked, False
            gone = clone(old)
            gone["metadata"]["resourceVersion"] = str(self._next_rv())
            self._remove(rt, (namespace, name), gone)
            if policy == "Background":
                self._delete_dependents(uid, "Background")
            return gone, True

    def _drop_finalizer(self, rt: ResourceType, key: Key, finalizer: str) -> None:
        """The GC's last step: remove its finalizer; the object goes when none is left."""
        current = self._objects.get(rt.key, {}).get(key)
        if current is None or finalizer not in (current["metadata"].get("finalizers") or []):
            return
        new = clone(current)
        rest = [f for f in new["metadata"]["finalizers"] if f != finalizer]
        if rest:
            new["metadata"]["finalizers"] = rest
        else:
            del new["metadata"]["finalizers"]
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        if rest:
            self._commit(rt, key, new, current, "MODIFIED")
        else:
            self._remove(rt, key, new)

    def _delete_namespace(
        self, rt: ResourceType, old: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        name = old["metadata"]["name"]
        if not old["metadata"].get("deletionTimestamp"):
            marked = clone(old)
            marked["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
            marked["status"] = {"phase": "Terminating"}
            marked["metadata"]["resourceVersion"] = str(self._next_rv())
            self._commit(rt, ("", name), marked, old, "MODIFIED")
            old = marked
        for rt_key, bucket in list(self._objects.items()):
            content_rt = self._rt_for_key(rt_key)
            if content_rt is None or not content_rt.namespaced:
                continue
            for key in [k for k in bucket if k[0] == name]:
                if key in bucket:
                    self.delete(content_rt, key[0], key[1])
        return self._finish_namespace(name) or (old, False)

    def _finish_namespace(self, namespace: str) -> tuple[dict[str, Any], bool] | None:
        ns_rt = self.registry.lookup("", "v1", "namespaces")
        assert ns_rt is not None
        ns = self.try_get(ns_rt, "", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if any(
            k[0] == namespace
            for rt_key, bucket in self._objects.items()
            for k in bucket
            if rt_key != ns_rt.key
        ):
            return None
        gone = clone(ns)
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        self._remove(ns_rt, ("", namespace), gone)
        return gone, True

    def _rt_for_key(self, rt_key: tuple[str, str]) -> ResourceType | None:
        for rt in self.registry.all():
            if rt.key == rt_key:
                return rt
        return None

    def _orphan_dependents(self, uid: str, only: tuple[tuple[str, str], Key] | None = None) -> None:
        for rt_key, key in list(self._dependents.get(uid, ())):
            if only is not None and (rt_key, key) != only:
                continue
            rt = self._rt_for_key(rt_key)
            obj = self._objects.get(rt_key, {}).get(key)
            if rt is None or obj is None:
                continue
            new = clone(obj)
            refs = [r for r in new["metadata"].get("ownerReferences", []) if r.get("uid") != uid]
            new["metadata"]["ownerReferences"] = refs
            if not refs:
                del new["metadata"]["ownerReferences"]
            new["metadata"]["resourceVersion"] = str(self._next_rv())
            self._commit(rt, key, new, obj, "MODIFIED")

    def _delete_dependents(self, uid: str, policy: str) -> None:
        """Garbage-collect dependents whose every owner is gone (the GC controller's job).

        A dependent that still has a living owner stays, minus its reference to the
        deleted owner (the GC patches dangling references away).
        """
        for rt_key, key in list(self._dependents.get(uid, ())):
            rt = self._rt_for_key(rt_key)
            obj = self._objects.get(rt_key, {}).get(key)
            if rt is None or obj is None:
                continue
            owners = [r.get("uid") for r in obj["metadata"].get("ownerReferences", [])]
            if any(o != uid and self._uid_exists(o) for o in owners):
                self._orphan_dependents(uid, only=(rt_key, key))
                continue
            if policy == "Foreground" and not self._dependents.get(obj["metadata"].get("uid", "")):
                # The GC deletes a dependent that has no dependents of its own plainly
                # (attemptToDeleteItem's default branch), not in the foreground.
                self.delete(rt, key[0], key[1], propagation="Background")
                continue
            self.delete(rt, key[0], key[1], propagation=policy)

    def _uid_exists(self, uid: str | None) -> bool:
        return bool(uid) and any(
            (o.get("metadata") or {}).get("uid") == uid
            for bucket in self._objects.values()
            for o in bucket.values()
        )

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

    def _index_owners(
        self,
        rt: ResourceType,
        key: Key,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                deps = self._dependents.setdefault(ref.get("uid", ""), set())
                if add:
                    deps.add((rt.key, key))
                else:
                    deps.discard((rt.key, key))

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
