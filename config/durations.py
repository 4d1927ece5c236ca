"""Go `time.Duration` strings, parsed and printed exactly as Go does.

Velero's Backup and Restore specs carry durations as Go strings (`ttl: 720h`,
`csiSnapshotTimeout: 2h0m0s`), Enterprise RAG's config.yaml writes them that way, and
ragbot's own timeouts use the same notation so there is one syntax to learn. This
module is the single place that understands that syntax:

- `parse_go_duration` follows Go's `time.ParseDuration` (same grammar, same units,
  same float arithmetic for fractions, same int64 range), so a string accepted here
  is accepted by Velero and the other way round;
- `format_go_duration` prints like Go's `Duration.String()` (`2h0m0s`, `1m30s`, `300ms`);
- `GoDuration` is a `timedelta` that remembers the text it was parsed from, so a
  Backup spec can carry exactly what the user (or the playbook) wrote.

Errors say what is wrong and how to write it instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

_NS = 1
_US = 1_000
_MS = 1_000_000
_S = 1_000_000_000
_M = 60 * _S
_H = 60 * _M
_UNITS: dict[str, int] = {
    "ns": _NS,
    "us": _US,
    "\u00b5s": _US,  # micro sign, as Go prints it
    "\u03bcs": _US,  # Greek mu, which Go also accepts
    "ms": _MS,
    "s": _S,
    "m": _M,
    "h": _H,
}
_UNIT_HELP = "ns, us, ms, s, m or h"
_MAX_NS = (1 << 63) - 1  # Go's Duration is an int64 count of nanoseconds
_HINTS = {
    "d": "Go durations have no days: write 24h per day, e.g. 168h for a week",
    "w": "Go durations have no weeks: write 168h per week",
    "y": "Go durations have no years: write 8760h per year",
    "sec": "write s for seconds",
    "min": "write m for minutes",
    "hr": "write h for hours",
}


class DurationError(ValueError):
    """A string that Go's time.ParseDuration would reject."""


def _invalid(text: str, reason: str) -> DurationError:
    return DurationError(f"invalid duration {text!r}: {reason}")


def _leading_int(s: str, text: str) -> tuple[int, str]:
    x = 0
    i = 0
    while i < len(s) and "0" <= s[i] <= "9":
        x = x * 10 + ord(s[i]) - 48
        if x > 1 << 63:
            raise _invalid(text, "too large (the maximum is about 2562047h)")
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    # Go keeps reading digits after it can no longer use them, without failing.
    x = 0
    scale = 1.0
    overflow = False
    i = 0
    while i < len(s) and "0" <= s[i] <= "9":
        if not overflow:
            y = x * 10 + ord(s[i]) - 48
            if x > ((1 << 63) - 1) // 10 or y > 1 << 63:
                overflow = True
            else:
                x = y
                scale *= 10
        i += 1
    return x, scale, s[i:]


def parse_go_duration_ns(text: str) -> int:
    """Parse a Go duration into an integer number of nanoseconds (may be negative)."""
    if not isinstance(text, str):
        raise DurationError(f"a duration must be a string such as 30m or 2h, not {text!r}")
    if text == "":
        raise DurationError("empty duration: write e.g. 30s, 15m, 2h or 1h30m")
    if any(c.isspace() for c in text):
        raise _invalid(text, "spaces are not allowed (write e.g. 1h30m)")
    s = text
    neg = False
    if s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise _invalid(text, "expected a number after the sign")
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise _invalid(text, f"expected a number at {s!r}")
        segment = s
        before = len(s)
        v, s = _leading_int(s, text)
        pre = len(s) != before
        f, scale, post = 0, 1.0, False
        if s.startswith("."):
            s = s[1:]
            before = len(s)
            f, scale, s = _leading_fraction(s)
            post = len(s) != before
        if not pre and not post:
            raise _invalid(text, "expected digits around '.'")
        i = 0
        while i < len(s) and s[i] != "." and not ("0" <= s[i] <= "9"):
            i += 1
        unit_name, s = s[:i], s[i:]
        if unit_name == "":
            number = segment[: len(segment) - len(s)]
            raise _invalid(
                text, f"missing unit after {number!r} (write e.g. {number}s or {number}m)"
            )
        unit = _UNITS.get(unit_name)
        if unit is None:
            hint = _HINTS.get(unit_name.lower(), f"use {_UNIT_HELP}")
            raise _invalid(text, f"unknown unit {unit_name!r}; {hint}")
        if v > (1 << 63) // unit:
            raise _invalid(text, "too large (the maximum is about 2562047h)")
        v *= unit
        if f > 0:
            # Go uses float64 here; doing the same keeps results bit-identical.
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                raise _invalid(text, "too large (the maximum is about 2562047h)")
        total += v
        if total > 1 << 63:
            raise _invalid(text, "too large (the maximum is about 2562047h)")
    if neg:
        return -total
    if total > _MAX_NS:
        raise _invalid(text, "too large (the maximum is about 2562047h)")
    return total


