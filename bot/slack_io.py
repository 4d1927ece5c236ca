"""Talking to Slack's Web API: the client, message references, throttled edits.

Principle 4 of DESIGN.md: the bot reaches Slack only through `slack_sdk.WebClient`, the
sandbox and the tests only change its `base_url` (`RAGBOT_SLACK_API_URL`). The SDK's
retry handlers absorb a 429's Retry-After, a dropped connection or a 5xx once or twice;
what is still failing after that surfaces as `SlackFailure`, and the reconciler tries
again later (an announcement is only marked done after Slack said ok).

A progress message may change many times a second (Velero writes progress often), but
Slack allows about one message write per second per channel. `MessageUpdater` keeps, per
message, only a way to render its *latest* state and sends it at most once per
`min_interval`; a state that could not be sent (429 beyond retries) stays pending and is
retried, so the last state always reaches the channel.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

log = logging.getLogger("ragbot.slack")

API_URL_ENV = "RAGBOT_SLACK_API_URL"
DEFAULT_API_URL = "https://slack.com/api/"
Message = Mapping[str, Any]


class SlackFailure(Exception):
    """A Web API call that failed after the SDK's retries (429, 5xx, network, ok:false)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error


def api_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(API_URL_ENV, "").strip() or DEFAULT_API_URL


