"""Shared fixtures: a bare sandbox API server per test, reached over loopback HTTP.

Each test gets its own `ApiServer` on port 0 with a fresh `Store` (built-in rules, CRD
validation, the Velero CRDs and two namespaces loaded, no seed, no controllers), so tests
share no state and run in parallel under `pytest -n`. The Velero CRD YAML is parsed once
per process; everything else takes about a millisecond.

Helpers for the tests live here too (import them from `tests.conftest`): `wait_for`
polls a condition against a deadline instead of sleeping, `WatchCollector` runs an
official-client watch in a thread, and `ApiServerHandle.raw` speaks plain HTTP with
exactly the headers a test chooses.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client, watch

from sandbox.apiserver import builtin_rules
from sandbox.apiserver.objects import clone
from sandbox.apiserver.server import ApiServer
from sandbox.apiserver.store import Store
from sandbox.cluster import load_objects, new_store
from sandbox.seed import velero_crd_documents

# `--cluster=sandbox|upstream` and the upstream cluster fixture (tests/upstream/README.md).
pytest_plugins = ["tests.upstream.pytest_plugin"]

ADMIN_TOKEN = "test-admin-token"
NAMESPACES = ("default", "velero")
VELERO = ("velero.io", "v1")


@functools.cache
def _velero_crds() -> tuple[dict[str, Any], ...]:
    """The packaged Velero CRDs, parsed once per process (YAML parsing is the slow part)."""
    return tuple(velero_crd_documents())


def wait_for(
    condition: Callable[[], Any], timeout: float = 5.0, message: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


@dataclass
class RawResponse:
    """A plain HTTP answer: status, headers (case-insensitive lookup) and body."""

    status: int
    reason: str
    headers: http.client.HTTPMessage
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class ApiServerHandle:
    """One running test server with an official client pointed at it."""

    server: ApiServer
    store: Store
    client: client.ApiClient
    _extra_clients: list[client.ApiClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.client)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.client)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.client)

    def rv(self) -> int:
        """The store's current global resourceVersion."""
        return self.store.resource_version

    def new_client(self, pool_size: int = 16) -> client.ApiClient:
        """Another ApiClient (own connection pool), closed when the test ends."""
        c = make_client(self.url, pool_size=pool_size)
        self._extra_clients.append(c)
        return c

    def wait_watchers(self, n: int, timeout: float = 5.0) -> None:
        """Block until the store has exactly n registered watchers."""
        wait_for(lambda: self.store.watcher_count() == n, timeout, f"{n} watchers")

    def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> RawResponse:
        """One request with exactly these headers (http.client adds none of its own)."""
        conn = self.connect(timeout)
        try:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            send_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            send_headers.update(headers or {})
            if data is not None:
                send_headers["Content-Length"] = str(len(data))
            conn.request(method, path, body=data, headers=send_headers)
            resp = conn.getresponse()
            return RawResponse(resp.status, resp.reason, resp.headers, resp.read())
        finally:
            conn.close()

    def connect(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def close(self) -> None:
        self.server.stop()
        for c in [self.client, *self._extra_clients]:
            c.close()


def make_client(url: str, *, token: str = ADMIN_TOKEN, pool_size: int = 16) -> client.ApiClient:
    """An official-client ApiClient for url, with a pool big enough for parallel watches."""
    cfg = client.Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": f"Bearer {token}"}
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)


def build_store() -> Store:
    """A bare store: built-in rules, CRD validation, two namespaces and the Velero CRDs."""
    store = new_store()
    load_objects(
        store,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in NAMESPACES],
    )
    load_objects(store, [clone(doc) for doc in _velero_crds()])
    return store


def start_api_server(**server_kwargs: Any) -> ApiServerHandle:
    """Start a fresh ApiServer on a free loopback port; kwargs go to ApiServer."""
    store = build_store()
    server_kwargs.setdefault("defaults", builtin_rules.apply_defaults)
    server = ApiServer(store, port=0, admin_token=ADMIN_TOKEN, **server_kwargs).start()
    return ApiServerHandle(server, store, make_client(server.url))


@pytest.fixture
def api_server_factory() -> Iterator[Callable[..., ApiServerHandle]]:
    """Start servers with custom ApiServer arguments (e.g. bookmark_interval)."""
    handles: list[ApiServerHandle] = []

    def make(**server_kwargs: Any) -> ApiServerHandle:
        handle = start_api_server(**server_kwargs)
        handles.append(handle)
        return handle

    yield make
    for h in handles:
        h.close()


@pytest.fixture
def api_server(api_server_factory: Callable[..., ApiServerHandle]) -> ApiServerHandle:
    """A running bare sandbox API server with the Velero CRDs and an official ApiClient."""
    return api_server_factory()


@pytest.fixture
def api_client(api_server: ApiServerHandle) -> client.ApiClient:
    """The official ApiClient of `api_server`."""
    return api_server.client


class WatchCollector:
    """Runs `watch.Watch().stream(func, *args, **kwargs)` in a thread and keeps every event.

    `error` holds what the stream raised (None if it ended cleanly); `done` is set when
    the stream returns or raises.
    """

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.watch = watch.Watch()
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stopping = False
        self._resp: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, args=(func, args, kwargs), daemon=True, name="watch-collector"
        )
        self._thread.start()

    def _run(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        @functools.wraps(func)  # Watch.stream reads func's signature and docstring
        def capturing(*a: Any, **kw: Any) -> Any:
            self._resp = func(*a, **kw)
            return self._resp

        try:
            for event in self.watch.stream(capturing, *args, **kwargs):
                with self._lock:
                    self.events.append(event)
        except BaseException as exc:  # handed to the test thread
            if not self._stopping:
                self.error = exc
        finally:
            self.done.set()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def wait_count(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait for at least n events; returns all events so far."""
        wait_for(
            lambda: len(self.events) >= n or self.done.is_set(), timeout, f"{n} watch events"
        )
        events = self.snapshot()
        assert len(events) >= n, f"stream ended after {events!r} (error {self.error!r})"
        return events

    def wait_done(self, timeout: float = 5.0) -> None:
        wait_for(self.done.is_set, timeout, "the watch stream to end")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the stream now: 37.x's Watch.stop() cuts the socket, 33.x's only sets a flag."""
        self._stopping = True
        self.watch.stop()
        sock = getattr(getattr(self._resp, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "watch thread did not stop"
