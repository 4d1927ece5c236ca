"""Scheduled backups against the sandbox, driven by a controllable clock (no real cron waits).

Each test calls what APScheduler would call (`run_slot`, `catch_up`, `finished`) with the
clock set to the moment it wants, against a real loopback API server, Velero simulation
and Slack emulator: one backup per slot however often or by however many replicas the
slot is run, overlap skipped and announced once, missed slots run or reported once,
pause/resume kept in the cluster, and pruning that only ever asks Velero to delete our
own backups.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.schedule_cron import slot_label
from bot.scheduler import (
    CREATED,
    EXISTS,
    OVERLAP,
    PAUSED,
    SLOT_LABEL,
    BackupScheduler,
    schedule_answer,
)
from bot.slack_io import web_client
from k8s import labels as L
from k8s import resources as R
from k8s.backups import create_backup, wait_backup
from k8s.schedule_state import ensure_state, read_state
from sandbox.cluster import SANDBOX_USERS, load_objects
from tests.conftest import wait_for as poll
from tests.integration.test_bot_flows import Env, public, start_env, stop_env

pytestmark = pytest.mark.slow
OPERATOR = SANDBOX_USERS["operator"]
T0 = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
SCHEDULE = """
ragbot:
  schedule:
    cron: "0 2 * * *"
    timezone: UTC
    misfire_grace: 1h
    keep_last: 2
"""


class Clock:
    """The scheduler's `now`, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = start_env(tmp_path, velero_seconds=1.0, extra_config=SCHEDULE, run_bot=False)
    yield e
    stop_env(e)


def scheduler(env: Env, clock: Clock) -> BackupScheduler:
    client = web_client(env.ws.bot_token, base_url=env.emulator.api_url)
    return BackupScheduler(env.cluster, env.cfg, client, clock=clock)


def slot_backups(env: Env, slot: datetime | None = None) -> list[dict[str, Any]]:
    selector = f"{SLOT_LABEL}={slot_label(slot)}" if slot else SLOT_LABEL
    return R.list_all(env.cluster, R.BACKUP, "velero", label_selector=selector)[0]


def channel_texts(env: Env, needle: str) -> list[str]:
    return [m.text for m in public(env.ws) if needle in m.text]


def test_a_slot_creates_one_backup_however_often_it_runs(env: Env) -> None:
    clock = Clock(datetime(2025, 1, 2, 2, 0, tzinfo=UTC))
    slot = clock.now
    a, b = scheduler(env, clock), scheduler(env, clock)
    assert a.run_slot(slot, follow=False) == CREATED
    assert a.run_slot(slot, follow=False) == EXISTS
    assert b.run_slot(slot, follow=False) == EXISTS  # a second replica, a new leader
    [obj] = slot_backups(env, slot)
    assert obj["metadata"]["name"] == "backup-20250102t020000"
    assert obj["metadata"]["labels"][L.LABEL_TRIGGER] == "schedule"
    state = read_state(env.cluster, env.cfg)
    assert state is not None and state.last_backup == "backup-20250102t020000" and state.last_slot == slot


def test_two_schedulers_racing_for_one_slot_make_one_backup(env: Env) -> None:
    clock = Clock(datetime(2025, 1, 2, 2, 0, tzinfo=UTC))
    schedulers = [scheduler(env, clock) for _ in range(4)]
    outcomes: list[str] = []
    gate = threading.Barrier(len(schedulers))

    def run(s: BackupScheduler) -> None:
        gate.wait()
        outcomes.append(s.run_slot(clock.now, follow=False))

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(slot_backups(env, clock.now)) == 1
    assert outcomes.count(CREATED) == 1, outcomes


def test_scheduled_backup_is_followed_to_its_result(env: Env) -> None:
    clock = Clock(datetime(2025, 1, 2, 2, 0, tzinfo=UTC))
    s = scheduler(env, clock)
    assert s.run_slot(clock.now) == CREATED
    state = poll(lambda: (st := read_state(env.cluster, env.cfg)) and st.last_phase == "Completed" and st,
                 30, "the scheduled backup's result recorded")  # fmt: skip
    assert state.last_backup == "backup-20250102t020000"
    s.stop()