def web_client(token: str, *, base_url: str | None = None, rate_limit_retries: int = 2) -> WebClient:
    """A WebClient that retries rate limits, connection errors and server errors."""
    return WebClient(
        token=token,
        base_url=base_url or api_url(),
        timeout=15,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            ConnectionErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


@dataclass(frozen=True)
class MessageRef:
    """Where a message is: stored on cluster objects as `<channel>/<ts>`."""

    channel: str
    ts: str

    def __str__(self) -> str:
        return f"{self.channel}/{self.ts}"

    @classmethod
    def parse(cls, text: str | None) -> MessageRef | None:
        channel, sep, ts = (text or "").partition("/")
        return cls(channel, ts) if sep and channel and ts else None


#: Called with (method, error) for every SlackFailure; bot.metrics counts them. A list,
#: not a parameter, because these helpers are plain functions called from many places.
_error_observers: list[Callable[[str, str], None]] = []


def add_error_observer(observer: Callable[[str, str], None]) -> Callable[[], None]:
    """Call `observer(method, error)` on every failed Web API call; returns the remover."""
    _error_observers.append(observer)
    return lambda: _error_observers.remove(observer) if observer in _error_observers else None


def _failed(method: str, error: str) -> SlackFailure:
    for observer in list(_error_observers):
        try:
            observer(method, error)
        except Exception:  # an observer must never turn into a Slack failure
            log.exception("Slack error observer failed")
    return SlackFailure(method, error)


def _call(method: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except SlackApiError as err:
        raise _failed(method, str(err.response.get("error") or err.response.status_code)) from None
    except (SlackClientError, OSError) as err:
        raise _failed(method, f"{type(err).__name__}: {err}") from None


def post(client: WebClient, channel: str, msg: Message, *, thread_ts: str | None = None,
         broadcast: bool = False) -> MessageRef:  # fmt: skip
    """chat.postMessage; the new message's reference."""
    kwargs: dict[str, Any] = {"channel": channel, "text": msg["text"], "blocks": msg.get("blocks")}
    if thread_ts:
        kwargs.update(thread_ts=thread_ts, reply_broadcast=broadcast)
    resp = _call("chat.postMessage", client.chat_postMessage, **kwargs)
    return MessageRef(str(resp["channel"]), str(resp["ts"]))


def update(client: WebClient, ref: MessageRef, msg: Message) -> None:
    _call("chat.update", client.chat_update, channel=ref.channel, ts=ref.ts, text=msg["text"],
          blocks=msg.get("blocks"))  # fmt: skip


def ephemeral(client: WebClient, channel: str, user: str, msg: Message) -> None:
    _call("chat.postEphemeral", client.chat_postEphemeral, channel=channel, user=user,
          text=msg["text"], blocks=msg.get("blocks"))  # fmt: skip


def usergroup_members(client: WebClient, group: str) -> list[str]:
    resp = _call("usergroups.users.list", client.usergroups_users_list, usergroup=group)
    return [str(u) for u in resp.get("users") or []]


@dataclass
class _Pending:
    render: Callable[[], Message]
    since: float
    seq: int = 0


class MessageUpdater:
    """Throttled `chat.update`s: per message at most one per `min_interval`, latest state wins.

    `submit(ref, render)` records how to render the message now; a background thread
    calls `render()` when the message's turn comes and sends the result. `send_now`
    renders and sends synchronously (the final state before an announcement). `on_sent`
    is called with (ref, seconds from the oldest unsent submit to the send) for metrics.
    """

    def __init__(self, client: WebClient, *, min_interval: float = 1.0,
                 retry_delay: float = 1.0,
                 on_sent: Callable[[MessageRef, float], None] | None = None) -> None:  # fmt: skip
        self.client = client
        self.min_interval = min_interval
        self.retry_delay = retry_delay
        self.on_sent = on_sent
        self._pending: dict[MessageRef, _Pending] = {}
        self._next_at: dict[MessageRef, float] = {}
        # Sends of one message are serialised and never go backwards: each submit gets a
        # sequence number; a send older than the newest one already sent is dropped, so an
        # in-flight progress edit can never land after the final state.
        self._seq = 0
        self._sent_seq: dict[MessageRef, int] = {}
        self._send_locks: dict[MessageRef, threading.Lock] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="ragbot-slack-updater", daemon=True)

    def start(self) -> MessageUpdater:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, ref: MessageRef, render: Callable[[], Message]) -> None:
        with self._cond:
            old = self._pending.get(ref)
            self._seq += 1
            self._pending[ref] = _Pending(render, old.since if old else time.monotonic(), self._seq)
            self._cond.notify_all()

    def send_now(self, ref: MessageRef, render: Callable[[], Message]) -> None:
        """Render and send at once (raises SlackFailure); a pending state is superseded."""
        with self._cond:
            pending = self._pending.pop(ref, None)
            self._seq += 1
            seq = self._seq
        since = pending.since if pending else time.monotonic()
        try:
            self._send(ref, render, seq)
        except SlackFailure:
            with self._cond:
                self._pending.setdefault(ref, _Pending(render, since, seq))
            raise
        self._sent(ref, since)

    def _send(self, ref: MessageRef, render: Callable[[], Message], seq: int) -> bool:
        """Send one state unless a newer one was already sent; False when dropped."""
        with self._cond:
            lock = self._send_locks.setdefault(ref, threading.Lock())
        with lock:
            if self._sent_seq.get(ref, 0) > seq:
                return False
            update(self.client, ref, render())
            self._sent_seq[ref] = seq
            return True

    def idle(self) -> bool:
        with self._cond:
            return not self._pending

    def _sent(self, ref: MessageRef, since: float) -> None:
        with self._cond:
            self._next_at[ref] = time.monotonic() + self.min_interval
        if self.on_sent is not None:
            self.on_sent(ref, time.monotonic() - since)

    def _due(self) -> tuple[MessageRef, _Pending] | float:
        """The next message to send, or how long to wait for one."""
        now = time.monotonic()
        wait = 3600.0
        for ref, pending in self._pending.items():
            at = self._next_at.get(ref, 0.0)
            if at <= now:
                return ref, pending
            wait = min(wait, at - now)
        return wait

    def _run(self) -> None:
        while True:
            due: tuple[MessageRef, _Pending] | float = 0.0
            with self._cond:
                while not self._stop:
                    due = self._due()
                    if isinstance(due, tuple):
                        break
                    self._cond.wait(due)
                if self._stop or not isinstance(due, tuple):
                    return
                ref, pending = due
                del self._pending[ref]
            try:
                if not self._send(ref, pending.render, pending.seq):
                    continue
            except SlackFailure as err:
                log.warning("could not update Slack message %s: %s; retrying", ref, err)
                with self._cond:
                    self._pending.setdefault(ref, pending)
                    self._next_at[ref] = time.monotonic() + self.retry_delay
                continue
            except Exception:  # a render bug must not kill the thread
                log.exception("rendering Slack message %s failed", ref)
                continue
            self._sent(ref, pending.since)
