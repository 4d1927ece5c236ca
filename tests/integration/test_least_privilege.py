"""Every code path of ragbot runs with exactly the RBAC that k8s.permissions declares.

The sandbox enforces RBAC (`SandboxCluster(rbac=True)`, a transcription of the
kube-apiserver's authorizer). The admin creates the ServiceAccount and the objects of
`render_roles(cfg)` (what the chart installs); then the CLI and the bot run as
`system:serviceaccount:ragbot:ragbot`: `ragbot check`, `backup now --wait`, list and
describe, `restore plan`, a full `restore run latest --yes --wait`, and the Slack bot's
backup and approved restore through its reconciler. Any 403 the service account meets
fails the test naming the missing permission. The negative checks prove the grant is
not wider than it should be: no Secrets outside the application namespaces, no direct
Backup deletion, no cluster-wide Secret listing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from bot.cli import main
from config.loader import load_config
from config.models import Config
from k8s.permissions import required_rules
from sandbox.apiserver.auth import RequestAttributes
from sandbox.cluster import SandboxCluster
from tests.cluster.targets import grant as grant_roles

SA = "system:serviceaccount:ragbot:ragbot"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Env:
    sim: SandboxCluster
    cfg: Config
    args: list[str]
    kubeconfig: Path
    config: Path
    denied: list[str]

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, *self.args])
        out, err = capsys.readouterr()
        return code, out, err

    def assert_no_denials(self) -> None:
        assert not self.denied, "the service account was refused:\n" + "\n".join(self.denied)


def _describe(attrs: RequestAttributes) -> str:
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    group = attrs.api_group or "core"
    where = f"namespace {attrs.namespace}" if attrs.namespace else "cluster scope"
    name = f" {attrs.name}" if attrs.name else ""
    return f"{attrs.verb} {resource}{name} ({group}) in {where}"


def grant(sim: SandboxCluster, cfg: Config) -> None:
    """As the admin: the ServiceAccount and every Role/binding of render_roles(cfg)."""
    api = sim.api_client()
    try:
        grant_roles(api, cfg)
    finally:
        api.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sim = SandboxCluster(rbac=True, velero_seconds=0.3, pod_ready_seconds=0.05)
    authorizer = sim.server.authorizer
    assert authorizer is not None
    denied: list[str] = []
    lock = threading.Lock()

    def recording(attrs: RequestAttributes) -> str | None:
        reason = authorizer(attrs)
        if reason is not None and attrs.user.name == SA:
            with lock:
                denied.append(_describe(attrs))
        return reason

    sim.server.authorizer = recording
    sim.start()
    try:
        kubeconfig, config = sim.write_files(tmp_path, token=SA)
        cfg = load_config([config])
        grant(sim, cfg)
        args = ["--kubeconfig", str(kubeconfig), "--config", str(config)]
        yield Env(sim, cfg, args, kubeconfig, config, denied)
    finally:
        sim.stop()


def test_cli_paths_need_nothing_beyond_the_declared_rules(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = env.run(capsys, "check")
    assert code == 0, out + err
    env.assert_no_denials()

    code, out, err = env.run(capsys, "backup", "now", "--wait")
    assert code == 0 and "Completed" in out, out + err
    code, out, err = env.run(capsys, "backup", "list", "-o", "json")
    assert code == 0, out + err
    code, out, err = env.run(capsys, "backup", "list")
    name = out.splitlines()[1].split()[0]
    code, out, err = env.run(capsys, "backup", "describe", name)
    assert code == 0, out + err
    code, out, err = env.run(capsys, "restore", "plan", "latest")
    assert code == 0, out + err
    env.assert_no_denials()

    code, out, err = env.run(capsys, "restore", "run", "latest", "--yes", "--wait")
    assert code == 0 and "succeeded" in out, out + err
    code, out, err = env.run(capsys, "restore", "list")
    assert code == 0 and "succeeded" in out, out + err
    env.assert_no_denials()


def _forbidden(call: Any) -> bool:
    try:
        call()
    except ApiException as exc:
        return exc.status == 403
    return False


def test_the_grant_is_no_wider_than_declared(env: Env) -> None:
    api = env.sim.api_client(SA)
    try:
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        app_namespaces = set(env.cfg.velero.backup.backupConfig.namespaceOrder)
        # Secrets: never cluster-wide, never in the Velero or the bot's namespace, nor
        # in kube-system; only where a restore removes Helm records or named Secrets.
        assert _forbidden(lambda: core.list_secret_for_all_namespaces())
        for ns in ("kube-system", env.cfg.velero.namespace, env.cfg.ragbot.namespace):
            assert ns not in app_namespaces
            assert _forbidden(lambda ns=ns: core.list_namespaced_secret(ns)), ns
        # Backups are removed only through DeleteBackupRequests (Velero deletes the data too).
        assert _forbidden(lambda: custom.delete_namespaced_custom_object(
            "velero.io", "v1", env.cfg.velero.namespace, "backups", "anything"))  # fmt: skip
        # No wildcards anywhere; nothing cluster-scoped beyond reads.
        for rule in required_rules(env.cfg):
            assert "*" not in (*rule.verbs, *rule.resources, *rule.api_groups), rule
            if rule.namespace is None:
                assert set(rule.verbs) <= {"get", "list", "watch"}, rule
        # Pods outside the declared namespaces are not readable either.
        assert _forbidden(lambda: core.list_namespaced_pod("kube-system"))
    finally:
        api.close()


def test_lease_acquire_renew_release(env: Env) -> None:
    lease = pytest.importorskip("k8s.lease")
    from datetime import UTC, datetime, timedelta

    from k8s.client import from_kubeconfig

    cluster = from_kubeconfig(env.kubeconfig)
    try:
        now = datetime.now(UTC)
        ns = env.cfg.ragbot.namespace
        take = lease.try_acquire_or_renew
        assert take(cluster, ns, "pod-a", now=now, lease_seconds=15)
        assert take(cluster, ns, "pod-a", now=now + timedelta(seconds=5), lease_seconds=15)
        assert not take(cluster, ns, "pod-b", now=now + timedelta(seconds=6), lease_seconds=15)
        assert lease.release(cluster, ns, "pod-a", now=now + timedelta(seconds=7))
    finally:
        cluster.close()
    env.assert_no_denials()


def test_slack_bot_backup_and_approved_restore(env: Env) -> None:
    from bot.serve import BotServer, Secrets
    from k8s.client import from_kubeconfig
    from k8s.restore_record import SUCCEEDED, get_record
    from sandbox.slack import SlackEmulator
    from tests.integration import test_bot_flows as flows

    cluster = from_kubeconfig(env.kubeconfig)
    emulator = SlackEmulator().start()
    bot = None
    try:
        ws = emulator.workspace
        secrets = Secrets(ws.bot_token, None, ws.signing_secret)
        bot = BotServer(env.cfg, cluster, secrets, slack_api_url=emulator.api_url,
                        host="127.0.0.1", port=0, options=flows.FAST).start()  # fmt: skip
        sender = emulator.sender(emulator.http_transport(bot.url))
        fenv = flows.Env(env.sim, cluster, env.cfg, emulator, bot, sender, env.kubeconfig.parent)
        flows.ack_ok(sender.command("operator", "/ragbackup check"))
        flows.completed_backup(fenv)
        rid, msg = flows.request_restore(fenv)
        assert sender.click("approver", msg.ts, "Approve").acked
        done = flows.wait_text(ws, lambda w: [r for r in flows.replies(w, msg) if "succeeded" in r.text], 60)
        assert done and get_record(cluster, env.cfg, rid).state == SUCCEEDED
    finally:
        if bot is not None:
            bot.stop()
        emulator.stop()
        cluster.close()
    env.assert_no_denials()
