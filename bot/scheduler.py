"""Scheduled backups on the leader: each slot at most once, across replicas and restarts.

APScheduler (3.x, memory job store) only says "a slot is due"; what a slot does lives in
`run_slot(slot)`, which reads the cluster and is safe to call twice: the slot's Backup
carries `ragbot.io/slot=<slot time, UTC>` and is named from the slot time, so a new
leader or a second replica that finds it does nothing. A slot is skipped (and that
recorded in the `ragbot-schedule` ConfigMap) when the schedule is paused, and skipped and
announced once when a backup of ours is still running. On becoming leader, `catch_up()`
runs the most recent missed slot if it is within `misfire_grace` and reports (once)
older slots missed since the last one handled. After a scheduled backup Completes, the
older Completed backups of ours beyond `keep_last` are pruned (k8s.prune). Time comes
from an injectable clock, so the tests drive slots without waiting for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient

from config.models import Config
from handlers.blocks import schedule_missed, schedule_paused, schedule_skipped
from handlers.blocks.kit import Message, utc
from k8s import backups as B
from k8s import labels as L
from k8s import resources as R
from k8s.client import Cluster
from k8s.errors import AlreadyExists, ClusterError
from k8s.prune import prune
from k8s.restore_lock import RestoreInProgress, restore_in_progress
from k8s.schedule_state import ScheduleState, ensure_state, read_state, set_paused, update_state
from k8s.watch import wait_for

from .schedule_cron import build_trigger, due_slots, latest_slot, parse_slot_label, slot_label
from .slack_io import SlackFailure, post

log = logging.getLogger("ragbot.scheduler")

SLOT_LABEL = L.PREFIX + "slot"
CREATED, EXISTS, PAUSED, OVERLAP, REFUSED = "created", "exists", "paused", "overlap", "refused"
#: How long one follower waits for a scheduled Backup to finish before giving up on it.
FOLLOW_TIMEOUT = 24 * 3600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ----- the scheduler -------------------------------------------------------------------------


class BackupScheduler:
    """Runs the configured cron on the leader. `start()` on gaining leadership, `stop()` on losing it."""

    def __init__(self, cluster: Cluster, cfg: Config, client: WebClient | None, *,
                 clock: Callable[[], datetime] = _utcnow) -> None:  # fmt: skip
        self.cluster, self.cfg, self.client = cluster, cfg, client
        self.schedule = cfg.ragbot.schedule
        self.clock = clock
        self._stopped = threading.Event()
        self._sched: Any = None
        self._following: set[str] = set()
        self._lock = threading.Lock()

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> BackupScheduler:
        """Start APScheduler's trigger, then catch up on missed slots in a thread."""
        if not self.schedule.cron:
            return self
        from apscheduler.schedulers.background import BackgroundScheduler

        self._sched = BackgroundScheduler(timezone=self.schedule.timezone)
        grace = max(1, int(self.schedule.misfire_grace.total_seconds()))
        self._sched.add_job(self._fire, build_trigger(self.schedule.cron, self.schedule.timezone),
                            id="ragbot-scheduled-backup", misfire_grace_time=grace,
                            coalesce=True, max_instances=1)  # fmt: skip
        self._sched.start()
        threading.Thread(target=self._on_start, name="ragbot-schedule-catch-up", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._sched is not None:
            self._sched.shutdown(wait=False)

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    def _on_start(self) -> None:
        try:
            self.catch_up()
            state = read_state(self.cluster, self.cfg)
            if state is not None and state.last_backup and state.last_phase not in L.BACKUP_TERMINAL:
                self.follow(state.last_backup)
        except Exception:
            log.exception("catching up on the schedule failed")

    def _fire(self) -> None:
        slot = latest_slot(self.schedule.cron, self.schedule.timezone, self.clock())
        if slot is not None and not self.stopping:
            try:
                self.run_slot(slot)
            except Exception:
                log.exception("scheduled backup for %s failed", slot)

    # ----- one slot ------------------------------------------------------------------------

    def slot_backup(self, slot: datetime) -> dict[str, Any] | None:
        items, _ = R.list_all(self.cluster, R.BACKUP, self.cfg.velero.namespace,
                              label_selector=f"{SLOT_LABEL}={slot_label(slot)}")  # fmt: skip
        return items[0] if items else None

    def run_slot(self, slot: datetime, *, follow: bool = True) -> str:
        """Do what the slot asks, once: CREATED, EXISTS, PAUSED, OVERLAP or REFUSED."""
        now = self.clock()
        state = ensure_state(self.cluster, self.cfg, now=now)
        if state.paused:
            self._record(slot, skip="paused")
            log.info("scheduled backup for %s skipped: the schedule is paused", slot)
            return PAUSED
        if self.slot_backup(slot) is not None:
            return EXISTS
        running = B.running_backups(self.cluster, self.cfg)
        if running:
            self._skip_overlap(slot, running[0].name)
            return OVERLAP
        try:
            obj = self._create(slot)
        except B.BackupInProgress as err:
            self._skip_overlap(slot, err.running)
            return OVERLAP
        except (RestoreInProgress, B.VeleroDisabled) as err:
            self._record(slot, skip="refused")
            log.warning("scheduled backup for %s not made: %s", slot, err)
            return REFUSED
        if obj is None:
            return EXISTS
        name = str(obj["metadata"]["name"])
        log.info("scheduled backup %s created for slot %s", name, slot)
        self._record(slot, backup=name, phase=L.phase_of(obj) or "New", at=now)
        if follow:
            self.follow(name)
        return CREATED

    def _create(self, slot: datetime) -> dict[str, Any] | None:
        """Create the slot's Backup under the name the slot time gives (the playbook's
        format), so two writers racing for one slot collide on the name instead of making
        two; None when the other one won. A foreign Backup that happens to hold the name
        sends us to create_backup's `-N` suffix."""
        labels = {SLOT_LABEL: slot_label(slot)}
        note = f"scheduled backup for {utc(slot)}"
        B.require_enabled(self.cfg)
        holder = restore_in_progress(self.cluster, self.cfg)
        if holder:
            raise RestoreInProgress(holder)
        running = B.running_backups(self.cluster, self.cfg)
        if running:
            raise B.BackupInProgress(f"backup {running[0].name} is still running", running=running[0].name)
        name = B.backup_name(self.cfg.velero.backup.prefix, slot)
        body = B.build_backup(self.cfg, name=name, trigger="schedule", note=note, extra_labels=labels)
        try:
            return R.create(self.cluster, R.BACKUP, self.cfg.velero.namespace, body)
        except AlreadyExists:
            if self.slot_backup(slot) is not None:
                return None
        return B.create_backup(self.cluster, self.cfg, trigger="schedule", now=slot, note=note,
                               extra_labels=labels)  # fmt: skip

    def _record(self, slot: datetime, *, skip: str = "", backup: str = "", phase: str = "",
                at: datetime | None = None) -> bool:  # fmt: skip
        """Note the slot as handled; False when that exact note was already there."""
        note = f"{slot_label(slot)} {skip}" if skip else ""

        def change(s: ScheduleState) -> ScheduleState | None:
            if skip and s.last_skip == note:
                return None
            new = replace(s, last_slot=max(slot, s.last_slot) if s.last_slot else slot)
            if skip:
                return replace(new, last_skip=note)
            return replace(new, last_backup=backup, last_phase=phase, last_time=at)

        return update_state(self.cluster, self.cfg, change, now=self.clock())[1]

    def _skip_overlap(self, slot: datetime, running: str) -> None:
        if self._record(slot, skip="overlap"):  # only the writer that recorded it announces
            log.info("scheduled backup for %s skipped: %s is still running", slot, running)
            self._announce(schedule_skipped(slot, running))

    def _announce(self, msg: Message) -> None:
        channel = self.cfg.ragbot.slack.channel
        if self.client is None or not channel:
            return
        try:
            post(self.client, channel, msg)
        except SlackFailure as err:
            log.warning("could not announce %r: %s", msg["text"], err)

    # ----- recovery -------------------------------------------------------------------------

    def catch_up(self) -> str | None:
        """On becoming leader: run the newest missed slot if within the grace, report older ones.

        Returns the newest slot's outcome, or None when no slot was missed.
        """
        if not self.schedule.cron:
            return None
        now = self.clock()
        state = ensure_state(self.cluster, self.cfg, now=now)
        baseline = max(t for t in (state.since, state.last_slot, self._newest_slot()) if t is not None)
        slots = due_slots(self.schedule.cron, self.schedule.timezone, baseline, now)
        if not slots:
            return None
        newest = slots[-1]
        outcome: str | None = None
        older = slots
        if now - newest <= self.schedule.misfire_grace:
            older = slots[:-1]
            outcome = self.run_slot(newest)
        if older and not state.paused:
            self._report_missed(older)
        elif older:
            self._record(older[-1], skip="paused")
        return outcome

    def _newest_slot(self) -> datetime | None:
        items, _ = R.list_all(self.cluster, R.BACKUP, self.cfg.velero.namespace, label_selector=SLOT_LABEL)
        times = [parse_slot_label(str(((o.get("metadata") or {}).get("labels") or {}).get(SLOT_LABEL, ""))) for o in items]
        return max((t for t in times if t is not None), default=None)

    def _report_missed(self, slots: list[datetime]) -> None:
        reported: list[datetime] = []

        def change(s: ScheduleState) -> ScheduleState | None:
            fresh = [t for t in slots if s.reported_until is None or t > s.reported_until]
            reported[:] = fresh
            if not fresh:
                return None
            last = max(fresh[-1], s.last_slot) if s.last_slot else fresh[-1]
            return replace(s, reported_until=fresh[-1], last_slot=last)

        if update_state(self.cluster, self.cfg, change, now=self.clock())[1] and reported:
            log.warning("%d scheduled backup(s) missed, newest %s", len(reported), reported[-1])
            self._announce(schedule_missed(reported, str(self.schedule.misfire_grace)))

    # ----- after the backup -------------------------------------------------------------------

    def follow(self, name: str) -> None:
        """Watch the scheduled Backup `name` in a thread until it ends, then `finished`."""
        with self._lock:
            if name in self._following or self.stopping:
                return
            self._following.add(name)
        threading.Thread(target=self._follow, args=(name,), name=f"ragbot-follow-{name}", daemon=True).start()

    def _follow(self, name: str) -> None:
        ns = self.cfg.velero.namespace
        try:
            obj = wait_for(self.cluster, R.BACKUP, ns,
                           lambda v: o if (o := v.get(ns, name)) is None or L.phase_of(o) in L.BACKUP_TERMINAL else None,
                           timeout=FOLLOW_TIMEOUT, what=f"scheduled backup {name}",
                           field_selector=f"metadata.name={name}", stop=self._stopped.is_set)  # fmt: skip
        except ClusterError as err:
            log.info("stopped following %s: %s", name, err)
            return
        finally:
            with self._lock:
                self._following.discard(name)
        self.finished(name, L.phase_of(obj) if obj else "Deleted")

    def finished(self, name: str, phase: str) -> list[str]:
        """Record the scheduled backup's result; after a Completed one, prune to keep_last."""
        def change(s: ScheduleState) -> ScheduleState | None:
            if s.last_backup != name or s.last_phase == phase:
                return None
            return replace(s, last_phase=phase, last_time=self.clock())

        update_state(self.cluster, self.cfg, change, now=self.clock())
        if phase != L.BACKUP_SUCCESS or self.stopping or not self.schedule.keep_last:
            return []
        made = prune(self.cluster, self.cfg, self.schedule.keep_last)
        if made:
            log.info("keep_last=%d: asked Velero to delete %s", self.schedule.keep_last, ", ".join(made))
        return made


# ----- `/ragbackup schedule [pause|resume]` --------------------------------------------------


def schedule_answer(cluster: Cluster, cfg: Config, client: WebClient | None, action: str | None,
                    by: str, now: datetime) -> Message:  # fmt: skip
    """The answer to `/ragbackup schedule`; pause/resume persist and are announced in the channel."""
    from handlers.blocks import schedule_status
    from handlers.views import ScheduleStatus

    from .schedule_cron import describe_cron, next_runs

    sched = cfg.ragbot.schedule
    changed = ""
    if action in ("pause", "resume") and sched.cron:
        state, did = set_paused(cluster, cfg, action == "pause", by=by, now=now)
        changed = "paused" if action == "pause" else "resumed"
        if did and client is not None and cfg.ragbot.slack.channel:
            try:
                post(client, cfg.ragbot.slack.channel, schedule_paused(action == "pause", by))
            except SlackFailure as err:
                log.warning("could not announce the schedule %s: %s", changed, err)
    else:
        state = read_state(cluster, cfg) or ScheduleState()
    last = None
    if state.last_backup:
        try:
            last = B.describe_backup(cluster, cfg, state.last_backup)
        except B.BackupNotFound:
            last = None
    status = ScheduleStatus(cron=sched.cron, timezone=sched.timezone,
                            description=describe_cron(sched.cron, sched.timezone) if sched.cron else "",
                            next_runs=next_runs(sched.cron, sched.timezone, now, 3),
                            paused=state.paused, paused_by=state.paused_by,
                            paused_at=state.paused_at, last_backup=last)  # fmt: skip
    return schedule_status(status, now=now, changed=changed, by=by if changed else "")


__all__ = ["CREATED", "EXISTS", "OVERLAP", "PAUSED", "REFUSED", "SLOT_LABEL", "BackupScheduler",
           "schedule_answer"]  # fmt: skip
