"""One loopback Slack: a workspace, its Web API server and its Socket Mode server, wired.

The Web API answers `apps.connections.open` with a URL of the Socket Mode server, so a
bot given only `api_url` and the app token finds its way to Socket Mode as it would on
slack.com. `sender()` builds a `Sender` for the transport the bot under test uses, and
attaching it makes `/sandbox/command` and `/sandbox/click` work for other processes.
"""

from __future__ import annotations

from .control import Control
from .sender import HttpTransport, Sender, SocketTransport, Transport
from .socket_mode import SocketModeServer
from .webapi import WebApiServer
from .workspace import Workspace


class SlackEmulator:
    """Start with `start()` (or `with`); `api_url` goes to `WebClient(base_url=…)`."""

    def __init__(
        self, workspace: Workspace | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.workspace = workspace or Workspace()
        self.socket_mode = SocketModeServer(app_id=self.workspace.bot.app_id, host=host)
        self.control = Control(self.workspace)
        self.web = WebApiServer(
            self.workspace,
            host=host,
            port=port,
            socket_url=self.socket_mode.issue_url,
            control=self.control,
        )

    @property
    def url(self) -> str:
        return self.web.url

    @property
    def api_url(self) -> str:
        return self.web.api_url

    def start(self) -> SlackEmulator:
        self.socket_mode.start()
        self.web.start()
        return self

    def stop(self) -> None:
        self.web.stop()
        self.socket_mode.stop()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def http_transport(self, bot_url: str, signing_secret: str | None = None) -> HttpTransport:
        """HTTP mode: the bot's request URL, e.g. `http://127.0.0.1:3000/slack/events`."""
        return HttpTransport(bot_url, signing_secret)

    def socket_transport(self, timeout: float = 3.0) -> SocketTransport:
        return SocketTransport(self.socket_mode, timeout)

    def sender(self, transport: Transport, *, attach: bool = True) -> Sender:
        """A Sender over `transport`; attached, it also serves `/sandbox/command|click`."""
        sender = Sender(self.workspace, transport)
        if attach:
            self.control.sender = sender
        return sender
