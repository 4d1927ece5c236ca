"""The RFC 6455 pieces the Socket Mode server needs, on a plain blocking socket.

The `websockets` package is not among our dependencies and a loopback server needs very
little of the protocol: the opening handshake (`Sec-WebSocket-Accept`), unfragmented
text frames out, masked frames in (text, continuation, ping, pong, close), and close.
slack_sdk's built-in client speaks plain `ws://` on any port but 443, and it parses
only unmasked, unfragmented server frames, which is exactly what `encode_frame` writes.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
MAX_HEADER_BYTES = 16_384
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The peer broke the protocol (or went away mid-frame)."""


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    digest = hashlib.sha1((key.strip() + GUID).encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


def read_http_request(sock: socket.socket) -> tuple[HttpRequest, bytes]:
    """Read the opening request line and headers; returns them and any bytes after."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1024)
        if not chunk:
            raise ProtocolError("connection closed during the handshake")
        data += chunk
        if len(data) > MAX_HEADER_BYTES:
            raise ProtocolError("handshake request too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ProtocolError(f"bad request line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return HttpRequest(parts[0], parts[1], headers), rest


def http_response(status: int, reason: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    if status != 101:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def encode_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One unmasked final frame, as a server sends it."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n <= 125:
        head += bytes([n])
    elif n <= 0xFFFF:
        head += struct.pack("!BH", 126, n)
    else:
        head += struct.pack("!BQ", 127, n)
    return head + payload


def close_payload(code: int = 1000, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class FrameReader:
    """Reads client frames off a socket (unmasking them) and joins fragmented messages."""

    def __init__(self, sock: socket.socket, pending: bytes = b"") -> None:
        self.sock = sock
        self._pending = pending

    def _exact(self, n: int) -> bytes:
        buf = bytearray(self._pending[:n])
        self._pending = self._pending[n:]
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ProtocolError("connection closed")
            buf += chunk
        return bytes(buf)

    def frame(self) -> Frame:
        b1, b2 = self._exact(2)
        opcode, length = b1 & 0x0F, b2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._exact(8))
        if length > MAX_MESSAGE_BYTES:
            raise ProtocolError("frame too large")
        mask = self._exact(4) if b2 & 0x80 else b""
        payload = self._exact(length)
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return Frame(bool(b1 & 0x80), opcode, payload)

    def message(self, on_control: Callable[[Frame], None]) -> Frame:
        """The next close frame or whole (reassembled) data message.

        Pings and pongs, even between the fragments of a message, go to `on_control`.
        """
        parts: list[bytes] = []
        opcode = None
        while True:
            frame = self.frame()
            if frame.opcode == OP_CLOSE:
                return frame
            if frame.opcode >= OP_CLOSE:
                on_control(frame)
                continue
            if opcode is None:
                if frame.opcode == OP_CONTINUATION:
                    raise ProtocolError("continuation frame without a message")
                opcode = frame.opcode
            elif frame.opcode != OP_CONTINUATION:
                raise ProtocolError("new message inside a fragmented one")
            parts.append(frame.payload)
            if frame.fin:
                return Frame(True, opcode, b"".join(parts))
