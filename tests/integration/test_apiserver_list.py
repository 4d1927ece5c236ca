"""LIST options: labelSelector (every operator), fieldSelector, limit/continue pagination."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes.client import ApiException

from tests.conftest import VELERO, ApiServerHandle
from tests.integration.test_apiserver_crud import backup, cm

LABELLED = {
    "a": {"env": "prod", "tier": "web"},
    "b": {"env": "dev", "tier": "web"},
    "c": {"env": "prod"},
    "d": {},
    "e": {"env": "qa", "tier": "db", "team.example.com/owner": "x"},
}


@pytest.fixture
def labelled(api_server: ApiServerHandle) -> ApiServerHandle:
    for name, labels in LABELLED.items():
        api_server.core.create_namespaced_config_map("default", cm(name, labels=labels))
    api_server.core.create_namespaced_config_map("velero", cm("a", labels={"env": "prod"}))
    return api_server


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", "abcde"),
        ("env=prod", "ac"),
        ("env==prod", "ac"),
        ("env!=prod", "bde"),
        ("env in (prod,qa)", "ace"),
        ("env in (prod, qa)", "ace"),
        ("env notin (prod,qa)", "bd"),
        ("tier", "abe"),
        ("!tier", "cd"),
        ("env=prod,tier=web", "a"),
        ("env in (prod,dev),!tier", "c"),
        ("tier notin (web),env", "ce"),  # notin matches a missing key
        ("team.example.com/owner", "e"),
        ("team.example.com/owner=x,env!=qa", ""),
        ("env=staging", ""),
    ],
)
def test_label_selector_operators(labelled: ApiServerHandle, selector: str, expected: str) -> None:
    listed = labelled.core.list_namespaced_config_map("default", label_selector=selector)
    assert "".join(i.metadata.name for i in listed.items) == expected


def test_label_selector_on_custom_objects_and_all_namespaces(labelled: ApiServerHandle) -> None:
    everywhere = labelled.core.list_config_map_for_all_namespaces(label_selector="env=prod")
    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere.items] == [
        ("default", "a"), ("default", "c"), ("velero", "a"),
    ]
    for name, labels in (("b1", {"x": "1"}), ("b2", {"x": "2"})):
        body = backup(name)
        body["metadata"]["labels"] = labels
        labelled.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", body)
    found = labelled.custom.list_namespaced_custom_object(
        *VELERO, "velero", "backups", label_selector="x in (2,3)"
    )
    assert [i["metadata"]["name"] for i in found["items"]] == ["b2"]


@pytest.mark.parametrize("selector", ["env in prod", "env in (prod", "=x", "env=a=b", "!"])
def test_invalid_label_selector_is_400(labelled: ApiServerHandle, selector: str) -> None:
    with pytest.raises(ApiException) as err:
        labelled.core.list_namespaced_config_map("default", label_selector=selector)
    assert err.value.status == 400
    assert json.loads(err.value.body)["reason"] == "BadRequest"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=c", "c"),
        ("metadata.name==c", "c"),
        ("metadata.name!=c", "abde"),
        ("metadata.name!=c,metadata.name!=a", "bde"),
        ("metadata.namespace=default", "abcde"),
        ("metadata.namespace=velero", ""),
    ],
)
def test_field_selector(labelled: ApiServerHandle, selector: str, expected: str) -> None:
    listed = labelled.core.list_namespaced_config_map("default", field_selector=selector)
    assert "".join(i.metadata.name for i in listed.items) == expected


def test_field_and_label_selectors_combine(labelled: ApiServerHandle) -> None:
    listed = labelled.core.list_config_map_for_all_namespaces(
        label_selector="env=prod", field_selector="metadata.namespace=velero"
    )
    assert [(i.metadata.namespace, i.metadata.name) for i in listed.items] == [("velero", "a")]
    crs = labelled.custom.list_namespaced_custom_object(
        *VELERO, "velero", "backups", field_selector="metadata.name=none"
    )
    assert crs["items"] == []


def test_kind_specific_field_selector(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_pod(
        "default", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    )
    assert len(api_server.core.list_namespaced_pod("default", field_selector="status.phase=Pending").items) == 1
    assert api_server.core.list_namespaced_pod("default", field_selector="status.phase=Running").items == []
    # ConfigMaps do not register status.phase: the apiserver refuses it.
    with pytest.raises(ApiException) as err:
        api_server.core.list_namespaced_config_map("default", field_selector="status.phase=Running")
    assert err.value.status == 400


def test_unsupported_field_selector_is_400(labelled: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        labelled.core.list_namespaced_config_map("default", field_selector="spec.foo=x")
    assert err.value.status == 400 and err.value.reason == "Bad Request"
    body = json.loads(err.value.body)
    assert body["reason"] == "BadRequest"
    assert body["message"] == "field label not supported: spec.foo"
    with pytest.raises(ApiException) as err:
        labelled.custom.list_namespaced_custom_object(
            *VELERO, "velero", "backups", field_selector="spec.ttl=1h"
        )
    assert err.value.status == 400


# ----- pagination -----------------------------------------------------------------------

TOTAL = 10_000
PAGE = 1_000


def test_pagination_over_ten_thousand_objects(api_server: ApiServerHandle) -> None:
    rt = api_server.store.registry.lookup("", "v1", "configmaps")
    assert rt is not None
    # Created in reverse so storage order cannot be mistaken for key order.
    for i in reversed(range(TOTAL)):
        api_server.store.create(rt, "default", {"metadata": {"name": f"cm-{i:05d}"}, "data": {"i": str(i)}})
    api_server.store.create(rt, "velero", {"metadata": {"name": "elsewhere"}})

    started = time.monotonic()
    seen: list[str] = []
    remaining: list[int | None] = []
    token = None
    pages = 0
    while True:
        page = api_server.core.list_namespaced_config_map("default", limit=PAGE, _continue=token)
        pages += 1
        assert len(page.items) <= PAGE
        seen.extend(i.metadata.name for i in page.items)
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    assert pages == TOTAL // PAGE
    assert seen == [f"cm-{i:05d}" for i in range(TOTAL)]  # every item once, in key order
    assert remaining == [TOTAL - PAGE * n for n in range(1, TOTAL // PAGE)] + [None]
    assert time.monotonic() - started < 20


def test_pagination_across_namespaces_and_with_selector(api_server: ApiServerHandle) -> None:
    rt = api_server.store.registry.lookup("", "v1", "configmaps")
    assert rt is not None
    for ns in ("default", "velero"):
        for i in range(7):
            api_server.store.create(rt, ns, {"metadata": {"name": f"x{i}", "labels": {"odd": str(i % 2)}}})
    seen: list[tuple[str, str]] = []
    token = None
    while True:
        page = api_server.core.list_config_map_for_all_namespaces(limit=3, _continue=token)
        seen.extend((i.metadata.namespace, i.metadata.name) for i in page.items)
        token = page.metadata._continue
        if not token:
            break
    assert seen == [(ns, f"x{i}") for ns in ("default", "velero") for i in range(7)]

    first = api_server.core.list_namespaced_config_map("default", label_selector="odd=1", limit=2)
    assert [i.metadata.name for i in first.items] == ["x1", "x3"]
    assert first.metadata.remaining_item_count is None  # never given with a selector
    rest = api_server.core.list_namespaced_config_map(
        "default", label_selector="odd=1", limit=2, _continue=first.metadata._continue
    )
    assert [i.metadata.name for i in rest.items] == ["x5"]
    assert rest.metadata._continue is None


def test_limit_larger_than_total_has_no_continue(api_server: ApiServerHandle) -> None:
    for name in "abc":
        api_server.core.create_namespaced_config_map("default", cm(name))
    page = api_server.core.list_namespaced_config_map("default", limit=3)
    assert len(page.items) == 3
    assert page.metadata._continue is None and page.metadata.remaining_item_count is None


def test_invalid_continue_token_is_400(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        api_server.core.list_namespaced_config_map("default", limit=1, _continue="garbage!")
    assert err.value.status == 400
