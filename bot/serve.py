"""Running the bot: secrets, the Slack connection (Socket Mode or HTTP), the reconciler.

Socket Mode when an app token is set (no public URL needed: the default way to run);
otherwise HTTP mode, with Bolt's WSGI adapter on waitress (a production server) at
`POST /slack/events`, every request's signature checked by Bolt (bad or stale: 401,
nothing done). `BotServer` is the whole process minus signal handling, so `ragbot
serve`, the all-in-one sandbox and the tests run exactly the same thing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from config.loader import read_secret
from config.models import Config
from k8s.client import Cluster

from .alerts import AlertMonitor
from .app import BotContext, build_app
from .leader import LeaderElector, make_identity
from .metrics import Metrics, count_cluster_errors
from .ops import OpsServer, kubernetes_check
from .reconciler import Options, Reconciler
from .scheduler import BackupScheduler
from .slack_io import add_error_observer, api_url, post, web_client

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
    """The Slack app, its transport, and (on the leader only) the reconciler and the
    scheduler. `start()`, then `stop()`.

    Every replica serves Slack; a LeaderElector on the Lease starts a fresh Reconciler and
    BackupScheduler when this replica wins and stops them when it loses (issue 7).
    `lease_seconds`/`renew_seconds` default to RAGBOT_LEASE_SECONDS/RAGBOT_RENEW_SECONDS,
    else 15 and 5 (client-go's defaults are 15 s and a 2 s retry).
    """

    def __init__(self, cfg: Config, cluster: Cluster, secrets: Secrets, *,
                 slack_api_url: str | None = None, host: str = "0.0.0.0", port: int = 3000,
                 options: Options | None = None, reconcile: bool = True,
                 lease_seconds: float | None = None, renew_seconds: float | None = None,
                 identity: str | None = None, ops_port: int | None = None,
                 alerts: bool = True) -> None:  # fmt: skip
        self.cfg, self.cluster, self.secrets = cfg, cluster, secrets
        self.host, self.port = host, port
        self.client = web_client(secrets.bot_token, base_url=slack_api_url or api_url())
        self.ctx = BotContext.create(cfg, cluster, self.client)
        self.app = build_app(self.ctx, signing_secret=secrets.signing_secret,
                             socket_mode=secrets.socket_mode)  # fmt: skip
        self.options = options
        self.metrics = Metrics()
        self.ctx.metrics = self.metrics
        count_cluster_errors(cluster, self.metrics)
        self._unobserve = add_error_observer(self.metrics.slack_error)
        self.alerts_enabled, self.alerts = alerts, None
        self.ops = None if ops_port is None else OpsServer(self.metrics, host=host, port=ops_port, checks={
            "kubernetes": kubernetes_check(cluster), "slack": self._slack_up,
            "config": lambda: (True, ", ".join(map(str, cfg.sources)) or "built-in defaults")})
        self.reconciler: Reconciler | None = None
        self.scheduler: BackupScheduler | None = None
        self.elector: LeaderElector | None = None
        if reconcile:
            env = os.environ
            lease = lease_seconds or float(env.get("RAGBOT_LEASE_SECONDS") or 15)
            renew = renew_seconds or float(env.get("RAGBOT_RENEW_SECONDS") or min(5.0, lease / 3))
            self.elector = LeaderElector(cluster, cfg, identity or make_identity(),
                                         on_start=self._lead, on_stop=self._unlead,
                                         lease_seconds=lease, renew_seconds=renew)  # fmt: skip
        self._socket: SocketModeHandler | None = None
        self._http: object | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """HTTP mode: the request URL Slack posts to (with the real port when 0 was asked)."""
        port = getattr(self._http, "effective_port", self.port)
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{port}{EVENTS_PATH}"

    @property
    def is_leader(self) -> bool:
        return self.elector is not None and self.elector.is_leader

    def _slack_up(self) -> tuple[bool, str]:
        if self._socket is not None:
            ok = self._socket.client.is_connected()
            return ok, "Socket Mode connected" if ok else "Socket Mode disconnected"
        ok = self._thread is not None and self._thread.is_alive()
        return ok, f"HTTP mode at {self.url}" if ok else "HTTP server not running"

    def _lead(self) -> None:
        """Won the Lease: reconcile and schedule (fresh objects: a stopped one stays stopped)."""
        self.metrics.set_leader(True)
        self.reconciler = Reconciler(self.cluster, self.cfg, self.client, options=self.options,
                                     metrics=self.metrics).start()
        channel = self.cfg.ragbot.slack.channel
        if self.alerts_enabled and channel:
            self.alerts = AlertMonitor(self.cluster, self.cfg,
                                       lambda m: post(self.client, channel, m)).start()
        self.scheduler = BackupScheduler(self.cluster, self.cfg, self.client).start()

    def _unlead(self) -> None:
        """Lost the Lease (or stopping): another replica carries on from the cluster."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.reconciler is not None:
            self.reconciler.stop()
        if self.alerts is not None:
            self.alerts.stop()
        self.metrics.set_leader(False)

    def start(self) -> BotServer:
        if self.ops is not None:
            self.ops.start()
        if self.elector is not None:
            self.elector.start()
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
        if self.elector is not None:
            self.elector.stop()  # stops the reconciler and scheduler, releases the Lease
        if self.ops is not None:
            self.ops.stop()
        self._unobserve()
        self.ctx.pool.shutdown(wait=False, cancel_futures=True)
