"""The README's sandbox walk-through, as a user types it: `ragbot sandbox` in one process,
`ragbot sandbox send/click/channel` from others, a backup and an approved restore end
to end. Real processes, real signatures, the same files a user gets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(var, None)
    return env


def _ragbot(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv], cwd=REPO, env=_env(), capture_output=True,
        text=True, timeout=timeout, check=False,
    )


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Iterator[Path]:
    """`ragbot sandbox` running in the background until the test ends."""
    directory = tmp_path / "sbx"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--dir", str(directory),
         "--velero-seconds", "0.5", "--pod-ready-seconds", "0.1"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    else:
        proc.kill()
        pytest.fail("ragbot sandbox did not start within 60 s:\n" + "".join(lines))
    assert any("ragbot sandbox running" in line for line in lines), "".join(lines)
    try:
        yield directory
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _channel_until(directory: Path, needle: str, timeout: float = 90) -> str:
    """The channel text (as `ragbot sandbox channel` prints it) once it contains needle.

    Between looks it long-polls the emulator's `/sandbox/channel?since=` (what
    `channel --follow` uses), so it wakes on the next change instead of sleeping.
    """
    emulator = json.loads((directory / "slack.json").read_text())["url"]
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        result = _ragbot("sandbox", "channel", "--dir", str(directory))
        assert result.returncode == 0, result.stderr
        text = result.stdout
        if needle in text:
            return text
        with urllib.request.urlopen(f"{emulator}/sandbox/channel", timeout=10) as resp:
            version = json.loads(resp.read())["version"]
        poll = f"{emulator}/sandbox/channel?since={version}&wait=5"
        with urllib.request.urlopen(poll, timeout=15) as resp:
            resp.read()
    pytest.fail(f"the channel never showed {needle!r}:\n{text}")


@pytest.mark.slow
def test_readme_walkthrough_backup_then_approved_restore(sandbox_dir: Path) -> None:
    d = str(sandbox_dir)
    sent = _ragbot("sandbox", "send", "--dir", d, "--as", "operator", "/ragbackup now first backup")
    assert sent.returncode == 0, sent.stderr
    assert "acknowledged" in sent.stdout
    _channel_until(sandbox_dir, "completed* in")

    refused = _ragbot("sandbox", "send", "--dir", d, "--as", "viewer", "/ragrestore latest test")
    assert refused.returncode == 0 and "ragbot.access.restore" in refused.stdout

    asked = _ragbot("sandbox", "send", "--dir", d, "--as", "operator", "/ragrestore latest drill")
    assert asked.returncode == 0, asked.stderr
    _channel_until(sandbox_dir, "[Approve]")
    approved = _ragbot("sandbox", "click", "--dir", d, "--as", "approver", "latest", "Approve")
    assert approved.returncode == 0, approved.stderr
    text = _channel_until(sandbox_dir, "the application is ready")
    assert text.count("succeeded* in") >= 1
    assert "Approved by <@U0APPROVER1>" in text
