"""Names ragbot writes on objects, and Velero's phase vocabulary, in one place.

The bot's state lives on cluster objects (principle 1 of DESIGN.md): these labels and
annotations are how a restarted process, another replica, or an operator with kubectl
recognises ragbot's work. Change a name here and every reader follows.
"""

from __future__ import annotations

PREFIX = "ragbot.io/"

# Labels (selectable)
LABEL_TRIGGER = PREFIX + "trigger"  # slack | schedule | cli
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "ragbot"
LABEL_RECORD_KIND = PREFIX + "record"  # restore | lock | schedule-state ...
LABEL_SOLUTION_VERSION = "meta.erag/solution-version"

# Annotations (free text)
ANNO_REQUESTER = PREFIX + "requester"
ANNO_NOTE = PREFIX + "note"
ANNO_SLACK_MESSAGE = PREFIX + "slack-message"  # "<channel>/<ts>" of the progress message
ANNO_ANNOUNCED = PREFIX + "announced"  # set once the final result was posted
ANNO_RESTORE_RECORD = PREFIX + "restore-record"  # on a Restore: the record that made it

TRIGGERS = ("slack", "schedule", "cli")

# Velero phases (reference/velero-api.md)
BACKUP_TERMINAL = frozenset({"Completed", "PartiallyFailed", "Failed", "FailedValidation"})
RESTORE_TERMINAL = BACKUP_TERMINAL
BACKUP_SUCCESS = "Completed"
# Phases in which a backup is still running (Queued/ReadyToStart: newer Velero releases).
BACKUP_RUNNING = frozenset(
    {
        "", "New", "Queued", "ReadyToStart", "InProgress", "WaitingForPluginOperations",
        "WaitingForPluginOperationsPartiallyFailed", "Finalizing", "FinalizingPartiallyFailed",
    }
)


def phase_of(obj: dict) -> str:  # type: ignore[type-arg]
    return str((obj.get("status") or {}).get("phase") or "")


def is_ours(obj: dict) -> bool:  # type: ignore[type-arg]
    """A Backup or Restore ragbot made (it carries the trigger label)."""
    return LABEL_TRIGGER in ((obj.get("metadata") or {}).get("labels") or {})
