"""A loopback Slack that slack_sdk's WebClient, Bolt's App and SocketModeHandler take for Slack.

- `workspace`: the state (channels, messages with edits, threads, ephemerals, calls);
- `webapi` + `methods`: the Web API on `/api/<method>`, with Slack's errors and 429s;
- `socket_mode` (+ `websocket`): the Socket Mode server behind `apps.connections.open`;
- `responses`: response_url POSTs and slash-command ack bodies applied to the channel;
- `sender`: signed slash commands and button presses, over HTTP or Socket Mode;
- `render`: the channel as text; `control`: `/sandbox/…` for the `ragbot sandbox` CLI;
- `emulator.SlackEmulator`: all of it wired on loopback ports.

See ../shared/reference/slack-wire-protocol.md for the protocol this reproduces.
"""

from .directory import Directory, sandbox_directory
from .emulator import SlackEmulator
from .render import render_channel
from .sender import Delivery, HttpTransport, Sender, SocketTransport
from .socket_mode import SocketModeServer
from .webapi import WebApiServer
from .workspace import Call, Message, SlackError, Workspace

__all__ = [
    "Call",
    "Delivery",
    "Directory",
    "HttpTransport",
    "Message",
    "Sender",
    "SlackEmulator",
    "SlackError",
    "SocketModeServer",
    "SocketTransport",
    "WebApiServer",
    "Workspace",
    "render_channel",
    "sandbox_directory",
]
