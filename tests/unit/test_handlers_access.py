"""Access rules: users OR user groups, channels restrict, the two-person rule, refusals
naming their rule, and user-group lookups that are cached and fail closed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config.models import AccessConfig
from handlers.access import (
    Decision,
    UsergroupCache,
    UsergroupLookupError,
    authorize,
    can_approve,
    groups_in,
)

OPS, APPROVER, STRANGER, GROUPIE = "U0OPS", "U0APPROVER", "U0STRANGER", "U0GROUPIE"
OPS_GROUP, APPROVERS_GROUP = "S0OPS", "S0APPROVERS"
CHAN, OTHER_CHAN = "C0OPS", "C0RANDOM"

ACCESS = AccessConfig.model_validate({
    "backup": {"users": [OPS], "usergroups": [OPS_GROUP], "channels": [CHAN]},
    "restore": {"users": [OPS], "usergroups": [OPS_GROUP]},
    "approve": {"users": [APPROVER], "usergroups": [APPROVERS_GROUP]},
})  # fmt: skip
MEMBERS = {OPS_GROUP: [GROUPIE], APPROVERS_GROUP: [GROUPIE, OPS]}


def groups_of(user: str) -> set[str]:
    return {g for g, users in MEMBERS.items() if user in users}


def no_groups(_user: str) -> set[str]:
    raise AssertionError("groups must not be looked up")


@pytest.mark.parametrize(
    ("action", "user", "channel", "allowed", "rule"),
    [
        ("backup", OPS, CHAN, True, "ragbot.access.backup.users"),
        ("backup", GROUPIE, CHAN, True, "ragbot.access.backup.usergroups"),
        ("backup", STRANGER, CHAN, False, "ragbot.access.backup.users"),
        ("backup", OPS, OTHER_CHAN, False, "ragbot.access.backup.channels"),
        ("backup", GROUPIE, OTHER_CHAN, False, "ragbot.access.backup.channels"),
        ("backup", STRANGER, OTHER_CHAN, False, "ragbot.access.backup.users"),
        ("backup", OPS, None, True, "ragbot.access.backup.users"),
        ("restore", OPS, OTHER_CHAN, True, "ragbot.access.restore.users"),  # no channel rule
        ("restore", GROUPIE, OTHER_CHAN, True, "ragbot.access.restore.usergroups"),
        ("restore", APPROVER, CHAN, False, "ragbot.access.restore.users"),
        ("approve", APPROVER, None, True, "ragbot.access.approve.users"),
        ("approve", OPS, None, True, "ragbot.access.approve.usergroups"),
        ("approve", STRANGER, None, False, "ragbot.access.approve.users"),
        ("none", STRANGER, OTHER_CHAN, True, ""),
    ],
)  # fmt: skip
def test_allow_deny_matrix(
    action: str, user: str, channel: str | None, allowed: bool, rule: str
) -> None:
    decision = authorize(action, user, channel, ACCESS, groups_of)  # type: ignore[arg-type]
    assert (decision.allowed, decision.rule) == (allowed, rule), decision.reason


def test_an_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown action 'delete'"):
        authorize("delete", OPS, CHAN, ACCESS, groups_of)  # type: ignore[arg-type]


def test_refusals_name_the_rule() -> None:
    d = authorize("restore", STRANGER, CHAN, ACCESS, groups_of)
    assert d.reason == "you are not in ragbot.access.restore.users or its usergroups"
    d = authorize("backup", OPS, OTHER_CHAN, ACCESS, groups_of)
    assert d.reason == ("backup commands are only accepted in <#C0OPS> "
                        "(ragbot.access.backup.channels)")  # fmt: skip


def test_empty_rules_mean_nobody_and_skip_the_group_lookup() -> None:
    d = authorize("backup", OPS, CHAN, AccessConfig(), no_groups)
    assert d == Decision(False, "ragbot.access.backup.users",
                         "ragbot.access.backup.users and ragbot.access.backup.usergroups are "
                         "empty, so nobody may do this")  # fmt: skip
    # A user named directly never needs a group lookup.
    assert authorize("backup", OPS, CHAN, ACCESS, no_groups).allowed


def test_two_person_rule() -> None:
    # OPS is an approver through S0APPROVERS, but not for their own request.
    d = can_approve(OPS, OPS, ACCESS, groups_of)
    assert (d.allowed, d.rule) == (False, "ragbot.access.allow_self_approval")
    assert "a second person must approve" in d.reason
    assert can_approve(OPS, GROUPIE, ACCESS, groups_of).allowed
    assert can_approve(APPROVER, OPS, ACCESS, groups_of).allowed
    d = can_approve(STRANGER, OPS, ACCESS, groups_of)
    assert (d.allowed, d.rule) == (False, "ragbot.access.approve.users")
    selfish = ACCESS.model_copy(update={"allow_self_approval": True})
    assert can_approve(OPS, OPS, selfish, groups_of).allowed
    # Self approval allowed still needs the approve rule.
    assert not can_approve(STRANGER, STRANGER, selfish, groups_of).allowed


def test_a_failing_lookup_denies_with_the_reason_and_never_raises() -> None:
    def broken(_user: str) -> set[str]:
        raise RuntimeError("connection reset <by> peer")

    d = authorize("backup", GROUPIE, CHAN, ACCESS, broken)
    assert not d.allowed and d.rule == "ragbot.access.backup.usergroups"
    assert "could not check your user groups (RuntimeError: connection reset &lt;by&gt; peer)" in d.reason


def test_a_lookup_error_of_a_group_this_rule_does_not_use_does_not_matter() -> None:
    def partial(_user: str) -> set[str]:
        raise UsergroupLookupError({APPROVERS_GROUP: "no_such_subteam"}, found={OPS_GROUP})

    assert authorize("backup", GROUPIE, CHAN, ACCESS, partial).rule == "ragbot.access.backup.usergroups"
    assert authorize("backup", GROUPIE, CHAN, ACCESS, partial).allowed

    def partial_miss(_user: str) -> set[str]:
        raise UsergroupLookupError({APPROVERS_GROUP: "no_such_subteam"})

    d = authorize("backup", STRANGER, CHAN, ACCESS, partial_miss)
    assert not d.allowed and "you are not in" in d.reason
    d = can_approve(STRANGER, OPS, ACCESS, partial_miss)
    assert not d.allowed
    assert d.reason.startswith("could not check the user groups of ragbot.access.approve.usergroups "
                               "(S0APPROVERS: no_such_subteam)")  # fmt: skip


# ------------------------------------------------------------------------------ cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_fetch(members: dict[str, list[str]]) -> tuple[Callable[[str], list[str]], list[str]]:
    calls: list[str] = []

    def fetch(group: str) -> list[str]:
        calls.append(group)
        if group not in members:
            raise LookupError("no_such_subteam")
        return list(members[group])

    return fetch, calls


def test_cache_keeps_members_for_the_ttl_then_fetches_again() -> None:
    members = {OPS_GROUP: [GROUPIE]}
    fetch, calls = counting_fetch(members)
    clock = Clock()
    cache = UsergroupCache(fetch, ttl_seconds=60, clock=clock, groups=(OPS_GROUP,))
    assert cache(GROUPIE) == {OPS_GROUP}
    assert cache(STRANGER) == frozenset()
    clock.now += 59.9
    assert cache(GROUPIE) == {OPS_GROUP}
    assert calls == [OPS_GROUP]
    members[OPS_GROUP] = [STRANGER]  # membership changed in Slack
    clock.now += 0.2
    assert cache(GROUPIE) == frozenset()
    assert cache(STRANGER) == {OPS_GROUP}
    assert calls == [OPS_GROUP, OPS_GROUP]
    cache.invalidate(OPS_GROUP)
    cache(STRANGER)
    cache.invalidate()
    cache(STRANGER)
    assert len(calls) == 4


def test_cache_for_access_covers_every_rule_and_works_with_authorize() -> None:
    fetch, calls = counting_fetch(MEMBERS)
    cache = UsergroupCache.for_access(ACCESS, fetch, clock=Clock())
    assert cache.groups == groups_in(ACCESS) == (OPS_GROUP, APPROVERS_GROUP)
    assert authorize("backup", GROUPIE, CHAN, ACCESS, cache).allowed
    assert can_approve(GROUPIE, OPS, ACCESS, cache).allowed
    assert not authorize("restore", STRANGER, CHAN, ACCESS, cache).allowed
    assert sorted(calls) == [APPROVERS_GROUP, OPS_GROUP]


def test_cache_fetch_failure_denies_with_a_reason_and_is_not_cached() -> None:
    members: dict[str, list[str]] = {OPS_GROUP: [GROUPIE]}
    fetch, calls = counting_fetch(members)
    cache = UsergroupCache.for_access(ACCESS, fetch, clock=Clock())
    # S0APPROVERS fails, S0OPS answers: a backup by a member of S0OPS still goes through.
    assert authorize("backup", GROUPIE, CHAN, ACCESS, cache).allowed
    d = can_approve(GROUPIE, OPS, ACCESS, cache)
    assert not d.allowed and d.rule == "ragbot.access.approve.usergroups"
    assert "S0APPROVERS: no_such_subteam" in d.reason
    with pytest.raises(UsergroupLookupError) as info:
        cache.members(APPROVERS_GROUP)
    assert info.value.failed == {APPROVERS_GROUP: "no_such_subteam"}
    failures = calls.count(APPROVERS_GROUP)
    members[APPROVERS_GROUP] = [GROUPIE]  # fixed in Slack: the next call sees it at once
    assert can_approve(GROUPIE, OPS, ACCESS, cache).allowed
    assert calls.count(APPROVERS_GROUP) == failures + 1


def test_cache_reports_the_slack_error_code() -> None:
    class FakeSlackError(Exception):
        response = {"ok": False, "error": "ratelimited"}

    def fetch(_group: str) -> list[str]:
        raise FakeSlackError("The request to the Slack API failed.\n(url: ...)")

    cache = UsergroupCache(fetch, groups=(OPS_GROUP,))
    with pytest.raises(UsergroupLookupError) as info:
        cache(GROUPIE)
    assert info.value.failed == {OPS_GROUP: "ratelimited"}
    assert str(info.value) == "could not read user group membership (S0OPS: ratelimited)"
