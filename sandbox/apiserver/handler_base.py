"""What every request handler of the sandbox API server shares: bodies in, JSON out.

Split from server.py so routing (server.py), the REST verbs (verbs.py) and watch
streaming (watch_stream.py) each stay one job; they meet in `server._Handler`.
"""

from __future__ import annotations

import json
import logging
import select
import socket
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from . import errors
from .patch import APPLY_PATCH
from .resources import ResourceType

if TYPE_CHECKING:
    from .server import ApiServer

log = logging.getLogger("sandbox.apiserver")

_TRUE = {"true", "True", "1"}


@dataclass(frozen=True)
class Route:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str
    subresource: str


class HandlerBase(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per request on Linux loopback).
    disable_nagle_algorithm = True
    server: Any
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
        for warning in getattr(self, "_warnings", ()):
            self.send_header("Warning", warning)
        self._warnings = []
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
