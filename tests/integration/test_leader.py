"""Leader election on the Lease against the sandbox API server, with a controllable clock.

Exactly one of many candidates wins; the holder renews; nobody takes an unexpired lease;
anyone takes an expired or released one; a holder that sees another holder steps down.
Then two whole `BotServer`s against one cluster: only one reconciles and schedules, and a
slot run on both makes one backup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.leader import LeaderElector, make_identity
from bot.serve import BotServer, Secrets
from config.loader import load_config
from config.models import Config
from k8s import resources as R
from k8s.client import Cluster, from_kubeconfig
from k8s.lease import LEASE_NAME, read_lease
from sandbox.cluster import SandboxCluster
from sandbox.slack import SlackEmulator
from tests.conftest import wait_for as poll

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[Cluster, Config, SandboxCluster]]:
    sandbox = SandboxCluster(seed=False).start()
    kubeconfig, config = sandbox.write_files(tmp_path)
    cluster = from_kubeconfig(kubeconfig)
    yield cluster, load_config([config]), sandbox
    cluster.close()
    sandbox.stop()


def elector(cluster: Cluster, cfg: Config, name: str, clock: Clock, events: list[str]) -> LeaderElector:
    return LeaderElector(cluster, cfg, name, on_start=lambda: events.append(f"{name} start"),
                         on_stop=lambda: events.append(f"{name} stop"), lease_seconds=15,
                         renew_seconds=5, clock=clock)  # fmt: skip


def test_one_winner_renewal_expiry_takeover_and_step_down(kube: tuple[Cluster, Config, SandboxCluster]) -> None:
    cluster, cfg, _ = kube
    clock, events = Clock(T0), []
    a, b = elector(cluster, cfg, "a", clock, events), elector(cluster, cfg, "b", clock, events)
    assert a.step() and not b.step()
    clock.now += timedelta(seconds=10)
    assert a.step() and not b.step()  # renewed at +10: not expired at +20
    clock.now += timedelta(seconds=10)
    assert not b.step()
    clock.now += timedelta(seconds=16)  # a stopped renewing 26 s ago
    assert b.step() and b.is_leader
    assert not a.step() and not a.is_leader  # a sees b holding it and steps down
    assert events == ["a start", "b start", "a stop"]
    lease = read_lease(cluster, cfg.ragbot.namespace)
    assert lease is not None and lease.holder == "b" and lease.transitions == 1
    raw = R.get(cluster, R.LEASE, cfg.ragbot.namespace, LEASE_NAME)
    assert raw["spec"]["renewTime"].endswith(".000000Z") and raw["spec"]["leaseDurationSeconds"] == 15


def test_release_on_stop_lets_the_next_take_over_at_once(kube: tuple[Cluster, Config, SandboxCluster]) -> None:
    cluster, cfg, _ = kube
    clock, events = Clock(T0), []
    a, b = elector(cluster, cfg, "a", clock, events), elector(cluster, cfg, "b", clock, events)
    assert a.step()
    a.stop()
    assert events == ["a start", "a stop"]
    assert read_lease(cluster, cfg.ragbot.namespace).holder == ""  # type: ignore[union-attr]
    assert b.step()


def test_many_candidates_at_once_elect_exactly_one(kube: tuple[Cluster, Config, SandboxCluster]) -> None:
    cluster, cfg, _ = kube
    clock, events = Clock(T0), []
    candidates = [elector(cluster, cfg, f"c{i}", clock, events) for i in range(8)]
    gate = threading.Barrier(len(candidates))
    won: list[str] = []

    def run(e: LeaderElector) -> None:
        gate.wait()
        if e.step():
            won.append(e.identity)

    for round_ in range(2):  # round 0: the lease is absent (create); round 1: expired (update)
        won.clear()
        threads = [threading.Thread(target=run, args=(e,)) for e in candidates]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(won) == 1, (round_, won)
        holder = won[0]
        clock.now += timedelta(seconds=20)
        for e in candidates:  # forget who led, so everyone competes for the expired lease
            if e.identity == holder:
                e.identity = "gone"


def test_identity_is_pod_name_plus_random_suffix() -> None:
    a, b = make_identity({"POD_NAME": "ragbot-0"}), make_identity({"POD_NAME": "ragbot-0"})
    assert a.startswith("ragbot-0-") and a != b
    assert make_identity({"HOSTNAME": "host"}).startswith("host-")


SCHEDULE = 'ragbot:\n  schedule:\n    cron: "0 2 * * *"\n'


def test_two_bot_servers_one_leader_one_backup_per_slot(tmp_path: Path) -> None:
    sandbox = SandboxCluster(velero_seconds=1.0, pod_ready_seconds=0.2).start()
    kubeconfig, config = sandbox.write_files(tmp_path)
    (tmp_path / "extra.yaml").write_text(SCHEDULE)
    cfg = load_config([config, tmp_path / "extra.yaml"])
    cluster = from_kubeconfig(kubeconfig)
    emulator = SlackEmulator().start()
    ws = emulator.workspace
    secrets = Secrets(ws.bot_token, None, ws.signing_secret)
    servers = [BotServer(cfg, cluster, secrets, slack_api_url=emulator.api_url, host="127.0.0.1",
                         port=0, lease_seconds=3, renew_seconds=1, identity=f"bot-{i}")
               for i in range(2)]
    try:
        for s in servers:
            s.start()
        poll(lambda: any(s.is_leader for s in servers), 10, "a leader")
        assert sum(s.is_leader for s in servers) == 1
        leader = next(s for s in servers if s.is_leader)
        follower = next(s for s in servers if not s.is_leader)
        assert leader.scheduler is not None and leader.reconciler is not None
        assert follower.scheduler is None and follower.reconciler is None
        slot = datetime(2025, 1, 2, 2, 0, tzinfo=UTC)
        for s in servers:
            if s.scheduler is not None:
                s.scheduler.run_slot(slot, follow=False)
        leader.scheduler.run_slot(slot, follow=False)
        found = R.list_all(cluster, R.BACKUP, "velero", label_selector="ragbot.io/slot=20250102t020000")[0]
        assert len(found) == 1
        leader.stop()  # releases the lease: the other takes over within its retry period
        poll(lambda: follower.is_leader, 5, "the follower taking over after a release")
        assert follower.scheduler is not None
        assert follower.scheduler.run_slot(slot, follow=False) == "exists"
    finally:
        for s in servers:
            s.stop()
        emulator.stop()
        cluster.close()
        sandbox.stop()
