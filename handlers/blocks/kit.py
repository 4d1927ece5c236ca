"""Block Kit primitives that cannot break Slack's limits, and the formatting all messages share.

Every builder in this package goes through these helpers, so escaping and truncation are
decided in one place: `esc` for anything a person or Velero wrote (notes, reasons, error
lists; it also defuses `<!channel>` in a note), `clip` and `bullets` to stay within the
limits of `handlers.limits` with an honest "… and N more", and `message` as the last
guard (fallback text present, at most 50 blocks). Times are shown with Slack's `<!date>`
token so each reader sees their own time zone, with UTC as the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import limits

Block = dict[str, Any]
Message = dict[str, Any]
"""`{"text": fallback, "blocks": [...]}`, ready for chat.postMessage/chat.update/respond."""

ELLIPSIS = "…"
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def esc(text: object) -> str:
    """Text made safe for mrkdwn: `&`, `<` and `>` escaped (Slack's three entities)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with "…", never inside an entity or a `<…>` token."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    amp, lt = cut.rfind("&"), cut.rfind("<")
    if amp > cut.rfind(";") and amp > len(cut) - 8:
        cut = cut[:amp]
    if lt > cut.rfind(">"):
        cut = cut[:lt]
    return cut + ELLIPSIS


def one_line(text: str, limit: int) -> str:
    """A single escaped line: whitespace collapsed, at most `limit` characters (raw)."""
    flat = " ".join(str(text).split())
    return esc(flat if len(flat) <= limit else flat[: limit - 1] + ELLIPSIS)


def quote(text: str, limit: int = 1500) -> str:
    """User text as an escaped mrkdwn block quote."""
    raw = str(text).strip()
    if len(raw) > limit:
        raw = raw[: limit - 1] + ELLIPSIS
    return "\n".join("> " + esc(line) for line in raw.splitlines() or [""])


def bullets(
    items: Sequence[str], *, max_items: int = 20, max_chars: int = 2500, item_chars: int = 300,
    bullet: str = "• ", escape: bool = True,
) -> str:  # fmt: skip
    """A bullet list that fits `max_chars`, ending "… and N more" when items were left out."""
    lines: list[str] = []
    used = 0
    for i, item in enumerate(items):
        raw = " ".join(str(item).split())
        raw = raw if len(raw) <= item_chars else raw[: item_chars - 1] + ELLIPSIS
        line = bullet + (esc(raw) if escape else raw)
        rest = len(items) - i
        reserve = len(f"\n{ELLIPSIS} and {len(items)} more") if rest > 1 else 0
        if i >= max_items or used + len(line) + 1 + reserve > max_chars:
            lines.append(f"{ELLIPSIS} and {rest} more")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def user(ref: str) -> str:
    """A Slack user id as a mention; anything else (a CLI user, a service) escaped."""
    ref = str(ref or "").strip()
    if _SLACK_USER.match(ref):
        return f"<@{ref}>"
    return esc(ref[:80]) if ref else "someone"


def code(text: str, limit: int = 200) -> str:
    """Inline code: a name or id. Backticks are dropped (they would end the span)."""
    flat = " ".join(str(text).replace("`", "'").split()) or "?"
    return f"`{esc(clip(flat, limit))}`"


def when(moment: datetime | None, *, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time as Slack's `<!date>` token, shown in the reader's zone; UTC fallback."""
    if moment is None:
        return "unknown"
    moment = moment.astimezone(UTC)
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{fmt}|{fallback}>"


def utc(moment: datetime | None) -> str:
    """A time for fallback text (no markup)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def duration(seconds: float | timedelta | None) -> str:
    """`45s`, `4m 12s`, `1h 03m`, `2d 4h`; "unknown" for None."""
    if seconds is None:
        return "unknown"
    total = int(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)
    total = max(0, total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "at an unknown time"
    delta = (now - moment).total_seconds()
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def bar(done: int, total: int, width: int = 12) -> str:
    """`▓▓▓▓░░░░ 45%`, or "" when nothing is counted yet."""
    if total <= 0:
        return ""
    share = min(1.0, max(0.0, done / total))
    full = round(share * width)
    return "▓" * full + "░" * (width - full) + f" {int(share * 100)}%"


# ------------------------------------------------------------------------------ blocks


def mrkdwn(text: str, limit: int = limits.MAX_SECTION_TEXT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit) if text.strip() else "-"}


def plain(text: str, limit: int) -> dict[str, Any]:
    flat = " ".join(str(text).split()) or "-"
    return {"type": "plain_text", "text": clip(flat, limit), "emoji": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, limits.MAX_HEADER)}


def section(text: str = "", *, fields: Iterable[str] = (), block_id: str | None = None) -> Block:
    """A section; with only `fields`, no text (Slack refuses blank text)."""
    shown = [f for f in fields if f]
    block: Block = {"type": "section"}
    if text.strip() or not shown:
        block["text"] = mrkdwn(text)
    if shown:
        block["fields"] = [mrkdwn(f, limits.MAX_FIELD_TEXT) for f in shown[: limits.MAX_FIELDS]]
    if block_id:
        block["block_id"] = block_id[: limits.MAX_ID]
    return block


def field(label: str, value: str) -> str:
    """A section field: bold label, value below."""
    return f"*{label}*\n{value}"


def context(*texts: str) -> Block:
    shown = [t for t in texts if t.strip()][: limits.MAX_CONTEXT_ELEMENTS] or ["-"]
    return {"type": "context", "elements": [mrkdwn(t, 1000) for t in shown]}


def divider() -> Block:
    return {"type": "divider"}


def confirm_dialog(title: str, text: str, yes: str, no: str, *, style: str = "primary") -> Block:
    """Slack's confirmation dialog; every text is plain (raw, not escaped) and clipped."""
    return {
        "title": plain(title, limits.MAX_CONFIRM_TITLE),
        "text": plain(text, limits.MAX_CONFIRM_TEXT),
        "confirm": plain(yes, limits.MAX_CONFIRM_BUTTON),
        "deny": plain(no, limits.MAX_CONFIRM_BUTTON),
        "style": style,
    }


def button(
    text: str, action_id: str, value: str, *, style: str | None = None,
    confirm: Block | None = None,
) -> Block:  # fmt: skip
    el: Block = {
        "type": "button", "text": plain(text, limits.MAX_BUTTON_TEXT),
        "action_id": action_id[: limits.MAX_ID], "value": value[: limits.MAX_BUTTON_VALUE],
    }  # fmt: skip
    if style:
        el["style"] = style
    if confirm:
        el["confirm"] = confirm
    return el


def actions(block_id: str, *elements: Block) -> Block:
    return {"type": "actions", "block_id": block_id[: limits.MAX_ID],
            "elements": list(elements)[: limits.MAX_ACTIONS_ELEMENTS]}  # fmt: skip


def paragraphs(lines: Sequence[str], *, limit: int = limits.MAX_SECTION_TEXT - 100) -> list[Block]:
    """Lines packed into as few sections as fit (a long list without 50 blocks)."""
    blocks: list[Block] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, limit)
        if current and size + len(line) + 1 > limit:
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        blocks.append(section("\n".join(current)))
    return blocks


def message(fallback: str, blocks: Sequence[Block]) -> Message:
    """The message: fallback text bounded and never empty, at most 50 blocks."""
    text = clip(" ".join(fallback.split()) or "ragbot", 3000)
    out = list(blocks)
    if len(out) > limits.MAX_BLOCKS:
        dropped = len(out) - (limits.MAX_BLOCKS - 1)
        out = [*out[: limits.MAX_BLOCKS - 1], context(f"{ELLIPSIS} and {dropped} more blocks")]
    return {"text": text, "blocks": out}


__all__ = [
    "Block",
    "Message",
    "actions",
    "ago",
    "bar",
    "bullets",
    "button",
    "clip",
    "code",
    "confirm_dialog",
    "context",
    "count",
    "divider",
    "duration",
    "esc",
    "field",
    "header",
    "message",
    "mrkdwn",
    "one_line",
    "paragraphs",
    "plain",
    "quote",
    "section",
    "user",
    "utc",
    "when",
]
