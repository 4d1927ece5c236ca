"""`ragbot serve` as a real process: start-up errors, and a SIGKILL in the middle of a restore.

The test process hosts the sandbox cluster and the Slack emulator; the bot is a
`python -m bot serve` subprocess reaching both over loopback, as in production. Killed
while Velero restores, a new process must carry on the same restore, edit the same
channel message and announce the result exactly once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8s import labels as L
from k8s.restore_record import SUCCEEDED, get_record
from sandbox.cluster import SANDBOX_CHANNEL
from sandbox.slack import HttpTransport
from tests.conftest import wait_for as poll
from tests.integration.test_bot_flows import (
    Env,
    ack_ok,
    completed_backup,
    public,
    replies,
    request_restore,
    start_env,
    stop_env,
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_env(env: Env) -> dict[str, str]:
    ws = env.ws
    out = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_") and "PROXY" not in k.upper()}
    out.update(SLACK_BOT_TOKEN=ws.bot_token, SLACK_SIGNING_SECRET=ws.signing_secret,
               RAGBOT_SLACK_API_URL=env.emulator.api_url, PYTHONPATH=str(REPO))  # fmt: skip
    return out


def start_bot(env: Env, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bot", "serve", "--config", str(env.dir / "config.yaml"),
            "--kubeconfig", str(env.dir / "kubeconfig"), "--host", "127.0.0.1", "--port", str(port), "--ops-port", "0"]  # fmt: skip
    proc = subprocess.Popen(argv, env=bot_env(env), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip

    def listening() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    poll(listening, 30, "the bot process listening")
    return proc


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = start_env(tmp_path, velero_seconds=3.0, run_bot=False)
    yield e
    stop_env(e)


def test_missing_bot_token_stops_with_one_line_and_exit_2(env: Env) -> None:
    clean = {k: v for k, v in bot_env(env).items() if k != "SLACK_BOT_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "bot", "serve", "--config", str(env.dir / "config.yaml")],
                          env=clean, cwd=REPO, capture_output=True, timeout=60)  # fmt: skip
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "SLACK_BOT_TOKEN" in lines[0], lines


def test_bot_killed_mid_restore_carries_on_with_the_same_message_and_announces_once(env: Env) -> None:
    port = free_port()
    proc = start_bot(env, port)
    try:
        env.sender.transport = HttpTransport(f"http://127.0.0.1:{port}/slack/events")
        completed_backup(env)
        rid, msg = request_restore(env, "restart drill")
        assert ack_ok(env.sender.click("approver", msg.ts, "Approve"))

        def velero_running() -> bool:
            rec = get_record(env.cluster, env.cfg, rid)
            return any(s["action"] == "wait-velero" and s["status"] == "running" for s in rec.steps)

        poll(velero_running, 60, "the restore waiting for Velero")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = start_bot(env, port)
        done = env.ws.wait_until(lambda w: [r for r in replies(w, msg) if "succeeded" in r.text], 90)
        record = poll(lambda: (r := get_record(env.cluster, env.cfg, rid)).annotations.get(
            L.ANNO_ANNOUNCED) and r, 15, "the announced annotation")  # fmt: skip
        assert record.state == SUCCEEDED
        assert len(done) == 1
        assert len([m for m in public(env.ws) if not m.is_reply and rid in str(m.blocks)]) == 1
        assert record.annotations[L.ANNO_SLACK_MESSAGE] == f"{SANDBOX_CHANNEL}/{msg.ts}"
        assert all(s["status"] == "done" for s in record.steps)
        assert sum(s.get("runs", 0) > 1 for s in record.steps) <= 1  # only the interrupted step ran twice
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
