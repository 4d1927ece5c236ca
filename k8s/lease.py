"""Leader election on a `coordination.k8s.io/v1` Lease, one API call at a time.

With two or more replicas only one may reconcile, announce and schedule (issue 7), and
that choice must survive any replica dying at any instant: so it lives in the cluster
(DESIGN.md principle 1), not in memory. The Lease `ragbot-leader` in the bot's namespace
names its holder and when the holder last renewed; a candidate takes it when it is
absent, released (empty holder) or expired (renewTime + leaseDurationSeconds < now).
Every write is a create (atomic: AlreadyExists means someone else won) or a PUT carrying
the resourceVersion that was read (Conflict means someone else wrote first), so two
candidates can never both win. Time comes from the caller, so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import labels as L
from . import resources as R
from .client import Cluster
from .errors import AlreadyExists, Conflict, NotFound

LEASE_NAME = "ragbot-leader"
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def micro_time(t: datetime) -> str:
    """Kubernetes MicroTime: `2025-01-01T00:00:00.000000Z` (UTC, microseconds)."""
    return t.astimezone(UTC).strftime(_MICRO)


def parse_micro_time(value: Any) -> datetime | None:
    """MicroTime or plain RFC 3339 time (another client may write either); None if unset."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaseView:
    """What the Lease says now: who holds it and until when."""

    holder: str
    renewed: datetime | None
    duration: int
    transitions: int
    resource_version: str

    def expired(self, now: datetime) -> bool:
        """No holder, or the holder has not renewed within the lease's duration."""
        if not self.holder or self.renewed is None:
            return True
        return self.renewed + timedelta(seconds=self.duration) < now


def _view(obj: dict[str, Any]) -> LeaseView:
    spec = obj.get("spec") or {}
    return LeaseView(
        holder=str(spec.get("holderIdentity") or ""),
        renewed=parse_micro_time(spec.get("renewTime")),
        duration=int(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
    )


def read_lease(cluster: Cluster, namespace: str, name: str = LEASE_NAME) -> LeaseView | None:
    obj = R.try_get(cluster, R.LEASE, namespace, name)
    return _view(obj) if obj is not None else None


def _body(namespace: str, name: str, spec: dict[str, Any], rv: str = "") -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name, "namespace": namespace,
        "labels": {L.LABEL_MANAGED_BY: L.MANAGED_BY_VALUE},
    }  # fmt: skip
    if rv:
        metadata["resourceVersion"] = rv
    return {"apiVersion": R.LEASE.api_version, "kind": R.LEASE.kind, "metadata": metadata, "spec": spec}


def try_acquire_or_renew(cluster: Cluster, namespace: str, identity: str, *, now: datetime,
                         lease_seconds: int, name: str = LEASE_NAME) -> bool:  # fmt: skip
    """One election round: True if `identity` holds the Lease after it, else False.

    Renews when we hold it; takes it when absent, released or expired; otherwise (or when
    another candidate's write landed first) leaves it alone. Cluster errors propagate: the
    caller decides how long it may go without a successful renewal.
    """
    stamp = micro_time(now)
    obj = R.try_get(cluster, R.LEASE, namespace, name)
    if obj is None:
        spec = {"holderIdentity": identity, "leaseDurationSeconds": lease_seconds,
                "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}  # fmt: skip
        try:
            R.create(cluster, R.LEASE, namespace, _body(namespace, name, spec))
        except AlreadyExists:
            return False
        return True
    view = _view(obj)
    spec = dict(obj.get("spec") or {})
    if view.holder == identity:
        spec.update(renewTime=stamp, leaseDurationSeconds=lease_seconds)
    elif view.expired(now):
        spec.update(holderIdentity=identity, leaseDurationSeconds=lease_seconds,
                    acquireTime=stamp, renewTime=stamp,
                    leaseTransitions=view.transitions + 1)  # fmt: skip
    else:
        return False
    try:
        R.replace(cluster, R.LEASE, namespace, name,
                  _body(namespace, name, spec, view.resource_version))  # fmt: skip
    except (Conflict, NotFound):
        return False
    return True


def release(cluster: Cluster, namespace: str, identity: str, *, now: datetime,
            name: str = LEASE_NAME) -> bool:  # fmt: skip
    """Give the Lease up (clear the holder) so a successor need not wait for expiry.

    Only when we still hold it; a Conflict means someone else has written it since, and
    then it is theirs. Returns whether we released it.
    """
    obj = R.try_get(cluster, R.LEASE, namespace, name)
    if obj is None or _view(obj).holder != identity:
        return False
    spec = dict(obj.get("spec") or {})
    spec.update(holderIdentity="", renewTime=micro_time(now))
    try:
        R.replace(cluster, R.LEASE, namespace, name,
                  _body(namespace, name, spec, _view(obj).resource_version))  # fmt: skip
    except (Conflict, NotFound):
        return False
    return True


__all__ = ["LEASE_NAME", "LeaseView", "micro_time", "parse_micro_time", "read_lease",
           "release", "try_acquire_or_renew"]  # fmt: skip
