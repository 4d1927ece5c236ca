"""Backup messages: live progress, the announcement, `list`, `status` and `check`.

One progress message per backup is edited as Velero moves (so the channel is not flooded),
and the result is announced once; both are made here from a `BackupSummary`, as are the
answers to `/ragbackup list|status|check`. A failed backup's announcement carries
Velero's own words (failure reason, validation errors, the BackupResults lists when the
caller fetched them) and what to do next, because "Failed" alone sends someone digging
through logs at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from k8s.backup_views import BackupSummary
from k8s.preflight import FAILURE, OK, WARNING, CheckResult

from ..views import VeleroResults
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
    header,
    message,
    one_line,
    paragraphs,
    quote,
    section,
    user,
    when,
)

PHASE_EMOJI = {
    "Completed": ":white_check_mark:",
    "PartiallyFailed": ":warning:",
    "Failed": ":x:",
    "FailedValidation": ":x:",
    "Deleting": ":wastebasket:",
}
RUNNING_EMOJI = ":hourglass_flowing_sand:"
TRIGGER_SHORT = {"slack": "Slack", "schedule": "schedule", "cli": "CLI", "": "not ragbot"}
TRIGGERS = {
    "slack": "from Slack",
    "schedule": "by the schedule",
    "cli": "from the ragbot CLI",
    "": "outside ragbot (playbook, velero CLI or a Velero Schedule)",
}


def _emoji(phase: str) -> str:
    return PHASE_EMOJI.get(phase, RUNNING_EMOJI)


def _phase(b: BackupSummary) -> str:
    return esc(b.phase or "New")


def _origin(b: BackupSummary) -> str:
    """`Requested by @x from Slack`, or `Made by the schedule`."""
    made = TRIGGERS.get(b.trigger, f"by trigger {one_line(b.trigger, 40)}")
    return f"Requested by {user(b.requester)} {made}" if b.requester else f"Made {made}"


def _items(b: BackupSummary) -> str:
    if not b.items_total and not b.items_backed_up:
        return "not counted yet"
    meter = bar(b.items_backed_up, b.items_total)
    return f"{b.items_backed_up:,} / {b.items_total:,}" + (f"\n`{meter}`" if meter else "")


def _csi(b: BackupSummary) -> str:
    if not b.csi_snapshots_attempted:
        return "none yet" if b.running else "none"
    return f"{b.csi_snapshots_completed} / {b.csi_snapshots_attempted}"


def _note(b: BackupSummary) -> list[Block]:
    return [section("*Note*\n" + quote(b.note, 1500))] if b.note.strip() else []


def _footer(b: BackupSummary) -> Block:
    parts = [_origin(b)]
    if b.started or b.created:
        parts.append(f"started {when(b.started or b.created)}")
    if b.namespace:
        parts.append(f"namespace {code(b.namespace, 63)}")
    return context(" · ".join(parts))


def backup_progress(b: BackupSummary, *, now: datetime) -> Message:
    """The one message kept current while the backup runs (and left on its final phase)."""
    state = "running" if b.running else _phase(b)
    title = f"{_emoji(b.phase)} *Backup {code(b.name)}* is {state}"
    elapsed = duration(b.elapsed(now))
    fields = [
        field("Phase", _phase(b)),
        field("Items backed up", _items(b)),
        field("CSI snapshots", _csi(b)),
        field("Elapsed" if b.running else "Took", elapsed),
    ]
    if b.errors or b.warnings:
        fields.append(field("Errors / warnings", f"{b.errors} / {b.warnings}"))
    blocks = [section(title, fields=fields), *_note(b), _footer(b)]
    progress = f", {b.progress_text} items" if b.progress_text else ""
    return message(f"Backup {esc(b.name)}: {_phase(b)}{progress}, {elapsed}", blocks)


# ------------------------------------------------------------------------ the result


def _lists(b: BackupSummary, results: VeleroResults | None) -> list[Block]:
    blocks: list[Block] = []
    if b.failure_reason:
        blocks.append(section("*Failure reason*\n" + quote(b.failure_reason, 2000)))
    if b.validation_errors:
        blocks.append(section("*Validation errors*\n" + bullets(b.validation_errors, max_items=15)))
    if results and results.errors:
        blocks.append(section(f"*Errors* ({len(results.errors):,})\n"
                              + bullets(results.errors, max_items=15, max_chars=2400)))  # fmt: skip
    elif b.errors:
        blocks.append(section(f"*Errors*: Velero counted {b.errors:,}; `velero backup describe "
                              f"{esc(b.name)} -n {esc(b.namespace or 'velero')} --details` "
                              "lists them."))  # fmt: skip
    if results and results.warnings:
        blocks.append(section(f"*Warnings* ({len(results.warnings):,})\n"
                              + bullets(results.warnings, max_items=10, max_chars=1800)))  # fmt: skip
    return blocks


def next_steps(b: BackupSummary) -> str:
    """What to do after a backup that did not complete (mrkdwn)."""
    name, ns = code(b.name), esc(b.namespace or "velero")
    details = (f"`velero backup describe {esc(b.name)} -n {ns} --details` and "
               f"`velero backup logs {esc(b.name)} -n {ns}`")  # fmt: skip
    if b.phase == "PartiallyFailed":
        return ("*What to do next*\nThe backup is usable, but a restore from it will not bring "
                f"back what failed. Read every message with {details}, fix the cause, then "
                "run `/ragbackup now`.")  # fmt: skip
    if b.phase == "FailedValidation":
        return ("*What to do next*\nVelero refused the Backup before saving anything. Fix what "
                "the validation errors say (usually the storage location: `/ragbackup check` "
                f"shows it), then run `/ragbackup now`. {name} can be deleted.")  # fmt: skip
    return ("*What to do next*\nNothing usable was saved. `/ragbackup check` finds the usual "
            "causes (storage location, snapshot class, Velero pod); the details are in "
            f"{details}. Then run `/ragbackup now`.")  # fmt: skip


def backup_result(
    b: BackupSummary, *, now: datetime, results: VeleroResults | None = None
) -> Message:
    """The announcement of a finished backup, posted once (in the thread and the channel)."""
    took = duration(b.elapsed(now))
    csi = (f", {b.csi_snapshots_completed} of {b.csi_snapshots_attempted} CSI snapshots"
           if b.csi_snapshots_attempted else "")  # fmt: skip
    items = count(b.items_backed_up, "item")
    if b.succeeded:
        warn = f", {count(b.warnings, 'warning')}" if b.warnings else ""
        title = f"{_emoji(b.phase)} *Backup {code(b.name)} completed* in {took}: {items}{csi}{warn}."
        fallback = f"Backup {esc(b.name)} completed in {took}: {items}{warn}"
        blocks = [section(title)]
        if results and results.warnings:
            blocks += _lists(BackupSummary(name=b.name), VeleroResults(warnings=results.warnings))
        if b.expires:
            blocks.append(context(f"Kept until {when(b.expires)}"))
    else:
        what = {"PartiallyFailed": "partially failed", "FailedValidation": "failed validation"}.get(
            b.phase, esc(b.phase.lower() or "failed")
        )
        counts = f"{count(b.errors, 'error')}, {count(b.warnings, 'warning')}"
        total = f"{b.items_backed_up:,} of {b.items_total:,} items" if b.items_total else items
        title = f"{_emoji(b.phase)} *Backup {code(b.name)} {what}* after {took}: {total}{csi}, {counts}."
        fallback = f"Backup {esc(b.name)} {what} after {took}: {counts}"
        blocks = [section(title), *_lists(b, results), section(next_steps(b))]
    blocks += [*_note(b), _footer(b)]
    return message(fallback, blocks)


# --------------------------------------------------------------------- list and status


def _line(b: BackupSummary, now: datetime) -> str:
    moment = b.completed or b.started or b.created
    parts = [f"{_emoji(b.phase)} {code(b.name, 100)}", _phase(b), ago(moment, now)]
    if b.items_total or b.items_backed_up:
        parts.append(count(b.items_backed_up, "item"))
    if b.terminal:
        parts.append(duration(b.elapsed(now)))
    parts.append(TRIGGER_SHORT.get(b.trigger) or one_line(b.trigger, 40))
    if b.note:
        parts.append(f"_{one_line(b.note, 60)}_")
    return " · ".join(parts)


def backup_list(
    backups: Sequence[BackupSummary], *, now: datetime, total: int | None = None,
    namespace: str = "velero",
) -> Message:  # fmt: skip
    """`/ragbackup list [n]`: newest first, one line each."""
    if not backups:
        text = (f"No backups in namespace {code(namespace, 63)} yet. `/ragbackup now` makes one; "
                "`/ragbackup check` says whether it can.")  # fmt: skip
        return message(f"No backups in namespace {esc(namespace)} yet", [section(text)])
    shown = f"{len(backups)} of {total}" if total and total > len(backups) else str(len(backups))
    title = f"*Backups* in {code(namespace, 63)}, newest first ({shown})"
    blocks = [section(title), *paragraphs([_line(b, now) for b in backups])]
    blocks.append(context(esc("`/ragbackup status <name>` shows one in detail")))
    newest = backups[0]
    return message(f"{len(backups)} backups; newest {esc(newest.name)} {_phase(newest)}", blocks)


def backup_status(
    b: BackupSummary, *, now: datetime, results: VeleroResults | None = None
) -> Message:
    """`/ragbackup status [name]`: one backup in detail."""
    fields = [
        field("Phase", f"{_emoji(b.phase)} {_phase(b)}"),
        field("Items backed up", _items(b)),
        field("CSI snapshots", _csi(b)),
        field("Errors / warnings", f"{b.errors} / {b.warnings}"),
        field("Created", when(b.created)),
        field("Completed" if b.completed else "Started",
              when(b.completed or b.started) + f" ({duration(b.elapsed(now))})"),
        field("Expires", when(b.expires) if b.expires else "never"),
        field("Storage location", esc(b.storage_location or "Velero's default")),
        field("Made", TRIGGERS.get(b.trigger, f"by trigger {one_line(b.trigger, 40)}")),
        field("Requested by", user(b.requester) if b.requester else "unknown"),
    ]  # fmt: skip
    blocks: list[Block] = [header(f"Backup {b.name}"), section(fields=fields)]
    blocks += _note(b)
    blocks += _lists(b, results)
    if b.terminal and not b.succeeded:
        blocks.append(section(next_steps(b)))
    return message(f"Backup {esc(b.name)}: {_phase(b)}", blocks)


# ---------------------------------------------------------------------------- check

CHECK_EMOJI = {OK: ":white_check_mark:", WARNING: ":warning:", FAILURE: ":x:"}


def check_report(results: Sequence[CheckResult]) -> Message:
    """`/ragbackup check`: failures and warnings with their fixes; passes in one line."""
    failures = [r for r in results if r.status == FAILURE]
    warnings = [r for r in results if r.status == WARNING]
    passed = [r for r in results if r.status == OK]
    if failures:
        title = (f":x: *Not ready for a backup*: {count(len(failures), 'failure')}, "
                 f"{count(len(warnings), 'warning')}")  # fmt: skip
        fallback = f"Not ready for a backup: {count(len(failures), 'failure')}"
    elif warnings:
        title = f":warning: *Ready for a backup, with {count(len(warnings), 'warning')}*"
        fallback = f"Ready for a backup, with {count(len(warnings), 'warning')}"
    else:
        title = f":white_check_mark: *Ready for a backup*: all {len(results)} checks passed"
        fallback = f"Ready for a backup: all {len(results)} checks passed"
    lines = []
    for r in [*failures, *warnings]:
        line = f"{CHECK_EMOJI[r.status]} *{one_line(r.item, 80)}*: {one_line(r.detail, 600)}"
        if r.fix:
            line += f"\n      _Fix:_ {one_line(r.fix, 600)}"
        lines.append(line)
    blocks = [section(title), *paragraphs(lines)]
    if passed:
        names = ", ".join(one_line(r.item, 60) for r in passed)
        blocks.append(context(f":white_check_mark: Passed: {names}"))
    return message(fallback, blocks)


__all__ = [
    "backup_list",
    "backup_progress",
    "backup_result",
    "backup_status",
    "check_report",
    "next_steps",
]
