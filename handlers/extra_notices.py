"""Two small ephemeral answers the Slack listeners need beyond handlers.blocks.notices.

Kept apart from handlers.blocks (owned and golden-tested separately) so adding them does
not touch those modules: the "working on it" ack sent when the cluster is slower than
Slack's 3 s allow, and the answer to `/ragbackup schedule pause|resume` until the
scheduler (issue 7) exists.
"""

from __future__ import annotations

from .blocks.kit import Message, esc, message, section


def working(command_line: str) -> Message:
    """The ack when the answer takes longer than Slack waits: the answer follows."""
    text = f":hourglass_flowing_sand: Working on `{esc(command_line.strip())}`; the answer follows here."
    return message(f"Working on {command_line.strip()}", [section(text)])


def schedule_unavailable(action: str) -> Message:
    text = (f":calendar: This ragbot cannot {esc(action)} the schedule yet: scheduled backups "
            "are not part of this version. `/ragbackup now` backs up by hand.")  # fmt: skip
    return message(f"Cannot {action} the schedule yet", [section(text)])


__all__ = ["schedule_unavailable", "working"]
