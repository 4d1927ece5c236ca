"""The Web API methods the bot uses, answered with Slack's shapes and `ok: false` errors.

`call()` is the whole contract of one request, independent of HTTP: authentication
(`not_authed`, `invalid_auth`, `token_revoked`, `not_allowed_token_type`), rate limiting
(HTTP 429 with an integer `Retry-After`), scopes (`missing_scope` with `needed` and
`provided`), then the method itself. Unknown arguments are ignored, as Slack ignores
them (Bolt's per-request client adds `team_id` to every call). Every call is recorded
in the workspace with its outcome, so tests can assert on what the bot asked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import blockkit
from .workspace import Call, SlackError, Workspace

MAX_TEXT = 40_000
#: Scopes a method needs (any one of them).
NEEDED: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.getPermalink": (),
    "usergroups.users.list": ("usergroups:read",),
    "users.info": ("users:read",),
    "conversations.info": ("channels:read", "groups:read"),
    "apps.connections.open": ("connections:write",),
}
APP_TOKEN_METHODS = {"apps.connections.open"}


@dataclass
class ApiResult:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Workspace, dict[str, Any]], dict[str, Any]]


def call(
    ws: Workspace,
    method: str,
    args: dict[str, Any],
    token: str | None,
    *,
    socket_url: Callable[[], str] | None = None,
) -> ApiResult:
    """Answer one Web API call and record it."""
    result = _answer(ws, method, args, token, socket_url)
    body = result.body
    result.headers.setdefault("x-slack-req-id", secrets.token_hex(16))
    ws.record(
        Call(
            method=method,
            args=dict(args),
            at=ws.clock(),
            status=result.status,
            ok=bool(body.get("ok")),
            error=body.get("error"),
            token_kind=_token_kind(ws, token),
        )
    )
    return result


def _answer(
    ws: Workspace,
    method: str,
    args: dict[str, Any],
    token: str | None,
    socket_url: Callable[[], str] | None,
) -> ApiResult:
    handler = HANDLERS.get(method)
    if handler is None:
        return ApiResult(404, {"ok": False, "error": "unknown_method", "req_method": method})
    kind = _token_kind(ws, token)
    if token is None or token == "":
        return _error("not_authed")
    if token in ws.revoked:
        return _error("token_revoked")
    if kind is None:
        return _error("invalid_auth")
    if (kind == "app") != (method in APP_TOKEN_METHODS):
        return _error("not_allowed_token_type")
    headers: dict[str, str] = {}
    if kind == "bot":
        headers["x-oauth-scopes"] = ",".join(ws.scopes)
        headers["x-accepted-oauth-scopes"] = ",".join(NEEDED[method])
    retry_after = ws.limiter.check(method)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
        return ApiResult(429, {"ok": False, "error": "ratelimited"}, headers)
    needed = NEEDED[method]
    if kind == "bot" and needed and not set(needed) & set(ws.scopes):
        body = {"ok": False, "error": "missing_scope", "needed": needed[0], "provided": ",".join(ws.scopes)}
        return ApiResult(200, body, headers)
    try:
        if method == "apps.connections.open":
            if socket_url is None:
                raise SlackError("internal_error")
            answer: dict[str, Any] = {"url": socket_url()}
        else:
            answer = handler(ws, args)
    except SlackError as exc:
        return ApiResult(200, {"ok": False, "error": exc.code, **exc.extra}, headers)
    return ApiResult(200, {"ok": True, **answer}, headers)


def _error(code: str) -> ApiResult:
    return ApiResult(200, {"ok": False, "error": code})


def _token_kind(ws: Workspace, token: str | None) -> str | None:
    if token and token == ws.bot_token:
        return "bot"
    if token and token == ws.app_token:
        return "app"
    return None


# ----- argument helpers ----------------------------------------------------------------------


def flag(value: Any) -> bool:
    """A boolean argument as JSON (true) or a form ("1", "true") sends it."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def message_content(args: dict[str, Any], *, need_content: bool = True) -> tuple[str, list[dict[str, Any]] | None]:
    """Checked `text` and `blocks` (normalized as Slack stores them)."""
    text = args.get("text")
    text = "" if text is None else str(text)
    try:
        blocks = blockkit.parse_blocks_arg(args.get("blocks"))
    except blockkit.BlocksFormatError:
        raise SlackError("invalid_blocks_format") from None
    if blocks:
        errors = blockkit.validate_blocks(blocks)
        if errors:
            body = blockkit.invalid_blocks_body(errors)
            raise SlackError("invalid_blocks", errors=body["errors"], response_metadata=body["response_metadata"])
        if blockkit.blocks_text_length(blocks) > blockkit.BLOCKS_TEXT_LIMIT:
            raise SlackError("msg_blocks_too_long")
    if need_content and not text and not blocks and not args.get("attachments"):
        raise SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return text, blockkit.normalize_blocks(blocks) if blocks else blocks


