"""The schedule's pure cron logic: slots due, next runs, words, Sunday = 0 = 7, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.schedule_cron import (
    apscheduler_weekdays,
    cron_days,
    describe_cron,
    due_slots,
    latest_slot,
    next_runs,
    parse_slot_label,
    slot_label,
)
from k8s.lease import micro_time, parse_micro_time

WED = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)  # a Wednesday


def at(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def test_daily_slots_between_two_times() -> None:
    assert due_slots("0 2 * * *", "UTC", at(1, 0), at(4, 1)) == [at(1, 2), at(2, 2), at(3, 2)]


def test_a_slot_exactly_now_is_due_and_last_run_is_excluded() -> None:
    assert due_slots("0 2 * * *", "UTC", at(1, 2), at(2, 2)) == [at(2, 2)]
    assert due_slots("0 2 * * *", "UTC", at(2, 2), at(2, 2)) == []


def test_hourly_and_every_six_hours() -> None:
    assert due_slots("0 * * * *", "UTC", at(1, 9), WED) == [at(1, 10), at(1, 11), at(1, 12)]
    assert due_slots("15 */6 * * *", "UTC", at(1, 0), at(2, 0)) == [at(1, h, 15) for h in (0, 6, 12, 18)]


@pytest.mark.parametrize("dow", ["0", "7", "sun", "SUN"])
def test_sunday_is_0_and_7_not_apschedulers_monday(dow: str) -> None:
    runs = next_runs(f"0 2 * * {dow}", "UTC", WED)
    assert [r.weekday() for r in runs] == [6, 6, 6]  # Python: 6 = Sunday
    assert runs[0] == at(5, 2)


def test_weekday_ranges_and_lists() -> None:
    assert cron_days("1-5") == [1, 2, 3, 4, 5]
    assert cron_days("5-7") == [0, 5, 6]
    assert cron_days("0,3") == [0, 3]
    assert cron_days("*/2") == [0, 2, 4, 6]  # standard cron: Sun, Tue, Thu, Sat
    assert cron_days("*") is None
    assert apscheduler_weekdays("1-5") == "mon,tue,wed,thu,fri"
    runs = next_runs("0 2 * * 1-5", "UTC", WED, 5)
    assert [r.strftime("%a") for r in runs] == ["Thu", "Fri", "Mon", "Tue", "Wed"]


def test_day_of_month_or_day_of_week_as_in_standard_cron() -> None:
    runs = next_runs("0 2 15 * 0", "UTC", WED, 4)  # the 15th (a Wednesday) OR Sundays
    assert runs == (at(5, 2), at(12, 2), at(15, 2), at(19, 2))


def test_time_zone_shifts_the_slot() -> None:
    runs = next_runs("0 2 * * *", "Europe/Berlin", WED, 1)  # CET = UTC+1 in January
    assert runs == (at(2, 1),)
    summer = next_runs("0 2 * * *", "Europe/Berlin", at(1, 12, month=7), 1)  # CEST = UTC+2
    assert summer == (at(2, 0, month=7),)


def test_utc_has_no_dst_gaps() -> None:
    slots = due_slots("30 2 * * *", "UTC", at(29, 0, month=3), at(31, 23, month=3))
    assert slots == [at(d, 2, 30, month=3) for d in (29, 30, 31)]


def test_latest_slot_and_empty_cron() -> None:
    assert latest_slot("0 2 * * *", "UTC", WED) == at(1, 2)
    assert due_slots("", "UTC", at(1, 0), WED) == []
    assert next_runs("", "UTC", WED) == ()


def test_many_missed_slots_are_capped() -> None:
    slots = due_slots("* * * * *", "UTC", WED - timedelta(days=7), WED)
    assert len(slots) == 500 and slots[-1] == WED


@pytest.mark.parametrize(("cron", "words"), [
    ("0 2 * * *", "every day at 02:00 UTC"),
    ("30 3 * * 1", "every Monday at 03:30 UTC"),
    ("0 4 * * 0", "every Sunday at 04:00 UTC"),
    ("0 4 * * 7", "every Sunday at 04:00 UTC"),
    ("0 1 * * 1-5", "every weekday at 01:00 UTC"),
    ("0 1 * * 1,3", "every Monday and Wednesday at 01:00 UTC"),
    ("0 */6 * * *", "every 6 hours"),
    ("0 * * * *", "every hour"),
    ("5 4 1 * *", "5 4 1 * *"),
    ("*/5 * * * *", "*/5 * * * *"),
])  # fmt: skip
def test_describe_cron(cron: str, words: str) -> None:
    assert describe_cron(cron) == words


def test_describe_cron_names_the_time_zone() -> None:
    assert describe_cron("0 2 * * *", "Europe/Berlin") == "every day at 02:00 Europe/Berlin"


def test_slot_label_round_trip() -> None:
    slot = at(16, 2, 30)
    assert slot_label(slot) == "20250116t023000"
    assert parse_slot_label(slot_label(slot)) == slot
    assert parse_slot_label("nonsense") is None


def test_micro_time_format() -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    assert micro_time(t) == "2025-01-01T00:00:00.000000Z"
    assert parse_micro_time(micro_time(t + timedelta(microseconds=5))) == t + timedelta(microseconds=5)
    assert parse_micro_time("2025-01-01T00:00:00Z") == t
