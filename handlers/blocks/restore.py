"""Restore messages: live progress, the announcement, `list` and `status`.

A restore runs for tens of minutes with the application offline, and the people waiting
want to know two things: how far it is, and, if it stops, what state it left the
application in and what to do now. Progress shows every step of the plan with its
status (collapsing finished ones when the plan is long), Velero's phase and items
restored; a failure names the step, Velero's or Kubernetes' reason, the application's
state as the executor recorded it, and the way to carry on from the failed step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from k8s.restore_plan import CLEANUP_ACTIONS, PVC_DELETE, WAIT_READY, WAIT_VELERO
from k8s.restore_record import (
    APPROVED,
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    REJECTED,
    RUNNING,
    STEP_DONE,
    STEP_FAILED,
    STEP_RUNNING,
    SUCCEEDED,
    RestoreRecord,
)

from ..views import RestoreView, StepView, VeleroResults, restore_view
from .approval import outcome_line
from .kit import (
    Block,
    Message,
    ago,
    bar,
    bullets,
    code,
    context,
    count,
    duration,
    esc,
    field,
    message,
    one_line,
    paragraphs,
    quote,
    section,
    user,
)

STEP_MARK = {
    STEP_DONE: ":white_check_mark:",
    STEP_RUNNING: ":arrow_forward:",
    STEP_FAILED: ":x:",
}
PENDING_MARK = ":white_small_square:"
STATE_EMOJI = {
    PENDING: ":hourglass_flowing_sand:", APPROVED: ":arrows_counterclockwise:",
    RUNNING: ":arrows_counterclockwise:", SUCCEEDED: ":white_check_mark:", FAILED: ":x:",
    REJECTED: ":no_entry_sign:", EXPIRED: ":hourglass:", CANCELLED: ":heavy_multiplication_x:",
}  # fmt: skip
#: Plans longer than this show finished steps as one line.
FULL_PLAN_STEPS = 20


def _step_line(i: int, s: StepView, detail: str = "") -> str:
    mark = STEP_MARK.get(s.status, PENDING_MARK)
    line = f"{mark} {i}. {one_line(s.title or s.key, 150)}"
    extra = detail or (s.detail if s.status in (STEP_RUNNING, STEP_FAILED) else "")
    if extra:
        line += f"\n        _{one_line(extra, 300)}_"
    return line


def step_lines(v: RestoreView, detail: str = "") -> list[str]:
    """One line per step; in a long plan, finished steps before the current one collapse."""
    cur = v.current()
    index = cur[0] if cur else len(v.steps) + 1
    lines: list[str] = []
    start = 1
    if len(v.steps) > FULL_PLAN_STEPS and index > 3:
        start = index - 2
        lines.append(f"{STEP_MARK[STEP_DONE]} 1-{start - 1}. {count(start - 1, 'step')} done")
    for i, s in enumerate(v.steps[start - 1 :], start):
        lines.append(_step_line(i, s, detail if cur and i == cur[0] else ""))
    return lines


def _velero(v: RestoreView) -> str:
    if not v.velero_restore:
        return ""
    phase = esc(v.velero_phase or "New")
    items = ""
    if v.items_total:
        items = f"\n{v.items_restored:,} / {v.items_total:,} items `{bar(v.items_restored, v.items_total)}`"
    return field("Velero Restore", f"{code(v.velero_restore, 100)} {phase}{items}")


def _people(v: RestoreView) -> str:
    parts = [f"Requested by {user(v.requester)}"]
    if v.approver:
        parts.append(f"approved by {user(v.approver)}")
    parts.append(f"request {code(v.id, 100)}")
    return " · ".join(parts)


def restore_progress(
    record: RestoreRecord, *, now: datetime, velero_status: Mapping[str, Any] | None = None,
    detail: str = "",
) -> Message:  # fmt: skip
    """The one message kept current while the restore runs (left on its final state).

    `velero_status`: the live Velero Restore's status, fresher than the record's copy;
    `detail`: what the running step reports now (e.g. the executor's readiness summary).
    """
    v = restore_view(record).with_velero(velero_status)
    cur = v.current()
    n = len(v.steps)
    if v.state == SUCCEEDED:
        title = f"{STATE_EMOJI[SUCCEEDED]} *Restore of backup {code(v.backup)} finished*"
    elif v.state == FAILED:
        where = f" at step {cur[0]} of {n}" if cur else ""
        title = f"{STATE_EMOJI[FAILED]} *Restore of backup {code(v.backup)} failed*{where}"
    elif cur and v.state == RUNNING:
        title = (f"{STATE_EMOJI[RUNNING]} *Restoring backup {code(v.backup)}*: step {cur[0]} "
                 f"of {n}, {one_line(cur[1].title, 150)}")  # fmt: skip
    elif v.state == APPROVED:
        title = f"{STATE_EMOJI[APPROVED]} *Restore of backup {code(v.backup)} approved*: starting"
    else:
        title = f"{STATE_EMOJI.get(v.state, '')} *Restore of backup {code(v.backup)}*: {esc(v.state)}"
    if v.started is None:
        timing = field("Started", "not yet")
    else:
        timing = field("Elapsed" if v.state == RUNNING else "Took", duration(v.elapsed(now)))
    fields = [field("Steps done", f"{v.done} of {n}"), timing, _velero(v)]
    blocks = [section(title.strip(), fields=fields), *paragraphs(step_lines(v, detail))]
    blocks.append(context(_people(v)))
    where = f"step {cur[0]} of {n}" if cur and v.state == RUNNING else esc(v.state)
    timing = duration(v.elapsed(now)) if v.started else "starting"
    return message(f"Restore of {esc(v.backup)}: {where}, {timing}", blocks)


# ------------------------------------------------------------------------ the result


def _failed_step(v: RestoreView) -> tuple[int, StepView] | None:
    for i, s in enumerate(v.steps, 1):
        if s.key == v.failed_step or (not v.failed_step and s.status == STEP_FAILED):
            return i, s
    return v.current()


def failure_next_steps(v: RestoreView, step: StepView | None) -> str:
    """What to do after a failed restore, by where it stopped (mrkdwn)."""
    resume = f"`ragbot restore resume {esc(v.id)} --retry`"
    again = f"`/ragrestore {esc(v.backup)}`" if v.backup else "`/ragrestore latest`"
    action = step.action if step else ""
    if action in (*CLEANUP_ACTIONS, PVC_DELETE):
        first = ("The application is partly uninstalled and nothing is restored yet. Fix the "
                 "cause (the reason above), then carry on from this step with " + resume +
                 f" (finished steps are not run again), or start over with {again}.")  # fmt: skip
    elif action == WAIT_VELERO and v.velero_restore:
        first = (f"Velero restored only part of the backup: `velero restore describe "
                 f"{esc(v.velero_restore)} --details` lists what failed. Fix it, then run "
                 f"{resume}, or restore again with {again}.")  # fmt: skip
    elif action == WAIT_READY:
        first = ("Everything was restored but some pods are not ready: look at them with "
                 "`kubectl get pods -A | grep -v Running`, fix the cause, then run "
                 f"{resume} to wait for readiness again.")  # fmt: skip
    else:
        first = f"Fix the cause, then run {resume}, or restore again with {again}."
    return f"*What to do next*\n{first}"


def restore_result(
    record: RestoreRecord, *, now: datetime, velero_status: Mapping[str, Any] | None = None,
    results: VeleroResults | None = None,
) -> Message:  # fmt: skip
    """The announcement of a finished restore, posted once."""
    v = restore_view(record).with_velero(velero_status)
    took = duration(v.elapsed(now))
    if v.state == SUCCEEDED:
        ready = next((s.detail for s in v.steps if s.action == WAIT_READY and s.detail), "")
        title = (f"{STATE_EMOJI[SUCCEEDED]} *Restore of backup {code(v.backup)} succeeded* in "
                 f"{took}: the application is ready.")  # fmt: skip
        lines = [title]
        if v.items_total:
            warn = f", {count(v.velero_warnings, 'warning')}" if v.velero_warnings else ""
            lines.append(f"Velero restored {v.items_restored:,} of {v.items_total:,} items{warn}.")
        if ready:
            text = one_line(ready, 500)
            lines.append(text[:1].upper() + text[1:] + ".")
        blocks: list[Block] = [section("\n".join(lines))]
        if results and results.warnings:
            blocks.append(section(f"*Velero warnings* ({len(results.warnings):,})\n"
                                  + bullets(results.warnings, max_items=10, max_chars=1800)))  # fmt: skip
        blocks.append(context(_people(v)))
        return message(f"Restore of {esc(v.backup)} succeeded in {took}", blocks)
    if v.state != FAILED:
        line, fallback = outcome_line(v)
        return message(fallback, [section(line), context(_people(v))])
    failed = _failed_step(v)
    step = failed[1] if failed else None
    where = f" at step {failed[0]} of {len(v.steps)}, {one_line(step.title, 150)}," if failed and step else ""
    blocks = [section(f"{STATE_EMOJI[FAILED]} *Restore of backup {code(v.backup)} failed*{where} "
                      f"after {took}.")]  # fmt: skip
    why = v.error or (step.detail if step else "") or "no reason was recorded"
    blocks.append(section("*Why*\n" + quote(why, 2000)))
    if v.failure_reason:
        blocks.append(section("*Velero's failure reason*\n" + quote(v.failure_reason, 1500)))
    if v.validation_errors:
        blocks.append(section("*Velero's validation errors*\n" + bullets(v.validation_errors, max_items=10)))
    if results and results.errors:
        blocks.append(section(f"*Velero errors* ({len(results.errors):,})\n"
                              + bullets(results.errors, max_items=15, max_chars=2400)))  # fmt: skip
    if v.application_state:
        blocks.append(section("*The application now*\n" + quote(v.application_state, 1500)))
    blocks.append(section(failure_next_steps(v, step)))
    blocks.append(context(_people(v)))
    return message(f"Restore of {esc(v.backup)} failed{where} after {took}", blocks)


# --------------------------------------------------------------------- list and status


def _line(v: RestoreView, now: datetime) -> str:
    parts = [f"{STATE_EMOJI.get(v.state, '')} {code(v.id, 100)}".strip(), esc(v.state or "?"),
             f"backup {code(v.backup, 100)}", f"by {user(v.requester)}", ago(v.created, now)]  # fmt: skip
    if v.started:
        parts.append(duration(v.elapsed(now)))
    if v.reason:
        parts.append(f"_{one_line(v.reason, 60)}_")
    return " · ".join(parts)


def restore_list(records: Sequence[RestoreRecord], *, now: datetime) -> Message:
    """`/ragrestore list`: newest first, one line each."""
    if not records:
        return message("No restores yet", [section(
            "No restore requests yet. `/ragrestore latest` asks to restore the latest backup.")])  # fmt: skip
    views = [restore_view(r) for r in records]
    blocks = [section(f"*Restores*, newest first ({len(views)})"),
              *paragraphs([_line(v, now) for v in views]),
              context(esc("`/ragrestore status <id>` shows one in detail"))]  # fmt: skip
    return message(f"{len(views)} restores; newest {esc(views[0].id)} {esc(views[0].state)}", blocks)


def restore_status(
    record: RestoreRecord, *, now: datetime, velero_status: Mapping[str, Any] | None = None,
) -> Message:
    """`/ragrestore status [id]`: the progress view while it runs, else how it ended."""
    v = restore_view(record)
    if v.state in (APPROVED, RUNNING):
        return restore_progress(record, now=now, velero_status=velero_status)
    if v.state in (SUCCEEDED, FAILED):
        return restore_result(record, now=now, velero_status=velero_status)
    line, fallback = outcome_line(v)
    reason = f"\n*Reason*\n{quote(v.reason)}" if v.reason.strip() else ""
    text = f"*Restore request {code(v.id, 100)}* for backup {code(v.backup)}\n{line}{reason}"
    return message(fallback, [section(text), context(_people(v))])


__all__ = [
    "failure_next_steps",
    "restore_list",
    "restore_progress",
    "restore_result",
    "restore_status",
    "step_lines",
]
