"""The restore approval request, its buttons, and the same message once decided.

An approver decides from this message alone, so it says everything that matters: who
asks and why, which backup (its age and size), what goes offline (Keycloak logins in
`auth`, ingestion in `edp`, every other namespace of the plan), what the backup cannot
bring back, how long the last restore took, and when the request expires. Approve asks
for confirmation in Slack's own dialog; Reject does not (it changes nothing). When the
request is decided, the reconciler edits the message with `restore_approval_outcome`:
the same facts, the buttons gone, and who decided.

The action ids are constants the Bolt listeners register; each button's `value` is the
restore record's id, the only thing the listener needs to find the request again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from k8s.backup_views import BackupSummary
from k8s.restore_plan import OFFLINE_EFFECTS
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
)

from ..views import RestoreView, restore_view
from .kit import (
    Block,
    Message,
    actions,
    ago,
    bullets,
    button,
    code,
    confirm_dialog,
    context,
    count,
    duration,
    esc,
    field,
    header,
    message,
    quote,
    section,
    user,
    utc,
    when,
)

APPROVE_ACTION = "ragbot.restore.approve"
REJECT_ACTION = "ragbot.restore.reject"
APPROVAL_BLOCK = "ragbot.restore.approval"
ACTION_IDS = (APPROVE_ACTION, REJECT_ACTION)


def offline_lines(namespaces: tuple[str, ...]) -> list[str]:
    """`*auth*: Keycloak user logins` for each namespace, known effects first named."""
    return [
        f"{code(ns, 63)}: {OFFLINE_EFFECTS[ns]}" if ns in OFFLINE_EFFECTS
        else f"{code(ns, 63)}: everything in it"
        for ns in namespaces
    ]  # fmt: skip


def _backup_facts(
    v: RestoreView, backup: BackupSummary | None, resource_items: int | None, now: datetime
) -> str:
    facts = []
    if backup is not None and (backup.completed or backup.created):
        moment = backup.completed or backup.created
        facts.append(f"completed {ago(moment, now)}, {when(moment)}")
    items = resource_items if resource_items is not None else (
        backup.items_backed_up if backup is not None and backup.items_backed_up else None
    )  # fmt: skip
    if items is not None:
        facts.append(f"{count(items, 'item')} in its resource list")
    return f" ({'; '.join(facts)})" if facts else ""


def _body(
    v: RestoreView, *, now: datetime, backup: BackupSummary | None,
    last_restore: timedelta | None, resource_items: int | None, decided: bool = False,
) -> list[Block]:  # fmt: skip
    ask = (f"{user(v.requester)} asks to restore backup {code(v.backup)}"
           f"{_backup_facts(v, backup, resource_items, now)}.")  # fmt: skip
    why = f"\n*Reason*\n{quote(v.reason)}" if v.reason.strip() else "\n_No reason given._"
    blocks: list[Block] = [section(ask + why)]
    if v.offline:
        cleanup = []
        if v.releases:
            cleanup.append(f"{count(len(v.releases), 'Helm release')} uninstalled")
        if v.pvcs:
            cleanup.append(f"{count(v.pvcs, 'PVC')} deleted")
        first = f"First {' and '.join(cleanup)}, then" if cleanup else "Then"
        text = ("*Goes offline until the restore finishes*\n"
                + bullets(offline_lines(v.offline), max_items=20, escape=False)
                + f"\n{first} Velero restores the backup and ragbot waits for every pod.")  # fmt: skip
    else:
        text = "*Nothing is removed first*: Velero restores the backup over what is there."
    blocks.append(section(text))
    if v.plan_warnings:
        blocks.append(section("*Warnings from the plan*\n"
                              + bullets(v.plan_warnings, max_items=10, max_chars=2000)))  # fmt: skip
    estimate = (f"about {duration(last_restore)} (the last restore)" if last_restore
                else "unknown (no earlier restore)")  # fmt: skip
    expires = f"{when(v.expires)} ({ago(v.expires, now)})" if v.expires else "never"
    blocks.append(section(fields=[
        field("Expected downtime", estimate),
        "" if decided else field("Request expires", expires),
        field("Steps", str(len(v.steps))),
        field("Request", code(v.id, 100)),
    ]))  # fmt: skip
    return blocks


def _confirm(v: RestoreView, last_restore: timedelta | None) -> Block:
    offline = ", ".join(v.offline) or "nothing"
    how_long = f" (about {duration(last_restore)})" if last_restore else ""
    text = (f"Restore backup {v.backup} now? Offline until it finishes{how_long}: {offline}. "
            "This cannot be undone.")  # fmt: skip
    return confirm_dialog("Approve this restore?", text, "Approve and start", "Cancel")


def restore_approval_request(
    record: RestoreRecord, *, now: datetime, backup: BackupSummary | None = None,
    last_restore: timedelta | None = None, resource_items: int | None = None,
    allow_self_approval: bool = False,
) -> Message:  # fmt: skip
    """The channel message asking for approval, with Approve (confirmed) and Reject."""
    v = restore_view(record)
    blocks = [header("Restore requested: approval needed")]
    blocks += _body(v, now=now, backup=backup, last_restore=last_restore,
                    resource_items=resource_items)  # fmt: skip
    blocks.append(actions(
        APPROVAL_BLOCK,
        button("Approve", APPROVE_ACTION, v.id, style="primary", confirm=_confirm(v, last_restore)),
        button("Reject", REJECT_ACTION, v.id, style="danger"),
    ))  # fmt: skip
    who = ("any approver in ragbot.access.approve" if allow_self_approval
           else "an approver in ragbot.access.approve other than the requester")  # fmt: skip
    blocks.append(context(f"Needs {who}."))
    fallback = (f"{user(v.requester)} asks to restore backup {esc(v.backup)}; approval needed "
                f"before {utc(v.expires)}")  # fmt: skip
    return message(fallback, blocks)


def outcome_line(v: RestoreView, by: str = "") -> tuple[str, str]:
    """(mrkdwn line, plain fallback) saying how the request was decided."""
    if v.state in (APPROVED, RUNNING, SUCCEEDED, FAILED):
        who = by or v.approver
        after = {APPROVED: "the restore is starting", RUNNING: "the restore is running",
                 SUCCEEDED: "the restore has finished", FAILED: "the restore has ended"}[v.state]  # fmt: skip
        return (f":white_check_mark: *Approved by {user(who)}*; {after}.",
                f"Restore of {esc(v.backup)} approved by {user(who)}")  # fmt: skip
    if v.state == REJECTED:
        who = by or v.decided_by
        by_whom = f" by {user(who)}" if who else ""
        return (f":no_entry_sign: *Rejected{by_whom}*. Nothing was changed.",
                f"Restore of {esc(v.backup)} rejected{by_whom}")  # fmt: skip
    if v.state == EXPIRED:
        at = f" at {when(v.expires)}" if v.expires else ""
        return (f":hourglass: *Expired{at}* without approval. Nothing was changed; "
                "`/ragrestore` asks again.", f"Restore request for {esc(v.backup)} expired")  # fmt: skip
    if v.state == CANCELLED:
        who = by or v.decided_by
        by_whom = f" by {user(who)}" if who else ""
        return (f":heavy_multiplication_x: *Cancelled{by_whom}*. Nothing was changed.",
                f"Restore request for {esc(v.backup)} cancelled{by_whom}")  # fmt: skip
    if v.state == PENDING:
        return (f":hourglass_flowing_sand: *Waiting for approval* until {when(v.expires)}.",
                f"Restore request for {esc(v.backup)} waiting for approval")  # fmt: skip
    return (f"State: {esc(v.state or 'unknown')}.", f"Restore request {esc(v.id)}: {esc(v.state)}")


def restore_approval_outcome(
    record: RestoreRecord, *, now: datetime, by: str = "", backup: BackupSummary | None = None,
    last_restore: timedelta | None = None, resource_items: int | None = None,
) -> Message:  # fmt: skip
    """The request message once decided: the facts kept, the buttons gone, who decided.

    `by` names who decided when the record does not (`approver`, `rejected_by`,
    `cancelled_by`).
    """
    v = restore_view(record)
    line, fallback = outcome_line(v, by)
    blocks = [header("Restore request"), section(line)]
    blocks += _body(v, now=now, backup=backup, last_restore=last_restore,
                    resource_items=resource_items, decided=True)  # fmt: skip
    blocks.append(context(f"Requested by {user(v.requester)} {ago(v.created, now)}"))
    return message(fallback, blocks)


__all__ = [
    "ACTION_IDS",
    "APPROVAL_BLOCK",
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "offline_lines",
    "outcome_line",
    "restore_approval_outcome",
    "restore_approval_request",
]
