"""Who may do what: the `ragbot.access` rules, the two-person rule, user-group lookups.

A restore takes Keycloak logins and the ingestion pipelines offline, so access is deny by
default (config.models.AccessRule: empty users and groups mean nobody; only `channels`,
when empty, does not restrict) and every refusal names the rule that refused, so the
person refused knows whom to ask and the operator knows which key to edit.

Membership of a Slack user group is resolved through an injected `fetch(group) -> users`
(the bot passes a function calling `usergroups.users.list`), cached briefly by
`UsergroupCache`. A lookup that fails denies with a reason; it never raises to Slack and
never allows: a lookup error must not open the door.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal

from config.models import AccessConfig, AccessRule, ApproveRule

from .blocks.kit import esc

Action = Literal["backup", "restore", "approve", "none"]
GroupsOf = Callable[[str], AbstractSet[str]]
"""user id -> the user groups (S…) the user is in; may raise UsergroupLookupError."""

ROOT = "ragbot.access"


@dataclass(frozen=True)
class Decision:
    """The answer, the rule that gave it (a config key path), and a sentence for the user.

    `reason` is Slack mrkdwn (mentions of users and channels; anything from outside
    escaped), ready for handlers.blocks.notices.refusal.
    """

    allowed: bool
    rule: str
    reason: str


class UsergroupLookupError(Exception):
    """Some groups could not be read. `found`: the groups the user is in among the rest."""

    def __init__(self, failed: Mapping[str, str], found: AbstractSet[str] = frozenset()) -> None:
        self.failed = dict(failed)
        self.found = frozenset(found)
        what = "; ".join(f"{g}: {why}" for g, why in sorted(self.failed.items()))
        super().__init__(f"could not read user group membership ({what})")


def _rule_of(action: Action, access: AccessConfig) -> AccessRule | ApproveRule:
    if action == "backup":
        return access.backup
    if action == "restore":
        return access.restore
    if action == "approve":
        return access.approve
    raise ValueError(f"unknown action {action!r}: backup, restore, approve or none")


def _member_of(
    key: str, rule: AccessRule | ApproveRule, user_id: str, groups_of: GroupsOf
) -> Decision:
    """Is the user named by the rule, directly or through one of its user groups?"""
    if user_id in rule.users:
        return Decision(True, f"{key}.users", f"<@{user_id}> is in {key}.users")
    nobody = f"you are not in {key}.users or its usergroups"
    if not rule.usergroups:
        if not rule.users:
            nobody = f"{key}.users and {key}.usergroups are empty, so nobody may do this"
        return Decision(False, f"{key}.users", nobody)
    wanted = set(rule.usergroups)
    try:
        mine = set(groups_of(user_id))
    except UsergroupLookupError as err:
        hit = sorted(err.found & wanted)
        if hit:
            return Decision(True, f"{key}.usergroups", f"<@{user_id}> is in user group {hit[0]}")
        broken = {g: why for g, why in err.failed.items() if g in wanted}
        if not broken:
            return Decision(False, f"{key}.users", nobody)
        what = esc("; ".join(f"{g}: {why}" for g, why in sorted(broken.items())))
        return Decision(False, f"{key}.usergroups",
                        f"could not check the user groups of {key}.usergroups ({what}); "
                        "try again in a minute, or ask an admin to check the group ids "
                        "and the bot's usergroups:read scope")  # fmt: skip
    except Exception as err:  # an injected lookup must never crash a Slack handler
        return Decision(False, f"{key}.usergroups",
                        f"could not check your user groups ({esc(type(err).__name__)}: {esc(err)}); "
                        "try again in a minute")  # fmt: skip
    hit = sorted(mine & wanted)
    if hit:
        return Decision(True, f"{key}.usergroups", f"<@{user_id}> is in user group {hit[0]}")
    return Decision(False, f"{key}.users", nobody)


def authorize(
    action: Action, user_id: str, channel_id: str | None, access: AccessConfig,
    groups_of: GroupsOf,
) -> Decision:  # fmt: skip
    """May `user_id` do `action` in `channel_id`? Users OR user groups, then channels.

    `channel_id` None means "not from a channel" (a button in the bot's own channel), which
    the channel rule does not restrict; approve rules have no channels.
    """
    if action == "none":
        return Decision(True, "", "anyone may do this")
    key = f"{ROOT}.{action}"
    rule = _rule_of(action, access)
    member = _member_of(key, rule, user_id, groups_of)
    if not member.allowed:
        return member
    channels = getattr(rule, "channels", ())
    if channels and channel_id is not None and channel_id not in channels:
        where = ", ".join(f"<#{c}>" for c in channels)
        return Decision(False, f"{key}.channels",
                        f"{action} commands are only accepted in {where} ({key}.channels)")  # fmt: skip
    return member


def can_approve(
    user_id: str, requester: str, access: AccessConfig, groups_of: GroupsOf
) -> Decision:
    """May `user_id` approve a restore `requester` asked for? The approve rule, two people."""
    if user_id == requester and not access.allow_self_approval:
        return Decision(False, f"{ROOT}.allow_self_approval",
                        "you asked for this restore, and a second person must approve it "
                        f"({ROOT}.allow_self_approval is false)")  # fmt: skip
    return authorize("approve", user_id, None, access, groups_of)


def groups_in(access: AccessConfig) -> tuple[str, ...]:
    """Every user group any rule names, in first-seen order."""
    seen = (*access.backup.usergroups, *access.restore.usergroups, *access.approve.usergroups)
    return tuple(dict.fromkeys(seen))


@dataclass
class _Entry:
    members: frozenset[str]
    expires: float


@dataclass
class UsergroupCache:
    """Members of Slack user groups, fetched on demand and kept for `ttl_seconds`.

    Call it as a `GroupsOf`: `cache(user)` returns which of `groups` the user is in. A
    group that cannot be fetched raises UsergroupLookupError (after every other group
    was tried), which `authorize` turns into a refusal naming the group. Errors are not
    cached, so the next command tries again. Thread-safe: Bolt runs listeners in threads.
    """

    fetch: Callable[[str], list[str]]
    ttl_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    groups: tuple[str, ...] = ()
    _entries: dict[str, _Entry] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def for_access(
        cls, access: AccessConfig, fetch: Callable[[str], list[str]], *,
        ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
    ) -> UsergroupCache:  # fmt: skip
        """A cache over every group the access rules name."""
        return cls(fetch, ttl_seconds, clock, groups_in(access))

    def members(self, group: str) -> frozenset[str]:
        """The members of `group`, from the cache or fetched; raises UsergroupLookupError."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(group)
            if entry is not None and now < entry.expires:
                return entry.members
        try:
            users = frozenset(str(u) for u in self.fetch(group))
        except Exception as err:  # the fetcher is Slack: ratelimited, no_such_subteam, ...
            raise UsergroupLookupError({group: _short(err)}) from err
        with self._lock:
            self._entries[group] = _Entry(users, self.clock() + self.ttl_seconds)
        return users

    def groups_of(self, user_id: str, groups: Iterable[str] | None = None) -> frozenset[str]:
        """Which of `groups` (default: self.groups) `user_id` is in."""
        found: set[str] = set()
        failed: dict[str, str] = {}
        for group in self.groups if groups is None else groups:
            try:
                if user_id in self.members(group):
                    found.add(group)
            except UsergroupLookupError as err:
                failed.update(err.failed)
        if failed:
            raise UsergroupLookupError(failed, found)
        return frozenset(found)

    def __call__(self, user_id: str) -> frozenset[str]:
        return self.groups_of(user_id)

    def invalidate(self, group: str | None = None) -> None:
        """Forget one group, or all (e.g. on a `subteam_members_changed` event)."""
        with self._lock:
            if group is None:
                self._entries.clear()
            else:
                self._entries.pop(group, None)


def _short(err: BaseException) -> str:
    # SlackApiError's str() carries the whole response; its `error` field says it all.
    response = getattr(err, "response", None)
    code = None
    if response is not None:
        try:
            code = response.get("error")
        except Exception:
            code = None
    text = str(code or err or type(err).__name__)
    return text.splitlines()[0][:200] if text else type(err).__name__


__all__ = [
    "Action",
    "Decision",
    "GroupsOf",
    "UsergroupCache",
    "UsergroupLookupError",
    "authorize",
    "can_approve",
    "groups_in",
]
