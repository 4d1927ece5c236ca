"""The durable restore record: one ConfigMap per restore in the bot's namespace.

A restore takes Enterprise RAG apart before Velero puts it back, so a process that
dies halfway must leave behind exactly how far it got (DESIGN.md principle 1: the
cluster is the database). Each restore is one ConfigMap, `restore-<timestamp>`,
labelled `ragbot.io/record=restore` and `ragbot.io/state=<state>`; its `record.json`
holds who asked and why, the approval, the whole plan, each step's status and times,
the Velero Restore's name, the error and a history of events. Every write is a PUT
carrying the resourceVersion that was read: on Conflict the record is read again and
the change decided again (`update`), so a double approval or two processes finishing
the same step never both win. The lock that keeps restores apart is in
k8s.restore_lock.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config.models import Config

from . import labels as L
from .client import Cluster
from .errors import AlreadyExists, ClusterError, Conflict, NotFound
from .resources import CONFIGMAP, create, get, list_all, replace
from .restore_plan import RestorePlan, plan_from_dict, plan_to_dict

RECORD_KIND = "restore"
LABEL_STATE = L.PREFIX + "state"
DATA_KEY = "record.json"
FORMAT_VERSION = 1

PENDING, APPROVED, REJECTED, EXPIRED = "pending-approval", "approved", "rejected", "expired"
CANCELLED, RUNNING, SUCCEEDED, FAILED = "cancelled", "running", "succeeded", "failed"
STATES = (PENDING, APPROVED, REJECTED, EXPIRED, CANCELLED, RUNNING, SUCCEEDED, FAILED)
TERMINAL = frozenset({REJECTED, EXPIRED, CANCELLED, SUCCEEDED, FAILED})
#: Allowed moves. failed -> running only through an explicit retry (`resume --retry`).
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, EXPIRED, CANCELLED}),
    APPROVED: frozenset({RUNNING, CANCELLED, FAILED}),
    RUNNING: frozenset({SUCCEEDED, FAILED}),
    FAILED: frozenset({RUNNING}),
}
STEP_PENDING, STEP_RUNNING, STEP_DONE, STEP_FAILED = "pending", "running", "done", "failed"


class StateConflict(ClusterError):
    """The record is not in a state that allows this (e.g. a second approval)."""

    def __init__(self, message: str, *, state: str = "") -> None:
        super().__init__(message)
        self.state = state


class RecordNotFound(ClusterError):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class RestoreRecord:
    """A record as read: its ConfigMap identity plus the decoded `record.json`."""

    id: str
    namespace: str
    resource_version: str
    data: Mapping[str, Any]
    annotations: Mapping[str, str]
    uid: str = ""

    @property
    def state(self) -> str:
        return str(self.data.get("state", ""))

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.data.get("steps") or [])

    @property
    def plan(self) -> RestorePlan:
        return plan_from_dict(self.data["plan"])

    @property
    def backup(self) -> str:
        return str(self.data.get("backup", ""))

    @property
    def velero_restore(self) -> str:
        return str(self.data.get("velero_restore", ""))

    def step(self, key: str) -> dict[str, Any]:
        for s in self.steps:
            if s["key"] == key:
                return s
        raise KeyError(key)

    def progress(self) -> tuple[int, int]:
        """(steps done, steps in all)."""
        return sum(1 for s in self.steps if s["status"] == STEP_DONE), len(self.steps)


def _from_configmap(obj: Mapping[str, Any]) -> RestoreRecord:
    meta = obj.get("metadata") or {}
    try:
        data = json.loads((obj.get("data") or {}).get(DATA_KEY) or "{}")
    except ValueError as exc:
        raise ClusterError(f"restore record {meta.get('name')} is not readable JSON: {exc}") from None
    return RestoreRecord(
        id=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")),
        resource_version=str(meta.get("resourceVersion", "")), data=data,
        annotations=dict(meta.get("annotations") or {}), uid=str(meta.get("uid", "")),
    )  # fmt: skip


def _record_labels(data: Mapping[str, Any]) -> dict[str, str]:
    return {
        L.LABEL_RECORD_KIND: RECORD_KIND,
        L.LABEL_MANAGED_BY: L.MANAGED_BY_VALUE,
        LABEL_STATE: str(data["state"]),
        L.LABEL_TRIGGER: str(data.get("trigger", "cli")),
    }


def _body(record_id: str, namespace: str, data: Mapping[str, Any], annotations: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": record_id, "namespace": namespace, "labels": _record_labels(data),
            "annotations": dict(annotations),
        },
        "data": {DATA_KEY: json.dumps(data, indent=1, sort_keys=False)},
    }  # fmt: skip


def new_record_data(
    plan: RestorePlan, *, requester: str, reason: str, trigger: str, state: str,
    approver: str = "", created: datetime, approval_timeout: timedelta | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The initial `record.json` for a plan (pure)."""
    pvcs = next((len(s.objects) for s in plan.steps if s.action == "pvc-delete"), 0)
    data: dict[str, Any] = {
        "format": FORMAT_VERSION, "backup": plan.backup, "requester": requester,
        "reason": reason, "trigger": trigger, "created": stamp(created),
        "updated": stamp(created), "state": state, "approver": approver,
        "expires": stamp(created + approval_timeout) if approval_timeout else "",
        "started": "", "finished": "", "velero_restore": "", "velero": {},
        "error": "", "failed_step": "", "application_state": "",
        "summary": {
            "offline": list(plan.offline), "steps": len(plan.steps), "pvcs": pvcs,
            "releases": [s.name for s in plan.steps if s.action == "helm-uninstall"],
            "warnings": list(plan.warnings),
        },
        "plan": plan_to_dict(plan),
        "steps": [
            {"key": s.key, "action": s.action, "title": s.title, "status": STEP_PENDING,
             "detail": "", "started": "", "finished": "", "runs": 0}
            for s in plan.steps
        ],
        "history": [{"time": stamp(created), "event": f"created ({state})"}],
    }  # fmt: skip
    if approver:
        data["history"].append({"time": stamp(created), "event": f"approved by {approver}"})
    return data


