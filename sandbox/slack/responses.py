"""What Slack does with a message sent back to a user: response_url POSTs and ack bodies.

Bolt's `respond()` POSTs JSON to the request's `response_url` (up to 5 times within 30
minutes); the ack of a slash command may carry a message too (plain text or JSON). Both
are applied the same way here:

- `delete_original: true` deletes the source message (the one the button was on, or the
  last message posted through this URL);
- `replace_original: true` replaces it (an ephemeral source stays ephemeral);
- otherwise a new message is posted: `response_type: in_channel` into the channel (for a
  slash command the user's command line appears first, as Slack shows it), anything else
  as an ephemeral message only the requesting user sees; `thread_ts` puts it in a thread.

The response_url answers like Slack's hooks: 200 `ok`, or a plain-text error
(`invalid_payload`, `no_text`, `invalid_blocks` with 400; `expired_url` with 404).
"""

from __future__ import annotations

import json
from typing import Any

from .methods import flag, message_content
from .workspace import Message, ResponseUrl, SlackError, Workspace


def respond(ws: Workspace, token: str, raw: bytes) -> tuple[int, str]:
    """Answer a POST to `/response/<token>`: (HTTP status, plain-text body)."""
    try:
        target = ws.use_response_url(token)
    except SlackError as exc:
        return 404, exc.code
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        return 400, "invalid_payload"
    if not isinstance(body, dict):
        return 400, "invalid_payload"
    try:
        apply_response(ws, target, body)
    except SlackError as exc:
        return (404 if exc.code in ("channel_not_found", "message_not_found") else 400), exc.code
    return 200, "ok"


def apply_response(
    ws: Workspace, target: ResponseUrl, body: dict[str, Any], *, via: str = "response_url"
) -> Message | None:
    """Apply one response message to the workspace; returns the message it left, if any."""
    if flag(body.get("delete_original")):
        source = _source(target)
        if source is not None:
            ts, ephemeral = source
            ws.delete(target.channel, ts, ephemeral_to=target.user if ephemeral else None)
        return None
    text, blocks = message_content(body)
    if flag(body.get("replace_original")):
        source = _source(target)
        if source is not None:
            ts, ephemeral = source
            return ws.update(
                target.channel, ts, text, blocks, ephemeral_to=target.user if ephemeral else None
            )
    thread_ts = body.get("thread_ts") or None
    if body.get("response_type") == "in_channel":
        if target.command and not target.echoed:
            target.echoed = True
            ws.post(target.channel, target.command, user=target.user, via="command")
        msg = ws.post(target.channel, text, blocks, thread_ts=thread_ts, via=via)
        target.posted.append((msg.ts, False))
    else:
        msg = ws.post(
            target.channel, text, blocks, thread_ts=thread_ts, ephemeral_to=target.user, via=via
        )
        target.posted.append((msg.ts, True))
    return msg


def ack_message(body: str, content_type: str) -> dict[str, Any] | None:
    """The message in a slash command's HTTP ack body, as Slack reads it (None: none)."""
    if not body.strip():
        return None
    if content_type.startswith("application/json") or body.lstrip().startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {"text": body}
        return parsed if isinstance(parsed, dict) and parsed else None
    return {"text": body}


def _source(target: ResponseUrl) -> tuple[str, bool] | None:
    if target.source_ts is not None:
        return target.source_ts, target.source_ephemeral
    return target.posted[-1] if target.posted else None
