"""The HTTP front of the sandbox API server: routing, verbs, watch streaming.

Standard-library ThreadingHTTPServer speaking HTTP/1.1 with keep-alive, one thread per
connection, so hundreds of watches and requests run at once. Every answer is JSON with
`Content-Type: application/json` (the 37.x client refuses anything else), and errors are
`Status` objects worded as the kube-apiserver words them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..loopback import BackgroundServer
from . import discovery, errors
from .auth import Authorizer, RequestAttributes, UserInfo, authenticate, forbidden_message
from .faults import Faults
from .handler_base import _TRUE, Route, _raise, _selected_name
from .resources import ResourceType
from .store import Store
from .verbs import RestVerbs
from .watch_stream import WatchStreaming

log = logging.getLogger("sandbox.apiserver")



class ApiServer:
    """A loopback Kubernetes API server over a Store. Start with `start()`."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str = "sandbox-admin-token",
        authorizer: Authorizer | None = None,
        bookmark_interval: float = 5.0,
        max_watch_seconds: float = 1800.0,
        defaults: Callable[[ResourceType, dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.faults = Faults()
        self.admin_token = admin_token
        self.authorizer = authorizer
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self.defaults = defaults
        self.request_count = 0
        self._httpd = _Server((host, port), _Handler)
        self._httpd.api = self
        self._background = BackgroundServer(self._httpd, "sandbox-apiserver")
        self._open_watches: set[Any] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._background.port

    @property
    def url(self) -> str:
        return self._background.url

    def start(self) -> ApiServer:
        self._background.start()
        return self

    def stop(self) -> None:
        self._background.stop()
        self.drop_watches()

    def drop_watches(self) -> None:
        """Cut every open watch connection abruptly, as a crashed apiserver would."""
        with self._lock:
            handlers = list(self._open_watches)
        for h in handlers:
            h.abort = True
            watcher = getattr(h, "watcher", None)
            if watcher is not None:
                self.store.stop_watch(watcher)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    api: ApiServer


class _Handler(RestVerbs, WatchStreaming):
    """Routing, authentication, faults and the `/sandbox/*` control endpoints."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._body_read = False
        self._warnings: list[str] = []  # Warning headers of the answer (unknown fields)
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.api.request_count += 1
        try:
            if path.startswith("/sandbox/"):
                self._sandbox_control(method, path)
                return
            if path in ("/healthz", "/readyz", "/livez"):
                self._send_plain(200, "ok")
                return
            user = self._authenticate()
            self._inject_faults(path, query)
            self._serve(method, path, query, user)
        except errors.ApiError as exc:
            self._drain_body()
            self._send_json(exc.code, exc.status, exc.headers)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # pragma: no cover - a bug in the sandbox itself
            log.exception("sandbox apiserver error on %s %s", method, self.path)
            err = errors.internal_error(str(exc))
            self._send_json(500, err.status)

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length and not getattr(self, "_body_read", False):
            try:
                self.rfile.read(length)
            except OSError:
                self.close_connection = True

    def _send_plain(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authenticate(self) -> UserInfo:
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token is None and self.api.authorizer is None:
            return UserInfo("system:anonymous", ("system:masters",))
        user = authenticate(token, self.api.admin_token)
        if user is None:
            raise errors.unauthorized()
        return user

    def _inject_faults(self, path: str, query: dict[str, str]) -> None:
        faults = self.api.faults
        settings = faults.get()
        if settings.latency_seconds and faults.applies(path):
            time.sleep(settings.latency_seconds)
        if query.get("watch") in _TRUE:
            return
        code = faults.roll_error(path)
        if code == 429:
            raise errors.too_many_requests(settings.retry_after_seconds)
        if code == 503:
            # An overloaded or restarting apiserver asks clients to come back, like a 429.
            err = errors.service_unavailable("the server is currently unable to handle the request")
            err.status["details"] = {"retryAfterSeconds": settings.retry_after_seconds}
            err.headers["Retry-After"] = str(settings.retry_after_seconds)
            raise err
        if code is not None:
            raise errors.internal_error("injected fault")

    def _sandbox_control(self, method: str, path: str) -> None:
        """`/sandbox/faults` (GET/PUT/DELETE) and `/sandbox/compact` (POST)."""
        if path == "/sandbox/faults":
            if method == "PUT":
                body = self._read_body() or {}
                try:
                    settings = self.api.faults.set(**body)
                except (ValueError, TypeError) as exc:
                    raise errors.bad_request(str(exc)) from None
            elif method == "DELETE":
                self.api.faults.clear()
                settings = self.api.faults.get()
            else:
                settings = self.api.faults.get()
            self._send_json(200, settings.__dict__)
        elif path == "/sandbox/compact" and method == "POST":
            self.api.store.compact()
            self._send_json(200, {"resourceVersion": str(self.api.store.resource_version)})
        elif path == "/sandbox/drop-watches" and method == "POST":
            self.api.drop_watches()
            self._send_json(200, {})
        else:
            raise errors.path_not_found()

    # ----- routing -----------------------------------------------------------------------

    def _serve(self, method: str, path: str, query: dict[str, str], user: UserInfo) -> None:
        types = self.api.store.registry.all()
        if method == "GET":
            doc = self._discovery(path, types)
            if doc is not None:
                self._send_json(200, doc)
                return
        route = self._route(path)
        if route is None:
            raise errors.path_not_found()
        verb = self._verb(method, route, query)
        self._authorize(user, verb, route, path, query)
        handler = getattr(self, f"_verb_{verb}")
        handler(route, query)

    def _discovery(self, path: str, types: list[ResourceType]) -> Any:
        parts = path.strip("/").split("/")
        if path == "/version":
            return discovery.SERVER_VERSION
        if path == "/api":
            return discovery.api_versions(f"127.0.0.1:{self.api.port}")
        if path == "/apis":
            return discovery.api_group_list(types)
        if len(parts) == 2 and parts[0] == "api":
            return discovery.resource_list(types, "", parts[1]) or _raise(errors.path_not_found())
        if len(parts) == 2 and parts[0] == "apis":
            return discovery.api_group(types, parts[1]) or _raise(errors.path_not_found())
        if len(parts) == 3 and parts[0] == "apis":
            return discovery.resource_list(types, parts[1], parts[2]) or _raise(
                errors.path_not_found()
            )
        return None

    def _route(self, path: str) -> Route | None:
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        rt = self.api.store.registry.lookup(group, version, rest[0])
        if rt is None:
            return None
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and not (sub == "status" and rt.has_status):
            return None
        if rt.namespaced and name and namespace is None:
            return None
        if not rt.namespaced and namespace is not None:
            return None
        return Route(rt, namespace, name, sub)

    def _verb(self, method: str, route: Route, query: dict[str, str]) -> str:
        if method == "GET":
            if query.get("watch") in _TRUE:
                return "watch"
            return "get" if route.name else "list"
        if method == "POST":
            if route.name:
                raise errors.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            return "create"
        if not route.name and method != "DELETE":
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        return {
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if route.name else "deletecollection",
        }[method]

    def _authorize(
        self, user: UserInfo, verb: str, route: Route, path: str, query: dict[str, str]
    ) -> None:
        authorizer = self.api.authorizer
        if authorizer is None or "system:masters" in user.groups:
            return
        name = route.name
        if verb in ("list", "watch"):
            # RequestInfoFactory: a list/watch pinned by fieldSelector metadata.name is
            # authorized (and refused) as a request for that name.
            name = _selected_name(query.get("fieldSelector", "")) or name
        namespace = route.namespace or ""
        if route.rt.kind == "Namespace" and not route.rt.group:
            namespace = route.name  # /api/v1/namespaces/{name} is "in the namespace {name}"
        attrs = RequestAttributes(
            user=user,
            verb=verb,
            api_group=route.rt.group,
            resource=route.rt.plural,
            subresource=route.subresource,
            namespace=namespace,
            name=name,
            resource_request=True,
            path=path,
        )
        reason = authorizer(attrs)
        if reason is not None:
            message = forbidden_message(attrs, route.rt.qualified)
            raise errors.forbidden(f"{message}: {reason}" if reason else message, route.rt, name)

    # ----- verbs -------------------------------------------------------------------------
