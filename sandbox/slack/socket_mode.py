"""A loopback Socket Mode server for the unmodified slack_sdk / Bolt Socket Mode client.

Socket Mode is the bot's default way to run, so the sandbox and the tests must exercise
it exactly as Slack does: the client asks `apps.connections.open` (on the Web API
emulator) for a one-time `ws://…/link/?ticket=…&app_id=…` URL, connects, receives
`hello`, then gets envelopes (`slash_commands`, `interactive`, `events_api`) and must
ack each one within 3 s with `{"envelope_id": …}` plus `"payload"` when the envelope
says `accepts_response_payload`. Envelopes go to the open connections round-robin.
`disconnect(reason="refresh_requested")` makes the client fetch a new URL and reconnect;
the old connection is closed after a grace period if the client keeps it. Pings are
answered with pongs carrying the same payload (the client reconnects without them).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import websocket as ws

log = logging.getLogger("sandbox.slack.socket_mode")


class NoConnection(RuntimeError):
    """No client is connected to take the envelope (Slack: `dispatch_failed`)."""


class AckTimeout(TimeoutError):
    """The client did not ack the envelope in time (Slack: `operation_timeout`)."""


@dataclass(frozen=True)
class SocketAck:
    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    seconds: float


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    ack: dict[str, Any] | None = None
    connection: int = 0


class _Connection:
    def __init__(self, cid: int, sock: socket.socket) -> None:
        self.id = cid
        self.sock = sock
        self.open = False  # handshake done
        self.draining = False  # told to disconnect
        self.closed = threading.Event()
        self._send_lock = threading.Lock()

    def send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(ws.encode_frame(opcode, payload))

    def send_json(self, message: dict[str, Any]) -> None:
        self.send(ws.OP_TEXT, json.dumps(message).encode())

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Close (with a close frame unless `code` is None: an abrupt drop)."""
        if self.closed.is_set():
            return
        self.closed.set()
        if code is not None and self.open:
            with contextlib.suppress(OSError):
                self.send(ws.OP_CLOSE, ws.close_payload(code, reason))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class SocketModeServer:
    """Serves Socket Mode on `ws://host:port/link/`. Use `start()`/`stop()` or `with`."""

    def __init__(
        self, *, app_id: str, host: str = "127.0.0.1", port: int = 0, drain_seconds: float = 10.0
    ) -> None:
        self.app_id = app_id
        self.drain_seconds = drain_seconds
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.1)
        self._host, self._port = self._listener.getsockname()[:2]
        self._lock = threading.Condition()
        self._tickets: set[str] = set()
        self._connections: dict[int, _Connection] = {}
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._turn = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.acks: list[dict[str, Any]] = []  # every ack received, in order
        self.pongs_sent = 0
        self.connections_made = 0

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self._port}"

    def issue_url(self) -> str:
        """A one-time connection URL, as apps.connections.open returns it."""
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets.add(ticket)
        return f"{self.url}/link/?ticket={ticket}&app_id={self.app_id}"

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> SocketModeServer:
        self._spawn(self._accept_loop, "socket-mode-accept")
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            conns = list(self._connections.values())
        for c in conns:
            c.close(1001, "server stopping")
        self._listener.close()
        for t in self._threads:
            t.join(2.0)

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    # ----- connections -------------------------------------------------------------------

    def connection_ids(self) -> list[int]:
        """Ids of the open connections that still take envelopes (not draining)."""
        with self._lock:
            return sorted(c.id for c in self._connections.values() if c.open and not c.draining)

    def open_connections(self) -> list[int]:
        """Ids of every open connection, draining ones included."""
        with self._lock:
            return sorted(c.id for c in self._connections.values() if c.open)

    def wait_connections(self, n: int, timeout: float = 10.0) -> list[int]:
        """Block until at least n connections take envelopes; TimeoutError otherwise."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.connection_ids()) >= n, timeout):
                raise TimeoutError(f"{n} Socket Mode connection(s) not made within {timeout}s")
            return self.connection_ids()

    def disconnect(self, reason: str = "refresh_requested", connection: int | None = None) -> int:
        """Send `disconnect` (to one connection or all); returns how many were told."""
        with self._lock:
            targets = [
                c for c in self._connections.values()
                if c.open and not c.draining and connection in (None, c.id)
            ]  # fmt: skip
            for c in targets:
                c.draining = True
        for c in targets:
            with contextlib.suppress(OSError):
                c.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox"}})
            timer = threading.Timer(self.drain_seconds, c.close, kwargs={"reason": reason})
            timer.daemon = True
            timer.start()
        return len(targets)

    def drop(self, connection: int | None = None) -> None:
        """Cut connections without a close frame, as a network failure would."""
        with self._lock:
            targets = [c for c in self._connections.values() if connection in (None, c.id)]
        for c in targets:
            c.close(None)

    # ----- envelopes ---------------------------------------------------------------------

    def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        timeout: float = 3.0,
    ) -> SocketAck:
        """Send one envelope to the next connection and wait for its ack."""
        if accepts_response_payload is None:
            accepts_response_payload = kind == "slash_commands"
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        pending = _Pending()
        with self._lock:
            self._pending[envelope_id] = pending
        started = time.monotonic()
        try:
            self._send_round_robin(envelope)
            if not pending.done.wait(timeout):
                raise AckTimeout(f"envelope {envelope_id} ({kind}) not acked within {timeout}s")
        finally:
            with self._lock:
                self._pending.pop(envelope_id, None)
        ack = pending.ack or {}
        payload_back = ack.get("payload")
        return SocketAck(
            envelope_id,
            payload_back if isinstance(payload_back, dict) else None,
            pending.connection,
            time.monotonic() - started,
        )

    def _send_round_robin(self, envelope: dict[str, Any]) -> None:
        with self._lock:
            ids = self.connection_ids()
            if not ids:
                raise NoConnection("no Socket Mode connection is open")
            self._turn += 1
            order = ids[self._turn % len(ids) :] + ids[: self._turn % len(ids)]
            conns = [self._connections[i] for i in order]
        for c in conns:
            try:
                c.send_json(envelope)
                return
            except OSError:
                c.close(None)
        raise NoConnection("every Socket Mode connection failed")

    # ----- the wire ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(next(self._ids), sock)
            self._spawn(self._serve, f"socket-mode-{conn.id}", conn)

    def _serve(self, conn: _Connection) -> None:
        try:
            rest = self._handshake(conn)
            if rest is None:
                return
            reader = ws.FrameReader(conn.sock, rest)
            while not conn.closed.is_set():
                msg = reader.message(lambda f: self._control(conn, f))
                if msg.opcode == ws.OP_CLOSE:
                    conn.close(1000)
                    return
                if msg.opcode == ws.OP_TEXT:
                    self._on_text(conn, msg.payload)
        except (ws.ProtocolError, OSError) as exc:
            log.debug("socket mode connection %d ended: %s", conn.id, exc)
        finally:
            conn.close(None)
            with self._lock:
                self._connections.pop(conn.id, None)
                self._lock.notify_all()

    def _handshake(self, conn: _Connection) -> bytes | None:
        request, rest = ws.read_http_request(conn.sock)
        parts = urlsplit(request.target)
        ticket = (parse_qs(parts.query).get("ticket") or [""])[0]
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        key = request.headers.get("sec-websocket-key", "")
        if request.method != "GET" or not parts.path.startswith("/link"):
            status, reason = 404, "Not Found"
        elif not valid:
            status, reason = 401, "Unauthorized"
        elif request.headers.get("upgrade", "").lower() != "websocket" or not key:
            status, reason = 400, "Bad Request"
        else:
            status, reason = 101, "Switching Protocols"
        if status != 101:
            conn.sock.sendall(ws.http_response(status, reason, {"Connection": "close"}, reason.encode()))
            return None
        headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": ws.accept_key(key)}
        conn.sock.sendall(ws.http_response(101, reason, headers))
        with self._lock:
            conn.open = True
            self._connections[conn.id] = conn
            self.connections_made += 1
            count = len(self.connection_ids())
            self._lock.notify_all()
        conn.send_json(
            {
                "type": "hello",
                "num_connections": count,
                "debug_info": {"host": "sandbox", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        return rest

    def _control(self, conn: _Connection, frame: ws.Frame) -> None:
        if frame.opcode == ws.OP_PING:
            conn.send(ws.OP_PONG, frame.payload)
            self.pongs_sent += 1

    def _on_text(self, conn: _Connection, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("socket mode connection %d sent non-JSON text", conn.id)
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        with self._lock:
            self.acks.append(message)
            pending = self._pending.get(str(message["envelope_id"]))
        if pending is not None:
            pending.ack = message
            pending.connection = conn.id
            pending.done.set()

