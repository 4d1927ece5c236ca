"""Cleanup entries of backupConfig.deployments: parsing, validation, dedupe, order."""

from __future__ import annotations

import pytest

from config.cleanup import (
    CleanupError,
    HelmRelease,
    NamedDelete,
    SelectorDelete,
    check_dns1123_label,
    dedupe,
    ordered_entries,
    parse_cleanup_entry,
    parse_cleanup_list,
    parse_deployments,
    with_namespace,
)
from config.selectors import parse_selector


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Helm/edp", HelmRelease("edp", "edp")),
        ("Secret/vector-database-config", NamedDelete("edp", "Secret", "vector-database-config")),
        ("ConfigMap/a.b-c", NamedDelete("edp", "ConfigMap", "a.b-c")),
        (
            "Deployment/selector: app.kubernetes.io/managed-by=Helm",
            SelectorDelete(
                "edp", "Deployment", parse_selector("app.kubernetes.io/managed-by=Helm")
            ),
        ),
        (
            "Deployment/selector:app in (a,b)",  # the playbook needs no space after ':'
            SelectorDelete("edp", "Deployment", parse_selector("app in (a,b)")),
        ),
        ("  Helm/edp  ", HelmRelease("edp", "edp")),
        ("Deployment/selector", NamedDelete("edp", "Deployment", "selector")),  # a name
    ],
)
def test_parse_each_form(text: str, expected: object) -> None:
    assert parse_cleanup_entry(text, "edp") == expected


def test_str_gives_back_the_entry_syntax() -> None:
    for text in (
        "Helm/edp",
        "Secret/tls-secret",
        "Deployment/selector: app.kubernetes.io/managed-by=Helm",
    ):
        assert str(parse_cleanup_entry(text)) == text


def test_unquoted_selector_entry_read_by_yaml_as_a_mapping_is_accepted() -> None:
    entry = parse_cleanup_entry({"Deployment/selector": "app=x"}, "chatqa")
    assert entry == SelectorDelete("chatqa", "Deployment", parse_selector("app=x"))


def test_values_are_frozen_and_hashable() -> None:
    entry = parse_cleanup_entry("Helm/edp", "edp")
    with pytest.raises(AttributeError):
        entry.release = "x"  # type: ignore[misc]
    assert len({entry, parse_cleanup_entry("Helm/edp", "edp")}) == 1


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("secret/x", "invalid kind 'secret'"),
        ("helm/edp", "Helm releases are written Helm/<release>"),
        ("Secrets.v1/x", "invalid kind"),
        ("Secret/Bad_Name", "invalid Secret name 'Bad_Name'"),
        ("Secret/" + "a" * 254, "at most 253"),
        ("Helm/" + "a" * 54, "at most 53"),
        ("Helm/Edp", "invalid Helm release name"),
        ("Helm/selector: app=x", "Helm entries name a release"),
        ("Deployment/selector: ", "empty selector, which would delete every Deployment"),
        ("Deployment/selector: app in (a", "bad selector: missing ')'"),
        ("Secret", "expected Helm/<release>"),
        ("Secret/a/b", "expected Helm/<release>"),
        ("/x", "expected Helm/<release>"),
        ("", "expected Helm/<release>"),
        (42, "expected a string"),
        (None, "expected a string"),
        ({"Secret/x": "y"}, "put the whole entry in quotes"),
    ],
)
def test_bad_entries_say_what_is_wrong(entry: object, fragment: str) -> None:
    with pytest.raises(CleanupError) as info:
        parse_cleanup_entry(entry, "edp")
    assert fragment in str(info.value)


def test_default_edp_list_is_deduped_keeping_first_order() -> None:
    edp = [
        "Helm/edp",
        "Secret/vector-database-config",
        "Secret/tls-secret",
        "Secret/vector-database-config",
    ]
    assert parse_cleanup_list("edp", edp) == (
        HelmRelease("edp", "edp"),
        NamedDelete("edp", "Secret", "vector-database-config"),
        NamedDelete("edp", "Secret", "tls-secret"),
    )


def test_dedupe_compares_parsed_values() -> None:
    a = parse_cleanup_entry("Deployment/selector: app=x", "ns")
    b = parse_cleanup_entry("Deployment/selector:app==x", "ns")
    assert dedupe([a, b]) == (a,)


def test_list_errors_name_the_position() -> None:
    with pytest.raises(CleanupError, match=r"^edp\[1\]: invalid kind"):
        parse_cleanup_list("edp", ["Helm/edp", "secret/x"])
    with pytest.raises(CleanupError, match="invalid namespace 'Bad_NS'"):
        parse_cleanup_list("Bad_NS", [])
    assert parse_cleanup_list("default", None) == ()


def test_parse_deployments_and_with_namespace() -> None:
    parsed = parse_deployments({"auth": ["Helm/keycloak"], "default": None})
    assert parsed == {"auth": (HelmRelease("auth", "keycloak"),), "default": ()}
    assert with_namespace(HelmRelease("", "x"), "vdb") == HelmRelease("vdb", "x")


def test_ordered_entries_follow_the_playbook_passes() -> None:
    deployments = parse_deployments(
        {
            "auth": ["Helm/keycloak", "Secret/keycloak"],
            "chatqa": ["Deployment/selector: app=x", "Secret/s"],
            "edp": ["Helm/edp", "Deployment/selector: b=y"],
            "elsewhere": ["Helm/not-in-order"],
        }
    )
    assert [
        f"{e.namespace}:{e}" for e in ordered_entries(deployments, ["auth", "chatqa", "edp"])
    ] == [
        "chatqa:Deployment/selector: app=x",
        "edp:Deployment/selector: b=y",
        "auth:Helm/keycloak",
        "edp:Helm/edp",
        "auth:Secret/keycloak",
        "chatqa:Secret/s",
    ]


def test_dns_label_check() -> None:
    assert check_dns1123_label("chat-history") == "chat-history"
    for bad in ("", "-a", "a-", "A", "a_b", "a" * 64, "a.b"):
        with pytest.raises(CleanupError):
            check_dns1123_label(bad)
