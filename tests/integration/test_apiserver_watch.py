"""Watch semantics through the official client's `watch.Watch().stream`.

Initial ADDED events, resume from a resourceVersion, 410 Gone after compaction (and the
relist that follows), bookmarks, timeoutSeconds, dropped connections, selector
transitions and fan-out to many watchers. A watch is known to be registered (so no event
can be missed) either by starting it from a resourceVersion or by waiting for the
store's watcher count.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client import ApiException, CoreV1Api
from urllib3.exceptions import ProtocolError

from tests.conftest import VELERO, ApiServerHandle, WatchCollector, wait_for
from tests.integration.test_apiserver_crud import backup, cm


def test_watch_without_resource_version_starts_with_added(api_server: ApiServerHandle) -> None:
    core = api_server.core
    for name in ("b", "a", "c"):
        core.create_namespaced_config_map("default", cm(name))
    core.create_namespaced_config_map("velero", cm("other-namespace"))
    w = WatchCollector(core.list_namespaced_config_map, "default")
    initial = w.wait_count(3)
    assert [(e["type"], e["object"].metadata.name) for e in initial] == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"),
    ]
    api_server.wait_watchers(1)
    core.create_namespaced_config_map("default", cm("d"))
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
    last_a = core.read_namespaced_config_map("a", "default")
    core.delete_namespaced_config_map("a", "default")
    events = w.wait_count(6)
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events[3:]] == [
        ("ADDED", "d"), ("MODIFIED", "a"), ("DELETED", "a"),
    ]
    deleted = events[5]["raw_object"]
    assert deleted["data"] == {"k": "2"}  # DELETED carries the last state ...
    assert int(deleted["metadata"]["resourceVersion"]) > int(last_a.metadata.resource_version)  # ... with a new RV
    assert w.error is None


def test_watch_from_zero_is_like_no_resource_version(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version="0")
    assert [e["type"] for e in w.wait_count(1)] == ["ADDED"]
    w.stop()


def test_watch_resumes_from_resource_version(api_server: ApiServerHandle) -> None:
    core = api_server.core
    core.create_namespaced_config_map("default", cm("a"))
    core.create_namespaced_config_map("default", cm("b"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
    core.delete_namespaced_config_map("b", "default")
    core.create_namespaced_config_map("velero", cm("elsewhere"))
    core.create_namespaced_config_map("default", cm("c"))
    w = WatchCollector(core.list_namespaced_config_map, "default", resource_version=rv)
    replayed = w.wait_count(3)
    assert [(e["type"], e["object"].metadata.name) for e in replayed] == [
        ("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c"),
    ]
    rvs = [int(e["object"].metadata.resource_version) for e in replayed]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    core.create_namespaced_config_map("default", cm("live"))
    events = w.wait_count(4)
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c"), ("ADDED", "live"),
    ]


def test_watch_from_current_resource_version_sees_only_new_events(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("old"))
    rv = str(api_server.rv())
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version=rv)
    api_server.core.create_namespaced_config_map("default", cm("new"))
    events = w.wait_count(1)
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "new")]


def _compact(api: ApiServerHandle) -> None:
    resp = api.raw("POST", "/sandbox/compact")
    assert resp.status == 200
    assert resp.json() == {"resourceVersion": str(api.rv())}


@pytest.mark.parametrize("with_timeout", [True, False])
def test_watch_from_compacted_resource_version_raises_410(
    api_server: ApiServerHandle, with_timeout: bool
) -> None:
    core = api_server.core
    old = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", cm("a"))
    _compact(api_server)
    floor = api_server.rv()
    core.create_namespaced_config_map("default", cm("b"))
    kwargs = {"timeout_seconds": 5} if with_timeout else {}
    started = time.monotonic()
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=old, **kwargs
        ):
            pytest.fail("no event may arrive from a compacted resourceVersion")
    assert time.monotonic() - started < 3  # at once, not after the timeout
    assert err.value.status == 410
    assert err.value.reason == f"Expired: too old resource version: {old} ({floor})"

    # The client's recovery: relist, then watch from the list's resourceVersion.
    listed = core.list_namespaced_config_map("default")
    assert [i.metadata.name for i in listed.items] == ["a", "b"]
    w = WatchCollector(
        core.list_namespaced_config_map, "default", resource_version=listed.metadata.resource_version
    )
    core.create_namespaced_config_map("default", cm("c"))
    events = w.wait_count(1)
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "c")]


def test_410_is_an_error_event_on_a_200_stream(api_server: ApiServerHandle) -> None:
    old = api_server.rv()
    api_server.core.create_namespaced_config_map("default", cm("a"))
    _compact(api_server)
    resp = api_server.raw(
        "GET", f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}"
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    lines = resp.data.decode().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"] == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {old} ({api_server.rv()})",
        "reason": "Expired",
        "code": 410,
    }


def test_watch_from_compaction_point_still_works(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    _compact(api_server)
    rv = str(api_server.rv())
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version=rv)
    api_server.core.create_namespaced_config_map("default", cm("b"))
    assert [e["object"].metadata.name for e in w.wait_count(1)] == ["b"]
    w.stop()


def test_bookmarks_only_when_allowed(api_server_factory: object) -> None:
    api = api_server_factory(bookmark_interval=0.05)  # type: ignore[operator]
    core = api.core
    core.create_namespaced_config_map("default", cm("a"))
    rv = str(api.rv())
    with_bm = WatchCollector(
        core.list_namespaced_config_map, "default", resource_version=rv,
        allow_watch_bookmarks=True, timeout_seconds=1,
    )
    without_bm = WatchCollector(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1,
    )
    api.wait_watchers(2)
    wait_for(lambda: any(e["type"] == "BOOKMARK" for e in with_bm.snapshot()), 3, "a bookmark")
    core.create_namespaced_config_map("default", cm("b"))
    with_bm.wait_done(5)
    without_bm.wait_done(5)
    assert with_bm.error is None and without_bm.error is None
    assert [e["type"] for e in without_bm.snapshot()] == ["ADDED"]
    bookmarks = [e for e in with_bm.snapshot() if e["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 2
    for e in bookmarks:
        assert set(e["raw_object"]) == {"kind", "apiVersion", "metadata"}
        assert e["raw_object"]["kind"] == "ConfigMap" and e["raw_object"]["apiVersion"] == "v1"
    final_rv = bookmarks[-1]["raw_object"]["metadata"]["resourceVersion"]
    assert final_rv == str(api.rv())
    assert with_bm.watch.resource_version == final_rv  # the client records bookmark RVs
    assert "ADDED" in [e["type"] for e in with_bm.snapshot()]


def test_timeout_seconds_ends_the_stream_cleanly(api_server: ApiServerHandle) -> None:
    api_server.core.create_namespaced_config_map("default", cm("a"))
    raw: list[Any] = []
    in_parallel = threading.Thread(target=lambda: raw.append(api_server.raw(
        "GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"
    )))
    in_parallel.start()
    started = time.monotonic()
    events = list(
        watch.Watch().stream(api_server.core.list_namespaced_config_map, "default", timeout_seconds=1)
    )
    elapsed = time.monotonic() - started
    assert [e["type"] for e in events] == ["ADDED"]
    assert 0.9 <= elapsed < 3
    in_parallel.join(5)
    resp = raw[0]
    assert resp.status == 200 and resp.headers["Transfer-Encoding"] == "chunked"
    assert [json.loads(line)["type"] for line in resp.data.decode().splitlines()] == ["ADDED"]


def test_dropped_watch_after_n_events_is_seen_by_client(api_server: ApiServerHandle) -> None:
    for name in "abc":
        api_server.core.create_namespaced_config_map("default", cm(name))
    api_server.server.faults.set(watch_drop_after_events=2)
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default")
    w.wait_done()
    assert [e["object"].metadata.name for e in w.snapshot()] == ["a", "b"]
    assert isinstance(w.error, ProtocolError), repr(w.error)


@pytest.mark.parametrize("how", ["in-process", "http"])
def test_drop_watches_cuts_open_streams(api_server: ApiServerHandle, how: str) -> None:
    rv = str(api_server.rv())
    watchers = [
        WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version=rv),
        WatchCollector(
            api_server.custom.list_namespaced_custom_object, *VELERO, "velero", "backups",
            resource_version=rv, timeout_seconds=60,
        ),
    ]
    api_server.wait_watchers(2)
    if how == "http":
        assert api_server.raw("POST", "/sandbox/drop-watches").status == 200
    else:
        api_server.server.drop_watches()
    for w in watchers:
        w.wait_done()
        assert isinstance(w.error, ProtocolError), repr(w.error)
    api_server.wait_watchers(0)
    # The server keeps serving; a new watch works.
    w = WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version=rv)
    api_server.core.create_namespaced_config_map("default", cm("after"))
    assert [e["object"].metadata.name for e in w.wait_count(1)] == ["after"]
    w.stop()


def test_label_selector_watch_turns_transitions_into_added_deleted(api_server: ApiServerHandle) -> None:
    core = api_server.core
    rv = str(api_server.rv())
    w = WatchCollector(core.list_namespaced_config_map, "default", resource_version=rv, label_selector="app=x")
    core.create_namespaced_config_map("default", cm("a", labels={"app": "x"}))
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"app": "y"}}})
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "3"}})  # not matching: unseen
    core.create_namespaced_config_map("default", cm("b", labels={"app": "y"}))  # never matches
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"app": "x"}}})
    core.delete_namespaced_config_map("b", "default")
    core.delete_namespaced_config_map("a", "default")
    events = w.wait_count(5)
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a"), ("ADDED", "a"), ("DELETED", "a"),
    ]
    left = events[2]["raw_object"]
    assert left["metadata"]["labels"] == {"app": "y"}  # the object as it stopped matching
    assert events[3]["raw_object"]["data"] == {"k": "3"}


def test_field_selector_watch(api_server: ApiServerHandle) -> None:
    rv = str(api_server.rv())
    w = WatchCollector(
        api_server.custom.list_namespaced_custom_object, *VELERO, "velero", "backups",
        resource_version=rv, field_selector="metadata.name=b2",
    )
    for name in ("b1", "b2", "b3"):
        api_server.custom.create_namespaced_custom_object(*VELERO, "velero", "backups", backup(name))
    api_server.custom.delete_namespaced_custom_object(*VELERO, "velero", "backups", "b2")
    events = w.wait_count(2)
    w.stop()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b2"), ("DELETED", "b2"),
    ]


def test_watch_all_namespaces_and_cluster_scoped(api_server: ApiServerHandle) -> None:
    rv = str(api_server.rv())
    all_ns = WatchCollector(api_server.core.list_config_map_for_all_namespaces, resource_version=rv)
    namespaces = WatchCollector(api_server.core.list_namespace, resource_version=rv)
    api_server.core.create_namespaced_config_map("default", cm("a"))
    api_server.core.create_namespaced_config_map("velero", cm("b"))
    api_server.core.create_namespace({"metadata": {"name": "fresh"}})
    assert [(e["object"].metadata.namespace, e["object"].metadata.name) for e in all_ns.wait_count(2)] == [
        ("default", "a"), ("velero", "b"),
    ]
    assert [e["object"].metadata.name for e in namespaces.wait_count(1)] == ["fresh"]
    all_ns.stop()
    namespaces.stop()


def test_many_concurrent_watchers_each_get_every_event(api_server: ApiServerHandle) -> None:
    n_watchers, n_events = 30, 20
    core = CoreV1Api(api_server.new_client(pool_size=n_watchers + 2))
    rv = str(api_server.rv())
    watchers = [
        WatchCollector(core.list_namespaced_config_map, "default", resource_version=rv if i % 2 else None)
        for i in range(n_watchers)
    ]
    api_server.wait_watchers(n_watchers)
    for i in range(n_events):
        api_server.core.create_namespaced_config_map("default", cm(f"cm-{i:02d}"))
    expected = [("ADDED", f"cm-{i:02d}") for i in range(n_events)]
    for w in watchers:
        events = w.wait_count(n_events, timeout=10)
        assert [(e["type"], e["object"].metadata.name) for e in events] == expected
    for w in watchers:
        w.stop()
    api_server.wait_watchers(0)


def test_watch_of_unknown_resource_is_404(api_server: ApiServerHandle) -> None:
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(
            api_server.custom.list_namespaced_custom_object, "velero.io", "v1", "velero", "nothing",
            timeout_seconds=1,
        ):
            pass
    assert err.value.status == 404


def test_concurrent_writers_every_watcher_sees_one_ordered_history(api_server: ApiServerHandle) -> None:
    """Writes from many threads reach every watcher once each, in resourceVersion order."""
    n_writers, per_writer, n_watchers = 4, 25, 5
    rv = str(api_server.rv())
    watchers = [
        WatchCollector(api_server.core.list_namespaced_config_map, "default", resource_version=rv)
        for _ in range(n_watchers)
    ]
    clients = [api_server.new_client() for _ in range(n_writers)]

    def write(i: int) -> None:
        core = CoreV1Api(clients[i])
        for j in range(per_writer):
            core.create_namespaced_config_map("default", cm(f"w{i}-{j:02d}"))
            core.patch_namespaced_config_map(f"w{i}-{j:02d}", "default", {"data": {"n": str(j)}})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n_writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    total = n_writers * per_writer * 2
    histories = []
    for w in watchers:
        events = w.wait_count(total, timeout=10)
        w.stop()
        rvs = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(set(rvs)) and len(rvs) == total
        histories.append([(e["type"], e["raw_object"]["metadata"]["name"]) for e in events])
    assert all(h == histories[0] for h in histories)


def test_bookmarks_never_run_ahead_of_pending_events(api_server_factory: object) -> None:
    """A BOOKMARK promises every event up to its resourceVersion was sent: RVs never go back.

    The writer works in bursts and lets the stream drain between them (bookmarks are
    sent only when a stream is idle), so both busy and idle moments are exercised
    whatever the machine's load.
    """
    api = api_server_factory(bookmark_interval=0.0005)  # type: ignore[operator]
    rt = api.store.registry.lookup("", "v1", "configmaps")
    stop = threading.Event()
    seen = threading.Condition()
    last_seen = [0]
    bookmarks = [0]

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 400:
            for _ in range(20):
                created = api.store.create(rt, "default", {"metadata": {"name": f"c{i}"}})
                i += 1
            target = int(created["metadata"]["resourceVersion"])
            marks = bookmarks[0]
            with seen:  # wait (bounded) until the reader got the burst and a bookmark after it
                seen.wait_for(lambda t=target, m=marks: stop.is_set() or (last_seen[0] >= t and bookmarks[0] > m), timeout=5)

    conn = api.connect(timeout=10)
    conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true"
                        f"&resourceVersion={api.rv()}&timeoutSeconds=2")
    resp = conn.getresponse()
    thread = threading.Thread(target=writer)
    thread.start()
    rvs: list[tuple[str, int]] = []
    try:
        while line := resp.readline():
            event = json.loads(line)
            rv = int(event["object"]["metadata"]["resourceVersion"])
            rvs.append((event["type"], rv))
            with seen:
                last_seen[0] = max(last_seen[0], rv)
                bookmarks[0] += event["type"] == "BOOKMARK"
                seen.notify_all()
    finally:
        stop.set()
        with seen:
            seen.notify_all()
        thread.join()
        conn.close()
    assert {t for t, _ in rvs} == {"ADDED", "BOOKMARK"}
    backwards = [(a, b) for a, b in itertools.pairwise(rvs) if b[1] < a[1]]
    assert backwards == []
