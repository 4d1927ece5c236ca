"""Go duration strings: parsed like time.ParseDuration, printed like Duration.String()."""

from __future__ import annotations

import copy
import pickle
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.durations import (
    DurationError,
    GoDuration,
    format_go_duration,
    format_go_duration_ns,
    parse_go_duration,
    parse_go_duration_ns,
)

H, M, S = 3600, 60, 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h0m0s", timedelta(hours=2)),
        ("720h", timedelta(days=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("300ms", timedelta(milliseconds=300)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("15m", timedelta(minutes=15)),
        ("300s", timedelta(minutes=5)),
        ("0", timedelta(0)),
        ("-0", timedelta(0)),
        ("0s", timedelta(0)),
        ("+5s", timedelta(seconds=5)),
        ("-1m30s", -timedelta(minutes=1, seconds=30)),
        (".5s", timedelta(milliseconds=500)),
        ("1.s", timedelta(seconds=1)),
        ("1us", timedelta(microseconds=1)),
        ("1\u00b5s", timedelta(microseconds=1)),
        ("1\u03bcs", timedelta(microseconds=1)),
        ("1500ns", timedelta(microseconds=1)),  # below a microsecond is dropped
        ("1h1h", timedelta(hours=2)),  # Go adds repeated units
        ("3m2h", timedelta(hours=2, minutes=3)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


def test_parse_keeps_nanoseconds_and_go_float_arithmetic() -> None:
    assert parse_go_duration_ns("1.000000001s") == 1_000_000_001
    assert parse_go_duration_ns("2562047h47m16.854775807s") == 2**63 - 1
    assert parse_go_duration_ns("0.1h") == 360_000_000_000


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty duration"),
        ("-", "expected a number after the sign"),
        ("+", "expected a number after the sign"),
        ("15", "missing unit after '15' (write e.g. 15s or 15m)"),
        ("1h30", "missing unit after '30'"),
        ("7d", "no days: write 24h per day"),
        ("2w", "no weeks"),
        ("5x", "unknown unit 'x'; use ns, us, ms, s, m or h"),
        ("5 m", "spaces are not allowed"),
        (" 5m", "spaces are not allowed"),
        (".s", "expected digits"),
        ("h", "expected a number"),
        ("2562048h", "too large"),
        ("9223372036854775808ns", "too large"),
        ("99999999999999999999h", "too large"),
    ],
)
def test_errors_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_go_duration(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_strings_are_refused() -> None:
    with pytest.raises(DurationError, match="must be a string"):
        parse_go_duration_ns(15)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(hours=2), "2h0m0s"),
        (timedelta(days=30), "720h0m0s"),
        (timedelta(minutes=90), "1h30m0s"),
        (timedelta(minutes=15), "15m0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=61), "1m1s"),
        (timedelta(0), "0s"),
        (-timedelta(minutes=1), "-1m0s"),
        (timedelta(milliseconds=300), "300ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=5), "5\u00b5s"),
        (timedelta(seconds=1, milliseconds=500), "1.5s"),
        (timedelta(hours=26), "26h0m0s"),
    ],
)
def test_format_like_go(td: timedelta, expected: str) -> None:
    assert format_go_duration(td) == expected


def test_format_nanoseconds() -> None:
    assert format_go_duration_ns(1) == "1ns"
    assert format_go_duration_ns(1_000_000_001) == "1.000000001s"
    assert format_go_duration_ns(2**63 - 1) == "2562047h47m16.854775807s"


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_go_string_round_trips_nanoseconds(ns: int) -> None:
    assert parse_go_duration_ns(format_go_duration_ns(ns)) == ns


@given(st.integers(min_value=0, max_value=10**7).map(lambda s: timedelta(seconds=s)))
def test_whole_seconds_round_trip(td: timedelta) -> None:
    text = format_go_duration(td)
    assert text.endswith("s")
    assert parse_go_duration(text) == td


@given(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999))
def test_components_add_up(h: int, m: int, s: int) -> None:
    assert parse_go_duration(f"{h}h{m}m{s}s") == timedelta(seconds=h * H + m * M + s * S)


class TestGoDuration:
    def test_is_a_timedelta_that_keeps_its_text(self) -> None:
        d = GoDuration("720h")
        assert isinstance(d, timedelta)
        assert d == timedelta(days=30)
        assert d.text == "720h"
        assert str(d) == "720h"
        assert d.canonical == "720h0m0s"
        assert repr(d) == "GoDuration('720h')"
        assert d.total_seconds() == 30 * 86400

    def test_equal_values_with_different_text_are_equal(self) -> None:
        assert GoDuration("120m") == GoDuration("2h")
        assert hash(GoDuration("120m")) == hash(GoDuration("2h"))

    def test_of(self) -> None:
        assert GoDuration.of(timedelta(minutes=90)).text == "1h30m0s"
        assert GoDuration.of(0).text == "0"
        assert GoDuration.of("5m").text == "5m"
        same = GoDuration("1s")
        assert GoDuration.of(same) is same
        with pytest.raises(DurationError, match="missing unit"):
            GoDuration.of(15)
        with pytest.raises(DurationError, match="must be a string"):
            GoDuration.of(True)

    def test_survives_pickle_and_copy(self) -> None:
        d = GoDuration("1h30m")
        for other in (pickle.loads(pickle.dumps(d)), copy.copy(d), copy.deepcopy(d)):
            assert other == d
            assert other.text == "1h30m"

    def test_arithmetic_gives_plain_timedeltas(self) -> None:
        total = GoDuration("1h") + GoDuration("30m")
        assert total == timedelta(minutes=90)
        assert type(total) is timedelta
