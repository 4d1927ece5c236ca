"""The HTTP front of the sandbox API server: routing, verbs, watch streaming.

Standard-library ThreadingHTTPServer speaking HTTP/1.1 with keep-alive, one thread per
connection, so hundreds of watches and requests run at once. Every answer is JSON with
`Content-Type: application/json` (the 37.x client refuses anything else), and errors are
`Status` objects worded as the kube-apiserver words them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from config.selectors import SelectorError, parse_selector

from . import discovery, errors, tables
from .auth import Authorizer, RequestAttributes, UserInfo, authenticate, forbidden_message
from .faults import Faults
from .fields import parse_field_selector
from .patch import APPLY_PATCH, PatchError, apply_patch
from .resources import ResourceType
from .store import Store

log = logging.getLogger("sandbox.apiserver")

_TRUE = {"true", "True", "1"}
# Kinds whose registry sets ReturnDeletedObject: DELETE answers with the object, not a
# Status (pkg/registry/core/*/storage); the typed client's response model depends on it.
_RETURNS_DELETED_OBJECT = frozenset(
    {"Pod", "Service", "ServiceAccount", "PersistentVolume", "PersistentVolumeClaim",
     "StorageClass", "Node", "Namespace"}
)


@dataclass(frozen=True)
class Route:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str
    subresource: str


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
        self._thread: threading.Thread | None = None
        self._open_watches: set[Any] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    def start(self) -> ApiServer:
        # A short poll interval: stop() waits up to one interval for the serving loop.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="sandbox-apiserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per request on Linux loopback).
    disable_nagle_algorithm = True
    server: _Server
    abort = False
    watcher: Any = None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    # ----- plumbing ----------------------------------------------------------------------

    @property
    def api(self) -> ApiServer:
        return self.server.api

    def _send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._body_read = True
        if not raw:
            return None
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype in ("application/vnd.kubernetes.protobuf", "application/cbor"):
            # A real apiserver decodes these; the sandbox speaks JSON and YAML only.
            raise errors.ApiError(
                errors.status_body(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    f'include: application/json, application/yaml (got "{ctype}")',
                )
            )
        if ctype == APPLY_PATCH or ctype.endswith("yaml"):
            import yaml

            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {exc}"
            ) from None

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

    def _selectors(self, rt: ResourceType, query: dict[str, str]) -> tuple[Any, Any]:
        try:
            labels = parse_selector(query.get("labelSelector", ""))
        except SelectorError as exc:
            raise errors.bad_request(f"unable to parse requirement: {exc}") from None
        fields = parse_field_selector(query.get("fieldSelector", ""), rt.kind)
        return labels, fields

    def _verb_get(self, route: Route, query: dict[str, str]) -> None:
        obj = self.api.store.get(route.rt, route.namespace or "", route.name)
        table_opts = tables.options(self.headers.get("Accept", ""), query)
        if table_opts is not None:
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            self._send_json(200, tables.table(route.rt, [obj], meta, table_opts))
            return
        self._send_json(200, obj)

    def _verb_list(self, route: Route, query: dict[str, str]) -> None:
        labels, fields = self._selectors(route.rt, query)
        limit = max(0, _int_param(query, "limit"))
        start_after = None
        cont = query.get("continue") or ""
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                start_after = (token["ns"], token["name"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request(
                    "continue key is not valid: invalid continue token"
                ) from None
        items, rv, last, remaining = self.api.store.list(
            route.rt, route.namespace, labels, fields, start_after=start_after, limit=limit
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if last is not None:
            token = json.dumps({"ns": last[0], "name": last[1], "rv": rv})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                meta["remainingItemCount"] = remaining
        table_opts = tables.options(self.headers.get("Accept", ""), query)
        if table_opts is not None:
            self._send_json(200, tables.table(route.rt, items, meta, table_opts))
            return
        body = {
            "kind": route.rt.list_kind,
            "apiVersion": route.rt.api_version,
            "metadata": meta,
            "items": items,
        }
        self._send_json(200, body)

    def _verb_create(self, route: Route, query: dict[str, str]) -> None:
        body = self._read_body()
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_kind(route.rt, body)
        obj = self.api.store.create(
            route.rt,
            route.namespace or "",
            body,
            dry_run=query.get("dryRun") == "All",
            defaults=self.api.defaults,
        )
        self._send_json(201, obj)

    def _check_kind(self, rt: ResourceType, body: dict[str, Any]) -> None:
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if api_version != rt.api_version
                else f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
            )

    def _verb_update(self, route: Route, query: dict[str, str]) -> None:
        body = self._read_body()
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_kind(route.rt, body)
        obj = self.api.store.update(
            route.rt,
            route.namespace or "",
            route.name,
            body,
            subresource=route.subresource,
            dry_run=query.get("dryRun") == "All",
        )
        self._send_json(200, obj)

    def _verb_patch(self, route: Route, query: dict[str, str]) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == APPLY_PATCH or not ctype:
            raise errors.unsupported_media_type(ctype)
        body = self._read_body()

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            try:
                patched = apply_patch(current, ctype, body)
            except PatchError as exc:
                if ctype.startswith("application/") and "patch" not in ctype:
                    raise errors.unsupported_media_type(ctype) from None
                raise errors.ApiError(
                    errors.status_body(422, "Invalid", str(exc))
                    if "json-patch" in ctype
                    else errors.status_body(400, "BadRequest", str(exc))
                ) from None
            if not isinstance(patched, dict):
                raise errors.bad_request("patch result is not an object")
            return patched

        if ctype not in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json-patch+json",
        ):
            raise errors.unsupported_media_type(ctype)
        if ctype == "application/strategic-merge-patch+json" and route.rt.is_crd:
            raise errors.unsupported_media_type(ctype)
        obj = self.api.store.apply_update(
            route.rt,
            route.namespace or "",
            route.name,
            mutate,
            subresource=route.subresource,
            dry_run=query.get("dryRun") == "All",
        )
        self._send_json(200, obj)

    def _delete_options(self, query: dict[str, str]) -> dict[str, Any]:
        body = self._read_body() or {}
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        opts = dict(body)
        if "propagationPolicy" in query:
            opts["propagationPolicy"] = query["propagationPolicy"]
        if query.get("dryRun") == "All":
            opts["dryRun"] = ["All"]
        policy = opts.get("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is not None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.ApiError(
                errors.status_body(
                    422,
                    "Invalid",
                    f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
                )
            )
        opts["propagationPolicy"] = policy
        return opts

    def _verb_delete(self, route: Route, query: dict[str, str]) -> None:
        opts = self._delete_options(query)
        pre = opts.get("preconditions") or {}
        obj, gone = self.api.store.delete(
            route.rt,
            route.namespace or "",
            route.name,
            propagation=opts["propagationPolicy"],
            precondition_uid=pre.get("uid"),
            precondition_rv=pre.get("resourceVersion"),
            dry_run="All" in (opts.get("dryRun") or []),
        )
        if gone and route.rt.kind not in _RETURNS_DELETED_OBJECT:
            details: dict[str, Any] = {
                "name": route.name,
                "kind": route.rt.plural,
                "uid": obj["metadata"].get("uid"),
            }
            if route.rt.group:
                details["group"] = route.rt.group
            self._send_json(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                },
            )
        else:
            self._send_json(200, obj)

    def _verb_deletecollection(self, route: Route, query: dict[str, str]) -> None:
        opts = self._delete_options(query)
        labels, fields = self._selectors(route.rt, query)
        items, _, _, _ = self.api.store.list(route.rt, route.namespace, labels, fields)
        deleted = []
        for obj in items:
            m = obj["metadata"]
            try:
                gone_obj, _ = self.api.store.delete(
                    route.rt,
                    m.get("namespace", ""),
                    m["name"],
                    propagation=opts["propagationPolicy"],
                    dry_run="All" in (opts.get("dryRun") or []),
                )
                deleted.append(gone_obj)
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        meta = {"resourceVersion": str(self.api.store.resource_version)}
        self._send_json(
            200,
            {
                "kind": route.rt.list_kind,
                "apiVersion": route.rt.api_version,
                "metadata": meta,
                "items": deleted,
            },
        )

    def _verb_watch(self, route: Route, query: dict[str, str]) -> None:
        if route.name:  # GET .../{name}?watch=true watches that one object, as upstream
            query = dict(query)
            query["fieldSelector"] = ",".join(
                filter(None, (query.get("fieldSelector"), f"metadata.name={route.name}"))
            )
        labels, fields = self._selectors(route.rt, query)
        rv = query.get("resourceVersion", "")
        api = self.api
        gone = rv not in ("", "0") and api.faults.take_watch_gone(self.path)
        timeout = float(_int_param(query, "timeoutSeconds") or api.max_watch_seconds)
        bookmarks = query.get("allowWatchBookmarks") in _TRUE
        try:
            if gone:
                raise errors.gone(f"too old resource version: {rv} ({api.store.resource_version})")
            watcher = api.store.watch(route.rt, route.namespace, labels, fields, rv)
        except errors.ApiError as exc:
            if exc.code != 410:
                raise
            # A real apiserver answers 200 and sends the 410 as an ERROR event.
            self._start_stream()
            self._chunk({"type": "ERROR", "object": exc.status})
            self._end_stream()
            return
        self.watcher = watcher
        with api._lock:
            api._open_watches.add(self)
        try:
            self._stream(route, watcher, time.monotonic() + timeout, bookmarks, query)
        finally:
            with api._lock:
                api._open_watches.discard(self)
            api.store.stop_watch(watcher)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stream(
        self, route: Route, watcher: Any, deadline: float, bookmarks: bool, query: dict[str, str]
    ) -> None:
        api = self.api
        table_opts = tables.options(self.headers.get("Accept", ""), query)
        self._start_stream()
        sent = 0
        headers_sent = False  # a Table watch carries column definitions once (NoHeaders)
        next_bookmark = time.monotonic() + api.bookmark_interval
        drop_after = api.faults.get().watch_drop_after_events
        while not self.abort:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = min(deadline, next_bookmark if bookmarks else deadline) - now
            try:
                item = watcher.events.get(timeout=max(0.0, min(wait, 1.0)))
            except queue.Empty:
                if _peer_closed(self.connection):
                    # The client went away (Watch.stop, a killed process): free the watcher
                    # now rather than at the next event or after max_watch_seconds.
                    self.close_connection = True
                    return
                if bookmarks and time.monotonic() >= next_bookmark:
                    headers_sent = self._bookmark(route, table_opts, headers_sent) or headers_sent
                    next_bookmark = time.monotonic() + api.bookmark_interval
                continue
            if item is None or self.abort:
                break
            etype, obj = item
            if table_opts is not None:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                obj = tables.table(route.rt, [obj], meta, table_opts, no_headers=headers_sent)
                headers_sent = True
            self._chunk({"type": etype, "object": obj})
            sent += 1
            if drop_after and sent >= drop_after:
                self.abort = True
        if self.abort:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        self._end_stream()

    def _bookmark(self, route: Route, table_opts: Any = None, no_headers: bool = False) -> bool:
        """Send a BOOKMARK unless an event is pending; True when one was sent.

        Under the store lock (writes emit under it), an empty queue means every event up
        to the current resourceVersion has been sent, so the bookmark never runs ahead of
        an event still to come (a client resuming from it would miss that event).
        """
        store = self.api.store
        with store.lock:
            if self.watcher is not None and not self.watcher.events.empty():
                return False
            rv = str(store.resource_version)
        obj: dict[str, Any] = {
            "kind": route.rt.kind,
            "apiVersion": route.rt.api_version,
            "metadata": {"resourceVersion": rv},
        }
        if table_opts is not None:  # the apiserver converts bookmarks like any object
            obj = tables.table(
                route.rt, [obj], {"resourceVersion": rv}, table_opts, no_headers=no_headers
            )
        self._chunk({"type": "BOOKMARK", "object": obj})
        return True


def _raise(exc: Exception) -> Any:
    raise exc


def _int_param(query: dict[str, str], name: str) -> int:
    """An integer query parameter (0 when absent); 400 BadRequest when not an integer."""
    text = query.get(name) or "0"
    try:
        return int(text)
    except ValueError:
        raise errors.bad_request(
            f'strconv.ParseInt: parsing "{text}": invalid syntax for {name}'
        ) from None


def _peer_closed(sock: socket.socket) -> bool:
    """True when the client closed its end: the socket is readable with nothing to read."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _selected_name(field_selector: str) -> str:
    """The name a fieldSelector pins with `metadata.name=` (fields.RequiresExactMatch)."""
    for term in field_selector.split(","):
        key, sep, value = term.partition("==") if "==" in term else term.partition("=")
        if sep and not key.endswith("!") and key.strip() == "metadata.name":
            value = value.strip()
            if value not in (".", "..") and "/" not in value and "%" not in value:
                return value
    return ""
