"""bot.slack_io against the Slack emulator: throttled edits keep the latest state and the last.

A burst of 50 states for one message must reach Slack as a handful of chat.update calls,
at most about one per `min_interval`, ending on the last state; a state that could not be
sent during a 429 storm is sent once the storm is over.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from bot.slack_io import MessageUpdater, post, web_client
from sandbox.cluster import SANDBOX_CHANNEL
from sandbox.slack import SlackEmulator


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackEmulator]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with SlackEmulator() as em:
        yield em


def test_burst_is_throttled_and_ends_on_the_latest_state(emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    client = web_client(ws.bot_token, base_url=emulator.api_url)
    ref = post(client, SANDBOX_CHANNEL, {"text": "state 0", "blocks": None})
    updater = MessageUpdater(client, min_interval=0.2).start()
    try:
        started = time.monotonic()
        for i in range(1, 51):
            updater.submit(ref, lambda i=i: {"text": f"state {i}", "blocks": None})
        submitting = time.monotonic() - started
        ws.wait_until(lambda w: (m := w.message(SANDBOX_CHANNEL, ref.ts)) and m.text == "state 50", 5)
        calls = ws.calls("chat.update")
        # One edit per interval while states keep coming, plus the first and the last: a
        # loaded machine that takes longer to submit the 50 may see a few more, never 50.
        assert 1 <= len(calls) <= 3 + int(submitting / 0.2), (len(calls), submitting)
        times = [c.at for c in calls]
        assert all(b - a >= 0.15 for a, b in itertools.pairwise(times))
    finally:
        updater.stop()


def test_a_state_refused_by_a_storm_is_sent_after_it(emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    client = web_client(ws.bot_token, base_url=emulator.api_url, rate_limit_retries=0)
    ref = post(client, SANDBOX_CHANNEL, {"text": "running", "blocks": None})
    ws.rate_limit_storm(1.5, "chat.update", retry_after=1)
    updater = MessageUpdater(client, min_interval=0.1, retry_delay=0.2).start()
    try:
        updater.submit(ref, lambda: {"text": "Completed", "blocks": None})
        ws.wait_until(lambda w: (m := w.message(SANDBOX_CHANNEL, ref.ts)) and m.text == "Completed", 10)
        assert ws.calls("chat.update", ok=False), "the storm refused at least one edit"
    finally:
        updater.stop()
