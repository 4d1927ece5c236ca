"""How the simulated Velero controllers read and write their objects in the Store.

Velero's controllers use a controller-runtime client scoped to the Velero namespace and
write status by patching the main resource (its CRDs have no status subresource). The
controller modules here do the same through this small client, which turns the Store's
API errors into "gone" (None) the way a reconcile that finds its object deleted ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from config.selectors import LabelSelector, Requirement

from .apiserver import errors as api_errors
from .apiserver.discovery import SERVER_VERSION
from .apiserver.resources import ResourceType
from .apiserver.store import Store
from .velero_common import GROUP, Obj

log = logging.getLogger("sandbox.velero")


class VeleroClient:
    """The Velero namespace of a Store, as Velero's controllers see it."""

    def __init__(self, store: Store, namespace: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.namespace = namespace
        self.clock = clock

    def rt(self, plural: str) -> ResourceType:
        rt = self.store.registry.lookup(GROUP, "v1", plural)
        if rt is None:
            raise LookupError(f"the {plural}.{GROUP} CRD is not installed")
        return rt

    def get(self, rt: ResourceType, name: str) -> Obj | None:
        return self.store.try_get(rt, self.namespace, name) if name else None

    def list(self, rt: ResourceType, labels: Mapping[str, str] | None = None) -> list[Obj]:
        selector = None
        if labels:
            selector = LabelSelector(tuple(Requirement(k, "=", (v,)) for k, v in labels.items()))
        return list(self.store.list(rt, self.namespace, selector)[0])

    def patch(self, rt: ResourceType, name: str, mutate: Callable[[Obj], Any]) -> Obj | None:
        """Read-modify-write of the main resource (Velero's CRDs have no status subresource).
        Returns the stored object, or None if it is gone or the write was refused."""

        def fn(cur: Obj) -> Obj:
            mutate(cur)
            return cur

        try:
            return self.store.apply_update(rt, self.namespace, name, fn)
        except api_errors.ApiError as err:
            if err.code != 404:
                log.warning("velero: update of %s/%s refused: %s", rt.plural, name, err)
            return None

    def create(self, rt: ResourceType, body: Obj) -> Obj | None:
        try:
            return self.store.create(rt, self.namespace, body)
        except api_errors.ApiError as err:
            log.warning("velero: create of %s refused: %s", rt.plural, err)
            return None

    def delete(self, rt: ResourceType, name: str) -> Obj | None:
        try:
            return self.store.delete(rt, self.namespace, name)[0]
        except api_errors.ApiError:
            return None

    def bsl(self, name: str) -> Obj | None:
        return self.get(self.rt("backupstoragelocations"), name) if name else None

    def server_version(self) -> dict[str, str]:
        return dict(SERVER_VERSION)
