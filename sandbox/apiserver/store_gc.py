"""Deletion over the sandbox store: propagation, GC finalizers, owner index, namespaces.

Split from store.py: the store checks a DELETE's preconditions, then hands the object
here. Upstream the garbage collector and the namespace controller do this work
asynchronously; the sandbox does it synchronously under the store's lock, so a DELETE's
cascade is complete (and every event emitted) before the lock is released. Orphan and
Foreground still go through the GC's `orphan`/`foregroundDeletion` finalizers, so
watchers see the same MODIFIED-then-DELETED sequence a real cluster produces. The
owner-reference index (`_index_owners`, kept current by every commit and removal)
lets a deletion find its dependents without scanning every object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .objects import clone, rfc3339
from .resources import Registry, ResourceType

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped


class GarbageCollector:
    """The deletion half of Store; it relies on Store's objects, RV and commit/remove."""

    registry: Registry
    clock: Callable[[], float]
    _objects: dict[tuple[str, str], dict[Key, dict[str, Any]]]
    _dependents: dict[str, set[tuple[tuple[str, str], Key]]]

    if TYPE_CHECKING:  # provided by Store; declared so the calls below type-check

        def try_get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None: ...

        def delete(
            self, rt: ResourceType, namespace: str, name: str, *, propagation: str | None = None
        ) -> tuple[dict[str, Any], bool]: ...

        def _next_rv(self) -> int: ...

        def _commit(
            self,
            rt: ResourceType,
            key: Key,
            obj: dict[str, Any],
            old: dict[str, Any] | None,
            kind: str,
        ) -> None: ...

        def _remove(self, rt: ResourceType, key: Key, last: dict[str, Any]) -> None: ...

    def _delete_propagating(
        self, rt: ResourceType, key: Key, old: dict[str, Any], policy: str
    ) -> tuple[dict[str, Any], bool]:
        """Delete (or mark) an object whose preconditions passed. Returns (object, gone_now).

        Orphan and Foreground mark the object (deletionTimestamp + their GC finalizer,
        which is what DELETE answers), do the GC's work, then drop the finalizer.
        """
        om = old["metadata"]
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
            self._commit(rt, key, marked, old, "MODIFIED")
            if policy == "Orphan":
                self._orphan_dependents(uid)
            else:
                self._delete_dependents(uid, "Foreground")
            self._drop_finalizer(rt, key, gc_finalizer)
            return marked, False
        if om.get("finalizers"):
            if om.get("deletionTimestamp"):
                return old, False
            marked = clone(old)
            marked["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["metadata"]["resourceVersion"] = str(self._next_rv())
            self._commit(rt, key, marked, old, "MODIFIED")
            if policy == "Background":
                self._delete_dependents(uid, "Background")
            return marked, False
        gone = clone(old)
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        self._remove(rt, key, gone)
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