def test_slot_during_a_running_backup_is_skipped_and_announced_once(env: Env) -> None:
    running = create_backup(env.cluster, env.cfg, trigger="slack", requester=OPERATOR)
    clock = Clock(datetime(2025, 1, 2, 2, 0, tzinfo=UTC))
    a, b = scheduler(env, clock), scheduler(env, clock)
    assert a.run_slot(clock.now) == OVERLAP
    assert b.run_slot(clock.now) == OVERLAP
    assert slot_backups(env) == []
    env.ws.wait_until(lambda w: channel_texts(env, "skipped (overlap)"), 10)
    assert len(channel_texts(env, "skipped (overlap)")) == 1
    wait_backup(env.cluster, env.cfg, running["metadata"]["name"], timeout=30)


def test_missed_slot_inside_the_grace_runs_once_and_older_ones_are_reported_once(env: Env) -> None:
    ensure_state(env.cluster, env.cfg, now=T0)  # the schedule has existed since T0
    clock = Clock(datetime(2025, 1, 3, 2, 30, tzinfo=UTC))  # slots Jan 1, 2, 3 at 02:00 missed
    assert scheduler(env, clock).catch_up() == CREATED
    [obj] = slot_backups(env)
    assert obj["metadata"]["labels"][SLOT_LABEL] == "20250103t020000"
    env.ws.wait_until(lambda w: channel_texts(env, "missed"), 10)
    assert channel_texts(env, "missed") == ["2 scheduled backup(s) missed"]
    assert scheduler(env, clock).catch_up() is None  # the next leader: nothing new to do
    assert len(slot_backups(env)) == 1 and len(channel_texts(env, "missed")) == 1


def test_missed_slot_outside_the_grace_is_reported_not_run(env: Env) -> None:
    ensure_state(env.cluster, env.cfg, now=T0)
    clock = Clock(datetime(2025, 1, 2, 5, 0, tzinfo=UTC))  # Jan 2 02:00 is 3 h old, grace 1 h
    assert scheduler(env, clock).catch_up() is None
    assert slot_backups(env) == []
    env.ws.wait_until(lambda w: channel_texts(env, "missed"), 10)
    clock.now += timedelta(minutes=10)
    scheduler(env, clock).catch_up()
    assert channel_texts(env, "missed") == ["2 scheduled backup(s) missed"]


def test_pause_and_resume_persist_across_a_restart_and_are_announced(env: Env) -> None:
    clock = Clock(datetime(2025, 1, 2, 1, 0, tzinfo=UTC))
    client = web_client(env.ws.bot_token, base_url=env.emulator.api_url)
    answer = schedule_answer(env.cluster, env.cfg, client, "pause", OPERATOR, clock.now)
    assert "paused" in answer["text"].lower() or "paused" in str(answer["blocks"])
    schedule_answer(env.cluster, env.cfg, client, "pause", OPERATOR, clock.now)  # no second notice
    env.ws.wait_until(lambda w: channel_texts(env, "Backup schedule paused"), 10)
    # "restart": new objects, the only memory is the cluster's
    clock.now = datetime(2025, 1, 2, 2, 0, tzinfo=UTC)
    assert scheduler(env, clock).run_slot(clock.now) == PAUSED
    assert slot_backups(env) == []
    status = schedule_answer(env.cluster, env.cfg, client, None, OPERATOR, clock.now)
    assert "paused" in status["text"] and "every day at 02:00 UTC" in status["text"]
    schedule_answer(env.cluster, env.cfg, client, "resume", OPERATOR, clock.now)
    clock.now = datetime(2025, 1, 3, 2, 0, tzinfo=UTC)
    assert scheduler(env, clock).run_slot(clock.now, follow=False) == CREATED
    env.ws.wait_until(lambda w: channel_texts(env, "Backup schedule resumed"), 10)
    assert len(channel_texts(env, "Backup schedule paused")) == 1
    status = schedule_answer(env.cluster, env.cfg, client, None, OPERATOR, clock.now)
    assert "paused" not in status["text"] and "backup-20250103t020000" in str(status["blocks"])


