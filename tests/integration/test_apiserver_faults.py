"""Fault injection, switched at run time in-process and over `/sandbox/faults`."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import watch
from kubernetes.client import ApiException

from tests.conftest import ApiServerHandle, WatchCollector
from tests.integration.test_apiserver_crud import cm


def test_latency_applies_to_matching_paths(api_server: ApiServerHandle) -> None:
    api_server.server.faults.set(latency_seconds=0.2, path_filter="/configmaps")
    started = time.monotonic()
    api_server.core.list_namespaced_config_map("default")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    api_server.core.list_namespace()
    assert time.monotonic() - started < 0.2
    api_server.server.faults.clear()
    started = time.monotonic()
    api_server.core.list_namespaced_config_map("default")
    assert time.monotonic() - started < 0.2


@pytest.mark.parametrize(
    ("code", "reason", "status_reason"),
    [(429, "Too Many Requests", "TooManyRequests"), (503, "Service Unavailable", "ServiceUnavailable")],
)
def test_injected_errors_carry_retry_after(
    api_server: ApiServerHandle, code: int, reason: str, status_reason: str
) -> None:
    api_server.server.faults.set(error_rate=1.0, error_code=code, retry_after_seconds=7)
    # The raw header, as any HTTP client sees it.
    raw = api_server.raw("GET", "/api/v1/namespaces/default")
    assert raw.status == code
    assert raw.headers["Retry-After"] == "7"
    assert raw.headers["Content-Type"] == "application/json"
    body = raw.json()
    assert body["reason"] == status_reason and body["code"] == code
    assert body["details"]["retryAfterSeconds"] == 7
    # A POST is not retried by urllib3, so the official client raises at once.
    rv = api_server.rv()
    with pytest.raises(ApiException) as err:
        api_server.core.create_namespaced_config_map("default", cm("a"))
    assert err.value.status == code and err.value.reason == reason
    assert err.value.headers["Retry-After"] == "7"
    assert json.loads(err.value.body)["reason"] == status_reason
    assert api_server.rv() == rv  # nothing was written


@pytest.mark.parametrize("code", [429, 503])
def test_client_retries_idempotent_reads_on_retry_after(api_server: ApiServerHandle, code: int) -> None:
    """urllib3's default Retry (3) honours Retry-After on GET: 4 requests, then the error."""
    api_server.server.faults.set(error_rate=1.0, error_code=code, retry_after_seconds=0)
    before = api_server.server.request_count
    with pytest.raises(ApiException) as err:
        api_server.core.read_namespace("default")
    assert err.value.status == code
    assert api_server.server.request_count - before == 4


def test_injected_500(api_server: ApiServerHandle) -> None:
    api_server.server.faults.set(error_rate=1.0, error_code=500)
    with pytest.raises(ApiException) as err:
        api_server.core.list_namespace()
    assert err.value.status == 500
    assert json.loads(err.value.body)["reason"] == "InternalError"


def test_error_rate_is_a_fraction(api_server: ApiServerHandle) -> None:
    api_server.server.faults.set(error_rate=0.5, error_code=503)
    # Raw requests: the official client would retry each 503 GET behind our back.
    codes = [api_server.raw("GET", "/api/v1/namespaces/default").status for _ in range(100)]
    assert set(codes) == {200, 503}
    assert 25 <= codes.count(503) <= 75


def test_errors_spare_watches_health_and_control(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    api_server.server.faults.set(error_rate=1.0, error_code=503)
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default")
    assert [e["type"] for e in w.wait_count(1)] == ["ADDED"]
    w.stop()
    assert api_server.raw("GET", "/healthz").status == 200
    assert api_server.raw("GET", "/sandbox/faults").json()["error_rate"] == 1.0


def test_watch_gone_next(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    rv = str(api_server.rv())
    api_server.server.faults.set(watch_gone_next=1)
    # A watch without a resourceVersion is not affected (and does not use up the fault).
    first = WatchCollector(api_server.core.list_namespaced_config_map, "default", timeout_seconds=5)
    assert [e["type"] for e in first.wait_count(1)] == ["ADDED"]
    first.stop()
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(
            api_server.core.list_namespaced_config_map, "default", resource_version=rv,
            timeout_seconds=5,
        ):
            pytest.fail("no event before the 410")
    assert err.value.status == 410 and err.value.reason.startswith("Expired: too old resource version")
    assert api_server.server.faults.get().watch_gone_next == 0
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version=rv)
    api_server.core.create_namespaced_config_map("default", cm("b"))
    assert [e["object"].metadata.name for e in w.wait_count(1)] == ["b"]
    w.stop()


def test_watch_gone_next_without_timeout_retries_once(api_server: ApiServerHandle) -> None:
    """The client retries a 410 once from the same resourceVersion; the second watch works."""
    api_server.core.create_namespaced_config_map("default", cm("a"))
    rv = str(api_server.rv())
    api_server.server.faults.set(watch_gone_next=1)
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version=rv)
    api_server.wait_watchers(1)
    api_server.core.create_namespaced_config_map("default", cm("b"))
    assert [e["object"].metadata.name for e in w.wait_count(1)] == ["b"]
    w.stop()
    assert w.error is None


def test_faults_over_http(api_server: ApiServerHandle) -> None:
    resp = api_server.raw("PUT", "/sandbox/faults", {"error_rate": 1, "error_code": 429, "retry_after_seconds": 2})
    assert resp.status == 200
    assert resp.json()["error_code"] == 429
    got = api_server.raw("GET", "/api/v1/namespaces")
    assert got.status == 429 and got.headers["Retry-After"] == "2"
    assert api_server.raw("DELETE", "/sandbox/faults").json()["error_rate"] == 0.0
    assert api_server.raw("GET", "/api/v1/namespaces").status == 200
    bad = api_server.raw("PUT", "/sandbox/faults", {"no_such_fault": 1})
    assert bad.status == 400
    assert bad.json()["message"] == "unknown fault settings: no_such_fault"


def test_drop_after_events_over_http(api_server: ApiServerHandle) -> None:
    for name in "abc":
        api_server.core.create_namespaced_config_map("default", cm(name))
    assert api_server.raw("PUT", "/sandbox/faults", {"watch_drop_after_events": 1}).status == 200
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default")
    w.wait_done()
    assert len(w.snapshot()) == 1 and w.error is not None