def _ns_to_timedelta(ns: int) -> timedelta:
    # timedelta resolves microseconds; sub-microsecond remainders are truncated toward 0.
    us = abs(ns) // 1000
    return timedelta(microseconds=-us if ns < 0 else us)


def _timedelta_to_ns(td: timedelta) -> int:
    return ((td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds) * 1000


def parse_go_duration(text: str) -> timedelta:
    """Parse `2h0m0s`, `720h`, `1h30m`, `300ms`, `1.5h`, `0`... into a timedelta.

    Raises DurationError naming what is wrong. Precision below a microsecond is dropped.
    """
    return _ns_to_timedelta(parse_go_duration_ns(text))


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    digits: list[str] = []
    printed = False
    for _ in range(prec):
        digit = v % 10
        printed = printed or digit != 0
        if printed:
            digits.append(str(digit))
        v //= 10
    return ("." + "".join(reversed(digits)) if printed else ""), v


def format_go_duration_ns(ns: int) -> str:
    """Go's `Duration.String()` for a count of nanoseconds."""
    u = abs(ns)
    sign = "-" if ns < 0 else ""
    if u == 0:
        return "0s"
    if u < _S:
        if u < _US:
            return f"{sign}{u}ns"
        unit, prec = ("\u00b5s", 3) if u < _MS else ("ms", 6)
        frac, whole = _fmt_frac(u, prec)
        return f"{sign}{whole}{frac}{unit}"
    frac, secs = _fmt_frac(u, 9)
    out = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        hours = minutes // 60
        if hours:
            out = f"{hours}h{out}"
    return sign + out


def format_go_duration(td: timedelta) -> str:
    """Print a timedelta as Go's `time.Duration.String()` does: `2h0m0s`, `1m30s`, `0s`."""
    return format_go_duration_ns(_timedelta_to_ns(td))


class GoDuration(timedelta):
    """A timedelta that remembers the Go duration text it came from.

    It compares, hashes and computes like any timedelta (`GoDuration("120m") ==
    GoDuration("2h")`); `.text` is the string as written, `.canonical` the string Go
    would print. Build one with `GoDuration("90m")` or `GoDuration.of(timedelta)`.
    """

    __slots__ = ("_text",)
    _text: str

    def __new__(cls, text: str) -> GoDuration:
        td = parse_go_duration(text)
        self = super().__new__(cls, td.days, td.seconds, td.microseconds)
        self._text = text
        return self

    @classmethod
    def of(cls, value: timedelta | str | int) -> GoDuration:
        """Coerce a timedelta (printed canonically), a Go string, or the integer 0."""
        if isinstance(value, GoDuration):
            return value
        if isinstance(value, timedelta):
            return cls(format_go_duration(value))
        if isinstance(value, bool):
            raise DurationError(f"a duration must be a string such as 30m or 2h, not {value!r}")
        if isinstance(value, int):
            return cls(str(value))
        return cls(value)

    @property
    def text(self) -> str:
        """The duration exactly as written in the configuration."""
        return self._text

    @property
    def canonical(self) -> str:
        """The duration as Go's `Duration.String()` prints it, e.g. `2h0m0s`."""
        return format_go_duration(self)

    def __repr__(self) -> str:
        return f"GoDuration({self._text!r})"

    def __str__(self) -> str:
        return self._text

    def __reduce__(self) -> tuple[Any, ...]:
        return (GoDuration, (self._text,))

    def __copy__(self) -> GoDuration:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> GoDuration:
        return self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Let pydantic validate a GoDuration from its text and serialize it back to it."""
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            cls.of,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json"),
        )