def _completed(name: str, created: str, trigger: str | None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/part-of": "test"}
    if trigger:
        labels[L.LABEL_TRIGGER] = trigger
    return {"apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": "velero", "labels": labels,
                         "creationTimestamp": created},
            "spec": {"includedNamespaces": ["default"], "storageLocation": "default"},
            "status": {"phase": "Completed", "completionTimestamp": created}}  # fmt: skip


def test_pruning_keeps_exactly_keep_last_of_ours_and_nothing_else(env: Env) -> None:
    ours = [f"backup-2025010{d}t020000" for d in range(1, 6)]
    foreign = ["playbook-old-1", "velero-cli-old-2", "schedule-foreign-3"]
    seed = [_completed(n, f"2025-01-0{i + 1}T02:00:00Z", "schedule") for i, n in enumerate(ours)]
    seed += [_completed(n, f"2024-12-0{i + 1}T02:00:00Z", None) for i, n in enumerate(foreign)]
    load_objects(env.sandbox.store, seed)
    s = scheduler(env, Clock(datetime(2025, 1, 5, 3, 0, tzinfo=UTC)))
    assert sorted(s.finished(ours[-1], "Completed")) == sorted(ours[:3])
    assert s.finished(ours[-1], "Completed") == []  # idempotent: requests already exist
    requests = R.list_all(env.cluster, R.DELETE_BACKUP_REQUEST, "velero")[0]
    # Velero may already be processing (and removing) some requests: never any other backup.
    assert {r["spec"]["backupName"] for r in requests} <= set(ours[:3])

    def names() -> set[str]:
        return {o["metadata"]["name"] for o in R.list_all(env.cluster, R.BACKUP, "velero")[0]}

    poll(lambda: not names() & set(ours[:3]), 30, "Velero deleting the pruned backups")
    assert names() >= set(ours[3:]) | set(foreign)
    assert not names() & set(ours[:3])


def test_apscheduler_job_follows_the_cron_in_production_wiring(env: Env) -> None:
    from bot.schedule_cron import next_runs

    s = scheduler(env, Clock(datetime.now(UTC))).start()
    try:
        [job] = s._sched.get_jobs()
        expected = next_runs("0 2 * * *", "UTC", datetime.now(UTC), 1)[0]
        assert job.next_run_time.astimezone(UTC) == expected
    finally:
        s.stop()


def test_a_new_leader_follows_the_last_scheduled_backup_and_prunes_after_it(env: Env) -> None:
    old = [f"backup-2024120{d}t020000" for d in range(1, 4)]
    load_objects(env.sandbox.store, [_completed(n, f"2024-12-0{i + 1}T02:00:00Z", "schedule")
                                     for i, n in enumerate(old)])  # fmt: skip
    clock = Clock(datetime(2025, 1, 2, 2, 0, tzinfo=UTC))
    assert scheduler(env, clock).run_slot(clock.now, follow=False) == CREATED  # then the leader died
    successor = scheduler(env, clock).start()
    try:
        poll(lambda: (st := read_state(env.cluster, env.cfg)) and st.last_phase == "Completed", 30,
             "the successor recording the result")  # fmt: skip

        def ours() -> list[str]:
            items = R.list_all(env.cluster, R.BACKUP, "velero", label_selector=L.LABEL_TRIGGER)[0]
            return sorted(o["metadata"]["name"] for o in items)

        poll(lambda: ours() == ["backup-20241203t020000", "backup-20250102t020000"], 30,
             "keep_last=2 applied through DeleteBackupRequests")  # fmt: skip
    finally:
        successor.stop()
