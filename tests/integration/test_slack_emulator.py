"""The loopback Slack against the unmodified slack_sdk WebClient, Bolt App and Socket Mode.

Every test talks over real loopback sockets: `WebClient(base_url=emulator.api_url)` for
the Web API, Bolt's own WSGI adapter under `wsgiref` for HTTP mode (signed requests
from the sender), Bolt's `SocketModeHandler` (slack_sdk's built-in client) reaching the
Socket Mode server through `apps.connections.open`. Nothing is patched. Proxy variables
are cleared (the built-in Socket Mode client would CONNECT through them). Waits are on
workspace conditions with deadlines; the only real waiting is one Retry-After second.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from sandbox.cluster import SANDBOX_CHANNEL, SANDBOX_USERS
from sandbox.slack import Message, Sender, SlackEmulator, Workspace, render_channel
from sandbox.slack.directory import OTHER_CHANNEL
from sandbox.slack.sender import HttpTransport, SocketTransport, command_payload, sign
from tests.conftest import wait_for

OPERATOR, APPROVER = SANDBOX_USERS["operator"], SANDBOX_USERS["approver"]
TS = re.compile(r"^\d{10}\.\d{6}$")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., SlackEmulator]]:
    started: list[SlackEmulator] = []

    def make(workspace: Workspace | None = None) -> SlackEmulator:
        emu = SlackEmulator(workspace).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., SlackEmulator]) -> SlackEmulator:
    return emulator_factory()


@pytest.fixture
def client(emulator: SlackEmulator) -> WebClient:
    return WebClient(token=emulator.workspace.bot_token, base_url=emulator.api_url)


def approval_blocks() -> list[dict[str, Any]]:
    confirm = {
        "title": {"type": "plain_text", "text": "Restore now?"},
        "text": {"type": "mrkdwn", "text": "Keycloak logins go offline."},
        "confirm": {"type": "plain_text", "text": "Approve"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Restore requested"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*olivia* wants to restore `backup-1`"},
            "fields": [
                {"type": "mrkdwn", "text": "*Backup*\nbackup-1"},
                {"type": "mrkdwn", "text": "*Expires*\nin 15 min"},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "request r-1"}]},
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Approve"},
                 "action_id": "approve", "value": "r-1", "style": "primary", "confirm": confirm},
                {"type": "button", "text": {"type": "plain_text", "text": "Reject"},
                 "action_id": "reject", "value": "r-1", "style": "danger"},
            ],
        },
    ]  # fmt: skip


def raw(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with NO_PROXY.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# ----- Web API -------------------------------------------------------------------------------


def test_auth_test_gives_the_bot_identity_and_scopes(client: WebClient, emulator: SlackEmulator) -> None:
    resp = client.auth_test()
    assert resp["bot_id"] == "B0RAGBOT001" and resp["user_id"] == "U0RAGBOT001"
    assert resp["team_id"] == "T0SANDBOX1" and resp["url"] == "https://ragbot-sandbox.slack.com/"
    assert "chat:write" in resp.headers["x-oauth-scopes"].split(",")
    assert [c.method for c in emulator.workspace.calls()] == ["auth.test"]


def test_post_update_thread_and_history(client: WebClient, emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    first = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="Backup started", blocks=approval_blocks())
    second = client.chat_postMessage(channel="#ragbot-sandbox", text="second")
    assert TS.match(first["ts"]) and TS.match(second["ts"]) and second["ts"] > first["ts"]
    assert first["message"]["bot_id"] == "B0RAGBOT001"
    stored = first["message"]["blocks"]
    assert all(b["block_id"] for b in stored) and stored[3]["block_id"] == "decide"
    assert stored[0]["text"]["emoji"] is True

    updated = client.chat_update(channel=SANDBOX_CHANNEL, ts=first["ts"], text="Backup 50%")
    assert updated["text"] == "Backup 50%" and updated["message"]["edited"]["user"] == "U0RAGBOT001"
    assert updated["message"]["blocks"] == stored  # no `blocks` argument: Slack keeps them
    client.chat_update(channel=SANDBOX_CHANNEL, ts=first["ts"], text="Completed", blocks=[])
    msg = ws.message(SANDBOX_CHANNEL, first["ts"])
    assert msg is not None and msg.text == "Completed" and msg.blocks is None
    assert [r.text for r in msg.history] == ["Backup started", "Backup 50%"]

    reply = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="done", thread_ts=first["ts"], reply_broadcast=True)
    assert reply["message"]["thread_ts"] == first["ts"]
    nested = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="again", thread_ts=reply["ts"])
    assert nested["message"]["thread_ts"] == first["ts"]  # a reply to a reply joins the thread
    replies = [m for m in ws.messages(SANDBOX_CHANNEL) if m.is_reply]
    assert [(m.text, m.reply_broadcast) for m in replies] == [("done", True), ("again", False)]
    posted = ws.calls("chat.postMessage")
    assert len(posted) == 4 and posted[0].args["channel"] == SANDBOX_CHANNEL and posted[0].ok


def test_ephemeral_permalink_usergroups_users_conversations(client: WebClient, emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    eph = client.chat_postEphemeral(channel=SANDBOX_CHANNEL, user=OPERATOR, text="only you")
    assert TS.match(eph["message_ts"])
    (msg,) = ws.messages(SANDBOX_CHANNEL)
    assert msg.ephemeral_to == OPERATOR
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=SANDBOX_CHANNEL, ts=eph["message_ts"], text="x")
    assert err.value.response["error"] == "message_not_found"

    ts = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="hi")["ts"]
    link = client.chat_getPermalink(channel=SANDBOX_CHANNEL, message_ts=ts)["permalink"]
    assert link == f"https://ragbot-sandbox.slack.com/archives/{SANDBOX_CHANNEL}/p{ts.replace('.', '')}"
    assert client.usergroups_users_list(usergroup="S0APPROVERS")["users"] == [APPROVER, "U0APPROVER2"]
    user = client.users_info(user=APPROVER)["user"]
    assert user["profile"]["display_name"] == "arjun.approver" and user["is_bot"] is False
    channel = client.conversations_info(channel=SANDBOX_CHANNEL)["channel"]
    assert channel["name"] == "ragbot-sandbox" and channel["is_member"] is True
    assert client.conversations_info(channel=OTHER_CHANNEL)["channel"]["is_member"] is False


def _user_message(ws: Workspace) -> str:
    return ws.post(SANDBOX_CHANNEL, "typed by a person", user=OPERATOR).ts


ERRORS: list[tuple[str, Callable[[WebClient, Workspace], Any]]] = [
    ("not_authed", lambda c, ws: WebClient(base_url=c.base_url).auth_test()),
    ("invalid_auth", lambda c, ws: WebClient(token="xoxb-wrong", base_url=c.base_url).auth_test()),
    ("not_allowed_token_type", lambda c, ws: c.apps_connections_open(app_token=ws.bot_token)),
    ("channel_not_found", lambda c, ws: c.chat_postMessage(channel="C0NOPE", text="x")),
    ("not_in_channel", lambda c, ws: c.chat_postMessage(channel=OTHER_CHANNEL, text="x")),
    ("no_text", lambda c, ws: c.chat_postMessage(channel=SANDBOX_CHANNEL)),
    ("msg_too_long", lambda c, ws: c.chat_postMessage(channel=SANDBOX_CHANNEL, text="x" * 40_001)),
    ("message_not_found", lambda c, ws: c.chat_update(channel=SANDBOX_CHANNEL, ts="1.000000", text="x")),
    ("cant_update_message", lambda c, ws: c.chat_update(channel=SANDBOX_CHANNEL, ts=_user_message(ws), text="x")),
    ("thread_not_found", lambda c, ws: c.chat_postMessage(channel=SANDBOX_CHANNEL, text="x", thread_ts="1.000000")),
    ("user_not_found", lambda c, ws: c.users_info(user="U0NOBODY")),
    ("user_not_found", lambda c, ws: c.chat_postEphemeral(channel=SANDBOX_CHANNEL, user="U0NOBODY", text="x")),
    ("no_such_subteam", lambda c, ws: c.usergroups_users_list(usergroup="S0NOPE")),
    ("channel_not_found", lambda c, ws: c.conversations_info(channel="C0NOPE")),
    ("message_not_found", lambda c, ws: c.chat_getPermalink(channel=SANDBOX_CHANNEL, message_ts="1.000000")),
    ("invalid_blocks_format", lambda c, ws: c.api_call("chat.postMessage", data={"channel": SANDBOX_CHANNEL, "blocks": "{nope"})),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(("error", "action"), ERRORS, ids=[f"{i}-{e}" for i, (e, _) in enumerate(ERRORS)])
def test_errors_raise_slack_api_error(
    client: WebClient, emulator: SlackEmulator, error: str, action: Callable[[WebClient, Workspace], Any]
) -> None:
    with pytest.raises(SlackApiError) as err:
        action(client, emulator.workspace)
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == error
    assert emulator.workspace.calls()[-1].error == error


def test_missing_scope_and_revoked_token(emulator_factory: Callable[..., SlackEmulator]) -> None:
    emu = emulator_factory(Workspace(scopes=("commands", "chat:write")))
    client = WebClient(token=emu.workspace.bot_token, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as err:
        client.usergroups_users_list(usergroup="S0APPROVERS")
    assert err.value.response.data == {
        "ok": False, "error": "missing_scope", "needed": "usergroups:read", "provided": "commands,chat:write",
    }  # fmt: skip
    emu.workspace.revoked.add(emu.workspace.bot_token)
    with pytest.raises(SlackApiError) as err:
        client.auth_test()
    assert err.value.response["error"] == "token_revoked"


# ----- Block Kit limits ----------------------------------------------------------------------


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(text: str = "Go", action_id: str = "go") -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id}


TOO_BIG: list[tuple[list[dict[str, Any]], str]] = [
    ([section("x")] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
    ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
     "no more than 10 items allowed [json-pointer:/blocks/0/fields]"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
     "must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
     "must be less than 151 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "actions", "elements": [button("b" * 76)]}],
     "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"),
    ([{"type": "actions", "elements": [button(action_id="a" * 256)]}],
     "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"),
    ([{**section("x"), "block_id": "b" * 256}], "must be less than 256 characters [json-pointer:/blocks/0/block_id]"),
    ([{"type": "actions", "elements": [button(), button()]}],
     '`action_id` "go" already exists [json-pointer:/blocks/0/elements/1/action_id]'),
    ([section("")], "must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
    ([{"type": "carousel"}], "unsupported type: carousel [json-pointer:/blocks/0/type]"),
]  # fmt: skip


@pytest.mark.parametrize(("blocks", "complaint"), TOO_BIG, ids=[c.split(" [")[0][:40] for _, c in TOO_BIG])
def test_block_kit_limits_give_invalid_blocks(client: WebClient, blocks: list[dict[str, Any]], complaint: str) -> None:
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=SANDBOX_CHANNEL, text="t", blocks=blocks)
    data = err.value.response.data
    assert data["error"] == "invalid_blocks"
    assert complaint in data["errors"]
    assert f"[ERROR] {complaint}" in data["response_metadata"]["messages"]


def test_block_kit_limits_are_inclusive_and_total_text_is_capped(client: WebClient) -> None:
    at_limits = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3000},
         "fields": [{"type": "mrkdwn", "text": "f" * 200}] * 10},
        {"type": "actions", "block_id": "b" * 255, "elements": [button("b" * 75, "a" * 255)]},
    ] + [section("x")] * 47  # fmt: skip
    assert client.chat_postMessage(channel=SANDBOX_CHANNEL, text="t", blocks=at_limits)["ok"]
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=SANDBOX_CHANNEL, text="t", blocks=[section("x" * 2900)] * 5)
    assert err.value.response["error"] == "msg_blocks_too_long"


# ----- wire details --------------------------------------------------------------------------


def test_get_query_form_token_and_json_token_rules(emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    status, _, body = raw(f"{emulator.url}/api/auth.test?token={ws.bot_token}")
    assert status == 200 and json.loads(body)["ok"] is True
    form = f"token={ws.bot_token}&channel={SANDBOX_CHANNEL}&text=bare+path&team_id=T0SANDBOX1&whatever=1"
    status, headers, body = raw(f"{emulator.url}/chat.postMessage", form.encode())
    assert status == 200 and json.loads(body)["ok"] is True
    assert headers["Content-Type"].startswith("application/json")
    as_json = json.dumps({"token": ws.bot_token, "channel": SANDBOX_CHANNEL, "text": "x"}).encode()
    status, _, body = raw(f"{emulator.url}/api/chat.postMessage", as_json, {"Content-Type": "application/json"})
    assert json.loads(body)["error"] == "not_authed"  # JSON bodies: the token goes in the header
    status, _, body = raw(f"{emulator.url}/api/nope.nothing", b"")
    assert status == 404 and json.loads(body)["error"] == "unknown_method"


def test_rate_limits_answer_429_and_the_sdk_retry_handler_recovers(emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    plain = WebClient(token=ws.bot_token, base_url=emulator.api_url)
    ws.set_rate_limit("chat.postMessage", every_nth=2)
    assert plain.chat_postMessage(channel=SANDBOX_CHANNEL, text="1")["ok"]
    with pytest.raises(SlackApiError) as err:
        plain.chat_postMessage(channel=SANDBOX_CHANNEL, text="2")
    assert err.value.response.status_code == 429 and err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "1"
    assert plain.auth_test()["ok"]  # other methods are not throttled

    ws.clear_rate_limits()
    ws.set_rate_limit("chat.postMessage", next_n=1, retry_after=1)
    retrying = WebClient(
        token=ws.bot_token, base_url=emulator.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    assert retrying.chat_postMessage(channel=SANDBOX_CHANNEL, text="3")["ok"]
    outcomes = [(c.status, c.args["text"]) for c in ws.calls("chat.postMessage")]
    assert outcomes[-2:] == [(429, "3"), (200, "3")]
    assert [m.text for m in ws.messages(SANDBOX_CHANNEL)] == ["1", "3"]


def test_storm_refuses_everything_until_it_is_over(emulator_factory: Callable[..., SlackEmulator]) -> None:
    clock = FakeClock()
    emu = emulator_factory(Workspace(clock=clock))
    client = WebClient(token=emu.workspace.bot_token, base_url=emu.api_url)
    emu.workspace.rate_limit_storm(10)
    for method in (client.auth_test, lambda: client.chat_postMessage(channel=SANDBOX_CHANNEL, text="x")):
        with pytest.raises(SlackApiError) as err:
            method()
        assert err.value.response.status_code == 429
        assert err.value.response.headers["Retry-After"] == "10"
    clock.now += 7.5
    with pytest.raises(SlackApiError) as err:
        client.auth_test()
    assert err.value.response.headers["Retry-After"] == "3"
    clock.now += 2.5
    assert client.chat_postMessage(channel=SANDBOX_CHANNEL, text="after")["ok"]
    assert emu.workspace.limiter.refused == 3


def test_response_url_semantics_and_limits(emulator_factory: Callable[..., SlackEmulator]) -> None:
    clock = FakeClock()
    ws = emulator_factory(Workspace(clock=clock)).workspace
    url = ws.new_response_url(SANDBOX_CHANNEL, OPERATOR, command="/ragbackup list")
    hook = WebhookClient(url)
    assert hook.send_dict({"text": "just you"}).body == "ok"
    clock.now += 1
    assert hook.send_dict({"text": "for all", "response_type": "in_channel"}).status_code == 200
    clock.now += 1
    assert hook.send_dict({"text": "replaced", "replace_original": True}).body == "ok"
    shown = [(m.user, m.text, m.ephemeral_to) for m in ws.messages(SANDBOX_CHANNEL)]
    assert shown == [
        ("U0RAGBOT001", "just you", OPERATOR),
        (OPERATOR, "/ragbackup list", None),  # an in_channel answer shows the command too
        ("U0RAGBOT001", "replaced", None),
    ]
    assert hook.send_dict({"delete_original": True}).status_code == 200
    assert [m.text for m in ws.messages(SANDBOX_CHANNEL)] == ["just you", "/ragbackup list"]
    clock.now += 1
    parent = ws.messages(SANDBOX_CHANNEL)[-1].ts
    assert hook.send_dict({"text": "in the thread", "thread_ts": parent}).body == "ok"
    reply = ws.ephemerals(SANDBOX_CHANNEL, "operator")[-1]
    assert (reply.text, reply.thread_ts) == ("in the thread", parent)
    gone = hook.send_dict({"text": "sixth"})
    assert (gone.status_code, gone.body) == (404, "expired_url")

    other = WebhookClient(ws.new_response_url(SANDBOX_CHANNEL, OPERATOR))
    assert (other.send_dict({"text": ""}).status_code, other.send(text="").body) == (400, "no_text")
    too_big = other.send_dict({"text": "t", "blocks": [section("x" * 3001)]})
    assert (too_big.status_code, too_big.body) == (400, "invalid_blocks")
    clock.now += 30 * 60 + 1
    assert other.send_dict({"text": "too late"}).body == "expired_url"


# ----- Bolt in HTTP mode and in Socket Mode --------------------------------------------------


class Bot:
    """A Bolt app with a /ragbackup command and approve/reject buttons, recording calls."""

    def __init__(self, emulator: SlackEmulator) -> None:
        ws = emulator.workspace
        self.commands: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.app = App(
            client=WebClient(token=ws.bot_token, base_url=emulator.api_url),
            signing_secret=ws.signing_secret,
        )

        @self.app.command("/ragbackup")
        def ragbackup(ack: Any, command: dict[str, Any], respond: Any) -> None:
            self.commands.append(command)
            if command["text"] == "help":
                ack("Usage: /ragbackup now")
            elif command["text"] == "now":
                ack()
                respond(text=f"<@{command['user_id']}> started a backup", response_type="in_channel")
            else:
                ack(text="Unknown subcommand", response_type="ephemeral")

        @self.app.action("approve")
        def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
            ack()
            self.actions.append(body)
            respond(replace_original=True, text=f"Approved by <@{body['user']['id']}>")

        @self.app.action("reject")
        def reject(ack: Any, body: dict[str, Any], client: WebClient) -> None:
            ack()
            self.actions.append(body)
            client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text="Rejected", blocks=[])


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_bot(emulator: SlackEmulator) -> Iterator[tuple[Bot, str]]:
    bot = Bot(emulator)
    server = make_server(
        "127.0.0.1", 0, SlackRequestHandler(bot.app),
        server_class=_ThreadingWSGIServer, handler_class=_QuietHandler,
    )  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield bot, f"http://127.0.0.1:{server.server_port}/slack/events"
    server.shutdown()
    server.server_close()


def texts(ws: Workspace) -> list[tuple[str, str | None]]:
    return [(m.text, m.ephemeral_to) for m in ws.messages(SANDBOX_CHANNEL)]


def test_http_mode_signed_slash_command_reaches_bolt_and_respond_lands(
    emulator: SlackEmulator, http_bot: tuple[Bot, str]
) -> None:
    bot, url = http_bot
    ws = emulator.workspace
    sender = emulator.sender(HttpTransport(url))
    done = sender.command("operator", "/ragbackup now")
    assert done.acked and done.status == 200 and done.seconds < 3
    (cmd,) = bot.commands
    assert cmd["user_id"] == OPERATOR and cmd["channel_id"] == SANDBOX_CHANNEL and cmd["text"] == "now"
    assert cmd["response_url"].startswith(f"{emulator.url}/response/") and cmd["trigger_id"]
    ws.wait_until(lambda w: len(w.messages(SANDBOX_CHANNEL)) == 2)
    assert texts(ws) == [("/ragbackup now", None), (f"<@{OPERATOR}> started a backup", None)]

    assert sender.command("viewer", "/ragbackup help").acked  # plain-text ack: ephemeral
    assert sender.command("viewer", "/ragbackup what").acked  # JSON ack
    viewer = SANDBOX_USERS["viewer"]
    assert texts(ws)[2:] == [("Usage: /ragbackup now", viewer), ("Unknown subcommand", viewer)]

    unknown = sender.command("operator", "/nothing")
    assert unknown.status == 404 and unknown.error == "dispatch_failed"
    assert texts(ws)[-1] == ('/nothing failed with the error "dispatch_failed"', OPERATOR)


@pytest.mark.parametrize("problem", ["wrong secret", "stale timestamp"])
def test_http_mode_bad_signature_gets_401_and_does_nothing(
    emulator: SlackEmulator, http_bot: tuple[Bot, str], problem: str
) -> None:
    bot, url = http_bot
    if problem == "wrong secret":
        sender = Sender(emulator.workspace, HttpTransport(url, signing_secret="not-the-secret"))
    else:
        sender = Sender(emulator.workspace, HttpTransport(url), clock=lambda: time.time() - 301)
    result = sender.command("operator", "/ragbackup now")
    assert result.status == 401 and json.loads(result.body) == {"error": "invalid request"}
    assert bot.commands == []
    assert texts(emulator.workspace) == [('/ragbackup failed with the error "dispatch_failed"', OPERATOR)]


def test_http_mode_button_presses(client: WebClient, emulator: SlackEmulator, http_bot: tuple[Bot, str]) -> None:
    bot, url = http_bot
    ws = emulator.workspace
    sender = emulator.sender(HttpTransport(url))
    ts = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="Restore?", blocks=approval_blocks())["ts"]

    denied = sender.click("approver", ts, "Approve", confirm=False)
    assert not denied.sent and bot.actions == []
    done = sender.click("approver", ts, "Approve")
    assert done.acked
    (body,) = bot.actions
    (action,) = body["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == ("approve", "decide", "r-1")
    assert body["user"]["id"] == APPROVER and body["container"]["message_ts"] == ts
    assert body["message"]["blocks"][3]["elements"][0]["action_id"] == "approve"
    ws.wait_until(lambda w: (m := w.message(SANDBOX_CHANNEL, ts)) is not None and m.text.startswith("Approved"))
    msg = ws.message(SANDBOX_CHANNEL, ts)
    assert msg is not None and msg.text == f"Approved by <@{APPROVER}>" and msg.blocks is None

    second = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="Restore?", blocks=approval_blocks())["ts"]
    assert sender.click("approver", "latest", "reject").acked
    ws.wait_until(lambda w: w.calls("chat.update"))
    rejected = ws.message(SANDBOX_CHANNEL, second)
    assert rejected is not None and rejected.text == "Rejected" and rejected.edited_ts


def test_button_on_an_ephemeral_message(client: WebClient, emulator: SlackEmulator, http_bot: tuple[Bot, str]) -> None:
    bot, url = http_bot
    ws = emulator.workspace
    sender = emulator.sender(HttpTransport(url))
    ts = client.chat_postEphemeral(
        channel=SANDBOX_CHANNEL, user=APPROVER, text="Restore?", blocks=approval_blocks()
    )["message_ts"]
    with pytest.raises(KeyError):
        sender.click("operator", ts, "Approve")  # not visible to anyone else
    assert sender.click("approver", ts, "Approve").acked
    (body,) = bot.actions
    assert "message" not in body and body["container"]["is_ephemeral"] is True
    ws.wait_until(lambda w: w.ephemerals(SANDBOX_CHANNEL, APPROVER)[0].text.startswith("Approved"))
    (msg,) = ws.messages(SANDBOX_CHANNEL)
    assert msg.ephemeral_to == APPROVER and msg.edited_ts is None and len(msg.history) == 1


def test_signature_is_what_slack_sdk_verifies() -> None:
    body = b"token=x&command=%2Fragbackup&text=now"
    now = int(time.time())
    verifier = SignatureVerifier("sec")
    assert verifier.is_valid(body, str(now), sign("sec", now, body))
    assert not verifier.is_valid(body + b"x", str(now), sign("sec", now, body))


@pytest.mark.slow
def test_socket_mode_handler_connects_receives_and_reconnects(
    client: WebClient, emulator: SlackEmulator
) -> None:
    bot = Bot(emulator)
    ws = emulator.workspace
    server = emulator.socket_mode
    handler = SocketModeHandler(bot.app, ws.app_token)
    handler.connect()
    try:
        server.wait_connections(1)
        assert ws.calls("apps.connections.open")[0].token_kind == "app"
        wait_for(lambda: server.pongs_sent >= 1, 5, "the client's first ping answered")
        sender = emulator.sender(SocketTransport(server))

        help_ = sender.command("operator", "/ragbackup help")
        assert help_.acked and help_.ack == {"text": "Usage: /ragbackup now"}
        assert sender.command("operator", "/ragbackup now").acked
        ws.wait_until(lambda w: any(m.text.endswith("started a backup") for m in w.messages(SANDBOX_CHANNEL)))
        assert [c["text"] for c in bot.commands] == ["help", "now"]
        assert texts(ws)[0] == ("Usage: /ragbackup now", OPERATOR)

        ts = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="Restore?", blocks=approval_blocks())["ts"]
        pressed = sender.click("approver", ts, "approve")
        assert pressed.acked and pressed.ack is None
        ws.wait_until(lambda w: (m := w.message(SANDBOX_CHANNEL, ts)) is not None and m.text.startswith("Approved"))

        assert server.disconnect("refresh_requested") == 1
        # slack_sdk switches to the new connection once it has closed the old one, which
        # waits for the old socket's 3 s receive timeout: wait for that, as Slack would.
        wait_for(lambda: server.connections_made == 2 and server.open_connections() == [2], 10, "a reconnect")
        assert len(ws.calls("apps.connections.open")) == 2
        assert sender.command("approver", "/ragbackup help").acked
        assert len(bot.commands) == 3
    finally:
        close_all([handler])


def close_all(handlers: list[SocketModeHandler]) -> None:
    """Close handlers in parallel: each close waits out its socket's 3 s receive timeout."""
    threads = [threading.Thread(target=h.close) for h in handlers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def test_socket_mode_envelopes_go_round_robin(emulator: SlackEmulator) -> None:
    bot = Bot(emulator)
    ws, server = emulator.workspace, emulator.socket_mode
    handlers = [SocketModeHandler(bot.app, ws.app_token) for _ in range(2)]
    try:
        for h in handlers:
            h.connect()
        server.wait_connections(2)
        user = ws.directory.require_user("operator")
        acks = []
        for _ in range(4):
            url = ws.new_response_url(SANDBOX_CHANNEL, user.id)
            payload = command_payload(ws, user, "/ragbackup help", SANDBOX_CHANNEL, url, "t.1.x")
            acks.append(server.deliver("slash_commands", payload))
        assert [a.payload for a in acks] == [{"text": "Usage: /ragbackup now"}] * 4
        first, second = acks[0].connection, acks[1].connection
        assert first != second and [a.connection for a in acks] == [first, second, first, second]
        envelope_ids = [a["envelope_id"] for a in server.acks]
        assert envelope_ids == [a.envelope_id for a in acks]
    finally:
        close_all(handlers)


def test_socket_mode_without_a_client_or_ack(emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    sender = emulator.sender(SocketTransport(emulator.socket_mode, timeout=0.2))
    nobody = sender.command("operator", "/ragbackup now")
    assert (nobody.status, nobody.error) == (0, "dispatch_failed")

    url = emulator.socket_mode.issue_url()
    port = int(url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET /link/?ticket=forged HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 401")
    assert texts(ws) == [('/ragbackup failed with the error "dispatch_failed"', OPERATOR)]


# ----- rendering and the sandbox control endpoints -------------------------------------------


def test_render_channel_as_text(emulator_factory: Callable[..., SlackEmulator]) -> None:
    clock = FakeClock(1_750_000_000.0)  # 15:06:40 UTC
    emu = emulator_factory(Workspace(clock=clock))
    ws = emu.workspace
    client = WebClient(token=ws.bot_token, base_url=emu.api_url)
    ws.post(SANDBOX_CHANNEL, "/ragrestore latest", user=OPERATOR)
    clock.now += 1
    ts = client.chat_postMessage(channel=SANDBOX_CHANNEL, text="Restore?", blocks=approval_blocks())["ts"]
    clock.now += 1
    client.chat_postMessage(channel=SANDBOX_CHANNEL, text="Restore started", thread_ts=ts)
    clock.now += 1
    client.chat_postEphemeral(channel=SANDBOX_CHANNEL, user="viewer", text="You may not approve")
    clock.now += 1
    client.chat_update(channel=SANDBOX_CHANNEL, ts=ts, text="Approved by arjun",
                       blocks=[section("*Approved* by arjun"), {"type": "divider"}])  # fmt: skip
    assert render_channel(ws, SANDBOX_CHANNEL, tz=UTC) == [
        "15:06:40  olivia.operator  /ragrestore latest",
        "15:06:41  ragbot  *Approved* by arjun  (edited)",
        "                  ---",
        "  ↳ 15:06:42  ragbot  Restore started",
        "15:06:43  ragbot  You may not approve  (only visible to vera.viewer)",
    ]
    assert len(render_channel(ws, SANDBOX_CHANNEL, viewer="operator", tz=UTC)) == 4
    ws.update(SANDBOX_CHANNEL, ts, "Restore?", approval_blocks())
    assert render_channel(ws, SANDBOX_CHANNEL, tz=UTC)[1:7] == [
        "15:06:41  ragbot  # Restore requested  (edited)",
        "                  *olivia* wants to restore `backup-1`",
        "                    *Backup*",
        "                    backup-1",
        "                    *Expires*",
        "                    in 15 min",
    ]
    assert render_channel(ws, SANDBOX_CHANNEL, tz=UTC)[7:9] == [
        "                  > request r-1",
        "                  [Approve] [Reject]",
    ]


def test_control_endpoints_drive_the_workspace(emulator: SlackEmulator, http_bot: tuple[Bot, str]) -> None:
    _, url = http_bot
    emulator.sender(HttpTransport(url))

    def post(path: str, body: dict[str, Any]) -> Any:
        status, _, data = raw(f"{emulator.url}/sandbox/{path}", json.dumps(body).encode())
        assert status == 200, data
        return json.loads(data)

    before = json.loads(raw(f"{emulator.url}/sandbox/channel")[2])
    assert before["lines"] == []
    assert post("command", {"as": "operator", "text": "/ragbackup help"})["acked"] is True
    after = json.loads(raw(f"{emulator.url}/sandbox/channel?since={before['version']}&wait=5")[2])
    assert after["version"] > before["version"]
    assert after["lines"][0].endswith("Usage: /ragbackup now  (only visible to olivia.operator)")
    post("ratelimit", {"method": "auth.test", "next_n": 1})
    with pytest.raises(SlackApiError):
        WebClient(token=emulator.workspace.bot_token, base_url=emulator.api_url).auth_test()
    calls = json.loads(raw(f"{emulator.url}/sandbox/calls?method=auth.test")[2])["calls"]
    assert [c["status"] for c in calls] == [200, 429]  # Bolt's own auth.test, then ours
    messages = json.loads(raw(f"{emulator.url}/sandbox/messages")[2])["messages"]
    assert (messages[0]["ephemeral_to"] == OPERATOR and messages[0]["via"] == "command") or messages


def test_messages_are_copies(emulator: SlackEmulator) -> None:
    ws = emulator.workspace
    msg = ws.post(SANDBOX_CHANNEL, "x")
    assert isinstance(msg, Message)
    msg.text = "changed"
    assert ws.messages(SANDBOX_CHANNEL)[0].text == "x"
