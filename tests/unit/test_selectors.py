"""Label selector parser: every operator, the API server's edge cases, bad input, to_api."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.selectors import (
    LabelSelector,
    Requirement,
    SelectorError,
    check_label_key,
    check_label_value,
    from_api,
    parse_selector,
)


def reqs(text: str) -> tuple[Requirement, ...]:
    return parse_selector(text).requirements


# ------------------------------------------------------------------------ operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app=web", Requirement("app", "=", ("web",))),
        ("app==web", Requirement("app", "=", ("web",))),
        ("app!=web", Requirement("app", "!=", ("web",))),
        ("app in (web,db)", Requirement("app", "in", ("db", "web"))),
        ("app notin (web,db)", Requirement("app", "notin", ("db", "web"))),
        ("app", Requirement("app", "exists")),
        ("!app", Requirement("app", "!")),
        ("app=", Requirement("app", "=", ("",))),
        ("app!=", Requirement("app", "!=", ("",))),
        ("example.com/app=web", Requirement("example.com/app", "=", ("web",))),
        ("  app  =  web  ", Requirement("app", "=", ("web",))),
    ],
)
def test_each_operator(text: str, expected: Requirement) -> None:
    assert reqs(text) == (expected,)


def test_terms_are_anded_in_written_order() -> None:
    assert reqs("b=1, a in (x), !c, d") == (
        Requirement("b", "=", ("1",)),
        Requirement("a", "in", ("x",)),
        Requirement("c", "!"),
        Requirement("d", "exists"),
    )


def test_empty_selector_matches_everything() -> None:
    assert parse_selector("") == LabelSelector()
    assert parse_selector("   ") == LabelSelector()
    assert parse_selector("").matches({"any": "thing"})
    assert parse_selector("").to_api() == {}


def test_set_values_are_a_sorted_set_as_in_the_api_server() -> None:
    assert reqs("k in (b,a,b)") == (Requirement("k", "in", ("a", "b")),)
    assert str(parse_selector("k notin (z, a)")) == "k notin (a,z)"


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("k in ()", ("",)),  # the API server reads `()` as the empty value
        ("k in (,a)", ("", "a")),
        ("k in (a,)", ("", "a")),
        ("k in (a,,b)", ("", "a", "b")),
    ],
)
def test_empty_positions_in_a_set_mean_the_empty_value(text: str, values: tuple[str, ...]) -> None:
    assert reqs(text) == (Requirement("k", "in", values),)


def test_matches() -> None:
    sel = parse_selector("app=web,tier!=db,env in (prod,stage),!legacy,team")
    assert sel.matches({"app": "web", "env": "prod", "team": "x"})
    assert sel.matches({"app": "web", "env": "stage", "team": "x", "tier": "fe"})
    assert not sel.matches({"app": "web", "env": "prod", "team": "x", "tier": "db"})
    assert not sel.matches({"app": "web", "env": "dev", "team": "x"})
    assert not sel.matches({"app": "web", "env": "prod", "team": "x", "legacy": "1"})
    assert not sel.matches({"app": "web", "env": "prod"})
    assert not sel.matches(None)
    assert parse_selector("a notin (x)").matches({})
    assert parse_selector("a!=x").matches({})


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("=web", "expected a label key"),
        ("app web", "unexpected 'web'"),
        ("app in (a b)", "expected ',' or ')'"),
        ("app in a", "expected '('"),
        ("app in (a", "missing ')'"),
        ("app in (a=b)", "found '='"),
        ("app in (=)", "unexpected '='"),
        ("app=web,", "ends with ','"),
        ("app=web=x", "expected ','"),
        ("!", "must be followed by a label key"),
        ("!=x", "expected a label key"),
        ("-app=x", "invalid label key"),
        ("Example.COM/app=x", "invalid label key"),
        ("app=-web", "invalid label value"),
        ("app=" + "v" * 64, "invalid label value"),
        ("a" * 64, "invalid label key"),
        ("app>1", "invalid label key"),
        ("app=(x)", "expected a value"),
    ],
)
def test_bad_selectors_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert fragment in str(info.value)


def test_label_checks_are_public() -> None:
    assert check_label_key("app.kubernetes.io/name") == "app.kubernetes.io/name"
    assert check_label_value("") == ""
    with pytest.raises(SelectorError):
        check_label_key("bad key")
    with pytest.raises(SelectorError):
        check_label_value("-x")


# ------------------------------------------------------------------- to_api / from_api


def test_to_api_shapes() -> None:
    assert parse_selector("a=1,b!=2,c in (y,x),d notin (z),e,!f").to_api() == {
        "matchLabels": {"a": "1"},
        "matchExpressions": [
            {"key": "b", "operator": "NotIn", "values": ["2"]},
            {"key": "c", "operator": "In", "values": ["x", "y"]},
            {"key": "d", "operator": "NotIn", "values": ["z"]},
            {"key": "e", "operator": "Exists"},
            {"key": "f", "operator": "DoesNotExist"},
        ],
    }


def test_to_api_sorts_expressions_by_key_like_parse_to_label_selector() -> None:
    api = parse_selector("z, !a, m in (1)").to_api()
    assert [e["key"] for e in api["matchExpressions"]] == ["a", "m", "z"]


def test_to_api_keeps_a_repeated_equality_as_an_expression() -> None:
    # Both terms must hold (so nothing matches); neither may be lost.
    api = parse_selector("a=1,a=2").to_api()
    assert api == {
        "matchLabels": {"a": "1"},
        "matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]}],
    }


def test_from_api() -> None:
    sel = from_api(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "old", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.requirements == (
        Requirement("app", "=", ("web",)),
        Requirement("env", "in", ("dev", "prod")),
        Requirement("old", "!"),
    )
    assert from_api(None) == LabelSelector()
    assert from_api({}) == LabelSelector()
    with pytest.raises(SelectorError, match="not a valid selector operator"):
        from_api({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})


# ------------------------------------------------------------------ property tests

_alnum = st.sampled_from("abcxyz019")
_name = st.one_of(
    _alnum,
    st.builds(lambda a, mid, b: a + mid + b, _alnum, st.text("ab-_.z9", max_size=6), _alnum),
)
_key = st.one_of(_name, st.builds(lambda p, n: f"{p}/{n}", st.sampled_from(["x.io", "a.b"]), _name))
_value = st.one_of(st.just(""), _name)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    key = draw(_key)
    op = draw(st.sampled_from(["=", "!=", "in", "notin", "exists", "!"]))
    if op in ("=", "!="):
        return Requirement(key, op, (draw(_value),))
    if op in ("in", "notin"):
        values = draw(st.lists(_value, min_size=1, max_size=4))
        return Requirement(key, op, tuple(sorted(set(values))))
    return Requirement(key, op)


selectors = st.lists(requirements(), max_size=5).map(lambda rs: LabelSelector(tuple(rs)))
labels = st.dictionaries(_key, _value, max_size=5)


@given(selectors)
def test_str_parses_back_to_the_same_selector(sel: LabelSelector) -> None:
    assert parse_selector(str(sel)) == sel


@given(selectors, labels)
def test_api_round_trip_matches_the_same_labels(sel: LabelSelector, lbls: dict[str, str]) -> None:
    back = from_api(sel.to_api())
    assert back.matches(lbls) == sel.matches(lbls)


@given(selectors)
def test_api_form_is_a_fixed_point(sel: LabelSelector) -> None:
    api = sel.to_api()
    assert from_api(api).to_api() == api


@given(st.text(max_size=30))
def test_parser_never_fails_with_anything_but_selector_error(text: str) -> None:
    with contextlib.suppress(SelectorError):
        parse_selector(text)
