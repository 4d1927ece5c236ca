"""The HTTP front of the Slack emulator: Web API methods, response_urls, sandbox control.

`slack_sdk.WebClient(base_url=<url>/api/)` POSTs every method (JSON for chat.*, a form
for the rest) with the token in `Authorization: Bearer`; `AsyncWebClient` sends GETs
with a query string; older code puts `token` among the arguments. All of these land
here, on `/api/<method>` or `/<method>`, and are answered with JSON by `methods.call`.
`/response/<token>` takes response_url POSTs (Bolt's `respond()`), and `/sandbox/…`
lets a second process (the `ragbot sandbox` CLI) read the channel and act as a user.

Standard-library ThreadingHTTPServer, HTTP/1.1 keep-alive, port 0 by default so
parallel tests never collide.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..loopback import BackgroundServer
from . import methods, responses
from .control import Control
from .workspace import Workspace

log = logging.getLogger("sandbox.slack.webapi")
_METHOD = re.compile(r"[a-zA-Z]+(\.[a-zA-Z]+)+")


class WebApiServer:
    """Serves one Workspace over HTTP. Start with `start()`; `url` is the base."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        socket_url: Callable[[], str] | None = None,
        control: Control | None = None,
    ) -> None:
        self.workspace = workspace
        self.socket_url = socket_url
        self.control = control or Control(workspace)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.web = self
        self._background = BackgroundServer(self._httpd, "slack-webapi", poll_interval=0.05)
        workspace.base_url = self.url

    @property
    def url(self) -> str:
        return self._background.url

    @property
    def api_url(self) -> str:
        """What to give `WebClient(base_url=…)` and `RAGBOT_SLACK_API_URL`."""
        return f"{self.url}/api/"

    def start(self) -> WebApiServer:
        self._background.start()
        return self

    def stop(self) -> None:
        self._background.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    web: WebApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, verb: str) -> None:
        web = self.server.web
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = self._read_body()
        path = parts.path
        if path.startswith("/response/"):
            if verb != "POST":
                self._send(405, "method_not_allowed", "text/plain")
                return
            status, text = responses.respond(web.workspace, path.removeprefix("/response/"), raw)
            self._send(status, text, "text/plain; charset=utf-8")
            return
        if path.startswith("/sandbox/"):
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                self._send_json(400, {"error": "the body is not JSON"})
                return
            status, answer = web.control.handle(verb, path, query, body)
            self._send_json(status, answer)
            return
        method = path.removeprefix("/api/").strip("/")
        if not _METHOD.fullmatch(method):
            self._send_json(404, {"ok": False, "error": "unknown_method", "req_method": method})
            return
        args, token = self._arguments(query, raw)
        result = methods.call(web.workspace, method, args, token, socket_url=web.socket_url)
        self._send_json(result.status, result.body, result.headers)

    def _arguments(self, query: dict[str, str], raw: bytes) -> tuple[dict[str, Any], str | None]:
        """Merged query and body arguments, and the token (header first, then `token`)."""
        args: dict[str, Any] = dict(query)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            if isinstance(body, dict):
                body.pop("token", None)  # Slack reads JSON bodies' token from the header only
                args.update(body)
        elif raw:
            args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        from_args = args.pop("token", None)
        return args, token or (str(from_args) if from_args else None)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self._send(status, data, "application/json; charset=utf-8", headers)

    def _send(
        self, status: int, data: bytes | str, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
