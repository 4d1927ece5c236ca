"""Reconciling one Velero Backup: its channel message, kept current, and its announcement.

Every Backup in the Velero namespace gets this, ours or not (the playbook, the `velero`
CLI, a Velero Schedule): one progress message, edited as Velero moves (throttled by the
MessageUpdater), and once the phase is terminal the final edit and one announcement in
the message's thread, broadcast to the channel. Durable steps, each recorded on the
Backup before the next: `ragbot.io/slack-message` after the post, `ragbot.io/announced`
after the announcement. A Slack failure raises, and the reconciler comes back later.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from config.models import Config
from handlers.blocks import backup_progress, backup_result
from handlers.views import VeleroResults
from k8s import labels as L
from k8s import resources as R
from k8s.backup_views import BackupSummary, format_time, summarize
from k8s.client import Cluster
from k8s.download import download
from k8s.errors import ClusterError

from .slack_io import MessageRef, post

if TYPE_CHECKING:
    from .reconciler import Key, Reconciler

log = logging.getLogger("ragbot.reconciler.backups")


def backup_results(cluster: Cluster, cfg: Config, b: BackupSummary, *,
                   timeout: float = 20.0) -> VeleroResults | None:  # fmt: skip
    """Velero's error and warning messages (BackupResults), or None if unavailable."""
    try:
        raw = download(cluster, cfg.velero.namespace, "BackupResults", b.name, timeout=timeout)
        return VeleroResults.from_json(json.loads(raw or b"{}"))
    except (ClusterError, ValueError) as err:
        log.warning("could not read Velero's results of backup %s: %s", b.name, err)
        return None


def reconcile_backup(r: Reconciler, key: Key) -> float | None:
    _, ns, name = key
    obj = r.get("backup", ns, name)
    if obj is not None and L.phase_of(obj) == L.BACKUP_SUCCESS:
        r.metrics.saw_completed(summarize(obj).completed)  # relearnt after every restart
    if obj is None or not r.channel:
        return None
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(L.ANNO_ANNOUNCED) or key in r.announced:
        return None
    b = summarize(obj)
    ref = r.refs.get(key) or MessageRef.parse(annotations.get(L.ANNO_SLACK_MESSAGE))

    def render() -> dict[str, object]:
        latest = r.get("backup", ns, name) or obj
        return backup_progress(summarize(latest), now=r.now())

    if ref is None:
        if b.terminal and r.is_history(b.completed or b.created):
            return None
        ref = post(r.client, r.channel, render())
        r.refs[key] = ref
    if annotations.get(L.ANNO_SLACK_MESSAGE) != str(ref):
        r.patch_annotations(R.BACKUP, ns, name, {L.ANNO_SLACK_MESSAGE: str(ref)})
    if not b.terminal:
        r.updater.submit(ref, render)
        return None
    r.updater.send_now(ref, render)
    if key not in r.announced:
        results = None
        if not b.succeeded or b.warnings:
            results = backup_results(r.cluster, r.cfg, b, timeout=r.options.results_timeout)
        post(r.client, ref.channel, backup_result(b, now=r.now(), results=results),
             thread_ts=ref.ts, broadcast=True)  # fmt: skip
        r.announced.add(key)
        log.info("backup %s ended %s; announced", name, b.phase)
        r.metrics.backup_finished(trigger=b.trigger, result=b.phase, seconds=b.elapsed(),
                                  completed=b.completed)  # fmt: skip
    r.patch_annotations(R.BACKUP, ns, name, {L.ANNO_ANNOUNCED: format_time(r.now())})
    return None
