"""The scheduler's own channel messages: a slot skipped, slots missed, pause/resume.

Pure like every builder here; the scheduler (bot/scheduler.py) only posts them.
"""

from __future__ import annotations

from datetime import datetime

from .kit import Message, esc, message, section, user, utc


def schedule_skipped(slot: datetime, running: str) -> Message:
    text = (f":fast_forward: The scheduled backup for {esc(utc(slot))} was *skipped*: backup "
            f"`{esc(running)}` is still running, and two at once would compete for snapshots.")  # fmt: skip
    return message(f"Scheduled backup for {utc(slot)} skipped (overlap)", [section(text)])


def schedule_missed(slots: list[datetime], grace: str) -> Message:
    shown = ", ".join(utc(s) for s in slots[-5:])
    more = f" (and {len(slots) - 5} earlier)" if len(slots) > 5 else ""
    text = (f":warning: *{len(slots)} scheduled backup(s) missed* while no ragbot replica was "
            f"leading: {esc(shown)}{more}. They were older than `misfire_grace` ({esc(grace)}) "
            "and were not run; `/ragbackup now` backs up by hand.")  # fmt: skip
    return message(f"{len(slots)} scheduled backup(s) missed", [section(text)])


def schedule_paused(paused: bool, by: str) -> Message:
    if paused:
        text = (f":double_vertical_bar: The backup schedule was *paused* by {user(by)}: scheduled "
                "backups are skipped until `/ragbackup schedule resume`.")  # fmt: skip
    else:
        text = f":arrow_forward: The backup schedule was *resumed* by {user(by)}."
    return message(f"Backup schedule {'paused' if paused else 'resumed'}", [section(text)])
