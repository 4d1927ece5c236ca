"""Which channel alerts are active (announced and not yet cleared), kept in the cluster.

An alert is posted once when it starts and once when it clears (issue 7); that has to
hold across restarts and leader changes, so "announced" cannot live in memory
(principle 1: the cluster is the database). One ConfigMap, `ragbot-alerts` in the bot's
namespace, holds one data key per active alert (`<kind>` or `<kind>.<subject>`) whose
value is a small JSON document (kind, subject, since, ...). Writes are read-modify-write
with the ConfigMap's resourceVersion, retried on Conflict, so two replicas that overlap
during a leader change never lose each other's entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import labels as L
from . import resources as R
from .client import Cluster
from .errors import AlreadyExists, Conflict, NotFound

ALERTS_CONFIGMAP = "ragbot-alerts"
RECORD_KIND = "alerts"
_KEY_BAD = re.compile(r"[^-._a-zA-Z0-9]")

Entry = dict[str, Any]


def alert_key(kind: str, subject: str = "") -> str:
    """A ConfigMap data key for an alert (only `[-._a-zA-Z0-9]`, at most 253 chars)."""
    raw = f"{kind}.{subject}" if subject else kind
    return _KEY_BAD.sub("_", raw)[:253]


@dataclass(frozen=True)
class AlertState:
    """The active alerts as last read, and the resourceVersion to write against."""

    active: dict[str, Entry] = field(default_factory=dict)
    resource_version: str = ""  # "" = the ConfigMap does not exist yet


def _parse(obj: dict[str, Any]) -> AlertState:
    active: dict[str, Entry] = {}
    for key, text in ((obj.get("data") or {}).items()):
        try:
            entry = json.loads(text)
        except (TypeError, ValueError):
            entry = {"kind": key.split(".", 1)[0]}  # hand-edited: keep it active, not crash
        active[key] = entry if isinstance(entry, dict) else {"kind": key.split(".", 1)[0]}
    return AlertState(active, str((obj.get("metadata") or {}).get("resourceVersion") or ""))


def read_alerts(cluster: Cluster, namespace: str) -> AlertState:
    obj = R.try_get(cluster, R.CONFIGMAP, namespace, ALERTS_CONFIGMAP)
    return _parse(obj) if obj is not None else AlertState()


def _body(namespace: str, active: dict[str, Entry], rv: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": ALERTS_CONFIGMAP,
        "namespace": namespace,
        "labels": {L.LABEL_MANAGED_BY: L.MANAGED_BY_VALUE, L.LABEL_RECORD_KIND: RECORD_KIND},
    }
    if rv:
        meta["resourceVersion"] = rv
    data = {k: json.dumps(v, sort_keys=True) for k, v in sorted(active.items())}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def update_alerts(cluster: Cluster, namespace: str,
                  change: Callable[[dict[str, Entry]], dict[str, Entry]], *,
                  attempts: int = 8) -> AlertState:  # fmt: skip
    """Apply `change` to the active alerts with optimistic concurrency; the state written.

    `change` gets a copy of the current entries and returns the new ones; it may run more
    than once (after a Conflict it sees the other writer's result), so it must be pure.
    """
    last: Exception | None = None
    for _ in range(attempts):
        state = read_alerts(cluster, namespace)
        wanted = change(dict(state.active))
        if wanted == state.active and state.resource_version:
            return state
        body = _body(namespace, wanted, state.resource_version)
        try:
            if state.resource_version:
                obj = R.replace(cluster, R.CONFIGMAP, namespace, ALERTS_CONFIGMAP, body)
            else:
                obj = R.create(cluster, R.CONFIGMAP, namespace, body)
        except (Conflict, AlreadyExists, NotFound) as err:  # someone wrote (or deleted) first
            last = err
            continue
        return _parse(obj)
    raise Conflict(f"could not update ConfigMap {namespace}/{ALERTS_CONFIGMAP} after "
                   f"{attempts} attempts: {last}")  # fmt: skip


__all__ = ["ALERTS_CONFIGMAP", "AlertState", "Entry", "alert_key", "read_alerts", "update_alerts"]
