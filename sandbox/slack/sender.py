"""Be Slack's client side: send slash commands and button presses to the bot.

What a person does in Slack reaches the bot as a request built by Slack: a slash command
becomes a form POST (`command`, `text`, `user_id`, `response_url`, `trigger_id`, …) and
a button press a `block_actions` payload holding the whole source message. In HTTP mode
Slack signs the exact body (v0 HMAC-SHA256 with the current timestamp) and POSTs it to
the request URL; in Socket Mode it sends the same content as an envelope. `Sender`
builds these from the workspace state (the button's `action_id`/`value`/`block_id` come
from the stored message, a `confirm` dialog is accepted unless told otherwise) and sends
them over the transport the caller picks. Then it does what Slack does with the answer:
a slash command's ack body is shown to the user (ephemeral, or in the channel), and a
failure becomes Slackbot's `/cmd failed with the error "…"` notice.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import blockkit
from .directory import SLACKBOT, User
from .responses import ack_message, apply_response
from .socket_mode import AckTimeout, NoConnection, SocketModeServer
from .workspace import Message, SlackError, Workspace

ACK_SECONDS = 3.0


@dataclass(frozen=True)
class HttpTransport:
    """HTTP mode: POST to the bot's request URL (e.g. `http://127.0.0.1:3000/slack/events`)."""

    url: str
    signing_secret: str | None = None  # None: the workspace's
    timeout: float = 10.0


@dataclass(frozen=True)
class SocketTransport:
    """Socket Mode: an envelope through the loopback Socket Mode server."""

    server: SocketModeServer
    timeout: float = ACK_SECONDS


Transport = HttpTransport | SocketTransport


@dataclass(frozen=True)
class Delivery:
    """The outcome of one request, as Slack saw it."""

    transport: str  # "http" or "socket"
    sent: bool  # False: a confirm dialog was denied, nothing went out
    status: int  # HTTP status; socket: 200 when acked, 0 when not
    body: str  # the HTTP body, or the socket ack payload as JSON
    ack: dict[str, Any] | None  # the socket ack payload, or a JSON HTTP body
    seconds: float  # from sending to the answer
    response_url: str | None = None
    error: str | None = None  # what Slack reports to the user, e.g. operation_timeout
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def acked(self) -> bool:
        """Acknowledged in time, as Slack requires (`error` may still say the ack was bad)."""
        return self.sent and self.status == 200 and self.error != "operation_timeout"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """`X-Slack-Signature` for these exact body bytes."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def new_trigger_id() -> str:
    return f"{secrets.randbelow(10**13):013d}.{secrets.randbelow(10**13):013d}.{secrets.token_hex(16)}"


def command_payload(
    ws: Workspace, user: User, line: str, channel: str, response_url: str, trigger_id: str
) -> dict[str, str]:
    """The form fields of a slash command, all strings, in Slack's order."""
    command, _, text = line.strip().partition(" ")
    ch = ws.channel(channel)
    return {
        "token": ws.verification_token,
        "team_id": ws.team.id,
        "team_domain": ws.team.domain,
        "channel_id": ch.id if ch else channel,
        "channel_name": ch.name if ch else "",
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text.strip(),
        "api_app_id": ws.bot.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions_payload(
    ws: Workspace,
    user: User,
    message: Message,
    block: dict[str, Any],
    button: dict[str, Any],
    response_url: str,
    trigger_id: str,
    action_ts: str,
) -> dict[str, Any]:
    """The `block_actions` payload Slack sends when `user` presses `button`."""
    ch = ws.channel(message.channel)
    ephemeral = message.ephemeral_to is not None
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": message.channel,
        "is_ephemeral": ephemeral,
    }
    if message.is_reply:
        container["thread_ts"] = message.thread_ts
    action = {
        "action_id": button.get("action_id"),
        "block_id": block.get("block_id"),
        "text": button.get("text"),
        "type": "button",
        "action_ts": action_ts,
    }
    for key in ("value", "style", "url", "confirm"):
        if key in button:
            action[key] = button[key]
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team.id},
        "api_app_id": ws.bot.app_id,
        "token": ws.verification_token,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": ws.team.id, "domain": ws.team.domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": message.channel, "name": ch.name if ch else ""},
    }
    if not ephemeral:
        payload["message"] = message.to_api(ws.team.id)
    payload.update(state={"values": {}}, response_url=response_url, actions=[action])
    return payload


