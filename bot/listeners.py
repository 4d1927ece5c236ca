"""The `/ragbackup` and `/ragrestore` listeners: parse, authorize, record intent, answer.

Slack waits 3 s for an ack. Parsing and help are pure and answered at once. Anything
that touches Slack (user groups) or the cluster runs in a pool thread; if it finishes
within `ack_budget` its answer is the ack itself, otherwise the ack says "working on
it" and the answer follows through `respond` (response_url). Every outcome is an
ephemeral message from handlers.blocks; exceptions become `explain_error`, never a
silent failure or a traceback. Long work (following a backup, running a restore, the
approval message in the channel) is left to the reconciler, which watches what these
listeners write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from handlers import commands as C
from handlers.access import authorize
from handlers.blocks import (
    backup_list,
    backup_started,
    backup_status,
    check_report,
    explain_error,
    help_message,
    refusal,
    restore_cancelled,
    restore_list,
    restore_requested,
    restore_status,
    usage_error,
)
from handlers.blocks.kit import Message
from handlers.extra_notices import working
from k8s import backups as B
from k8s.preflight import FAILURE, run_checks
from k8s.restore_lock import BackupRunning, RestoreInProgress, restore_in_progress, running_backup
from k8s.restore_plan import build_plan
from k8s.restore_record import (
    APPROVED,
    CANCELLED,
    PENDING,
    RecordNotFound,
    create_record,
    get_record,
    list_records,
    transition,
)

from .reconciler_backups import backup_results

if TYPE_CHECKING:
    from .app import BotContext

log = logging.getLogger("ragbot.listeners")

DOING = {
    "/ragbackup now": "start a backup", "/ragbackup list": "list the backups",
    "/ragbackup status": "show the backup", "/ragbackup check": "check the cluster",
    "/ragbackup schedule": "change the schedule", "/ragrestore latest": "request a restore",
    "/ragrestore <backup>": "request a restore", "/ragrestore status": "show the restore",
    "/ragrestore list": "list the restores", "/ragrestore cancel": "cancel the restore request",
}  # fmt: skip
MAX_RESTORES_LISTED = 15


def _ephemeral(msg: Message) -> dict[str, Any]:
    return {"text": msg["text"], "blocks": msg.get("blocks"), "response_type": "ephemeral"}


def on_command(ctx: BotContext, ack: Callable[..., Any], command: dict[str, Any],
               respond: Callable[..., Any]) -> None:  # fmt: skip
    started = time.monotonic()
    line = f"{command.get('command', '')} {command.get('text', '')}".strip()
    parsed = C.parse(str(command.get("command", "")), str(command.get("text", "")))
    if isinstance(parsed, C.UsageError):
        _count(ctx, parsed.command, "", "usage-error")
        ctx.timed_ack(ack, "usage-error", started, **_ephemeral(usage_error(parsed)))
        return
    if isinstance(parsed.args, C.Help):
        _count(ctx, parsed.command, parsed.verb, "help")
        ctx.timed_ack(ack, parsed.key, started, **_ephemeral(help_message(parsed.command)))
        return
    user, channel = str(command.get("user_id", "")), str(command.get("channel_id", ""))
    future = ctx.pool.submit(_answer, ctx, parsed, user, channel)
    try:
        answer = future.result(timeout=ctx.ack_budget)
    except FutureTimeout:
        ctx.timed_ack(ack, parsed.key, started, **_ephemeral(working(line)))
        answer = future.result()
        respond(**_ephemeral(answer), replace_original=False)
        return
    ctx.timed_ack(ack, parsed.key, started, **_ephemeral(answer))


def _answer(ctx: BotContext, parsed: C.ParsedCommand, user: str, channel: str) -> Message:
    """The ephemeral answer to a parsed command (never raises)."""
    doing = DOING.get(parsed.key, "do that")
    try:
        if parsed.permission != "none":
            decision = authorize(parsed.permission, user, channel, ctx.cfg.ragbot.access, ctx.groups)
            if not decision.allowed:
                _count(ctx, parsed.command, parsed.verb, "denied")
                return refusal(decision, what=doing)
        answer = _run(ctx, parsed.args, user)
        _count(ctx, parsed.command, parsed.verb, "ok")
        return answer
    except Exception as err:
        _count(ctx, parsed.command, parsed.verb, "error")
        log.warning("%s by %s failed: %s", parsed.key, user, err, exc_info=not _expected(err))
        return explain_error(err, doing=doing)


def _count(ctx: BotContext, command: str, verb: str, outcome: str) -> None:
    """ragbot_commands_total, when the bot was given metrics (`ctx.metrics`)."""
    metrics = getattr(ctx, "metrics", None)
    if metrics is not None:
        metrics.command(command, verb, outcome)


def _expected(err: BaseException) -> bool:
    from k8s.errors import ClusterError

    return isinstance(err, ClusterError)


def _run(ctx: BotContext, args: C.Args, user: str) -> Message:
    cfg, cluster, now = ctx.cfg, ctx.cluster, ctx.now()
    if isinstance(args, C.BackupNow):
        return _backup_now(ctx, args, user)
    if isinstance(args, C.BackupList):
        found = B.list_backups(cluster, cfg)
        return backup_list(found[: args.count], now=now, total=len(found),
                           namespace=cfg.velero.namespace)  # fmt: skip
    if isinstance(args, C.BackupStatus):
        if args.name:
            b = B.describe_backup(cluster, cfg, args.name)
        else:
            newest = B.list_backups(cluster, cfg)
            if not newest:
                return backup_list([], now=now, namespace=cfg.velero.namespace)
            b = newest[0]
        results = None
        if b.terminal and (not b.succeeded or b.warnings):
            results = backup_results(cluster, cfg, b, timeout=ctx.ack_budget)
        return backup_status(b, now=now, results=results)
    if isinstance(args, C.BackupCheck):
        return check_report(run_checks(cluster, cfg))
    if isinstance(args, C.Schedule):
        from .scheduler import schedule_answer

        return schedule_answer(cluster, cfg, ctx.client, args.action, user, now)
    if isinstance(args, C.RestoreRequest):
        return _restore_request(ctx, args, user)
    if isinstance(args, C.RestoreStatus):
        if args.record_id:
            record = get_record(cluster, cfg, args.record_id)
        else:
            records = list_records(cluster, cfg)
            if not records:
                return restore_list([], now=now)
            record = records[0]
        return restore_status(record, now=now)
    if isinstance(args, C.RestoreList):
        return restore_list(list_records(cluster, cfg)[:MAX_RESTORES_LISTED], now=now)
    if isinstance(args, C.RestoreCancel):
        record = get_record(cluster, cfg, args.record_id)
        record = transition(cluster, record, [PENDING, APPROVED], CANCELLED, cancelled_by=user)
        return restore_cancelled(record)
    raise RecordNotFound(f"no handler for {type(args).__name__}")


def _backup_now(ctx: BotContext, args: C.BackupNow, user: str) -> Message:
    cfg, cluster = ctx.cfg, ctx.cluster
    B.require_enabled(cfg)
    holder = restore_in_progress(cluster, cfg)
    if holder:
        raise RestoreInProgress(holder)
    running = B.running_backups(cluster, cfg)
    if running:
        raise B.BackupInProgress(f"backup {running[0].name} is still running", running=running[0].name)
    results = run_checks(cluster, cfg)
    if any(r.status == FAILURE for r in results):
        return check_report(results)
    obj = B.create_backup(cluster, cfg, trigger="slack", requester=user, note=args.note)
    return backup_started(str(obj["metadata"]["name"]), channel=cfg.ragbot.slack.channel)


def _restore_request(ctx: BotContext, args: C.RestoreRequest, user: str) -> Message:
    cfg, cluster = ctx.cfg, ctx.cluster
    B.require_enabled(cfg)
    holder = restore_in_progress(cluster, cfg)
    if holder:
        raise RestoreInProgress(holder)
    backup = running_backup(cluster, cfg)
    if backup:
        raise BackupRunning(backup)
    obj = B.resolve_backup(cluster, cfg, args.backup)
    plan = build_plan(cluster, cfg, obj)
    record = create_record(cluster, cfg, plan, requester=user, reason=args.reason,
                           trigger="slack", state=PENDING, now=ctx.now)  # fmt: skip
    return restore_requested(record, channel=cfg.ragbot.slack.channel)