def _channel_for_posting(ws: Workspace, args: dict[str, Any]) -> str:
    ch = ws.channel(str(args.get("channel") or ""))
    if ch is None or (ch.is_private and ws.bot.user_id not in ch.members):
        raise SlackError("channel_not_found")
    if ch.is_archived:
        raise SlackError("is_archived")
    if ws.bot.user_id not in ch.members and (ch.is_private or "chat:write.public" not in ws.scopes):
        raise SlackError("not_in_channel")
    return ch.id


# ----- the methods ---------------------------------------------------------------------------


def auth_test(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": ws.team.url,
        "team": ws.team.name,
        "user": ws.bot.name,
        "team_id": ws.team.id,
        "user_id": ws.bot.user_id,
        "bot_id": ws.bot.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel_for_posting(ws, args)
    text, blocks = message_content(args)
    thread_ts = args.get("thread_ts") or None
    msg = ws.post(
        channel, text, blocks, thread_ts=thread_ts, reply_broadcast=flag(args.get("reply_broadcast"))
    )
    return {"channel": channel, "ts": msg.ts, "message": msg.to_api(ws.team.id)}


def chat_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(str(args.get("channel") or ""))
    if ch is None:
        raise SlackError("channel_not_found")
    ts = str(args.get("ts") or "")
    if ws.message(ch.id, ts) is None:
        raise SlackError("message_not_found")
    text, blocks = message_content(args)
    keep = args.get("blocks") is None  # absent: Slack keeps the blocks; [] removes them
    msg = ws.update(ch.id, ts, text, blocks, editor=ws.bot.user_id, keep_blocks=keep)
    return {"channel": ch.id, "ts": msg.ts, "text": msg.text, "message": msg.to_api(ws.team.id)}


def chat_delete(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(str(args.get("channel") or ""))
    if ch is None:
        raise SlackError("channel_not_found")
    ts = str(args.get("ts") or "")
    msg = ws.message(ch.id, ts)
    if msg is None:
        raise SlackError("message_not_found")
    if msg.user != ws.bot.user_id:
        raise SlackError("cant_delete_message")
    ws.delete(ch.id, ts)
    return {"channel": ch.id, "ts": ts}


def chat_post_ephemeral(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _channel_for_posting(ws, args)
    user = ws.user(str(args.get("user") or ""))
    if user is None:
        raise SlackError("user_not_found")
    ch = ws.channel(channel)
    if ch is None or user.id not in ch.members:
        raise SlackError("user_not_in_channel")
    text, blocks = message_content(args)
    thread_ts = args.get("thread_ts") or None
    msg = ws.post(
        channel, text, blocks, thread_ts=thread_ts, ephemeral_to=user.id, via="chat.postEphemeral"
    )
    return {"message_ts": msg.ts}


def chat_get_permalink(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = str(args.get("channel") or "")
    link = ws.permalink(channel, str(args.get("message_ts") or ""))
    ch = ws.channel(channel)
    return {"channel": ch.id if ch else channel, "permalink": link}


def usergroups_users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    group = ws.directory.usergroup(str(args.get("usergroup") or ""))
    if group is None:
        raise SlackError("no_such_subteam")
    if not group.enabled and not flag(args.get("include_disabled")):
        return {"users": []}
    return {"users": list(group.members)}


def users_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user = ws.user(str(args.get("user") or ""))
    if user is None or not user.id.startswith(("U", "W")):
        raise SlackError("user_not_found")
    profile = {
        "real_name": user.real_name,
        "real_name_normalized": user.real_name,
        "display_name": user.display_name,
        "display_name_normalized": user.display_name,
        "team": ws.team.id,
    }
    if user.is_bot:
        profile["bot_id"] = ws.bot.bot_id
    return {
        "user": {
            "id": user.id,
            "team_id": ws.team.id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "tz": user.tz,
            "is_admin": False,
            "is_owner": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "profile": profile,
        }
    }


def conversations_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    ch = ws.channel(str(args.get("channel") or ""))
    member = ch is not None and ws.bot.user_id in ch.members
    if ch is None or (ch.is_private and not member):
        raise SlackError("channel_not_found")
    info: dict[str, Any] = {
        "id": ch.id,
        "name": ch.name,
        "name_normalized": ch.name,
        "is_channel": not ch.is_private,
        "is_group": ch.is_private,
        "is_im": False,
        "is_mpim": False,
        "is_private": ch.is_private,
        "is_archived": ch.is_archived,
        "is_general": ch.name == "general",
        "is_member": member,
        "created": ch.created,
        "topic": {"value": ch.topic, "creator": "", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
    }
    if flag(args.get("include_num_members")):
        info["num_members"] = len(ch.members)
    return {"channel": info}


HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "usergroups.users.list": usergroups_users_list,
    "users.info": users_info,
    "conversations.info": conversations_info,
    "apps.connections.open": lambda ws, args: {},  # answered in _answer (needs the socket server)
}
