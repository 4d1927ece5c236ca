"""Slack's Block Kit limits for messages, and a checker that lists every breach.

Slack rejects a whole message (`invalid_blocks`, `msg_too_long`) when one text is a
character too long, and an announcement that is rejected is an announcement lost. The
builders in `handlers.blocks` truncate what they cannot bound (Velero's error lists,
notes, reasons); `check_message` is how the tests prove they did, on golden inputs and
on whatever hypothesis throws at them. Numbers: reference/slack-wire-protocol.md §3, §5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_BLOCKS = 50
MAX_FALLBACK = 40_000
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255  # action_id and block_id
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30

_TEXT_TYPES = ("plain_text", "mrkdwn")


def _text(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, Mapping):
        return [f"{where}: not a text object"]
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else _TEXT_TYPES
    problems = [] if kind in allowed else [f"{where}: type {kind!r}, expected {' or '.join(allowed)}"]
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return [*problems, f"{where}: empty text"]
    if len(text) > limit:
        problems.append(f"{where}: {len(text)} characters, at most {limit}")
    return problems


def _id(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str) or not value:
        return [f"{where}: empty"]
    return [f"{where}: {len(value)} characters, at most {MAX_ID}"] if len(value) > MAX_ID else []


def _confirm(obj: Any, where: str) -> list[str]:
    if not isinstance(obj, Mapping):
        return [f"{where}: not an object"]
    problems = _text(obj.get("title"), f"{where}.title", MAX_CONFIRM_TITLE, plain_only=True)
    problems += _text(obj.get("text"), f"{where}.text", MAX_CONFIRM_TEXT)
    problems += _text(obj.get("confirm"), f"{where}.confirm", MAX_CONFIRM_BUTTON, plain_only=True)
    problems += _text(obj.get("deny"), f"{where}.deny", MAX_CONFIRM_BUTTON, plain_only=True)
    if obj.get("style") not in (None, "primary", "danger"):
        problems.append(f"{where}.style: {obj.get('style')!r}")
    return problems


def _element(el: Any, where: str, action_ids: set[str]) -> list[str]:
    if not isinstance(el, Mapping):
        return [f"{where}: not an object"]
    if el.get("type") != "button":
        return [f"{where}: element type {el.get('type')!r} is not checked here"]
    problems = _text(el.get("text"), f"{where}.text", MAX_BUTTON_TEXT, plain_only=True)
    problems += _id(el.get("action_id"), f"{where}.action_id")
    aid = el.get("action_id")
    if isinstance(aid, str):
        if aid in action_ids:
            problems.append(f"{where}.action_id: {aid!r} is used twice in the message")
        action_ids.add(aid)
    value = el.get("value")
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= MAX_BUTTON_VALUE):
        problems.append(f"{where}.value: empty, longer than {MAX_BUTTON_VALUE} or not a string")
    url = el.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > MAX_URL):
        problems.append(f"{where}.url: longer than {MAX_URL} or not a string")
    if el.get("style") not in (None, "primary", "danger"):
        problems.append(f"{where}.style: {el.get('style')!r}")
    if "confirm" in el:
        problems += _confirm(el["confirm"], f"{where}.confirm")
    return problems


def _block(block: Any, where: str, action_ids: set[str]) -> list[str]:
    if not isinstance(block, Mapping):
        return [f"{where}: not an object"]
    kind = block.get("type")
    problems = _id(block.get("block_id"), f"{where}.block_id")
    if kind == "section":
        if "text" not in block and not block.get("fields"):
            problems.append(f"{where}: a section needs text or fields")
        if "text" in block:
            problems += _text(block["text"], f"{where}.text", MAX_SECTION_TEXT)
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, Sequence) or len(fields) > MAX_FIELDS:
                problems.append(f"{where}.fields: more than {MAX_FIELDS} or not a list")
            else:
                for i, f in enumerate(fields):
                    problems += _text(f, f"{where}.fields[{i}]", MAX_FIELD_TEXT)
        if "accessory" in block:
            problems += _element(block["accessory"], f"{where}.accessory", action_ids)
    elif kind == "header":
        problems += _text(block.get("text"), f"{where}.text", MAX_HEADER, plain_only=True)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, Sequence) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            problems.append(f"{where}.elements: 1 to {MAX_CONTEXT_ELEMENTS} needed")
        else:
            for i, el in enumerate(elements):
                problems += _text(el, f"{where}.elements[{i}]", MAX_CONTEXT_TEXT)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, Sequence) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
            problems.append(f"{where}.elements: 1 to {MAX_ACTIONS_ELEMENTS} needed")
        else:
            for i, el in enumerate(elements):
                problems += _element(el, f"{where}.elements[{i}]", action_ids)
    elif kind != "divider":
        problems.append(f"{where}: block type {kind!r} is not one ragbot uses")
    return problems


def check_message(msg: Mapping[str, Any]) -> list[str]:
    """Every way `msg` ({"text", "blocks"}) breaks Slack's limits; [] when it is fine."""
    problems: list[str] = []
    text = msg.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text: the fallback text is missing")
    elif len(text) > MAX_FALLBACK:
        problems.append(f"text: {len(text)} characters, at most {MAX_FALLBACK}")
    blocks = msg.get("blocks", [])
    if not isinstance(blocks, Sequence):
        return [*problems, "blocks: not a list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"blocks: {len(blocks)} blocks, at most {MAX_BLOCKS}")
    action_ids: set[str] = set()
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        problems += _block(block, f"blocks[{i}]", action_ids)
        bid = block.get("block_id") if isinstance(block, Mapping) else None
        if isinstance(bid, str):
            if bid in block_ids:
                problems.append(f"blocks[{i}].block_id: {bid!r} is used twice")
            block_ids.add(bid)
    return problems


__all__ = [name for name in globals() if name.startswith("MAX_")] + ["check_message"]
