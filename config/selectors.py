"""Kubernetes label selectors, parsed once into typed values.

The same grammar appears in three places: the `velero:` block's selectors, cleanup
entries such as `Deployment/selector: app=x`, and the `labelSelector` query parameter
the sandbox API server must honour. One parser serves all three so they cannot drift;
the upstream-cluster tests judge it against the real kube-apiserver.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

# A label key: optional DNS-subdomain prefix and a name of at most 63 characters.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")


class SelectorError(ValueError):
    """A selector string that the Kubernetes API server would reject."""


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term of a selector: `key op values`."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector; terms are ANDed. The empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def to_api(self) -> dict[str, Any]:
        """The `metav1.LabelSelector` object Velero's spec expects.

        `k=v` becomes matchLabels (as `kubectl`/`velero --selector` do); everything
        else becomes matchExpressions with the API's operator names.
        """
        match_labels: dict[str, str] = {}
        expressions: list[dict[str, Any]] = []
        for r in self.requirements:
            if r.operator == "=" and r.key not in match_labels:
                match_labels[r.key] = r.values[0]
            elif r.operator in ("=", "in"):
                expressions.append({"key": r.key, "operator": "In", "values": list(r.values)})
            elif r.operator in ("!=", "notin"):
                expressions.append({"key": r.key, "operator": "NotIn", "values": list(r.values)})
            elif r.operator == "exists":
                expressions.append({"key": r.key, "operator": "Exists"})
            else:
                expressions.append({"key": r.key, "operator": "DoesNotExist"})
        out: dict[str, Any] = {}
        if match_labels:
            out["matchLabels"] = match_labels
        if expressions:
            # ParseToLabelSelector emits requirements sorted by key; so do we, so a
            # Backup's selectors read exactly like those `velero backup create` writes.
            out["matchExpressions"] = sorted(expressions, key=lambda e: e["key"])
        return out


def from_api(selector: Mapping[str, Any] | None) -> LabelSelector:
    """Turn a `metav1.LabelSelector` object back into a LabelSelector."""
    if not selector:
        return LabelSelector()
    reqs: list[Requirement] = [
        Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    names = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        op = names.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(f"{expr.get('operator')!r} is not a valid selector operator")
        values = tuple(str(v) for v in expr.get("values") or ())
        if op in ("in", "notin"):
            values = _value_set(values)
        reqs.append(Requirement(expr["key"], op, values))  # type: ignore[arg-type]
    return LabelSelector(tuple(reqs))


_TOKEN_RE = re.compile(r"\s*(\(|\)|,|!=|==|=|!|[^\s(),!=]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise SelectorError(f"unexpected character {text[pos]!r} at position {pos}")
        out.append(m.group(1))
        pos = m.end()
        if text[pos:].strip() == "":
            break
    return out


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise SelectorError(
            f"invalid label key {key!r}: must be an optional DNS prefix and '/', then 1-63 "
            "alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
        )
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.match(value):
        raise SelectorError(
            f"invalid label value {value!r}: at most 63 alphanumeric characters, '-', '_' "
            "or '.', starting and ending alphanumeric"
        )
    return value


def check_label_key(key: str) -> str:
    """Return `key` if it is a valid label key, else raise SelectorError."""
    return _check_key(key)


def check_label_value(value: str) -> str:
    """Return `value` if it is a valid label value, else raise SelectorError."""
    return _check_value(value)


def _value_set(values: Iterable[str]) -> tuple[str, ...]:
    # The API server keeps `in`/`notin` values as a sorted set, and so does
    # `metav1.ParseToLabelSelector` (what `velero --selector` uses).
    return tuple(sorted(set(values)))


def parse_selector(text: str) -> LabelSelector:
    """Parse `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-ANDed.

    Raises SelectorError with a message saying what is wrong, as the API server would
    refuse the same string.
    """
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def peek(offset: int = 0) -> str | None:
        return toks[i + offset] if i + offset < len(toks) else None

    while i < len(toks):
        tok = toks[i]
        if tok == "!":
            key = peek(1)
            if key is None or key in "(),=!":
                raise SelectorError("'!' must be followed by a label key")
            reqs.append(Requirement(_check_key(key), "!"))
            i += 2
        elif tok in ("(", ")", ",", "=", "==", "!="):
            raise SelectorError(f"unexpected {tok!r}: expected a label key")
        else:
            key = _check_key(tok)
            op = peek(1)
            if op is None or op == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif op in ("=", "==", "!="):
                value = peek(2)
                if value is None or value == ",":
                    value = ""
                    i += 2
                elif value in "()=!":
                    raise SelectorError(f"expected a value after {key}{op}")
                else:
                    i += 3
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (_check_value(value),)))
            elif op in ("in", "notin"):
                if peek(2) != "(":
                    raise SelectorError(f"expected '(' after '{key} {op}'")
                i += 3
                # As the API server's parser: values are a set; an empty position, as in
                # `()` or `(a,)`, stands for the empty value.
                values: list[str] = []
                current: str | None = None
                while True:
                    t = peek()
                    if t is None:
                        raise SelectorError(f"missing ')' in '{key} {op} (...)'")
                    if t in (")", ","):
                        values.append(_check_value(current or ""))
                        current = None
                        i += 1
                        if t == ")":
                            break
                        continue
                    if current is not None:
                        raise SelectorError(
                            f"expected ',' or ')' after {current!r} in '{key} {op} (...)', "
                            f"found {t!r}"
                        )
                    if t in ("(", "=", "==", "!=", "!"):
                        raise SelectorError(f"unexpected {t!r} in '{key} {op} (...)'")
                    current = t
                    i += 1
                reqs.append(Requirement(key, op, _value_set(values)))  # type: ignore[arg-type]
            else:
                raise SelectorError(f"unexpected {op!r} after label key {key!r}")
        if i < len(toks):
            if toks[i] != ",":
                raise SelectorError(f"expected ',' between requirements, found {toks[i]!r}")
            i += 1
            if i == len(toks):
                raise SelectorError("selector ends with ','")
    return LabelSelector(tuple(reqs))