def create_record(
    cluster: Cluster, cfg: Config, plan: RestorePlan, *, requester: str, reason: str = "",
    trigger: str = "cli", state: str = PENDING, approver: str = "",
    annotations: Mapping[str, str] | None = None, now: Callable[[], datetime] = utcnow,
) -> RestoreRecord:  # fmt: skip
    """Write a new record `restore-<timestamp>` (a suffix is added if that name is taken)."""
    if state not in (PENDING, APPROVED):
        raise ValueError(f"a new record starts pending-approval or approved, not {state}")
    created = now()
    data = new_record_data(
        plan, requester=requester, reason=reason, trigger=trigger, state=state,
        approver=approver, created=created,
        approval_timeout=cfg.ragbot.restore.approval_timeout if state == PENDING else None,
    )  # fmt: skip
    annos = {L.ANNO_REQUESTER: requester, **(annotations or {})}
    base = f"restore-{created.astimezone(UTC).strftime('%Y%m%dT%H%M%S').lower()}"
    ns = cfg.ragbot.namespace
    for attempt in range(1, 100):
        name = base if attempt == 1 else f"{base}-{attempt}"
        try:
            return _from_configmap(create(cluster, CONFIGMAP, ns, _body(name, ns, data, annos)))
        except AlreadyExists:
            continue
    raise ClusterError(f"could not find a free record name after {base}-99")


def get_record(cluster: Cluster, cfg: Config, record_id: str) -> RestoreRecord:
    """The record named `record_id` (or the one that created Velero Restore `record_id`)."""
    ns = cfg.ragbot.namespace
    try:
        obj = get(cluster, CONFIGMAP, ns, record_id)
    except NotFound:
        for rec in list_records(cluster, cfg):
            if rec.velero_restore == record_id:
                return rec
        raise RecordNotFound(
            f"no restore record {record_id} in namespace {ns} (see `ragbot restore list`)"
        ) from None
    if ((obj.get("metadata") or {}).get("labels") or {}).get(L.LABEL_RECORD_KIND) != RECORD_KIND:
        raise RecordNotFound(f"{ns}/{record_id} is not a ragbot restore record")
    return _from_configmap(obj)


def list_records(
    cluster: Cluster, cfg: Config, *, states: Iterable[str] | None = None
) -> list[RestoreRecord]:
    """Every restore record, newest first; `states` keeps only those states."""
    selector = f"{L.LABEL_RECORD_KIND}={RECORD_KIND}"
    wanted = list(states or ())
    if wanted:
        selector += f",{LABEL_STATE} in ({','.join(wanted)})"
    items, _ = list_all(cluster, CONFIGMAP, cfg.ragbot.namespace, label_selector=selector)
    records = [_from_configmap(o) for o in items]
    return sorted(records, key=lambda r: (str(r.data.get("created", "")), r.id), reverse=True)


def update(
    cluster: Cluster,
    record: RestoreRecord,
    mutate: Callable[[dict[str, Any], dict[str, str]], None],
    *,
    now: Callable[[], datetime] = utcnow,
) -> RestoreRecord:
    """Apply `mutate(data, annotations)` and PUT with the resourceVersion read.

    On Conflict the record is read again and `mutate` runs again on the fresh copy, so
    it re-decides (it raises StateConflict when the change no longer applies).
    """
    current = record
    for _ in range(20):
        data = copy.deepcopy(dict(current.data))
        annos = dict(current.annotations)
        mutate(data, annos)
        data["updated"] = stamp(now())
        body = _body(current.id, current.namespace, data, annos)
        body["metadata"]["resourceVersion"] = current.resource_version
        try:
            return _from_configmap(replace(cluster, CONFIGMAP, current.namespace, current.id, body))
        except Conflict:
            current = _from_configmap(get(cluster, CONFIGMAP, current.namespace, current.id))
    raise ClusterError(f"restore record {record.id} keeps changing; gave up updating it")


