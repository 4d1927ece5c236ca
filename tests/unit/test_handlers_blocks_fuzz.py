"""Whatever people and Velero write, every builder's message stays within Slack's limits.

Hypothesis throws long and odd strings (markup, entities, `<!channel>`, emoji, NUL,
kilobytes of one character), 500-line Velero error lists and long plans at every
builder, and checks two things: `check_message(...) == []`, and that no `<` reaches
Slack except the ones ragbot means (`<@user>`, `<#channel>`, `<!date^…>`), so no note
or reason can ping a channel or forge a link.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from config.models import AccessConfig
from handlers import blocks as B
from handlers.access import authorize
from handlers.commands import parse
from handlers.limits import check_message
from handlers.views import ALERT_KINDS, Alert, ScheduleStatus, VeleroResults
from k8s.backup_views import BackupSummary
from k8s.errors import ClusterError
from k8s.preflight import CheckResult
from k8s.restore_record import RestoreRecord
from tests.unit.test_handlers_blocks import BACKUP, at, record

SPECIAL = ["<", ">", "&", "*", "_", "~", "`", "|", "!", "@", "#", ":", "\n", "\t", " ", "&amp;",
           "&lt;", "<!channel>", "<!here>", "<@U0ABC>", "<#C0ABC>", "<http://x|y>", "é", "🙂",
           "\u200b", "\x00", "```", "> ", "•"]  # fmt: skip
odd = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(SPECIAL) | st.text(max_size=3), max_size=40).map("".join),
    st.builds(lambda s, n: s * n, st.sampled_from(SPECIAL) | st.text(min_size=1, max_size=6),
              st.integers(100, 1200)),
)  # fmt: skip
many = st.builds(lambda s, n: tuple(f"{s} {i}" for i in range(n)), odd,
                 st.sampled_from([0, 1, 3, 25, 500]))  # fmt: skip
phase = st.sampled_from(["", "New", "InProgress", "Completed", "PartiallyFailed", "Failed",
                         "FailedValidation", "Deleting"]) | odd  # fmt: skip
count = st.integers(0, 10**7)
person = st.sampled_from(["U0REQUEST", "W0ABC", ""]) | odd
moment = st.none() | st.integers(-5000, 5000).map(lambda m: at(m))

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_MEANT = re.compile(r"<(?!@|#|!date\^)")


def mrkdwn_texts(obj: Any) -> Iterator[str]:
    """Every text Slack parses as markup (plain_text is shown as typed)."""
    if isinstance(obj, dict):
        if obj.get("type") == "mrkdwn":
            yield str(obj.get("text"))
        for value in obj.values():
            yield from mrkdwn_texts(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from mrkdwn_texts(item)


def fits(msg: dict[str, Any]) -> None:
    assert check_message(msg) == []
    for block in msg["blocks"]:
        assert Block.parse(block).to_dict() == block  # type: ignore[union-attr]
    for text in [msg["text"], *mrkdwn_texts(msg["blocks"])]:
        assert not _MEANT.search(text), text[:300]


@st.composite
def summaries(draw: st.DrawFn) -> BackupSummary:
    return BackupSummary(
        name=draw(odd), namespace=draw(odd), phase=draw(phase), items_backed_up=draw(count),
        items_total=draw(count), csi_snapshots_attempted=draw(count),
        csi_snapshots_completed=draw(count), errors=draw(count), warnings=draw(count),
        failure_reason=draw(odd), validation_errors=draw(many), created=draw(moment),
        started=draw(moment), completed=draw(moment), expires=draw(moment),
        storage_location=draw(odd), trigger=draw(st.sampled_from(["slack", "schedule", "cli", ""]) | odd),
        requester=draw(person), note=draw(odd),
    )  # fmt: skip


results = st.builds(VeleroResults, many, many) | st.none()


@given(summaries(), results, st.integers(0, 60), odd)
@FUZZ
def test_backup_builders(b: BackupSummary, res: VeleroResults | None, n: int, ns: str) -> None:
    now = at(30)
    fits(B.backup_progress(b, now=now))
    fits(B.backup_result(b, now=now, results=res))
    fits(B.backup_status(b, now=now, results=res))
    fits(B.backup_list([b] * n, now=now, total=n * 3, namespace=ns))
    fits(B.backup_started(b.name, channel=b.namespace))


@given(st.lists(st.builds(CheckResult, odd, st.sampled_from(["ok", "warning", "failure"]), odd, odd),
                max_size=40))  # fmt: skip
@FUZZ
def test_check_report(results_: list[CheckResult]) -> None:
    fits(B.check_report(results_))


@st.composite
def records(draw: st.DrawFn) -> RestoreRecord:
    state = draw(st.sampled_from(["pending-approval", "approved", "running", "succeeded",
                                  "failed", "rejected", "expired", "cancelled"]))  # fmt: skip
    kw: dict[str, Any] = {}
    if state in ("running", "failed"):
        kw = {"done": draw(st.integers(0, 16)), "running": state == "running"}
        if state == "failed":
            kw["fail"] = draw(odd) or "x"
    elif state == "succeeded":
        kw = {"done": 17}
    rec = record(state, reason=draw(odd), requester=draw(person), **kw)
    data = copy.deepcopy(dict(rec.data))
    data.update(backup=draw(odd), error=draw(odd), application_state=draw(odd),
                velero_restore=draw(odd), approver=draw(person), rejected_by=draw(person),
                cancelled_by=draw(person))  # fmt: skip
    data["velero"] = {"phase": draw(phase), "errors": draw(count), "failureReason": draw(odd),
                      "validationErrors": list(draw(many)),
                      "progress": {"itemsRestored": draw(count), "totalItems": draw(count)}}  # fmt: skip
    data["summary"].update(offline=list(draw(many)), warnings=list(draw(many)),
                           releases=list(draw(many)), pvcs=draw(count))  # fmt: skip
    steps = data["steps"]
    extra = draw(st.integers(0, 80))
    title = draw(odd)
    data["steps"] = [dict(s, title=title, detail=draw(odd)) for s in steps[:1]] * extra + steps
    return RestoreRecord(id=draw(odd) or "r", namespace="ragbot", resource_version="1", data=data,
                         annotations={})  # fmt: skip


@given(records(), results, st.none() | st.builds(lambda p, i: {"phase": p, "progress": {"itemsRestored": i}},
                                                 phase, count), odd, st.integers(0, 30))  # fmt: skip
@FUZZ
def test_restore_builders(
    rec: RestoreRecord, res: VeleroResults | None, velero: dict[str, Any] | None, detail: str,
    n: int,
) -> None:
    now = at(20)
    last = timedelta(minutes=23)
    fits(B.restore_approval_request(rec, now=now, backup=BackupSummary(name=BACKUP, completed=at(-90),
                                                                       items_backed_up=10**9),
                                    last_restore=last, resource_items=n))  # fmt: skip
    fits(B.restore_approval_outcome(rec, now=now, by=detail))
    fits(B.restore_progress(rec, now=now, velero_status=velero, detail=detail))
    fits(B.restore_result(rec, now=now, velero_status=velero, results=res))
    fits(B.restore_status(rec, now=now, velero_status=velero))
    fits(B.restore_list([rec] * n, now=now))
    fits(B.restore_requested(rec, channel=detail))
    fits(B.restore_cancelled(rec))
    fits(B.approval_done(rec, by=detail))
    fits(B.approval_recorded(rec, approved=bool(n % 2), now=now))


@given(st.sampled_from(ALERT_KINDS), odd, odd, moment, st.none() | st.integers(0, 10**6).map(
    lambda s: timedelta(seconds=s)), odd, st.booleans(), moment, odd)  # fmt: skip
@FUZZ
def test_alerts(kind: Any, subject: str, detail: str, since: Any, threshold: Any, phase_: str,
                cleared: bool, cleared_at: Any, ns: str) -> None:  # fmt: skip
    fits(B.alert_message(Alert(kind, subject, detail, since, threshold, phase_, cleared, cleared_at,
                               ns), now=at(60)))  # fmt: skip


@given(odd, odd, odd, st.lists(moment.filter(lambda m: m is not None), max_size=20),
       st.booleans(), person, moment, st.none() | summaries(), odd, person)  # fmt: skip
@FUZZ
def test_schedule(cron: str, tz: str, words: str, runs: list[Any], paused: bool, by: str,
                  since: Any, last: BackupSummary | None, changed: str, who: str) -> None:  # fmt: skip
    status = ScheduleStatus(cron, tz, words, tuple(runs), paused, by, since, last)
    fits(B.schedule_status(status, now=at(0), changed=changed, by=who))


@given(st.sampled_from(["/ragbackup", "/ragrestore"]) | odd, odd, odd, odd)
@FUZZ
def test_notices(command: str, text: str, title: str, detail: str) -> None:
    parsed = parse(command, text)
    if not hasattr(parsed, "args"):
        fits(B.usage_error(parsed))  # type: ignore[arg-type]
    fits(B.explain_error(ClusterError(text), doing=title))
    fits(B.explain_error(ValueError(text), doing=title))
    fits(B.error_notice(title, detail, text))

    def broken(_user: str) -> set[str]:
        raise RuntimeError(detail)

    access = AccessConfig.model_validate({"backup": {"usergroups": ["S0OPS"]}})
    decision = authorize("backup", "U0X", None, access, broken)
    assert not decision.allowed
    fits(B.refusal(decision, what=title))


def test_help() -> None:
    for command in ("/ragbackup", "/ragrestore"):
        fits(B.help_message(command))
