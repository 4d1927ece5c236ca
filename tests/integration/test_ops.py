"""The operator's endpoints over real HTTP: /healthz, /readyz against a fake API server that
goes away and comes back, and /metrics parsed with prometheus_client while a backup runs
through the bot (a signed `/ragbackup now`, the reconciler, the Slack emulator).
"""

from __future__ import annotations

import http.client
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import JsonFormatter, OperationFilter
from bot.metrics import Metrics, count_cluster_errors
from bot.ops import OpsServer, kubernetes_check
from bot.reconciler import Reconciler
from bot.serve import BotServer, Secrets
from bot.slack_io import SlackFailure, add_error_observer, post
from k8s import resources as R
from k8s.client import Cluster
from sandbox.apiserver import builtin_rules
from sandbox.apiserver.server import ApiServer
from tests.conftest import ADMIN_TOKEN, ApiServerHandle, make_client
from tests.conftest import wait_for as poll
from tests.integration.test_bot_flows import FAST, ack_ok, announced, start_env, started, stop_env

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback only: slack_sdk (urllib) would send the emulator's traffic to a proxy."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def get(ops: OpsServer, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", ops.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def samples(ops: OpsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}; fails if it does not parse."""
    status, body = get(ops, "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----- /healthz and /readyz -------------------------------------------------------------------


@pytest.fixture
def ops_on(api_server: ApiServerHandle) -> Iterator[tuple[OpsServer, Cluster, FakeMonotonic]]:
    cluster = Cluster(make_client(api_server.url))
    clock = FakeMonotonic()
    slack_up = {"ok": True}
    checks = {
        "kubernetes": kubernetes_check(cluster, timeout=1.0, cache_seconds=0.0),
        "slack": lambda: (slack_up["ok"], "Socket Mode connected" if slack_up["ok"] else "disconnected"),
        "config": lambda: (True, "loaded from config.yaml"),
    }
    ops = OpsServer(Metrics(), host="127.0.0.1", port=0, checks=checks, stale_after=30.0,
                    beat_interval=3600.0, monotonic=clock).start()  # fmt: skip
    yield ops, cluster, clock
    ops.stop()
    cluster.close()


def test_healthz_ok_until_a_loop_stops_beating(ops_on: tuple[OpsServer, Cluster, FakeMonotonic]) -> None:
    ops, _, clock = ops_on
    assert get(ops, "/healthz") == (200, "ok\n")
    ops.beat("reconciler")
    clock.now += 20
    ops.beat("ops")
    assert get(ops, "/healthz")[0] == 200
    clock.now += 15  # the reconciler's last beat is 35 s old
    status, body = get(ops, "/healthz")
    assert status == 500 and "reconciler" in body and "ops" not in body
    ops.forget("reconciler")  # e.g. leadership lost: its loop ended on purpose
    assert get(ops, "/healthz") == (200, "ok\n")
    assert get(ops, "/nope")[0] == 404


def test_readyz_follows_the_api_server_away_and_back(api_server: ApiServerHandle,
                                                     ops_on: tuple[OpsServer, Cluster, FakeMonotonic]) -> None:  # fmt: skip
    ops, _, _ = ops_on
    status, body = get(ops, "/readyz")
    assert status == 200, body
    assert "[+]kubernetes ok" in body and "[+]slack ok" in body and "[+]config ok" in body

    port = api_server.server.port
    api_server.server.stop()
    status, body = get(ops, "/readyz")
    assert status == 503 and "[-]kubernetes failed" in body and "[+]slack ok" in body
    assert body.rstrip().endswith("readyz check failed")

    back = ApiServer(api_server.store, port=port, admin_token=ADMIN_TOKEN,
                     defaults=builtin_rules.apply_defaults).start()  # fmt: skip
    api_server.server = back  # closed by the fixture
    status, body = get(ops, "/readyz")
    assert status == 200, body

    back.faults.set(error_rate=1.0, error_code=503)  # up, but answering 503 to everything
    assert get(ops, "/readyz")[0] == 503
    back.faults.clear()
    assert get(ops, "/readyz")[0] == 200


def test_readyz_caches_the_api_check(api_server: ApiServerHandle) -> None:
    cluster = Cluster(make_client(api_server.url))
    clock = FakeMonotonic()
    check = kubernetes_check(cluster, cache_seconds=2.0, monotonic=clock)
    assert check()[0]
    api_server.server.stop()
    assert check()[0], "within 2 s the cached answer is used"
    clock.now += 2.5
    assert not check()[0]
    cluster.close()


# ----- /metrics while the bot works ---------------------------------------------------------


def test_metrics_parse_and_move_as_a_backup_runs_through_the_bot(tmp_path: Path) -> None:
    env = start_env(tmp_path, run_bot=False)
    ws = env.emulator.workspace
    metrics = Metrics()
    count_cluster_errors(env.cluster, metrics)
    remove = add_error_observer(metrics.slack_error)
    bot = BotServer(env.cfg, env.cluster, Secrets(ws.bot_token, None, ws.signing_secret),
                    slack_api_url=env.emulator.api_url, host="127.0.0.1", port=0,
                    reconcile=False)  # fmt: skip
    bot.ctx.metrics = metrics  # type: ignore[attr-defined]
    bot.start()
    reconciler = Reconciler(env.cluster, env.cfg, bot.client, options=FAST, metrics=metrics).start()
    ops = OpsServer(metrics, host="127.0.0.1", port=0).start()
    env.bot = bot
    env.sender = env.emulator.sender(env.emulator.http_transport(bot.url))
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.addFilter(OperationFilter())
    handler.setFormatter(JsonFormatter())
    ragbot_log = logging.getLogger("ragbot")
    old_level = ragbot_log.level
    ragbot_log.addHandler(handler)
    ragbot_log.setLevel(logging.INFO)
    try:
        before = samples(ops)
        assert value(before, "ragbot_leader") == 0
        assert value(before, "ragbot_last_successful_backup_timestamp_seconds") == 0

        name = started(ack_ok(env.sender.command("operator", "/ragbackup now")))
        ws.wait_until(announced(name, name, "completed"), 30)
        ack_ok(env.sender.command("operator", "/ragbackup lsit"))
        ack_ok(env.sender.command("viewer", "/ragbackup now"))
        metrics.set_leader(True)

        after = poll(lambda: (s := samples(ops)) and value(
            s, "ragbot_backups_total", trigger="slack", result="Completed") == 1 and s, 10,
            "the backup counted")  # fmt: skip
        assert value(after, "ragbot_commands_total", command="ragbackup", verb="now", outcome="ok") == 1
        assert value(after, "ragbot_commands_total", command="ragbackup", verb="now", outcome="denied") == 1
        assert value(after, "ragbot_commands_total", command="ragbackup", verb="-", outcome="usage-error") == 1
        assert value(after, "ragbot_backup_duration_seconds_count") == 1
        assert value(after, "ragbot_backup_duration_seconds_sum") > 0
        backup = R.get(env.cluster, R.BACKUP, "velero", name)
        from k8s.backup_views import summarize

        completed = summarize(backup).completed
        assert completed is not None
        assert value(after, "ragbot_last_successful_backup_timestamp_seconds") == completed.timestamp()
        assert value(after, "ragbot_leader") == 1
        logged = [json.loads(line) for line in captured.getvalue().splitlines()]
        mine = [e for e in logged if e.get("operation") == name]
        assert any("announced" in str(e["message"]) for e in mine), logged

        # Slack and Kubernetes errors, and a watch that has to relist after 410 Gone.
        with pytest.raises(SlackFailure):
            post(bot.client, "C0NOSUCH", {"text": "x"})
        assert R.try_get(env.cluster, R.CONFIGMAP, "ragbot", "no-such-thing") is None
        env.sandbox.server.faults.set(watch_gone_next=3)
        env.sandbox.server.drop_watches()
        final = poll(lambda: (s := samples(ops)) and sum(
            v for (n, _), v in s.items() if n == "ragbot_watch_restarts_total") >= 1 and s, 20,
            "a watch restart counted")  # fmt: skip
        assert value(final, "ragbot_slack_api_errors_total", method="chat.postMessage",
                     error="channel_not_found") == 1  # fmt: skip
        assert value(final, "ragbot_kubernetes_api_errors_total", reason="NotFound") >= 1
    finally:
        ragbot_log.removeHandler(handler)
        ragbot_log.setLevel(old_level)
        remove()
        ops.stop()
        reconciler.stop()
        stop_env(env)


def test_metrics_registries_are_independent() -> None:
    a, b = Metrics(), Metrics()
    a.command("/ragbackup", "now", "ok")
    assert b"ragbot_commands_total" in a.render()
    parsed: dict[str, Any] = {f.name: f for f in text_string_to_metric_families(b.render().decode())}
    assert not parsed["ragbot_commands"].samples


def test_bot_server_serves_the_ops_endpoints_when_wired(tmp_path: Path) -> None:
    """BotServer(ops_port=...) end to end: ready once Slack and the API answer, leader 1."""
    import inspect

    if "ops_port" not in inspect.signature(BotServer).parameters:
        pytest.skip("BotServer has no ops_port yet (wiring pending in bot/serve.py)")
    env = start_env(tmp_path, run_bot=False)
    ws = env.emulator.workspace
    bot = BotServer(env.cfg, env.cluster, Secrets(ws.bot_token, None, ws.signing_secret),  # type: ignore[call-arg]
                    slack_api_url=env.emulator.api_url, host="127.0.0.1", port=0,
                    options=FAST, ops_port=0).start()  # fmt: skip
    env.bot = bot
    try:
        ops: OpsServer = bot.ops  # type: ignore[attr-defined]
        status, body = get(ops, "/readyz")
        assert status == 200, body
        assert "[+]slack ok: HTTP mode" in body and "[+]kubernetes ok" in body
        assert get(ops, "/healthz")[0] == 200
        poll(lambda: value(samples(ops), "ragbot_leader") == 1, 30, "this replica leading")
        # A fresh sandbox has no backup: the monitor says so in the channel, once.
        ws.wait_until(lambda w: [m for m in w.messages(env.cfg.ragbot.slack.channel)
                                 if m.text == "No recent successful backup"], 30)  # fmt: skip
    finally:
        stop_env(env)
