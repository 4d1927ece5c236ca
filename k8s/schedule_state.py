"""The schedule's state as a ConfigMap: paused or not, the last slot handled, its result.

Principle 1 of DESIGN.md: a leader can die at any instant and its successor (or a
restarted process) must know whether the schedule is paused, which slot was handled last
(so missed slots are counted from there) and which misses were already reported (so they
are reported once). All of it sits in `ragbot-schedule` in the bot's namespace and every
change is a read-modify-write carrying the resourceVersion, retried on Conflict, so two
replicas (a `/ragbackup schedule pause` on one, a slot on the leader) never undo each
other. `since` is when the state was first written: slots before it are not "missed".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from config.models import Config

from . import labels as L
from . import resources as R
from .backup_views import format_time, parse_time
from .client import Cluster
from .errors import AlreadyExists, ClusterError, Conflict

STATE_NAME = "ragbot-schedule"
STATE_KIND = "schedule-state"
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class ScheduleState:
    """Everything the scheduler must remember across leaders and restarts."""

    since: datetime | None = None
    paused: bool = False
    paused_by: str = ""
    paused_at: datetime | None = None
    last_slot: datetime | None = None  # the newest slot handled (run, found, or skipped)
    last_backup: str = ""  # the newest Backup a slot created
    last_phase: str = ""
    last_time: datetime | None = None
    last_skip: str = ""  # "<slot> <reason>" of the newest skipped slot
    reported_until: datetime | None = None  # missed slots up to here were announced
    resource_version: str = ""


_TIMES = ("since", "paused_at", "last_slot", "last_time", "reported_until")


def _from_configmap(obj: dict[str, Any]) -> ScheduleState:
    data = obj.get("data") or {}
    kw: dict[str, Any] = {k: parse_time(data.get(k)) for k in _TIMES}
    kw.update(paused=data.get("paused") == "true", paused_by=data.get("paused_by", ""),
              last_backup=data.get("last_backup", ""), last_phase=data.get("last_phase", ""),
              last_skip=data.get("last_skip", ""),
              resource_version=str((obj.get("metadata") or {}).get("resourceVersion", "")))  # fmt: skip
    return ScheduleState(**kw)


def _to_configmap(cfg: Config, state: ScheduleState) -> dict[str, Any]:
    data: dict[str, str] = {}
    for key, value in asdict(state).items():
        if key == "resource_version":
            continue
        if key in _TIMES:
            data[key] = format_time(value) if value else ""
        elif isinstance(value, bool):
            data[key] = "true" if value else "false"
        else:
            data[key] = str(value)
    metadata: dict[str, Any] = {
        "name": STATE_NAME, "namespace": cfg.ragbot.namespace,
        "labels": {L.LABEL_RECORD_KIND: STATE_KIND, L.LABEL_MANAGED_BY: L.MANAGED_BY_VALUE},
    }  # fmt: skip
    if state.resource_version:
        metadata["resourceVersion"] = state.resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def read_state(cluster: Cluster, cfg: Config) -> ScheduleState | None:
    """The stored state, or None before anything was ever written."""
    obj = R.try_get(cluster, R.CONFIGMAP, cfg.ragbot.namespace, STATE_NAME)
    return _from_configmap(obj) if obj is not None else None


def update_state(cluster: Cluster, cfg: Config, change: Callable[[ScheduleState], ScheduleState | None],
                 *, now: datetime | None = None) -> tuple[ScheduleState, bool]:  # fmt: skip
    """Read, apply `change`, write with the read resourceVersion; again on Conflict.

    `change` returns the new state, or None for "nothing to write" (so a caller can make
    a decision, e.g. "announce these misses", that only one writer wins). Returns the
    state now stored and whether this call wrote it.
    """
    ns = cfg.ragbot.namespace
    for _ in range(MAX_ATTEMPTS):
        current = read_state(cluster, cfg)
        base = current or ScheduleState(since=now or datetime.now(UTC))
        new = change(base)
        if new is None:
            if current is None:
                new = base  # first use: write the baseline so `since` is fixed
            else:
                return current, False
        try:
            if current is None:
                obj = R.create(cluster, R.CONFIGMAP, ns, _to_configmap(cfg, replace(new, resource_version="")))
            else:
                body = _to_configmap(cfg, replace(new, resource_version=current.resource_version))
                obj = R.replace(cluster, R.CONFIGMAP, ns, STATE_NAME, body)
        except (AlreadyExists, Conflict):
            continue
        return _from_configmap(obj), True
    raise ClusterError(f"could not update ConfigMap {ns}/{STATE_NAME}: it kept changing under us")


def ensure_state(cluster: Cluster, cfg: Config, *, now: datetime) -> ScheduleState:
    """The state, created with `since=now` when there is none yet."""
    state = read_state(cluster, cfg)
    if state is not None:
        return state
    return update_state(cluster, cfg, lambda s: None, now=now)[0]


def set_paused(cluster: Cluster, cfg: Config, paused: bool, *, by: str, now: datetime) -> tuple[ScheduleState, bool]:
    """Pause or resume; returns the state and whether it changed (a second pause does not)."""
    def change(s: ScheduleState) -> ScheduleState | None:
        if s.paused == paused:
            return None
        return replace(s, paused=paused, paused_by=by if paused else "", paused_at=now if paused else None)

    state, wrote = update_state(cluster, cfg, change, now=now)
    return state, wrote and state.paused == paused


__all__ = ["STATE_NAME", "ScheduleState", "ensure_state", "read_state", "set_paused", "update_state"]
