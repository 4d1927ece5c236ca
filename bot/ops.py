"""The operator's HTTP endpoints: `/healthz`, `/readyz`, `/metrics`, apart from Slack.

Kubernetes probes and Prometheus must reach the bot even in Socket Mode (no Slack HTTP
server at all) and must not share a port with Slack's signed requests, so this is its own
small stdlib server on `--ops-port` (default 8080, `ragbot.ops_port`).

- `/healthz` (liveness): the process is alive and its loops are not wedged. Loops call
  `beat(name)`; a background thread of this server beats "ops" every second. Any
  heartbeat older than `stale_after` seconds answers 500, and the kubelet restarts the pod.
- `/readyz` (readiness): the Kubernetes API answers a cheap GET /version (2 s timeout,
  result cached ~2 s so probes and scrapes cannot load the API server), the Slack
  connection is up (a callable: Socket Mode connected, or the HTTP server running) and
  the configuration was loaded. The body lists each check, one per line.
- `/metrics`: bot.metrics in Prometheus' text format.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client as kclient

from k8s.client import Cluster

from .metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("ragbot.ops")

Check = Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def kubernetes_check(cluster: Cluster, *, timeout: float = 2.0, cache_seconds: float = 2.0,
                     monotonic: Callable[[], float] = time.monotonic) -> Check:  # fmt: skip
    """GET /version with a short timeout and no retries (Cluster.call would retry for
    seconds), remembered for `cache_seconds` so a probe storm is one request.

    Each check uses a new connection (a client of its own, closed after): a pooled
    keep-alive connection can outlive the server that accepted it, and a new connection
    is what proves the API server reachable now.
    """
    configuration = cluster.api_client.configuration
    lock = threading.Lock()
    cached: list[Any] = []  # [at, (ok, detail)]

    def check() -> tuple[bool, str]:
        with lock:
            if cached and monotonic() - cached[0] < cache_seconds:
                return cached[1]  # type: ignore[no-any-return]
            api_client = kclient.ApiClient(configuration)
            try:
                info = kclient.VersionApi(api_client).get_code(_request_timeout=timeout)
                result = (True, f"API server {getattr(info, 'git_version', '') or 'reachable'}")
            except Exception as err:  # any failure means not ready; say which
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                result = (False, f"API server unreachable: {type(err).__name__}: {first[:200]}")
            finally:
                api_client.close()
            cached[:] = [monotonic(), result]
            return result

    return check


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # http.server dispatches on this name
        ops = self.server.ops
        path = self.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                ok, body = ops.health()
                self._send(200 if ok else 500, body.encode())
            elif path == "/readyz":
                results = ops.readiness()
                ok = all(r.ok for r in results)
                lines = [f"[{'+' if r.ok else '-'}]{r.name} {'ok' if r.ok else 'failed'}: {r.detail}"
                         for r in results]  # fmt: skip
                lines.append("readyz check passed" if ok else "readyz check failed")
                self._send(200 if ok else 503, ("\n".join(lines) + "\n").encode())
            elif path == "/metrics":
                self._send(200, ops.metrics.render(), CONTENT_TYPE)
            else:
                self._send(404, b"not found: try /healthz, /readyz or /metrics\n")
        except Exception:  # a probe must get an answer, never a reset connection
            log.exception("ops endpoint %s failed", path)
            self._send(500, b"internal error\n")

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
        log.debug("ops %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ops: OpsServer


class OpsServer:
    """`/healthz`, `/readyz`, `/metrics` on host:port (0 picks a free port). `start`/`stop`."""

    def __init__(self, metrics: Metrics, *, host: str = "0.0.0.0", port: int = 8080,
                 checks: dict[str, Check] | None = None, stale_after: float = 60.0,
                 beat_interval: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.metrics = metrics
        self.checks: dict[str, Check] = dict(checks or {})
        self.stale_after = stale_after
        self.beat_interval = beat_interval
        self.monotonic = monotonic
        self._beats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.ops = self
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self) -> OpsServer:
        self.beat("ops")
        for name, target in (("http", self._serve), ("heartbeat", self._heartbeat)):
            t = threading.Thread(target=target, name=f"ragbot-ops-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("operator endpoints at %s (/healthz /readyz /metrics)", self.url)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for t in self._threads:
            t.join(2.0)

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.1)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.beat_interval):
            self.beat("ops")

    # ----- liveness ----------------------------------------------------------------------

    def beat(self, name: str) -> None:
        """`name`'s loop is alive now; once called, it must keep calling within stale_after."""
        with self._lock:
            self._beats[name] = self.monotonic()

    def forget(self, name: str) -> None:
        """`name`'s loop ended on purpose (e.g. leadership lost): stop expecting beats."""
        with self._lock:
            self._beats.pop(name, None)

    def health(self) -> tuple[bool, str]:
        now = self.monotonic()
        with self._lock:
            ages = {n: now - t for n, t in self._beats.items()}
        stale = {n: a for n, a in ages.items() if a > self.stale_after}
        if stale:
            shown = ", ".join(f"{n} last beat {a:.0f}s ago" for n, a in sorted(stale.items()))
            return False, f"wedged: {shown} (limit {self.stale_after:.0f}s)\n"
        return True, "ok\n"

    # ----- readiness ---------------------------------------------------------------------

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def readiness(self) -> list[CheckResult]:
        results = []
        for name, check in list(self.checks.items()):
            try:
                ok, detail = check()
            except Exception as err:
                ok, detail = False, f"{type(err).__name__}: {err}"
            results.append(CheckResult(name, ok, detail))
        return results


__all__ = ["Check", "CheckResult", "OpsServer", "kubernetes_check"]
