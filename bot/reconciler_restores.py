"""Reconciling one restore record: approval message, expiry, the run, progress, announcement.

A record moves pending-approval → approved → running → succeeded|failed (or rejected,
expired, cancelled) through optimistic-concurrency updates made by the Slack handlers,
the executor and this module. Whatever state it is in, reconciling it makes Slack agree:
the message exists (posted once, its ref stored on the record), shows the request with
buttons while pending and the run's progress afterwards; an approved (or, after a
restart, running) restore from Slack has a worker thread running k8s.restore_executor;
a pending request past its expiry becomes expired; a finished one is announced once
(`ragbot.io/announced` on the record). CLI restores (`trigger: cli`) are shown and
announced but driven by their own process.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from handlers.blocks import (
    restore_approval_outcome,
    restore_approval_request,
    restore_progress,
    restore_result,
)
from handlers.blocks.approval import outcome_line
from handlers.blocks.kit import Message, message, section
from handlers.views import restore_duration, restore_view
from k8s import labels as L
from k8s.backup_views import summarize
from k8s.backups import BackupInProgress
from k8s.errors import ClusterError
from k8s.restore_executor import Progress, run_restore
from k8s.restore_lock import BackupRunning, RestoreInProgress
from k8s.restore_record import (
    APPROVED,
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    REJECTED,
    RUNNING,
    SUCCEEDED,
    RestoreRecord,
    StateConflict,
    _from_configmap,
    parse_stamp,
    set_annotations,
    stamp,
    transition,
)

from .logs import operation
from .slack_io import MessageRef, post

if TYPE_CHECKING:
    from .reconciler import Key, Reconciler

log = logging.getLogger("ragbot.reconciler.restores")

DECIDED = (REJECTED, EXPIRED, CANCELLED)


def _record(r: Reconciler, ns: str, name: str) -> RestoreRecord | None:
    obj = r.get("record", ns, name)
    return _from_configmap(obj) if obj is not None else None


def last_restore(r: Reconciler) -> timedelta | None:
    """How long the newest succeeded restore took (for the approval message)."""
    done = [rec for rec in map(_from_configmap, r.items("record")) if rec.state == SUCCEEDED]
    done.sort(key=lambda rec: str(rec.data.get("finished", "")), reverse=True)
    return restore_duration(done[0]) if done else None


def _velero_status(r: Reconciler, rec: RestoreRecord) -> dict[str, Any] | None:
    name = rec.velero_restore
    obj = r.get("restore", r.cfg.velero.namespace, name) if name else None
    status: dict[str, Any] | None = (obj or {}).get("status")
    return status


def render_record(r: Reconciler, rec: RestoreRecord) -> Message:
    """The record's one channel message, as it should look now."""
    now = r.now()
    backup_obj = r.get("backup", r.cfg.velero.namespace, rec.backup)
    backup = summarize(backup_obj) if backup_obj else None
    if rec.state == PENDING:
        return restore_approval_request(
            rec, now=now, backup=backup, last_restore=last_restore(r),
            allow_self_approval=r.cfg.ragbot.access.allow_self_approval,
        )  # fmt: skip
    if rec.state in DECIDED:
        return restore_approval_outcome(rec, now=now, backup=backup)
    progress = r.progress.get(rec.id)
    detail = progress.detail if progress and progress.status == "progress" and not progress.phase else ""
    body = restore_progress(rec, now=now, velero_status=_velero_status(r, rec), detail=detail)
    line, _ = outcome_line(restore_view(rec))
    return message(str(body["text"]), [section(line), *body["blocks"]])


def reconcile_restore(r: Reconciler, key: Key) -> float | None:
    """A Velero Restore changed: refresh the record that made it (live progress)."""
    _, ns, name = key
    obj = r.get("restore", ns, name)
    record = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(L.ANNO_RESTORE_RECORD)
    if record:
        r.queue.add(("record", r.cfg.ragbot.namespace, str(record)))
    return None


def reconcile_record(r: Reconciler, key: Key) -> float | None:
    _, ns, name = key
    rec = _record(r, ns, name)
    if rec is None or not r.channel:
        return None
    if rec.annotations.get(L.ANNO_ANNOUNCED):
        return None
    ref = r.refs.get(key) or MessageRef.parse(rec.annotations.get(L.ANNO_SLACK_MESSAGE))
    read: RestoreRecord = rec

    def render() -> Message:
        return render_record(r, _record(r, ns, name) or read)

    if ref is None:
        finished = parse_stamp(str(rec.data.get("finished") or ""))
        if rec.terminal and r.is_history(finished):
            return None
        ref = post(r.client, r.channel, render())
        r.refs[key] = ref
    if rec.annotations.get(L.ANNO_SLACK_MESSAGE) != str(ref):
        rec = set_annotations(r.cluster, rec, {L.ANNO_SLACK_MESSAGE: str(ref)})

    if rec.state == PENDING:
        expires = parse_stamp(str(rec.data.get("expires") or ""))
        if expires is None:
            return None
        left = (expires - r.now()).total_seconds()
        if left > 0:
            return left + 0.05
        # Approved or cancelled meanwhile: StateConflict, and the watch brings the new state.
        with contextlib.suppress(StateConflict):
            transition(r.cluster, rec, [PENDING], EXPIRED)
        return None
    if rec.state in (APPROVED, RUNNING) and rec.data.get("trigger") != "cli":
        r.ensure_worker(rec.id)
    if not rec.terminal:
        r.updater.submit(ref, render)
        return None
    r.updater.send_now(ref, render)
    if key not in r.announced and rec.state in (SUCCEEDED, FAILED):
        result = restore_result(rec, now=r.now(), velero_status=_velero_status(r, rec))
        post(r.client, ref.channel, result, thread_ts=ref.ts, broadcast=True)
        took = restore_duration(rec)
        r.metrics.restore_finished(trigger=str(rec.data.get("trigger") or ""), result=rec.state,
                                   seconds=took.total_seconds() if took else None)  # fmt: skip
    r.announced.add(key)
    set_annotations(r.cluster, rec, {L.ANNO_ANNOUNCED: stamp(r.now())})
    return None


def run_worker(r: Reconciler, record_id: str) -> None:
    """A worker thread: run the restore to its end (or until the bot stops)."""
    key: Key = ("record", r.cfg.ragbot.namespace, record_id)

    def on_progress(p: Progress) -> None:
        r.progress[record_id] = p
        ref = r.refs.get(key)
        if ref is not None:
            r.updater.submit(ref, lambda: render_record(r, _record(r, key[1], key[2]) or _fallback(r, record_id)))

    again: float | None = None
    try:
        with operation(record_id):
            run_restore(r.cluster, r.cfg, record_id, on_progress=on_progress, stop=lambda: r.stopping)
    except StateConflict as err:
        log.info("restore %s not run: %s", record_id, err)
    except (BackupRunning, RestoreInProgress, BackupInProgress) as err:
        log.warning("restore %s refused: %s", record_id, err)  # the record says so (failed)
    except ClusterError as err:
        log.warning("restore %s interrupted: %s; resuming later", record_id, err)
        again = r.options.retry_delay
    except Exception:
        log.exception("restore %s crashed; resuming later", record_id)
        again = r.options.retry_delay
    finally:
        if not r.stopping:
            r.queue.add(key, after=again or 0.0)


def _fallback(r: Reconciler, record_id: str) -> RestoreRecord:
    from k8s.restore_record import get_record

    return get_record(r.cluster, r.cfg, record_id)