def find_button(message: Message, button: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A button of the message by its label, action_id or value."""
    found = blockkit.buttons(message.blocks)
    for block, element in found:
        label = (element.get("text") or {}).get("text")
        if button in (label, element.get("action_id"), element.get("value")):
            return block, element
    labels = [(e.get("text") or {}).get("text") for _, e in found]
    raise KeyError(f"no button {button!r} on message {message.ts} (buttons: {labels})")


class Sender:
    """Sends what a sandbox user does in Slack to the bot, over the chosen transport."""

    def __init__(
        self,
        workspace: Workspace,
        transport: Transport | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ws = workspace
        self.transport = transport
        self.clock = clock

    def command(
        self, user: str, line: str, *, channel: str | None = None, transport: Transport | None = None
    ) -> Delivery:
        """Type `line` (e.g. "/ragbackup now") as `user` (id or handle) in `channel`."""
        who = self.ws.directory.require_user(user)
        channel_id = self._channel_id(channel)
        url = self.ws.new_response_url(channel_id, who.id, command=line.strip())
        payload = command_payload(self.ws, who, line, channel_id, url, new_trigger_id())
        result = self.deliver("slash_commands", payload, transport, response_url=url)
        token = url.rsplit("/", 1)[-1]
        if result.acked:
            content_type = dict(result.headers).get("content-type", "")
            shown = result.ack if result.transport == "socket" else ack_message(result.body, content_type)
            if shown:
                target = self.ws.use_response_url(token, count=False)
                try:
                    apply_response(self.ws, target, dict(shown), via="ack")
                except SlackError as exc:  # e.g. invalid_blocks in the ack: the user sees why
                    result = replace(result, error=exc.code)
        if result.error:
            notice = f'{payload["command"]} failed with the error "{result.error}"'
            self.ws.post(channel_id, notice, user=SLACKBOT, ephemeral_to=who.id, via="slack")
        return result

    def click(
        self,
        user: str,
        message: Message | str,
        button: str,
        *,
        channel: str | None = None,
        confirm: bool = True,
        transport: Transport | None = None,
    ) -> Delivery:
        """Press `button` (label, action_id or value) on a message (ts, Message or "latest")."""
        who = self.ws.directory.require_user(user)
        channel_id = self._channel_id(channel or (message.channel if isinstance(message, Message) else None))
        source = self._message(channel_id, message, who.id)
        block, element = find_button(source, button)
        if element.get("confirm") is not None and not confirm:
            return Delivery(self._kind(transport), False, 0, "", None, 0.0)
        ephemeral = source.ephemeral_to is not None
        url = self.ws.new_response_url(
            channel_id, who.id, source_ts=source.ts, source_ephemeral=ephemeral
        )
        action_ts = f"{self.clock():.6f}"
        payload = block_actions_payload(
            self.ws, who, source, block, element, url, new_trigger_id(), action_ts
        )
        return self.deliver("interactive", payload, transport, response_url=url)

    def _channel_id(self, channel: str | None) -> str:
        """A channel id from an id or name; None: the directory's first (sandbox) channel."""
        if channel is None:
            return self.ws.directory.channels[0].id
        found = self.ws.channel(channel)
        if found is None:
            raise KeyError(f"no channel {channel!r} in the sandbox workspace")
        return found.id

    def _message(self, channel: str, message: Message | str, viewer: str) -> Message:
        if isinstance(message, Message):
            message = message.ts
        if message == "latest":
            visible = [
                m for m in self.ws.messages(channel)
                if blockkit.buttons(m.blocks) and m.ephemeral_to in (None, viewer)
            ]  # fmt: skip
            if not visible:
                raise KeyError(f"no message with buttons in {channel}")
            return visible[-1]
        found = self.ws.message(channel, message, viewer=viewer)
        if found is None:
            raise KeyError(f"no message {message} in {channel} visible to {viewer}")
        return found

    # ----- the wire ----------------------------------------------------------------------

    def _kind(self, transport: Transport | None) -> str:
        return "socket" if isinstance(transport or self.transport, SocketTransport) else "http"

    def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        transport: Transport | None = None,
        *,
        response_url: str | None = None,
    ) -> Delivery:
        """Send one request (`slash_commands` or `interactive`) and wait for the answer."""
        chosen = transport or self.transport
        if chosen is None:
            raise ValueError("no transport: give the Sender or the call one")
        if isinstance(chosen, SocketTransport):
            return self._socket(chosen, kind, payload, response_url)
        return self._http(chosen, kind, payload, response_url)

    def form_body(self, kind: str, payload: dict[str, Any]) -> bytes:
        if kind == "slash_commands":
            return urlencode(payload).encode()
        return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()

    def _http(
        self, t: HttpTransport, kind: str, payload: dict[str, Any], response_url: str | None
    ) -> Delivery:
        body = self.form_body(kind, payload)
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(t.signing_secret or self.ws.signing_secret, timestamp, body),
        }
        parts = urlsplit(t.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=t.timeout)
        started = time.monotonic()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            status, got = resp.status, tuple((k.lower(), v) for k, v in resp.getheaders())
        except (OSError, http.client.HTTPException) as exc:
            error = "operation_timeout" if isinstance(exc, TimeoutError) else "dispatch_failed"
            return Delivery("http", True, 0, "", None, time.monotonic() - started, response_url, error)
        finally:
            conn.close()
        seconds = time.monotonic() - started
        ack = None
        if text.lstrip().startswith("{"):
            try:
                ack = json.loads(text)
            except ValueError:
                ack = None
        error = None
        if seconds > ACK_SECONDS:
            error = "operation_timeout"
        elif status != 200:
            error = "dispatch_failed"
        return Delivery("http", True, status, text, ack, seconds, response_url, error, got)

    def _socket(
        self, t: SocketTransport, kind: str, payload: dict[str, Any], response_url: str | None
    ) -> Delivery:
        started = time.monotonic()
        try:
            ack = t.server.deliver(kind, payload, timeout=t.timeout)
        except NoConnection:
            return Delivery("socket", True, 0, "", None, 0.0, response_url, "dispatch_failed")
        except AckTimeout:
            seconds = time.monotonic() - started
            return Delivery("socket", True, 0, "", None, seconds, response_url, "operation_timeout")
        body = json.dumps(ack.payload) if ack.payload is not None else ""
        return Delivery("socket", True, 200, body, ack.payload, ack.seconds, response_url)
