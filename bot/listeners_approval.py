"""The Approve and Reject buttons on a restore request.

The click is acked at once (a button needs no ack body); the decision is then an
optimistic-concurrency transition of the record (k8s.restore_record.transition), so a
double click, two approvers at the same moment, or a click after expiry or cancel
changes nothing twice: the loser gets an ephemeral "already decided" saying how. The
channel message is not edited here: the reconciler sees the record change and renders
it (buttons gone, who decided), the same way after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from handlers.access import Decision, authorize, can_approve
from handlers.blocks import approval_done, approval_recorded, explain_error, refusal
from handlers.blocks.kit import Message
from k8s.restore_record import APPROVED, PENDING, REJECTED, StateConflict, get_record, transition

if TYPE_CHECKING:
    from .app import BotContext

log = logging.getLogger("ragbot.listeners.approval")


def _tell(respond: Callable[..., Any], msg: Message) -> None:
    respond(text=msg["text"], blocks=msg.get("blocks"), response_type="ephemeral",
            replace_original=False)  # fmt: skip


def on_approve(ctx: BotContext, ack: Callable[..., Any], body: dict[str, Any],
               respond: Callable[..., Any]) -> None:  # fmt: skip
    ack()
    _decide(ctx, body, respond, approve=True)


def on_reject(ctx: BotContext, ack: Callable[..., Any], body: dict[str, Any],
              respond: Callable[..., Any]) -> None:  # fmt: skip
    ack()
    _decide(ctx, body, respond, approve=False)


def _may_reject(ctx: BotContext, user: str, requester: str) -> Decision:
    """Approvers may reject; so may the requester (withdrawing the request)."""
    if user == requester:
        return Decision(True, "requester", "the requester may withdraw the request")
    return authorize("approve", user, None, ctx.cfg.ragbot.access, ctx.groups)


def _decide(ctx: BotContext, body: dict[str, Any], respond: Callable[..., Any], *,
            approve: bool) -> None:  # fmt: skip
    user = str((body.get("user") or {}).get("id", ""))
    actions = body.get("actions") or [{}]
    record_id = str(actions[0].get("value", ""))
    what = "approve this restore" if approve else "reject this restore"
    try:
        record = get_record(ctx.cluster, ctx.cfg, record_id)
        requester = str(record.data.get("requester", ""))
        decision = (can_approve(user, requester, ctx.cfg.ragbot.access, ctx.groups) if approve
                    else _may_reject(ctx, user, requester))  # fmt: skip
        if not decision.allowed:
            _tell(respond, refusal(decision, what=what))
            return
        try:
            if approve:
                record = transition(ctx.cluster, record, [PENDING], APPROVED, now=ctx.now,
                                    approver=user)  # fmt: skip
            else:
                record = transition(ctx.cluster, record, [PENDING], REJECTED, now=ctx.now,
                                    rejected_by=user)  # fmt: skip
        except StateConflict as err:
            record = get_record(ctx.cluster, ctx.cfg, record_id)
            # Still pending means it expired and the reconciler has not said so yet.
            _tell(respond, explain_error(err, doing=what) if record.state == PENDING
                  else approval_done(record))  # fmt: skip
            return
        _tell(respond, approval_recorded(record, approved=approve, now=ctx.now()))
    except Exception as err:
        log.warning("%s of %s by %s failed: %s", what, record_id, user, err)
        _tell(respond, explain_error(err, doing=what))
