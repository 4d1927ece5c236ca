"""Block Kit builders: pure functions from domain objects to `{"text", "blocks"}` messages.

Every user-visible sentence of the bot lives in this package (STYLE.md: renderers are
pure and golden-tested). Builders take the domain objects of `k8s/` (BackupSummary,
RestoreRecord, CheckResult) plus the small views of `handlers.views`, and an explicit
`now` so the same input always renders the same message. Every message they return
passes `handlers.limits.check_message`: long content is cut with "… and N more".
"""

from .alerts import alert_message, schedule_status
from .approval import (
    ACTION_IDS,
    APPROVAL_BLOCK,
    APPROVE_ACTION,
    REJECT_ACTION,
    restore_approval_outcome,
    restore_approval_request,
)
from .backup import backup_list, backup_progress, backup_result, backup_status, check_report
from .kit import Message
from .notices import (
    approval_done,
    approval_recorded,
    backup_started,
    error_notice,
    explain_error,
    help_message,
    refusal,
    restore_cancelled,
    restore_requested,
    usage_error,
)
from .restore import restore_list, restore_progress, restore_result, restore_status
from .schedule import schedule_missed, schedule_paused, schedule_skipped

__all__ = [
    "ACTION_IDS",
    "APPROVAL_BLOCK",
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "Message",
    "alert_message",
    "approval_done",
    "approval_recorded",
    "backup_list",
    "backup_progress",
    "backup_result",
    "backup_started",
    "backup_status",
    "check_report",
    "error_notice",
    "explain_error",
    "help_message",
    "refusal",
    "restore_approval_outcome",
    "restore_approval_request",
    "restore_cancelled",
    "restore_list",
    "restore_progress",
    "restore_requested",
    "restore_result",
    "restore_status",
    "schedule_missed",
    "schedule_paused",
    "schedule_skipped",
    "schedule_status",
    "usage_error",
]
