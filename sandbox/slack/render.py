"""The sandbox channel as plain text, the way a person would read it in Slack.

`ragbot sandbox channel [--follow]` prints this, and tests use it to read what a user
would see without walking Block Kit JSON. One message per entry: time, author's display
name, then the text, or for Block Kit messages a flattened rendering (headers as
`# Title`, section text and fields, context lines as `> …`, buttons as `[Approve]`).
An edited message shows its latest version marked `(edited)`; thread replies are
indented under their parent; ephemeral messages are marked `(only visible to NAME)`
and, when a viewer is given, only that viewer's are shown, as Slack would.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, tzinfo
from typing import Any

from .workspace import Message, Workspace

INDENT = "    "
REPLY = "  ↳ "


def render_channel(
    ws: Workspace, channel: str, *, viewer: str | None = None, tz: tzinfo | None = None
) -> list[str]:
    """The channel as text lines, oldest first (viewer: a user id or handle, or None: all)."""
    viewer_id = None
    if viewer is not None:
        who = ws.user(viewer)
        viewer_id = who.id if who else viewer
    messages = [
        m for m in ws.messages(channel) if m.ephemeral_to is None or viewer_id in (None, m.ephemeral_to)
    ]
    replies: dict[str, list[Message]] = {}
    for m in messages:
        if m.is_reply and m.thread_ts:
            replies.setdefault(m.thread_ts, []).append(m)
    lines: list[str] = []
    for m in messages:
        if m.is_reply and not m.reply_broadcast:
            continue
        lines += render_message(ws, m, tz=tz)
        if not m.is_reply:
            for r in replies.get(m.ts, []):
                first, *rest = render_message(ws, r, tz=tz)
                lines += [REPLY + first, *(INDENT + line if line else "" for line in rest)]
    return lines


def render_message(ws: Workspace, m: Message, *, tz: tzinfo | None = None) -> list[str]:
    """One message: a head line `HH:MM:SS  name  first line  (marks)`, further lines aligned."""
    stamp = datetime.fromtimestamp(float(m.ts), tz).strftime("%H:%M:%S")
    head = f"{stamp}  {ws.display_name(m.user)}  "
    body = blocks_to_lines(m.blocks) if m.blocks else (m.text.splitlines() or [""])
    marks = []
    if m.reply_broadcast:
        marks.append("(thread reply, also sent to the channel)")
    if m.edited_ts:
        marks.append("(edited)")
    if m.ephemeral_to is not None:
        marks.append(f"(only visible to {ws.display_name(m.ephemeral_to)})")
    first = head + body[0] + ("  " + " ".join(marks) if marks else "")
    pad = " " * len(head)
    return [first.rstrip(), *(pad + line if line else "" for line in body[1:])]


def blocks_to_lines(blocks: list[dict[str, Any]]) -> list[str]:
    """Block Kit flattened to text lines."""
    lines: list[str] = []
    for block in blocks:
        lines += _block(block)
    return lines or [""]


def _block(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [f"# {_text(block.get('text'))}"]
    if kind == "divider":
        return ["---"]
    if kind == "section":
        lines = _text(block.get("text")).splitlines() if block.get("text") else []
        for f in block.get("fields") or []:
            lines += [f"  {line}" for line in _text(f).splitlines() or [""]]
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            widget = _element(accessory)
            lines = [*lines[:-1], f"{lines[-1]}  {widget}"] if lines else [widget]
        return lines
    if kind == "context":
        parts = [_element(e) for e in block.get("elements") or []]
        return ["> " + " · ".join(p for p in parts if p)]
    if kind == "actions":
        return [" ".join(_element(e) for e in block.get("elements") or [])]
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind in ("rich_text", "markdown"):
        return (_rich(block) if kind == "rich_text" else str(block.get("text", ""))).splitlines()
    return [f"[{kind}]"]


def _element(e: dict[str, Any]) -> str:
    kind = e.get("type")
    if kind in ("plain_text", "mrkdwn"):
        return _text(e)
    if kind == "image":
        return f"[image: {e.get('alt_text', '')}]"
    if kind == "button":
        return f"[{_text(e.get('text'))}]"
    placeholder = _text(e.get("placeholder")) if e.get("placeholder") else kind
    return f"[{placeholder} ▾]"


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def _rich(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("type") == "text":
            return str(value.get("text", ""))
        if value.get("type") in ("user", "channel", "usergroup"):
            return "@" + str(value.get("user_id") or value.get("channel_id") or value.get("usergroup_id"))
        if value.get("type") == "link":
            return str(value.get("text") or value.get("url", ""))
        return "".join(_rich(v) for v in value.get("elements") or [])
    if isinstance(value, list):
        return "".join(_rich(v) for v in value)
    return ""


def new_lines(before: list[str], after: list[str]) -> list[str]:
    """Lines of `after` not already in `before` (what `--follow` prints next)."""
    seen = Counter(before)
    out = []
    for line in after:
        if seen[line] > 0:
            seen[line] -= 1
        else:
            out.append(line)
    return out
