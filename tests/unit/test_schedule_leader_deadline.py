"""The elector's stepping-down rule, with scripted election rounds and a controllable clock.

A leader that cannot reach the API keeps leading until `lease_seconds - renew_seconds`
after its last renewal (others cannot take over before the lease expires anyway), then
stops, so it never works beside a successor; a leader told "someone else holds it" stops at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import leader as leader_module
from bot.leader import LeaderElector
from config.models import Config
from k8s.errors import ClusterError, Unreachable


class Script:
    def __init__(self) -> None:
        self.answers: list[bool | ClusterError] = []

    def __call__(self, *args: Any, **kwargs: Any) -> bool:
        answer = self.answers.pop(0)
        if isinstance(answer, ClusterError):
            raise answer
        return answer


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    s = Script()
    monkeypatch.setattr(leader_module.lease, "try_acquire_or_renew", s)
    return s


def make(clock: list[datetime], events: list[str]) -> LeaderElector:
    return LeaderElector(object(), Config(), "me", on_start=lambda: events.append("start"),  # type: ignore[arg-type]
                         on_stop=lambda: events.append("stop"), lease_seconds=15, renew_seconds=5,
                         clock=lambda: clock[0])  # fmt: skip


def test_api_outage_keeps_leading_until_the_renew_deadline(script: Script) -> None:
    clock, events = [datetime(2025, 1, 1, tzinfo=UTC)], []
    e = make(clock, events)
    script.answers = [True, Unreachable("down"), Unreachable("down")]
    assert e.step()
    clock[0] += timedelta(seconds=5)
    assert e.step()  # 5 s without renewal: still within 15 - 5
    clock[0] += timedelta(seconds=5)
    assert not e.step()  # 10 s: stop before anyone else may take the lease
    assert events == ["start", "stop"]


def test_another_holder_means_stepping_down_at_once(script: Script) -> None:
    clock, events = [datetime(2025, 1, 1, tzinfo=UTC)], []
    e = make(clock, events)
    script.answers = [True, False]
    assert e.step() and not e.step()
    assert events == ["start", "stop"] and not e.is_leader


def test_renew_must_be_shorter_than_the_lease() -> None:
    with pytest.raises(ValueError):
        LeaderElector(object(), Config(), "me", on_start=lambda: None, on_stop=lambda: None,  # type: ignore[arg-type]
                      lease_seconds=5, renew_seconds=5)  # fmt: skip
