"""The Bolt app factory: one App wired to the command and button listeners.

Bolt only wires (STYLE.md, from bolt-python): the listeners are thin functions in
bot.listeners and bot.listeners_approval that take what Bolt injects by name. The app
talks to Slack through the WebClient it is given (so `RAGBOT_SLACK_API_URL` reaches
every call, auth.test included) and checks signatures in HTTP mode; Socket Mode has no
signatures (the connection is authenticated by the app token).

`BotContext` is what every listener needs: config, cluster, Slack client, the user-group
cache and a thread pool for work that may outlast Slack's 3 s ack window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from config.models import Config
from handlers.access import UsergroupCache
from handlers.blocks import APPROVE_ACTION, REJECT_ACTION
from handlers.commands import BACKUP_COMMAND, RESTORE_COMMAND
from k8s.client import Cluster

from .metrics import Metrics
from .slack_io import usergroup_members

log = logging.getLogger("ragbot.app")

#: How long a command may work before the ack goes out as "working on it" (Slack: 3 s).
ACK_BUDGET = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class BotContext:
    cfg: Config
    cluster: Cluster
    client: WebClient
    groups: UsergroupCache
    now: Callable[[], datetime] = _utcnow
    ack_budget: float = ACK_BUDGET
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="ragbot-cmd")
    )
    #: (command key, seconds to ack), for the log and the tests' figures.
    ack_times: list[tuple[str, float]] = field(default_factory=list)
    #: ragbot_commands_total and friends (bot.metrics); None in tools that need no metrics.
    metrics: Metrics | None = None

    @classmethod
    def create(cls, cfg: Config, cluster: Cluster, client: WebClient) -> BotContext:
        groups = UsergroupCache.for_access(cfg.ragbot.access,
                                           lambda g: usergroup_members(client, g))  # fmt: skip
        return cls(cfg, cluster, client, groups)

    def timed_ack(self, ack: Callable[..., Any], key: str, started: float, **kwargs: Any) -> None:
        ack(**kwargs)
        seconds = time.monotonic() - started
        self.ack_times.append((key, seconds))
        log.info("acked %s in %.3fs", key, seconds)


def build_app(ctx: BotContext, *, signing_secret: str | None, socket_mode: bool) -> App:
    """The Bolt App; calls auth.test once (Bolt does, to learn the bot's id)."""
    from .listeners import on_command
    from .listeners_approval import on_approve, on_reject

    app = App(
        client=ctx.client,
        signing_secret=signing_secret or "",
        request_verification_enabled=not socket_mode,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    def command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        on_command(ctx, ack, command, respond)

    def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        on_approve(ctx, ack, body, respond)

    def reject(ack: Any, body: dict[str, Any], respond: Any) -> None:
        on_reject(ctx, ack, body, respond)

    app.command(BACKUP_COMMAND)(command)
    app.command(RESTORE_COMMAND)(command)
    app.action(APPROVE_ACTION)(approve)
    app.action(REJECT_ACTION)(reject)

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a Slack listener: %s", error, exc_info=error)

    return app
