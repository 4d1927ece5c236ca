"""Block Kit as Slack checks it on chat.postMessage / chat.update / response_url.

Slack refuses a whole message when one block breaks a rule, answering
`{"ok": false, "error": "invalid_blocks", "errors": [...], "response_metadata":
{"messages": ["[ERROR] ..."]}}`, each complaint ending with a JSON pointer such as
`[json-pointer:/blocks/0/text/text]`. The bot's builders are meant to stay inside the
limits; this module makes the sandbox refuse what Slack would refuse, with the same
wording where it is known (`must be less than 3001 characters`, `no more than 50 items
allowed`, `` `action_id` "x" already exists``, `must be more than 0 characters`,
`missing required field: text`, `must provide an object`).

It also does what Slack does to a stored message: every block without a `block_id` and
every interactive element without an `action_id` gets a generated one, and `plain_text`
objects get `"emoji": true`, so a button press carries the ids the real Slack would send.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from typing import Any

MAX_BLOCKS = 50
LIMITS = {
    "section_text": 3000,
    "field_text": 2000,
    "fields": 10,
    "header_text": 150,
    "button_text": 75,
    "button_value": 2000,
    "button_url": 3000,
    "id": 255,
    "actions_elements": 25,
    "context_elements": 10,
    "confirm_title": 100,
    "confirm_text": 300,
    "confirm_button": 30,
}
#: Slack's undocumented total for the text inside a message's blocks (msg_blocks_too_long);
#: reports put it near 13,200 characters, so the sandbox refuses past 13,000.
BLOCKS_TEXT_LIMIT = 13_000
KNOWN_BLOCKS = {
    "section", "header", "divider", "context", "actions", "image", "rich_text",
    "markdown", "input", "file", "video", "table", "context_actions",
}  # fmt: skip
_INTERACTIVE = {"button", "static_select", "overflow", "datepicker", "checkboxes",
                "radio_buttons", "users_select", "conversations_select",
                "channels_select", "multi_static_select", "timepicker", "workflow_button"}  # fmt: skip
_ID_CHARS = string.ascii_letters + string.digits


class BlocksFormatError(ValueError):
    """`blocks` is not a JSON array of objects: Slack's `invalid_blocks_format`."""


def parse_blocks_arg(value: Any) -> list[dict[str, Any]] | None:
    """The `blocks` argument as a list: a JSON body gives a list, a form gives a string."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BlocksFormatError("blocks is not valid JSON") from None
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        raise BlocksFormatError("blocks must be an array of objects")
    return value


def validate_blocks(blocks: list[dict[str, Any]]) -> list[str]:
    """Slack's complaints about `blocks`, each with its JSON pointer; empty when valid."""
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    seen_blocks: set[str] = set()
    seen_actions: set[str] = set()
    for i, block in enumerate(blocks):
        _Checker(errors, seen_actions).block(block, f"/blocks/{i}")
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_blocks:
                errors.append(f'`block_id` "{block_id}" already exists [json-pointer:/blocks/{i}/block_id]')
            seen_blocks.add(block_id)
    return errors


def invalid_blocks_body(errors: list[str]) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_blocks",
        "errors": errors,
        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
    }


