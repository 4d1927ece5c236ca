"""Channel alerts (stuck operations, stale backups, Velero unhealthy) and the schedule view.

An alert is posted when a condition starts and answered when it clears, so the channel
tells a story ("storage location unavailable … available again") rather than repeating
itself. Each alert says what was seen, since when, which `ragbot.alerts` limit it passed,
and the first thing to look at. The schedule view answers `/ragbackup schedule`; the
scheduler fills `ScheduleStatus` (the cron in words and the next runs are its business).
"""

from __future__ import annotations

from datetime import datetime

from ..views import Alert, ScheduleStatus
from .backup import PHASE_EMOJI, RUNNING_EMOJI
from .kit import (
    Message,
    ago,
    bullets,
    code,
    context,
    duration,
    esc,
    field,
    message,
    one_line,
    section,
    user,
    when,
)

STARTED = ":rotating_light:"
CLEARED = ":white_check_mark:"


def _for(a: Alert, now: datetime, key: str = "") -> str:
    """` for 45m 00s (since <date>; limit 30m 00s, ragbot.alerts.stuck_after)`."""
    notes = [f"since {when(a.since)}"] if a.since else []
    if a.threshold and key:
        notes.append(f"limit {duration(a.threshold)}, `ragbot.alerts.{key}`")
    lasted = f" for {duration((now - a.since).total_seconds())}" if a.since else ""
    return f"{lasted} ({'; '.join(notes)})" if notes else ""


def _texts(a: Alert, now: datetime) -> tuple[str, str, str]:
    """(headline mrkdwn, what to do mrkdwn, fallback) of an alert that started."""
    ns = esc(a.namespace or "velero")
    name = code(a.subject or "?", 150)
    raw = esc(a.subject or "?")
    if a.kind == "backup-stuck":
        phase = esc(a.phase or "New")
        return (f"*Backup {name} looks stuck*: {phase}{_for(a, now, 'stuck_after')}.",
                f"Look at `velero backup describe {raw} -n {ns}` and the Velero pod "
                f"(`kubectl -n {ns} logs deploy/velero`). New backups are refused until it ends.",
                f"Backup {raw} looks stuck in {phase}")  # fmt: skip
    if a.kind == "restore-stuck":
        return (f"*Restore {name} looks stuck*: no progress{_for(a, now, 'stuck_after')}.",
                f"`/ragrestore status {raw}` shows the step it is on; the application stays "
                "offline until the restore finishes.", f"Restore {raw} looks stuck")  # fmt: skip
    if a.kind == "no-recent-backup":
        done = f", completed {when(a.since)} ({ago(a.since, now)})" if a.since else ""
        last = (f"The last Completed backup is {name}{done}." if a.subject
                else "There is no Completed backup at all.")  # fmt: skip
        limit = f" (limit {duration(a.threshold)}, `ragbot.alerts.max_backup_age`)" if a.threshold else ""
        return (f"*No recent successful backup*{limit}. {last}",
                "`/ragbackup check` finds what stops backups; `/ragbackup schedule` shows whether "
                "the schedule is paused; `/ragbackup now` makes one.",
                "No recent successful backup")  # fmt: skip
    if a.kind == "bsl-unavailable":
        phase = esc(a.phase or "Unavailable")
        return (f"*Backup storage location {name} is {phase}*{_for(a, now)}: backups and "
                "restores will fail.",
                f"`kubectl -n {ns} describe backupstoragelocation {raw}`: check the bucket, "
                "the endpoint and the credentials.", f"Backup storage location {raw} is {phase}")  # fmt: skip
    return (f"*Velero is not ready*{_for(a, now)}: backups and restores cannot run.",
            f"`kubectl -n {ns} get pods` and `kubectl -n {ns} describe deployment velero`; "
            "`/ragbackup check` runs every check.", "Velero is not ready")  # fmt: skip


