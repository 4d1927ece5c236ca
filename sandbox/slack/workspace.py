"""The state of the sandbox Slack: channel messages, edits, threads, ephemerals, calls.

Everything the bot does to Slack ends up here, whichever way it arrived (Web API call,
`response_url` POST, the ack body of a slash command), and every test question about
"what would the channel show" is answered from here. The Web API server, the Socket
Mode server and the sender are stateless fronts over one `Workspace`.

One lock guards all of it and one condition announces every change, so a test (or
`ragbot sandbox channel --follow`) waits on `wait_until(predicate, timeout)` instead of
sleeping. Readers get deep copies, never live objects. Time comes from an injectable
clock, so `response_url` expiry can be tested without waiting half an hour.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .directory import Channel, Directory, User, sandbox_directory
from .ratelimit import RateLimiter

T = TypeVar("T")

BOT_SCOPES = ("commands", "chat:write", "usergroups:read", "users:read", "channels:read")
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60


class SlackError(Exception):
    """A Slack `ok: false` answer: `code` is the `error` string, `extra` more keys."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass
class Revision:
    """An earlier version of a message, kept when it was edited."""

    text: str
    blocks: list[dict[str, Any]] | None
    replaced_at: str  # the edit's ts


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    ephemeral_to: str | None = None  # the only user who sees it
    deleted: bool = False
    edited_ts: str | None = None
    history: list[Revision] = field(default_factory=list)
    via: str = "chat.postMessage"
    posted_at: float = 0.0

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The message object Slack returns (chat.postMessage, block_actions `message`)."""
        out: dict[str, Any] = {"user": self.user, "type": "message", "ts": self.ts}
        if self.bot_id:
            out.update(bot_id=self.bot_id, app_id=self.app_id)
        out.update(text=self.text, team=team_id)
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        return out


@dataclass(frozen=True)
class Call:
    """One Web API request as the emulator saw it, and what it answered."""

    method: str
    args: dict[str, Any]
    at: float
    status: int
    ok: bool
    error: str | None
    token_kind: str | None = None  # "bot", "app" or None (no or unknown token)


@dataclass
class ResponseUrl:
    token: str
    channel: str
    user: str
    created: float
    command: str | None = None  # "/ragbackup now" for a slash command
    source_ts: str | None = None  # the message a button was on
    source_ephemeral: bool = False
    uses: int = 0
    posted: list[tuple[str, bool]] = field(default_factory=list)  # (ts, ephemeral)
    echoed: bool = False  # the command line was shown in the channel (in_channel answer)


class Workspace:
    """A Slack workspace in memory: tokens, directory, channels and their messages."""

    def __init__(
        self,
        directory: Directory | None = None,
        *,
        bot_token: str = "xoxb-sandbox-bot-token",
        app_token: str = "xapp-1-A0RAGBOT001-sandbox-app-token",
        signing_secret: str = "sandbox-signing-secret",
        verification_token: str = "sandbox-verification-token",
        scopes: tuple[str, ...] = BOT_SCOPES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory or sandbox_directory()
        self.team = self.directory.team
        self.bot = self.directory.bot
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.verification_token = verification_token
        self.scopes = tuple(scopes)
        self.revoked: set[str] = set()
        self.clock = clock
        self.limiter = RateLimiter(clock)
        self.base_url = ""  # set by the Web API server when it starts
        self.version = 0
        self._channels: dict[str, Channel] = {c.id: c for c in self.directory.channels}
        self._messages: dict[str, list[Message]] = {c: [] for c in self._channels}
        self._last_us: dict[str, int] = {}
        self._calls: list[Call] = []
        self._responses: dict[str, ResponseUrl] = {}
        self._changed = threading.Condition(threading.RLock())

    # ----- directory ---------------------------------------------------------------------

    def user(self, key: str) -> User | None:
        return self.directory.user(key)

    def channel(self, key: str) -> Channel | None:
        name = key.removeprefix("#")
        with self._changed:
            return next((c for c in self._channels.values() if key == c.id or name == c.name), None)

    def set_channel(self, channel: Channel) -> None:
        """Add or replace a channel (e.g. archived, or without the bot)."""
        with self._changed:
            self._channels[channel.id] = channel
            self._messages.setdefault(channel.id, [])
            self._touch()

    def archive(self, channel_id: str) -> None:
        self.set_channel(replace(self._require_channel(channel_id), is_archived=True))

    def display_name(self, user_id: str) -> str:
        return self.directory.display_name(user_id)

    # ----- messages ----------------------------------------------------------------------

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        ephemeral_to: str | None = None,
        via: str = "chat.postMessage",
    ) -> Message:
        """Store a new message (by the bot unless `user` is given) and return a copy."""
        with self._changed:
            ch = self._require_channel(channel)
            if thread_ts is not None:
                parent = self._find(ch.id, thread_ts, ephemeral=False)
                if parent is None:
                    raise SlackError("thread_not_found")
                thread_ts = parent.thread_ts or parent.ts
            author = user or self.bot.user_id
            is_bot = author == self.bot.user_id
            msg = Message(
                channel=ch.id,
                ts=self._next_ts(ch.id),
                user=author,
                text=text,
                blocks=copy.deepcopy(blocks) if blocks else None,
                bot_id=self.bot.bot_id if is_bot else None,
                app_id=self.bot.app_id if is_bot else None,
                thread_ts=thread_ts,
                reply_broadcast=reply_broadcast and thread_ts is not None,
                ephemeral_to=ephemeral_to,
                via=via,
                posted_at=self.clock(),
            )
            self._messages[ch.id].append(msg)
            self._touch()
            return copy.deepcopy(msg)

    def update(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None, *,
        editor: str | None = None, ephemeral_to: str | None = None, keep_blocks: bool = False,
    ) -> Message:  # fmt: skip
        """Edit a message, keeping its earlier version; `keep_blocks` leaves blocks as they are."""
        with self._changed:
            ch = self._require_channel(channel)
            msg = self._find(ch.id, ts, ephemeral=ephemeral_to is not None, viewer=ephemeral_to)
            if msg is None:
                raise SlackError("message_not_found")
            if editor is not None and msg.user != editor:
                raise SlackError("cant_update_message")
            edit_ts = self._next_ts(ch.id)
            msg.history.append(Revision(msg.text, copy.deepcopy(msg.blocks), edit_ts))
            msg.text = text
            if not keep_blocks:
                msg.blocks = copy.deepcopy(blocks) if blocks else None
            if ephemeral_to is None:
                msg.edited_ts = edit_ts
            self._touch()
            return copy.deepcopy(msg)

    def delete(self, channel: str, ts: str, *, ephemeral_to: str | None = None) -> None:
        with self._changed:
            msg = self._find(channel, ts, ephemeral=ephemeral_to is not None, viewer=ephemeral_to)
            if msg is None:
                raise SlackError("message_not_found")
            msg.deleted = True
            self._touch()

    def message(self, channel: str, ts: str, *, viewer: str | None = None) -> Message | None:
        """A channel message by ts, or with `viewer` also that user's ephemeral one."""
        with self._changed:
            found = self._find(channel, ts, ephemeral=False)
            if found is None and viewer is not None:
                found = self._find(channel, ts, ephemeral=True, viewer=viewer)
            return copy.deepcopy(found)

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        """Every message of the channel in ts order, ephemeral ones and replies included."""
        with self._changed:
            ch = self.channel(channel)
            if ch is None:
                return []
            found = [m for m in self._messages[ch.id] if include_deleted or not m.deleted]
            return copy.deepcopy(found)

    def ephemerals(self, channel: str, user: str) -> list[Message]:
        """The ephemeral messages `user` (id or handle) got in the channel, oldest first."""
        who = self.user(user)
        user_id = who.id if who else user
        return [m for m in self.messages(channel) if m.ephemeral_to == user_id]

    def permalink(self, channel: str, ts: str) -> str:
        with self._changed:
            ch = self._require_channel(channel)
            msg = self._find(ch.id, ts, ephemeral=False)
            if msg is None:
                raise SlackError("message_not_found")
            link = f"{self.team.url}archives/{ch.id}/p{ts.replace('.', '')}"
            if msg.is_reply:
                link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
            return link

    def _find(
        self, channel: str, ts: str, *, ephemeral: bool, viewer: str | None = None
    ) -> Message | None:
        for m in self._messages.get(channel, []):
            if m.ts != ts or m.deleted or (m.ephemeral_to is not None) != ephemeral:
                continue
            if viewer is None or m.ephemeral_to == viewer:
                return m
        return None

    def _require_channel(self, key: str) -> Channel:
        ch = self.channel(key)
        if ch is None:
            raise SlackError("channel_not_found")
        return ch

    def _next_ts(self, channel: str) -> str:
        now_us = int(self.clock() * 1_000_000)
        us = max(now_us, self._last_us.get(channel, 0) + 1)
        self._last_us[channel] = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    # ----- calls -------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._touch()

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[Call]:
        """Recorded Web API calls, oldest first, optionally of one method or outcome."""
        with self._changed:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method) and (ok is None or c.ok == ok)
            ]

    # ----- response_url ------------------------------------------------------------------

    def new_response_url(
        self, channel: str, user: str, *, command: str | None = None,
        source_ts: str | None = None, source_ephemeral: bool = False,
    ) -> str:  # fmt: skip
        """A fresh response_url on the Web API server, as Slack puts in a request."""
        token = secrets.token_urlsafe(18)
        with self._changed:
            self._responses[token] = ResponseUrl(
                token, channel, user, self.clock(), command, source_ts, source_ephemeral
            )
        return f"{self.base_url}/response/{token}"

    def response_target(self, token: str) -> ResponseUrl | None:
        with self._changed:
            return copy.deepcopy(self._responses.get(token))

    def use_response_url(self, token: str, *, count: bool = True) -> ResponseUrl:
        """The live target of a response_url, counting one use unless `count` is False.

        SlackError('expired_url') past 5 uses or 30 minutes, 'invalid_token' if unknown.
        """
        with self._changed:
            target = self._responses.get(token)
            if target is None:
                raise SlackError("invalid_token")
            expired = self.clock() - target.created > RESPONSE_URL_SECONDS
            if count and (target.uses >= RESPONSE_URL_USES or expired):
                raise SlackError("expired_url")
            target.uses += int(count)
            return target

    # ----- rate limits -------------------------------------------------------------------

    def set_rate_limit(
        self, method: str | None = None, *, every_nth: int | None = None,
        next_n: int = 0, retry_after: int = 1,
    ) -> None:  # fmt: skip
        """429 every n-th call, or the next n calls, of `method` (every method when None)."""
        self.limiter.set(method, every_nth=every_nth, next_n=next_n, retry_after=retry_after)

    def rate_limit_storm(self, seconds: float, method: str | None = None, *, retry_after: int = 1) -> None:
        """429 every call (of `method`, or all) for the next `seconds`."""
        self.limiter.storm(seconds, method, retry_after=retry_after)

    def clear_rate_limits(self, *methods: str) -> None:
        """Stop throttling these methods, or everything when none is named."""
        self.limiter.clear(*methods)

    # ----- waiting -----------------------------------------------------------------------

    def _touch(self) -> None:
        self.version += 1
        self._changed.notify_all()

    def wait_until(self, predicate: Callable[[Workspace], T], timeout: float = 5.0) -> T:
        """Block until predicate(self) is truthy (re-checked on every change); TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"workspace condition not met within {timeout}s")
                self._changed.wait(min(left, 0.5))

    def wait_change(self, since: int, timeout: float) -> int:
        """Wait until `version` moves past `since` (or the timeout); returns the version."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != since, timeout)
            return self.version
