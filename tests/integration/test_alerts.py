"""Channel alerts against the sandbox cluster: each fires once, clears once, survives restarts.

`AlertMonitor.evaluate()` is called directly with a controllable clock (no interval
thread, no sleeping for `stuck_after`); the cluster side is real: a Velero pod
OOM-killed by a "Stuck" injection, a BackupStorageLocation patched Unavailable, the
Velero Deployment scaled to 0, backups completing. `post` is a list's append, so the
test counts exactly what would have reached the channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import AlertMonitor
from config.loader import load_config
from config.models import Config
from k8s import labels as L
from k8s import resources as R
from k8s.alert_state import ALERTS_CONFIGMAP, read_alerts
from k8s.backups import create_backup
from k8s.client import Cluster, from_kubeconfig
from k8s.preflight import FAILURE, run_checks
from sandbox.cluster import SandboxCluster
from tests.conftest import wait_for as poll

pytestmark = pytest.mark.slow


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Env:
    sandbox: SandboxCluster
    cluster: Cluster
    cfg: Config
    clock: Clock = field(default_factory=Clock)
    posts: list[dict[str, Any]] = field(default_factory=list)

    def monitor(self) -> AlertMonitor:
        return AlertMonitor(self.cluster, self.cfg, self.posts.append, self.clock)

    def texts(self) -> list[str]:
        return [str(p["text"]) for p in self.posts]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sandbox = SandboxCluster(velero_seconds=1.0, pod_ready_seconds=0.2).start()
    kubeconfig, config = sandbox.write_files(tmp_path)
    cluster = from_kubeconfig(kubeconfig)
    cfg = load_config([config])
    poll(lambda: not [r for r in run_checks(cluster, cfg) if r.status == FAILURE], 30,
         "the sandbox ready for a backup")  # fmt: skip
    yield Env(sandbox, cluster, cfg)
    cluster.close()
    sandbox.stop()


def only(events: list[str], kind: str) -> list[str]:
    return [e for e in events if e.split(" ", 1)[1].startswith(kind)]


def velero_ready(env: Env) -> bool:
    pods, _ = R.list_all(env.cluster, R.POD, "velero", label_selector="name=velero")
    pods = pods or R.list_all(env.cluster, R.POD, "velero")[0]
    return any((p.get("status") or {}).get("phase") == "Running"
               and any(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [])
               for p in pods)  # fmt: skip


def test_stuck_backup_and_velero_not_ready_fire_once_clear_once_across_restarts(env: Env) -> None:
    env.sandbox.velero.inject(None, "Stuck")
    name = str(create_backup(env.cluster, env.cfg, trigger="cli", requester="test")["metadata"]["name"])
    poll(lambda: env.sandbox.velero.crashed, 30, "the Velero pod OOM-killed mid-backup")
    backup = R.get(env.cluster, R.BACKUP, "velero", name)
    assert L.phase_of(backup) == "InProgress"

    first = env.monitor()
    assert only(first.evaluate(), "backup-stuck") == []  # seen for the first time: not yet
    assert only(first.evaluate(), "velero-not-ready") == []  # within the grace
    env.clock.advance(timedelta(minutes=31))
    started = first.evaluate()
    assert only(started, "backup-stuck") == [f"started backup-stuck.{name}"]
    assert only(started, "velero-not-ready") == ["started velero-not-ready"]
    assert any(f"Backup {name} looks stuck" in t for t in env.texts())
    assert any("Velero is not ready" in t for t in env.texts())
    assert only(first.evaluate(), "backup-stuck") == []  # not on every check
    assert only(first.evaluate(), "velero-not-ready") == []

    # A restart (or another leader): the active alerts are in the ConfigMap, nothing re-posted.
    state = read_alerts(env.cluster, env.cfg.ragbot.namespace)
    assert {f"backup-stuck.{name}", "velero-not-ready"} <= set(state.active)
    second = env.monitor()
    env.clock.advance(timedelta(minutes=5))
    assert [e for e in second.evaluate() if "stuck" in e or "velero" in e] == []
    posts_before = len(env.posts)

    env.sandbox.velero.restart()  # a new Velero process fails the InProgress backup
    poll(lambda: L.phase_of(R.get(env.cluster, R.BACKUP, "velero", name)) in L.BACKUP_TERMINAL,
         30, "the stuck backup marked Failed")  # fmt: skip
    poll(lambda: velero_ready(env), 30, "the Velero pod ready again")
    cleared = second.evaluate()
    assert only(cleared, "backup-stuck") == [f"cleared backup-stuck.{name}"]
    assert only(cleared, "velero-not-ready") == ["cleared velero-not-ready"]
    assert any(f"Backup {name} is no longer stuck" in t for t in env.texts()[posts_before:])
    assert any("Velero is ready again" in t for t in env.texts()[posts_before:])
    assert [e for e in second.evaluate() if "stuck" in e or "velero" in e] == []
    assert [e for e in env.monitor().evaluate() if "stuck" in e or "velero" in e] == []
    active = read_alerts(env.cluster, env.cfg.ragbot.namespace).active
    assert f"backup-stuck.{name}" not in active and "velero-not-ready" not in active
    assert sum("looks stuck" in t for t in env.texts()) == 1
    assert sum("no longer stuck" in t for t in env.texts()) == 1


def _set_bsl_phase(env: Env, phase: str) -> str:
    bsls, _ = R.list_all(env.cluster, R.BSL, "velero")
    name = str(bsls[0]["metadata"]["name"])
    # Velero's BSL CRD has no status subresource: the status is patched on the object.
    message = "BackupStorageLocation is unavailable: no such bucket" if phase == "Unavailable" else ""
    R.merge_patch(env.cluster, R.BSL, "velero", name, {"status": {"phase": phase, "message": message}})
    return name


def test_storage_location_unavailable_then_available(env: Env) -> None:
    name = _set_bsl_phase(env, "Unavailable")
    monitor = env.monitor()
    assert only(monitor.evaluate(), "bsl-unavailable") == []  # within the grace
    env.clock.advance(timedelta(seconds=61))
    assert only(monitor.evaluate(), "bsl-unavailable") == [f"started bsl-unavailable.{name}"]
    assert only(monitor.evaluate(), "bsl-unavailable") == []
    assert only(env.monitor().evaluate(), "bsl-unavailable") == []  # restarted: no re-post
    assert any(f"Backup storage location {name} is Unavailable" in t for t in env.texts())

    _set_bsl_phase(env, "Available")
    assert only(monitor.evaluate(), "bsl-unavailable") == [f"cleared bsl-unavailable.{name}"]
    assert only(monitor.evaluate(), "bsl-unavailable") == []
    assert sum("is Available again" in t for t in env.texts()) == 1
    assert sum("is Unavailable" in t for t in env.texts()) == 1


def test_velero_scaled_to_zero_and_back(env: Env) -> None:
    def scale(n: int) -> None:
        R.merge_patch(env.cluster, R.DEPLOYMENT, "velero", "velero", {"spec": {"replicas": n}})

    scale(0)
    poll(lambda: not velero_ready(env), 30, "no ready Velero pod")
    monitor = env.monitor()
    assert only(monitor.evaluate(), "velero-not-ready") == []
    env.clock.advance(timedelta(seconds=61))
    assert only(monitor.evaluate(), "velero-not-ready") == ["started velero-not-ready"]
    assert only(monitor.evaluate(), "velero-not-ready") == []
    scale(1)
    poll(lambda: velero_ready(env), 30, "the Velero pod ready again")
    assert only(monitor.evaluate(), "velero-not-ready") == ["cleared velero-not-ready"]
    assert only(monitor.evaluate(), "velero-not-ready") == []
    assert [t for t in env.texts() if "Velero is" in t] == ["Velero is not ready", "Velero is ready again"]


def test_no_recent_backup_fires_clears_and_fires_again(env: Env) -> None:
    monitor = env.monitor()
    assert only(monitor.evaluate(), "no-recent-backup") == ["started no-recent-backup"]
    assert only(monitor.evaluate(), "no-recent-backup") == []
    name = str(create_backup(env.cluster, env.cfg, trigger="cli", requester="test")["metadata"]["name"])
    poll(lambda: L.phase_of(R.get(env.cluster, R.BACKUP, "velero", name)) == "Completed", 30,
         "the backup Completed")  # fmt: skip
    assert only(monitor.evaluate(), "no-recent-backup") == ["cleared no-recent-backup"]
    assert any(f"Backups are recent again: `{name}`" in str(p["blocks"]) for p in env.posts)
    assert only(monitor.evaluate(), "no-recent-backup") == []

    env.clock.advance(timedelta(hours=27))  # max_backup_age defaults to 26h
    assert only(monitor.evaluate(), "no-recent-backup") == ["started no-recent-backup"]
    assert only(env.monitor().evaluate(), "no-recent-backup") == []
    assert sum(t == "No recent successful backup" for t in env.texts()) == 2


def test_a_failed_post_is_not_recorded_and_is_tried_again(env: Env) -> None:
    calls: list[dict[str, Any]] = []

    def flaky(msg: dict[str, Any]) -> None:
        calls.append(msg)
        if len(calls) == 1:
            raise RuntimeError("Slack is down")
        env.posts.append(msg)

    monitor = AlertMonitor(env.cluster, env.cfg, flaky, env.clock)
    assert only(monitor.evaluate(), "no-recent-backup") == []
    assert "no-recent-backup" not in read_alerts(env.cluster, env.cfg.ragbot.namespace).active
    assert only(monitor.evaluate(), "no-recent-backup") == ["started no-recent-backup"]
    assert "no-recent-backup" in read_alerts(env.cluster, env.cfg.ragbot.namespace).active
    cm = R.get(env.cluster, R.CONFIGMAP, env.cfg.ragbot.namespace, ALERTS_CONFIGMAP)
    assert cm["metadata"]["labels"][L.LABEL_MANAGED_BY] == "ragbot"
    assert len(env.posts) == 1


def test_alerts_off_when_limits_are_zero(env: Env, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("ragbot:\n  alerts:\n    max_backup_age: 0s\n    stuck_after: 0s\n")
    cfg = load_config([tmp_path / "config.yaml", extra])
    monitor = AlertMonitor(env.cluster, cfg, env.posts.append, env.clock)
    env.clock.advance(timedelta(days=3))
    assert monitor.evaluate() == []


def test_stuck_restore_fires_once_and_clears_when_velero_restarts(env: Env) -> None:
    backup = str(create_backup(env.cluster, env.cfg, trigger="cli", requester="test")["metadata"]["name"])
    poll(lambda: L.phase_of(R.get(env.cluster, R.BACKUP, "velero", backup)) == "Completed", 30,
         "the backup Completed")  # fmt: skip
    env.sandbox.velero.inject(None, "Stuck", kind="restore")
    name = f"{backup}-drill"
    R.create(env.cluster, R.RESTORE, "velero", {
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": name, "namespace": "velero",
                     "annotations": {L.ANNO_RESTORE_RECORD: "rr-drill"}},
        "spec": {"backupName": backup, "includedNamespaces": ["*"]},
    })  # fmt: skip
    poll(lambda: env.sandbox.velero.crashed, 30, "the Velero pod OOM-killed mid-restore")
    monitor = env.monitor()
    assert only(monitor.evaluate(), "restore-stuck") == []
    env.clock.advance(timedelta(minutes=31))
    assert only(monitor.evaluate(), "restore-stuck") == ["started restore-stuck.rr-drill"]
    assert only(monitor.evaluate(), "restore-stuck") == []
    assert any("Restore rr-drill looks stuck" in t for t in env.texts())

    env.sandbox.velero.restart()
    poll(lambda: L.phase_of(R.get(env.cluster, R.RESTORE, "velero", name)) in L.RESTORE_TERMINAL,
         30, "the stuck restore marked Failed")  # fmt: skip
    assert only(monitor.evaluate(), "restore-stuck") == ["cleared restore-stuck.rr-drill"]
    assert only(env.monitor().evaluate(), "restore-stuck") == []
    assert sum("Restore rr-drill is moving again" in t for t in env.texts()) == 1