def blocks_text_length(value: Any) -> int:
    """Characters of every `text` string inside the blocks (for msg_blocks_too_long)."""
    if isinstance(value, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else blocks_text_length(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(blocks_text_length(v) for v in value)
    return 0


def normalize_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stored copy as Slack keeps it: generated block_id/action_id, plain_text emoji."""
    out = copy.deepcopy(blocks)
    for block in out:
        block.setdefault("block_id", _new_id())
        for element in _elements_of(block):
            if element.get("type") in _INTERACTIVE:
                element.setdefault("action_id", _new_id())
        _emoji(block)
    return out


def buttons(blocks: list[dict[str, Any]] | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every button of a message as (block, button), in display order."""
    return [
        (block, element)
        for block in blocks or []
        for element in _elements_of(block)
        if element.get("type") == "button"
    ]


def _elements_of(block: dict[str, Any]) -> list[dict[str, Any]]:
    found = [e for e in block.get("elements") or [] if isinstance(e, dict)]
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        found.append(accessory)
    return found


def _emoji(value: Any) -> None:
    if isinstance(value, dict):
        if value.get("type") == "plain_text" and isinstance(value.get("text"), str):
            value.setdefault("emoji", True)
        for v in value.values():
            _emoji(v)
    elif isinstance(value, list):
        for v in value:
            _emoji(v)


def _new_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(5))


class _Checker:
    """One block's rules; appends Slack-worded complaints to `errors`."""

    def __init__(self, errors: list[str], seen_actions: set[str]) -> None:
        self.errors = errors
        self.seen_actions = seen_actions

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def block(self, block: dict[str, Any], at: str) -> None:
        kind = block.get("type")
        if not isinstance(kind, str):
            self.fail("missing required field: type", at)
            return
        if kind not in KNOWN_BLOCKS:
            self.fail(f"unsupported type: {kind}", f"{at}/type")
            return
        self.max_len(block.get("block_id"), LIMITS["id"], f"{at}/block_id")
        getattr(self, f"block_{kind}", lambda b, a: None)(block, at)

    def block_section(self, block: dict[str, Any], at: str) -> None:
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            self.fail("must provide either text or fields", at)
        if text is not None:
            self.text(text, LIMITS["section_text"], f"{at}/text")
        if fields is not None:
            if not isinstance(fields, list):
                self.fail("must provide an array", f"{at}/fields")
                return
            if len(fields) > LIMITS["fields"]:
                self.fail(f"no more than {LIMITS['fields']} items allowed", f"{at}/fields")
            for j, f in enumerate(fields):
                self.text(f, LIMITS["field_text"], f"{at}/fields/{j}")
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            self.element(accessory, f"{at}/accessory")

    def block_header(self, block: dict[str, Any], at: str) -> None:
        self.text(block.get("text"), LIMITS["header_text"], f"{at}/text", plain_only=True)

    def block_context(self, block: dict[str, Any], at: str) -> None:
        elements = self.elements(block, LIMITS["context_elements"], at)
        for j, e in enumerate(elements):
            if e.get("type") in ("plain_text", "mrkdwn"):
                self.text(e, LIMITS["section_text"], f"{at}/elements/{j}")

    def block_actions(self, block: dict[str, Any], at: str) -> None:
        for j, e in enumerate(self.elements(block, LIMITS["actions_elements"], at)):
            self.element(e, f"{at}/elements/{j}")

    def elements(self, block: dict[str, Any], limit: int, at: str) -> list[dict[str, Any]]:
        elements = block.get("elements")
        if not isinstance(elements, list):
            self.fail("missing required field: elements", at)
            return []
        if len(elements) > limit:
            self.fail(f"no more than {limit} items allowed", f"{at}/elements")
        if not elements:
            self.fail("must provide at least 1 item", f"{at}/elements")
        for j, e in enumerate(elements):
            if not isinstance(e, dict):
                self.fail("must provide an object", f"{at}/elements/{j}")
        return [e for e in elements if isinstance(e, dict)]

    def element(self, element: dict[str, Any], at: str) -> None:
        action_id = element.get("action_id")
        if isinstance(action_id, str):
            self.max_len(action_id, LIMITS["id"], f"{at}/action_id")
            if action_id in self.seen_actions:
                self.fail(f'`action_id` "{action_id}" already exists', f"{at}/action_id")
            self.seen_actions.add(action_id)
        if element.get("type") != "button":
            return
        self.text(element.get("text"), LIMITS["button_text"], f"{at}/text", plain_only=True)
        self.max_len(element.get("value"), LIMITS["button_value"], f"{at}/value")
        self.max_len(element.get("url"), LIMITS["button_url"], f"{at}/url")
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            self.fail(f"must be one of: primary, danger (got {style})", f"{at}/style")
        confirm = element.get("confirm")
        if confirm is not None:
            self.confirm(confirm, f"{at}/confirm")

    def confirm(self, confirm: Any, at: str) -> None:
        if not isinstance(confirm, dict):
            self.fail("must provide an object", at)
            return
        self.text(confirm.get("title"), LIMITS["confirm_title"], f"{at}/title", plain_only=True)
        self.text(confirm.get("text"), LIMITS["confirm_text"], f"{at}/text")
        for key in ("confirm", "deny"):
            self.text(confirm.get(key), LIMITS["confirm_button"], f"{at}/{key}", plain_only=True)
        if confirm.get("style") not in (None, "primary", "danger"):
            self.fail("must be one of: primary, danger", f"{at}/style")

    def text(self, obj: Any, limit: int, at: str, *, plain_only: bool = False) -> None:
        if obj is None:
            self.fail(f"missing required field: {at.rsplit('/', 1)[-1]}", at.rsplit("/", 1)[0])
            return
        if not isinstance(obj, dict):
            self.fail("must provide an object", at)
            return
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in allowed:
            self.fail(f"must be one of: {', '.join(allowed)}", f"{at}/type")
        text = obj.get("text")
        if not isinstance(text, str):
            self.fail("missing required field: text", at)
        elif not text:
            self.fail("must be more than 0 characters", f"{at}/text")
        else:
            self.max_len(text, limit, f"{at}/text")

    def max_len(self, value: Any, limit: int, at: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", at)
