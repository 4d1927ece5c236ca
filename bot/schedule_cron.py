"""The schedule's cron as pure functions: APScheduler triggers, slots, and words.

Kept free of threads and clocks so that "which slots are due", "when are the next runs"
and "what does this cron mean" are unit-tested without waiting for a real slot. The one
trap: standard cron counts day-of-week 0 (and 7) as Sunday, APScheduler 3.x counts 0 as
Monday; so the day-of-week field is rewritten into APScheduler's weekday names. Standard
cron also runs when EITHER a restricted day-of-month or a restricted day-of-week matches;
APScheduler requires both, so that case becomes an OrTrigger of two triggers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: More slots than this between two runs are not listed one by one (a minutely cron and a
#: week without a leader would otherwise be 10 000 iterations).
MAX_SLOTS = 500


def _day_value(text: str) -> int:
    low = text.lower()
    if low in DAY_NAMES:
        return DAY_NAMES.index(low)
    return int(text) % 7  # 7 is Sunday too


def cron_days(field: str) -> list[int] | None:
    """The standard day-of-week field as sorted day numbers (0 = Sunday); None for `*`."""
    if field == "*":
        return None
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, b = base.split("-")
            lo, hi = _day_value(a), int(b) if b.isdigit() else DAY_NAMES.index(b.lower())
            if b.isdigit() and int(b) == 7:
                hi = 7
        else:
            lo = hi = _day_value(base)
            if step_text:
                hi = 7 if base.isdigit() and int(base) == 7 else 6
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return sorted(days)


def apscheduler_weekdays(field: str) -> str:
    """The standard day-of-week field in APScheduler's terms (weekday names)."""
    days = cron_days(field)
    return "*" if days is None else ",".join(DAY_NAMES[d] for d in days)


def build_trigger(cron: str, tz: str) -> BaseTrigger:
    """The APScheduler trigger for a standard 5-field cron in time zone `tz`."""
    minute, hour, dom, month, dow = cron.split()
    zone = ZoneInfo(tz)
    days = apscheduler_weekdays(dow)
    if dom != "*" and dow != "*":
        return OrTrigger([
            CronTrigger(minute=minute, hour=hour, day=dom, month=month, timezone=zone),
            CronTrigger(minute=minute, hour=hour, month=month, day_of_week=days, timezone=zone),
        ])  # fmt: skip
    return CronTrigger(minute=minute, hour=hour, day=dom, month=month, day_of_week=days,
                       timezone=zone)  # fmt: skip


def _next(trigger: BaseTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (slots have whole seconds)."""
    start = after.replace(microsecond=0) + timedelta(seconds=1)
    nxt = trigger.get_next_fire_time(None, start)
    return nxt.astimezone(UTC) if nxt is not None else None


def due_slots(cron: str, tz: str, last_run: datetime, now: datetime) -> list[datetime]:
    """Every slot in (last_run, now], oldest first, in UTC; at most the newest MAX_SLOTS."""
    if not cron:
        return []
    trigger = build_trigger(cron, tz)
    out: list[datetime] = []
    t = _next(trigger, last_run)
    while t is not None and t <= now:
        out.append(t)
        if len(out) > MAX_SLOTS:
            out.pop(0)
        t = _next(trigger, t)
    return out


def latest_slot(cron: str, tz: str, now: datetime, *, lookback: timedelta = timedelta(days=8)) -> datetime | None:
    """The most recent slot at or before `now` (within `lookback`), or None."""
    slots = due_slots(cron, tz, now - lookback, now)
    return slots[-1] if slots else None


def next_runs(cron: str, tz: str, now: datetime, count: int = 3) -> tuple[datetime, ...]:
    """The next `count` slots after `now`, in UTC."""
    if not cron:
        return ()
    trigger = build_trigger(cron, tz)
    out: list[datetime] = []
    t = _next(trigger, now)
    while t is not None and len(out) < count:
        out.append(t)
        t = _next(trigger, t)
    return tuple(out)


def describe_cron(cron: str, tz: str = "UTC") -> str:
    """The common shapes in words ("every day at 02:00 UTC", "every Monday at 03:30 UTC",
    "every 6 hours"); anything else falls back to the expression itself."""
    try:
        minute, hour, dom, month, dow = cron.split()
    except ValueError:
        return cron
    if not minute.isdigit() or month != "*" or dom != "*":
        return cron
    at_min = f":{int(minute):02d}"
    if hour == "*" and dow == "*":
        return "every hour" + (f" at minute {int(minute)}" if int(minute) else "")
    if hour.startswith("*/") and hour[2:].isdigit() and dow == "*":
        past = f" at minute {int(minute)}" if int(minute) else ""
        return f"every {int(hour[2:])} hours{past}"
    if not hour.isdigit():
        return cron
    when = f"{int(hour):02d}{at_min} {tz}"
    if dow == "*":
        return f"every day at {when}"
    try:
        days = cron_days(dow) or []
    except (ValueError, IndexError):
        return cron
    if days == [1, 2, 3, 4, 5]:
        return f"every weekday at {when}"
    if days == [0, 6]:
        return f"every Saturday and Sunday at {when}"
    names = [_DAY_WORDS[d] for d in days]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"every {listed} at {when}"


def slot_label(slot: datetime) -> str:
    """The `ragbot.io/slot` label value: the slot time in UTC, `%Y%m%dt%H%M%S`."""
    return slot.astimezone(UTC).strftime("%Y%m%dt%H%M%S")


def parse_slot_label(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y%m%dt%H%M%S").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


__all__ = ["MAX_SLOTS", "apscheduler_weekdays", "build_trigger", "cron_days", "describe_cron",
           "due_slots", "latest_slot", "next_runs", "parse_slot_label", "slot_label"]  # fmt: skip
