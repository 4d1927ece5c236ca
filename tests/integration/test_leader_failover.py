"""Two real `ragbot serve` processes; SIGKILL the leader mid-backup; the other carries on.

The test process hosts the sandbox cluster and the Slack emulator; the two bots are
`python -m bot serve` subprocesses (HTTP mode, distinct ports, POD_NAME bot-a / bot-b)
reaching both over loopback, as two replicas would in production. The leader posts the
backup's progress message; killed with SIGKILL (no release of the Lease), the follower
must take the Lease once it expires, edit the same message and announce the result
exactly once. The failover time (SIGKILL to the new holder) is printed as a figure.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.scheduler import CREATED, BackupScheduler
from k8s import labels as L
from k8s import resources as R
from k8s.lease import read_lease
from tests.conftest import wait_for as poll
from tests.integration.test_bot_flows import Env, announced, public, replies, start_env, stop_env
from tests.integration.test_bot_restart import bot_env, free_port, start_bot

pytestmark = pytest.mark.slow
LEASE_SECONDS, RENEW_SECONDS = 6, 2


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = start_env(tmp_path, velero_seconds=15.0, run_bot=False)
    yield e
    stop_env(e)


def test_sigkill_of_the_leader_mid_backup_hands_over_and_announces_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGBOT_LEASE_SECONDS", str(LEASE_SECONDS))
    monkeypatch.setenv("RAGBOT_RENEW_SECONDS", str(RENEW_SECONDS))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for pod in ("bot-a", "bot-b"):
            monkeypatch.setenv("POD_NAME", pod)
            assert bot_env(env)["POD_NAME"] == pod
            procs[pod] = start_bot(env, free_port())
        ns = env.cfg.ragbot.namespace
        holder = poll(lambda: (lease := read_lease(env.cluster, ns)) and lease.holder, 30, "a leader")
        leader = holder.rsplit("-", 1)[0]
        other = next(p for p in procs if p != leader)

        slot = datetime.now(UTC).replace(second=0, microsecond=0)
        outcome = BackupScheduler(env.cluster, env.cfg, None, clock=lambda: slot).run_slot(slot, follow=False)
        assert outcome == CREATED
        name = R.list_all(env.cluster, R.BACKUP, "velero", label_selector=L.LABEL_TRIGGER)[0][0]["metadata"]["name"]
        env.ws.wait_until(lambda w: [m for m in public(w) if not m.is_reply and name in m.text], 20)
        # Kill after the message is recorded on the Backup: a kill between chat.postMessage
        # and that annotation is the reconciler's one window for a second message.
        poll(lambda: R.get(env.cluster, R.BACKUP, "velero", name)["metadata"].get("annotations", {})
             .get(L.ANNO_SLACK_MESSAGE), 10, "the progress message recorded on the Backup")  # fmt: skip

        killed = time.monotonic()
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(10)
        poll(lambda: (lease := read_lease(env.cluster, ns)) and lease.holder.startswith(other + "-"),
             LEASE_SECONDS + 10, "the other replica taking the lease")  # fmt: skip
        failover = time.monotonic() - killed
        print(f"\n[figure] failover (SIGKILL of the leader -> new Lease holder): {failover:.2f} s "
              f"(lease {LEASE_SECONDS} s, renew {RENEW_SECONDS} s, retry 1 s)")  # fmt: skip
        assert failover <= LEASE_SECONDS + 2

        parent, done = env.ws.wait_until(announced(env.ws, name, "completed"), 60)
        obj = poll(lambda: (o := R.get(env.cluster, R.BACKUP, "velero", name))["metadata"]
                   .get("annotations", {}).get(L.ANNO_ANNOUNCED) and o, 15, "the announced annotation")  # fmt: skip
        assert L.phase_of(obj) == "Completed"
        assert len([m for m in public(env.ws) if not m.is_reply and name in m.text]) == 1
        assert len([r for r in replies(env.ws, parent) if "completed" in r.text]) == 1
        assert len(done) == 1
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()