def _cleared(a: Alert) -> tuple[str, str]:
    name = code(a.subject or "?", 150)
    raw = esc(a.subject or "?")
    at = f" at {when(a.cleared_at)}" if a.cleared_at else ""
    phase = esc(a.phase)
    texts = {
        "backup-stuck": (f"Backup {name} is no longer stuck{f': {phase}' if phase else ''}{at}.",
                         f"Backup {raw} is no longer stuck"),
        "restore-stuck": (f"Restore {name} is moving again{at}.", f"Restore {raw} is moving again"),
        "no-recent-backup": (f"Backups are recent again: {name} completed{at}.",
                             f"Backup {raw} completed; backups are recent again"),
        "bsl-unavailable": (f"Backup storage location {name} is Available again{at}.",
                            f"Backup storage location {raw} is Available again"),
        "velero-not-ready": (f"Velero is ready again{at}.", "Velero is ready again"),
    }  # fmt: skip
    return texts.get(a.kind, (f"{esc(a.kind)} cleared{at}.", f"{esc(a.kind)} cleared"))


def alert_message(a: Alert, *, now: datetime) -> Message:
    """The channel post for an alert that started, or (a.cleared) the one saying it cleared."""
    if a.cleared:
        text, fallback = _cleared(a)
        blocks = [section(f"{CLEARED} {text}")]
        if a.detail:
            blocks.append(context(one_line(a.detail, 900)))
        return message(fallback, blocks)
    headline, todo, fallback = _texts(a, now)
    blocks = [section(f"{STARTED} {headline}")]
    if a.detail:
        blocks.append(section("*Seen*\n" + bullets(a.detail.splitlines() or [a.detail], max_items=10)))
    blocks.append(section(f"*What to do*\n{todo}"))
    return message(fallback, blocks)


def schedule_status(s: ScheduleStatus, *, now: datetime, changed: str = "", by: str = "") -> Message:
    """`/ragbackup schedule`: the cron in words, the next runs, paused or not.

    `changed` ("paused" or "resumed") and `by` start the answer to pause/resume.
    """
    lead = f"Schedule {esc(changed)} by {user(by)}.\n" if changed else ""
    if not s.cron:
        text = (f"{lead}:calendar: *No backup schedule is configured.* Set `ragbot.schedule.cron` "
                "(e.g. `0 2 * * *` for 02:00 every day) to back up regularly.")  # fmt: skip
        return message("No backup schedule is configured", [section(text)])
    words = one_line(s.description or s.cron, 200)
    state = (f":double_vertical_bar: paused{' by ' + user(s.paused_by) if s.paused_by else ''}"
             f"{' since ' + when(s.paused_at) if s.paused_at else ''}" if s.paused
             else ":arrow_forward: running")  # fmt: skip
    runs = "\n".join(when(t) for t in s.next_runs[:5]) or "none"
    if s.paused and s.next_runs:
        runs = "skipped while paused:\n" + runs
    fields = [
        field("Cron", f"{code(s.cron, 100)} ({esc(s.timezone)})"),
        field("State", state),
        field("Next runs", runs),
    ]
    if s.last_backup is not None:
        b = s.last_backup
        moment = b.completed or b.started or b.created
        emoji = PHASE_EMOJI.get(b.phase, RUNNING_EMOJI)
        fields.append(field("Last backup", f"{emoji} {code(b.name, 100)} {esc(b.phase or 'New')}, "
                                           f"{ago(moment, now)}"))  # fmt: skip
    blocks = [section(f"{lead}:calendar: *Backup schedule*: {words}", fields=fields)]
    hint = ("`/ragbackup schedule resume` starts it again" if s.paused
            else "`/ragbackup schedule pause` skips scheduled backups until resumed")  # fmt: skip
    blocks.append(context(hint))
    paused = ", paused" if s.paused else ""
    return message(f"Backup schedule: {esc(s.description or s.cron)}{paused}", blocks)


__all__ = ["alert_message", "schedule_status"]
