"""How fast is the sandbox API server? GET, LIST of 1,000 objects, watch fan-out to 100.

    python bench/bench_apiserver.py [--seconds 2] [--watchers 100] [--events 100]

Starts a bare in-process server (built-in rules, no seed, no controllers) on a loopback
port and measures, in one run:

* GET of one ConfigMap, requests per second, one client thread;
* LIST of 1,000 ConfigMaps, requests per second, one client thread;
* watch fan-out: N watchers on one namespace, E writes; events delivered per second
  summed over all watchers (N * E / time from first write to last delivery).

Each with the official `kubernetes` client (typed models, as ragbot uses it) and with a
raw keep-alive `http.client` connection that only parses the JSON, which shows what the
server itself sustains. Client and server share this process and its GIL, so the figures
are a floor for what a separate client process would see. Prints a small table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kubernetes
from kubernetes import client, watch

from sandbox.apiserver import builtin_rules
from sandbox.apiserver.server import ApiServer
from sandbox.apiserver.store import Store
from sandbox.cluster import load_objects, new_store

TOKEN = "bench-token"
LIST_SIZE = 1_000


def start_server() -> tuple[ApiServer, Store]:
    store = new_store()
    load_objects(store, [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
        for n in ("default", "bench", "fanout")
    ])
    rt = store.registry.lookup("", "v1", "configmaps")
    assert rt is not None
    store.create(rt, "default", {"metadata": {"name": "one", "labels": {"app": "bench"}},
                                 "data": {"key": "value" * 20}})
    for i in range(LIST_SIZE):
        store.create(rt, "bench", {"metadata": {"name": f"cm-{i:04d}", "labels": {"app": "bench"}},
                                   "data": {"key": "value" * 20}})
    server = ApiServer(store, admin_token=TOKEN, defaults=builtin_rules.apply_defaults).start()
    return server, store


def official_client(url: str, pool: int) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": f"Bearer {TOKEN}"}
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(cfg)


class Raw:
    """One keep-alive HTTP/1.1 connection; GETs parse the JSON answer like a client must."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}

    def get(self, path: str) -> Any:
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
        return json.loads(body)

    def close(self) -> None:
        self.conn.close()


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of fn over about `seconds` (after one warm-up call)."""
    fn()
    n = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        fn()
        n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - started)


def fanout_official(url: str, store: Store, watchers: int, events: int) -> float:
    api = official_client(url, watchers + 4)
    core = client.CoreV1Api(api)
    base = store.resource_version
    counts = [0] * watchers
    done = threading.Event()
    finished = [0]
    lock = threading.Lock()
    streams = [watch.Watch() for _ in range(watchers)]

    def run(i: int) -> None:
        for _ in streams[i].stream(core.list_namespaced_config_map, "fanout", resource_version=str(base)):
            counts[i] += 1
            if counts[i] == events:
                with lock:
                    finished[0] += 1
                    if finished[0] == watchers:
                        done.set()
                streams[i].stop()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(watchers)]
    return _drive_fanout(store, threads, watchers, events, done, "official", lambda: api.close())


def fanout_raw(url: str, store: Store, watchers: int, events: int) -> float:
    parts = urlsplit(url)
    base = store.resource_version
    done = threading.Event()
    finished = [0]
    lock = threading.Lock()
    conns: list[http.client.HTTPConnection] = []

    def run() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conns.append(conn)
        conn.request("GET", f"/api/v1/namespaces/fanout/configmaps?watch=true&resourceVersion={base}",
                     headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        seen = 0
        while seen < events:
            line = resp.readline()
            if not line:
                return
            json.loads(line)
            seen += 1
        with lock:
            finished[0] += 1
            if finished[0] == watchers:
                done.set()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(watchers)]

    def close() -> None:
        for c in conns:
            c.close()

    return _drive_fanout(store, threads, watchers, events, done, "raw", close)


def _drive_fanout(store: Store, threads: list[threading.Thread], watchers: int, events: int,
                  done: threading.Event, label: str, close: Callable[[], None]) -> float:
    before = store.watcher_count()
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while store.watcher_count() < before + watchers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: watchers did not register")
        time.sleep(0.01)
    rt = store.registry.lookup("", "v1", "configmaps")
    assert rt is not None
    started = time.perf_counter()
    for i in range(events):
        store.create(rt, "fanout", {"metadata": {"name": f"{label}-{i:05d}"}, "data": {"i": str(i)}})
    if not done.wait(60):
        raise RuntimeError(f"{label}: not every watcher got every event")
    elapsed = time.perf_counter() - started
    close()
    # Clean up so the next fan-out run starts from an empty namespace.
    for i in range(events):
        store.delete(rt, "fanout", f"{label}-{i:05d}")
    wait_until = time.monotonic() + 10
    while store.watcher_count() > before and time.monotonic() < wait_until:
        time.sleep(0.02)
    return watchers * events / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each rate run")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=100, help="writes in the fan-out run")
    args = parser.parse_args(argv)

    t0 = time.monotonic()
    server, store = start_server()
    api = official_client(server.url, 4)
    core = client.CoreV1Api(api)
    raw = Raw(server.url)
    try:
        rows = [
            (
                "GET one ConfigMap (req/s)",
                rate(lambda: core.read_namespaced_config_map("one", "default"), args.seconds),
                rate(lambda: raw.get("/api/v1/namespaces/default/configmaps/one"), args.seconds),
            ),
            (
                f"LIST {LIST_SIZE:,} ConfigMaps (req/s)",
                rate(lambda: core.list_namespaced_config_map("bench"), args.seconds),
                rate(lambda: raw.get("/api/v1/namespaces/bench/configmaps"), args.seconds),
            ),
            (
                f"watch fan-out, {args.watchers} watchers (events/s)",
                fanout_official(server.url, store, args.watchers, args.events),
                fanout_raw(server.url, store, args.watchers, args.events),
            ),
        ]
    finally:
        raw.close()
        api.close()
        server.stop()

    width = max(len(r[0]) for r in rows)
    print(f"{'sandbox API server':<{width}}  {'official client':>15}  {'raw http.client':>15}")
    print(f"{'-' * width}  {'-' * 15}  {'-' * 15}")
    for label, official, rawv in rows:
        print(f"{label:<{width}}  {official:>15,.0f}  {rawv:>15,.0f}")
    print(f"(kubernetes client {kubernetes.__version__}, {args.watchers} watchers x "
          f"{args.events} writes, {time.monotonic() - t0:.1f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
