"""Ephemeral answers: help, usage errors, refusals, cluster errors, acknowledgements.

DESIGN.md: "Everything a user gets wrong gets an ephemeral message saying what and how
to fix it." These are those messages. `explain_error` is the one place that decides
which exceptions reach chat and in what words (STYLE.md, from Botkube: only errors meant
for chat users reach chat); anything it does not know becomes "something went wrong,
the log has it", without a stack trace or an internal message.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from k8s.backups import (
    BackupInProgress,
    BackupNotFound,
    BackupNotUsable,
    NoCompletedBackup,
    VeleroDisabled,
)
from k8s.errors import ClusterError, Forbidden, Timeout, Transient, Unauthorized, Unreachable
from k8s.restore_lock import BackupRunning, RestoreInProgress
from k8s.restore_record import RecordNotFound, RestoreRecord, StateConflict

from ..commands import TITLES, UsageError, permission_text, verbs_of
from ..views import restore_view
from .approval import outcome_line
from .kit import Message, code, context, esc, message, one_line, quote, section, when

if TYPE_CHECKING:  # handlers.access uses kit.esc; a runtime import here would be a cycle
    from ..access import Decision

WARN = ":warning:"
STOP = ":no_entry:"
ERROR = ":x:"
OK = ":white_check_mark:"


def help_message(command: str) -> Message:
    """`/ragbackup help`: generated from the command table (handlers.commands.VERBS)."""
    rows = verbs_of(command)
    lines = [f"*{esc(command)}*: {esc(TITLES[command])}"]
    for r in rows:
        needs = permission_text(r)
        lines.append(f"`{esc(r.usage)}`  {esc(r.summary)}" + (f" _({esc(needs)})_" if needs else ""))
    blocks = [section("\n".join(lines)),
              context(f"With no text, {esc(command)} shows this help.")]  # fmt: skip
    return message(f"{command}: {TITLES[command]}", blocks)


def usage_error(err: UsageError) -> Message:
    """What is wrong with the command and the right usage."""
    usage = "\n".join(err.usage)
    blocks = [section(f"{WARN} {esc(err.message)}"), section(f"*Usage*\n```{esc(usage)}```"),
              context(f"`{esc(err.command)} help` lists everything")]  # fmt: skip
    return message(esc(f"{err.message}. Usage: {'; '.join(err.usage)}"), blocks)


def refusal(decision: Decision, *, what: str) -> Message:
    """Not allowed: says who refused (the config key) and what to do about it.

    `decision.reason` is mrkdwn made by handlers.access (mentions, escaped details).
    """
    text = f"{STOP} You can't {esc(what)}: {decision.reason}."
    rule = f"Rule: `{esc(decision.rule)}`. A ragbot admin can change it in the `ragbot:` config."
    return message(esc(f"You can't {what}: refused by {decision.rule}"), [section(text), context(rule)])


def error_notice(title: str, detail: str = "", fix: str = "") -> Message:
    """A plain error: title, what was seen, what to do. All three are plain text."""
    text = f"{ERROR} *{one_line(title, 200)}*"
    if detail:
        text += "\n" + quote(detail, 1500)
    blocks = [section(text)]
    if fix:
        blocks.append(section(f"*What to do*\n{esc(fix)}"))
    return message(esc(f"{title}: {detail}" if detail else title), blocks)


def _notice(title: str, detail: str, fix_mrkdwn: str, icon: str = WARN) -> Message:
    text = f"{icon} *{title}*" + (f"\n{quote(detail, 1500)}" if detail else "")
    blocks = [section(text)]
    if fix_mrkdwn:
        blocks.append(section(f"*What to do*\n{fix_mrkdwn}"))
    return message(f"{title}: {esc(detail)}" if detail else title, blocks)


def explain_error(err: BaseException, *, doing: str) -> Message:
    """The ephemeral answer to an exception raised while `doing` (e.g. "start a backup")."""
    detail = str(err)
    if isinstance(err, BackupInProgress | BackupRunning):
        name = getattr(err, "running", "") or getattr(err, "backup", "")
        return _notice(f"A backup is still running: {code(name)}", "",
                       f"Wait for it to finish (its progress is in the channel, or "
                       f"`/ragbackup status {esc(name)}`), then try again.")  # fmt: skip
    if isinstance(err, RestoreInProgress):
        return _notice(f"A restore is already in progress: {code(err.holder)}", "",
                       f"Follow it with `/ragrestore status {esc(err.holder)}`.")  # fmt: skip
    if isinstance(err, NoCompletedBackup):
        return _notice("There is no Completed backup to restore", detail,
                       "`/ragbackup now` makes one; ask again once it has completed.")  # fmt: skip
    if isinstance(err, BackupNotFound):
        return _notice("No such backup", detail, "`/ragbackup list` shows the backups there are.")
    if isinstance(err, BackupNotUsable):
        return _notice("That backup cannot be restored", detail,
                       "Pick a Completed one from `/ragbackup list`, or `/ragrestore latest`.")  # fmt: skip
    if isinstance(err, VeleroDisabled):
        return _notice("Backups are disabled in ragbot's configuration", detail,
                       "An admin sets `velero.enabled: true` in the config file.")  # fmt: skip
    if isinstance(err, RecordNotFound):
        return _notice("No such restore request", detail, "`/ragrestore list` shows them.")
    if isinstance(err, StateConflict):
        return _notice(f"Nothing to do: the restore is {esc(err.state or 'in another state')}",
                       detail, "`/ragrestore status` shows where it is.")  # fmt: skip
    if isinstance(err, Forbidden):
        return _notice(f"ragbot is not allowed to {esc(doing)}", str(err.args[0]),
                       "An admin grants the missing permission to ragbot's service account "
                       "(the Helm chart's RBAC).", ERROR)  # fmt: skip
    if isinstance(err, Unauthorized):
        return _notice("ragbot's cluster credentials were refused", "",
                       "An admin checks ragbot's kubeconfig or service account token.", ERROR)  # fmt: skip
    if isinstance(err, Unreachable | Transient | Timeout):
        return _notice(f"The cluster did not answer, so ragbot could not {esc(doing)}",
                       str(err.args[0]) if err.args else detail,
                       "Try again in a minute. If it keeps happening, an admin checks the "
                       "Kubernetes API server and ragbot's logs.", ERROR)  # fmt: skip
    if isinstance(err, ClusterError):
        return _notice(f"Could not {esc(doing)}", detail, "", ERROR)
    return _notice(f"Something went wrong while trying to {esc(doing)}",
                   f"{type(err).__name__}; ragbot's log has the details", "", ERROR)  # fmt: skip


# ---------------------------------------------------------------------- acknowledgements


def backup_started(name: str, *, channel: str = "") -> Message:
    where = f" in <#{esc(channel)}>" if channel else ""
    text = f"{OK} Backup {code(name)} started. Progress and the result follow{where}."
    return message(f"Backup {esc(name)} started", [section(text)])


def restore_requested(record: RestoreRecord, *, channel: str = "") -> Message:
    v = restore_view(record)
    where = f"in <#{esc(channel)}> " if channel else ""
    expires = f" before {when(v.expires)}" if v.expires else ""
    text = (f"{OK} Restore request {code(v.id, 100)} for backup {code(v.backup)} is posted "
            f"{where}for approval. Another approver must approve it{expires}; "
            f"`/ragrestore cancel {esc(v.id)}` withdraws it.")  # fmt: skip
    return message(f"Restore request {esc(v.id)} posted for approval", [section(text)])


def restore_cancelled(record: RestoreRecord) -> Message:
    v = restore_view(record)
    text = f"{OK} Restore request {code(v.id, 100)} for backup {code(v.backup)} is cancelled."
    return message(f"Restore request {esc(v.id)} cancelled", [section(text)])


def approval_done(record: RestoreRecord, *, by: str = "") -> Message:
    """Ephemeral to an approver who clicked too late: the request is already decided."""
    v = restore_view(record)
    line, fallback = outcome_line(v, by)
    return message(fallback, [section(f"This request was already decided. {line}")])


def approval_recorded(record: RestoreRecord, *, approved: bool, now: datetime) -> Message:
    """Ephemeral confirmation to the approver who clicked."""
    v = restore_view(record)
    if approved:
        text = f"{OK} You approved restoring {code(v.backup)}; it starts now ({when(now)})."
    else:
        text = f"{OK} You rejected restoring {code(v.backup)}; nothing was changed."
    return message(f"{'Approved' if approved else 'Rejected'} restore of {esc(v.backup)}",
                   [section(text)])  # fmt: skip


__all__ = [
    "approval_done",
    "approval_recorded",
    "backup_started",
    "error_notice",
    "explain_error",
    "help_message",
    "refusal",
    "restore_cancelled",
    "restore_requested",
    "usage_error",
]