def _event(data: dict[str, Any], when: datetime, text: str) -> None:
    data.setdefault("history", []).append({"time": stamp(when), "event": text})


def apply_transition(
    data: dict[str, Any], record_id: str, from_states: Iterable[str], to_state: str,
    when: datetime, fields: Mapping[str, Any] | None = None,
) -> None:  # fmt: skip
    """Move `data` (a decoded record) to `to_state` in place, or raise StateConflict (pure)."""
    allowed = set(from_states)
    state = str(data.get("state", ""))
    if state not in allowed:
        raise StateConflict(f"restore {record_id} is {state}, not {' or '.join(sorted(allowed))}",
                            state=state)  # fmt: skip
    if to_state not in TRANSITIONS.get(state, frozenset()):
        raise StateConflict(f"restore {record_id} cannot go from {state} to {to_state}", state=state)
    expires = parse_stamp(str(data.get("expires", "")))
    if to_state == APPROVED and expires is not None and when > expires:
        raise StateConflict(f"restore request {record_id} expired at {data['expires']}",
                            state=EXPIRED)  # fmt: skip
    data.update(fields or {})
    data["state"] = to_state
    if to_state == RUNNING and not data.get("started"):
        data["started"] = stamp(when)
    if to_state in TERMINAL:
        data["finished"] = stamp(when)
    _event(data, when, f"{state} -> {to_state}")


def apply_step(
    data: dict[str, Any], record_id: str, key: str, status: str, when: datetime,
    detail: str = "", fields: Mapping[str, Any] | None = None,
) -> None:  # fmt: skip
    """Set step `key` of `data` to `status` in place, or raise StateConflict (pure).

    The record must be running, and a step that is done never changes again (so it
    never runs twice).
    """
    if status not in (STEP_RUNNING, STEP_DONE, STEP_FAILED):
        raise ValueError(f"unknown step status {status!r}")
    if data.get("state") != RUNNING:
        raise StateConflict(f"restore {record_id} is {data.get('state')}, not running",
                            state=str(data.get("state")))  # fmt: skip
    step = next((s for s in data["steps"] if s["key"] == key), None)
    if step is None:
        raise KeyError(key)
    if step["status"] == STEP_DONE:
        raise StateConflict(f"step {key} of {record_id} is already done", state=RUNNING)
    if status == STEP_RUNNING:
        step.update(started=stamp(when), finished="", runs=int(step.get("runs", 0)) + 1)
    else:
        step["finished"] = stamp(when)
    step["status"] = status
    if detail:
        step["detail"] = detail
    data.update(fields or {})
    _event(data, when, f"step {key} {status}")


def transition(
    cluster: Cluster, record: RestoreRecord, from_states: Iterable[str], to_state: str,
    *, now: Callable[[], datetime] = utcnow, **fields: Any,
) -> RestoreRecord:  # fmt: skip
    """Move the record from one of `from_states` to `to_state`, setting `fields`.

    Raises StateConflict when the record (as stored, re-read on conflict) is in another
    state, or when approving a request past its expiry.
    """
    allowed = tuple(from_states)
    return update(
        cluster, record,
        lambda data, _a: apply_transition(data, record.id, allowed, to_state, now(), fields),
        now=now,
    )  # fmt: skip


def mark_step(
    cluster: Cluster, record: RestoreRecord, key: str, status: str, detail: str = "",
    *, now: Callable[[], datetime] = utcnow, **fields: Any,
) -> RestoreRecord:  # fmt: skip
    """Set step `key` to running/done/failed (see apply_step); `fields` go top level."""
    return update(
        cluster, record,
        lambda data, _a: apply_step(data, record.id, key, status, now(), detail, fields),
        now=now,
    )  # fmt: skip


def set_fields(cluster: Cluster, record: RestoreRecord, **fields: Any) -> RestoreRecord:
    """Record top-level fields (e.g. Velero progress) without a state change."""
    return update(cluster, record, lambda data, _a: data.update(fields))


def set_annotations(cluster: Cluster, record: RestoreRecord, annotations: Mapping[str, str]) -> RestoreRecord:
    """Set annotations (e.g. L.ANNO_SLACK_MESSAGE, L.ANNO_ANNOUNCED) on the record."""
    return update(cluster, record, lambda _d, annos: annos.update(annotations))


def restore_in_progress(cluster: Cluster, cfg: Config) -> str | None:
    """The id of the live restore holding the lock, if any (see k8s.restore_lock)."""
    from .restore_lock import restore_in_progress as holder

    return holder(cluster, cfg)
