"""Running the bot: secrets, the Slack connection (Socket Mode or HTTP), the reconciler.

Socket Mode when an app token is set (no public URL needed: the default way to run);
otherwise HTTP mode, with Bolt's WSGI adapter on waitress (a production server) at
`POST /slack/events`, every request's signature checked by Bolt (bad or stale: 401,
nothing done). `BotServer` is the whole process minus signal handling, so `ragbot
serve`, the all-in-one sandbox and the tests run exactly the same thing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from config.loader import read_secret
from config.models import Config
from k8s.client import Cluster

from .app import BotContext, build_app
from .reconciler import Options, Reconciler
from .slack_io import api_url, web_client

log = logging.getLogger("ragbot.serve")

EVENTS_PATH = "/slack/events"


class MissingSecret(Exception):
    """A secret the chosen mode needs is not set: one line for stderr."""


@dataclass(frozen=True)
class Secrets:
    bot_token: str
    app_token: str | None
    signing_secret: str | None

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)


def load_secrets(cfg: Config, environ: Mapping[str, str] | None = None) -> Secrets:
    slack = cfg.ragbot.slack
    bot = read_secret(slack, "bot_token", environ)
    app = read_secret(slack, "app_token", environ)
    signing = read_secret(slack, "signing_secret", environ)
    if not bot:
        raise MissingSecret("SLACK_BOT_TOKEN is not set (or ragbot.slack.bot_token_file): "
                            "the bot token (xoxb-…) from the Slack app's OAuth page is required")  # fmt: skip
    if not app and not signing:
        raise MissingSecret("neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET "
                            "(HTTP mode) is set: set one (or ragbot.slack.*_file)")  # fmt: skip
    return Secrets(bot, app, signing)


class BotServer:
    """The Slack app, its transport and the reconciler. `start()`, then `stop()`."""

    def __init__(self, cfg: Config, cluster: Cluster, secrets: Secrets, *,
                 slack_api_url: str | None = None, host: str = "0.0.0.0", port: int = 3000,
                 options: Options | None = None, reconcile: bool = True) -> None:  # fmt: skip
        self.cfg, self.cluster, self.secrets = cfg, cluster, secrets
        self.host, self.port = host, port
        self.client = web_client(secrets.bot_token, base_url=slack_api_url or api_url())
        self.ctx = BotContext.create(cfg, cluster, self.client)
        self.app = build_app(self.ctx, signing_secret=secrets.signing_secret,
                             socket_mode=secrets.socket_mode)  # fmt: skip
        self.reconciler = Reconciler(cluster, cfg, self.client, options=options) if reconcile else None
        self._socket: SocketModeHandler | None = None
        self._http: object | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """HTTP mode: the request URL Slack posts to (with the real port when 0 was asked)."""
        port = getattr(self._http, "effective_port", self.port)
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{port}{EVENTS_PATH}"

    def start(self) -> BotServer:
        if self.reconciler is not None:
            self.reconciler.start()
        if self.secrets.socket_mode:
            self._socket = SocketModeHandler(self.app, self.secrets.app_token)
            self._socket.connect()
            log.info("connected to Slack in Socket Mode")
        else:
            from waitress.server import create_server  # type: ignore[import-untyped]

            server = create_server(SlackRequestHandler(self.app, path=EVENTS_PATH),
                                   host=self.host, port=self.port, threads=8,
                                   ident="ragbot")  # fmt: skip
            self._http = server
            self._thread = threading.Thread(target=server.run, name="ragbot-http", daemon=True)
            self._thread.start()
            log.info("serving Slack requests at %s", self.url)
        return self

    def stop(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except Exception as err:  # closing a dead socket must not hide the rest
                log.warning("closing Socket Mode: %s", err)
        if self._http is not None:
            self._http.close()  # type: ignore[attr-defined]
        if self.reconciler is not None:
            self.reconciler.stop()
        self.ctx.pool.shutdown(wait=False, cancel_futures=True)
