"""The Slack bot on either cluster: a backup and an approved restore, each announced once.

The bot (`BotServer`: Bolt listeners, leader election, the reconciler) runs as ragbot's
ServiceAccount against the target and talks to the Slack emulator over HTTP, exactly as
in tests/integration/test_bot_flows.py; on upstream its watches follow a real Velero.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.serve import BotServer, Secrets
from k8s import labels as L
from k8s.client import from_kubeconfig
from k8s.restore_record import SUCCEEDED, get_record
from sandbox.slack import SlackEmulator
from sandbox.slack.workspace import Workspace
from tests.cluster.targets import Target
from tests.conftest import wait_for as poll
from tests.integration import test_bot_flows as flows

#: A real backup and restore take tens of seconds upstream (a restore waits for pods).
TIMEOUT = 600.0


@pytest.fixture
def bot_env(target: Target) -> Iterator[flows.Env]:
    cluster = from_kubeconfig(target.kubeconfig)
    emulator = SlackEmulator().start()
    bot = None
    try:
        ws = emulator.workspace
        secrets = Secrets(ws.bot_token, None, ws.signing_secret)
        bot = BotServer(target.cfg, cluster, secrets, slack_api_url=emulator.api_url,
                        host="127.0.0.1", port=0, options=flows.FAST).start()  # fmt: skip
        sender = emulator.sender(emulator.http_transport(bot.url))
        yield flows.Env(target.handle, cluster, target.cfg, emulator, bot, sender, target.config.parent)
    finally:
        if bot is not None:
            bot.stop()
        emulator.stop()
        cluster.close()


@pytest.mark.slow
def test_slack_backup_then_approved_restore_each_announced_once(bot_env: flows.Env) -> None:
    env = bot_env
    name = flows.started(flows.ack_ok(env.sender.command("operator", "/ragbackup now")))
    _message, done = flows.wait_text(env.ws, flows.announced(name, name, "completed"), TIMEOUT)
    assert len(done) == 1 and len(flows.top_level(env.ws, name)) == 1

    rid, request = flows.request_restore(env)
    assert env.sender.click("approver", request.ts, "Approve").acked

    def finished(w: Workspace) -> Any:
        return [r for r in flows.replies(w, request) if "succeeded" in r.text or "failed" in r.text]

    replies = flows.wait_text(env.ws, finished, TIMEOUT)
    assert [("succeeded" in r.text) for r in replies] == [True], [r.text for r in replies]
    record = poll(lambda: (r := get_record(env.cluster, env.cfg, rid)).annotations.get(
        L.ANNO_ANNOUNCED) and r, 30, "the announced annotation")  # fmt: skip
    assert record.state == SUCCEEDED and all(s["status"] == "done" for s in record.steps)
    assert len([m for m in flows.top_level(env.ws, "") if rid in str(m.blocks)]) == 1
