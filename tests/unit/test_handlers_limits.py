"""`check_message` finds every breach of Slack's limits it claims to check (a checker that
passes everything would make the builder tests worthless), and the builders truncate
Velero's long lists and long notes with "… and N more"."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from handlers import blocks as B
from handlers.blocks.kit import button, confirm_dialog, context, header, message, section
from handlers.limits import check_message
from handlers.views import VeleroResults
from tests.unit.test_handlers_blocks import at, backup, record


def good() -> dict[str, Any]:
    return message("fallback", [
        header("Title"), section("text", fields=["a", "b"]), context("c"),
        {"type": "actions", "block_id": "b1", "elements": [
            button("Go", "go", "v", style="primary", confirm=confirm_dialog("T", "t", "y", "n")),
            button("Stop", "stop", "v", style="danger")]},
        {"type": "divider"},
    ])  # fmt: skip


def test_a_good_message_passes() -> None:
    assert check_message(good()) == []


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(msg: dict[str, Any]) -> None:
        target: Any = msg
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return apply


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set("text", ""), "text: the fallback text is missing"),
        (_set("text", "x" * 40_001), "text: 40001 characters, at most 40000"),
        (lambda m: m["blocks"].extend([{"type": "divider"}] * 46), "blocks: 51 blocks, at most 50"),
        (_set("blocks.0.text.text", "h" * 151), "blocks[0].text: 151 characters, at most 150"),
        (_set("blocks.0.text.type", "mrkdwn"), "blocks[0].text: type 'mrkdwn', expected plain_text"),
        (_set("blocks.1.text.text", "s" * 3001), "blocks[1].text: 3001 characters, at most 3000"),
        (_set("blocks.1.text.text", "  "), "blocks[1].text: empty text"),
        (_set("blocks.1.fields", [{"type": "mrkdwn", "text": "f"}] * 11),
         "blocks[1].fields: more than 10 or not a list"),
        (_set("blocks.1.fields.0.text", "f" * 2001), "blocks[1].fields[0]: 2001 characters, at most 2000"),
        (_set("blocks.2.elements", [{"type": "mrkdwn", "text": "c"}] * 11),
         "blocks[2].elements: 1 to 10 needed"),
        (_set("blocks.3.elements.0.text.text", "b" * 76),
         "blocks[3].elements[0].text: 76 characters, at most 75"),
        (_set("blocks.3.elements.0.value", "v" * 2001),
         "blocks[3].elements[0].value: empty, longer than 2000 or not a string"),
        (_set("blocks.3.elements.0.value", ""),
         "blocks[3].elements[0].value: empty, longer than 2000 or not a string"),
        (_set("blocks.3.elements.0.action_id", "a" * 256),
         "blocks[3].elements[0].action_id: 256 characters, at most 255"),
        (_set("blocks.3.elements.1.action_id", "go"),
         "blocks[3].elements[1].action_id: 'go' is used twice in the message"),
        (_set("blocks.3.block_id", "b" * 256), "blocks[3].block_id: 256 characters, at most 255"),
        (_set("blocks.3.elements.0.confirm.title.text", "t" * 101),
         "blocks[3].elements[0].confirm.title: 101 characters, at most 100"),
        (_set("blocks.3.elements.0.confirm.text.text", "t" * 301),
         "blocks[3].elements[0].confirm.text: 301 characters, at most 300"),
        (_set("blocks.3.elements.0.confirm.confirm.text", "y" * 31),
         "blocks[3].elements[0].confirm.confirm: 31 characters, at most 30"),
        (_set("blocks.3.elements.0.confirm.deny.text", "n" * 31),
         "blocks[3].elements[0].confirm.deny: 31 characters, at most 30"),
        (_set("blocks.3.elements.0.style", "green"), "blocks[3].elements[0].style: 'green'"),
        (_set("blocks.4.type", "video"), "blocks[4]: block type 'video' is not one ragbot uses"),
        (lambda m: m["blocks"].append({"type": "divider", "block_id": "b1"}),
         "blocks[5].block_id: 'b1' is used twice"),
    ],
)  # fmt: skip
def test_each_breach_is_reported(mutate: Mutation, expected: str) -> None:
    msg = copy.deepcopy(good())
    mutate(msg)
    assert expected in check_message(msg)


def test_message_caps_blocks_at_fifty() -> None:
    msg = message("x", [section(str(i)) for i in range(80)])
    assert len(msg["blocks"]) == 50 and check_message(msg) == []
    assert msg["blocks"][-1]["elements"][0]["text"] == "… and 31 more blocks"


def test_five_hundred_velero_errors_and_a_huge_note_are_cut_with_and_n_more() -> None:
    huge = backup(phase="PartiallyFailed", completed=at(10), errors=500, warnings=500,
                  note="n" * 20_000, failure_reason="r <x> " * 2000,
                  validation_errors=tuple(f"v{i}" for i in range(300)))  # fmt: skip
    results = VeleroResults(tuple(f"edp: error {i} " + "e" * 200 for i in range(500)),
                            tuple(f"warning {i}" for i in range(500)))  # fmt: skip
    for msg in (B.backup_result(huge, now=at(11), results=results),
                B.backup_status(huge, now=at(11), results=results)):
        assert check_message(msg) == []
        text = json.dumps(msg, ensure_ascii=False)
        assert "… and 4" in text  # "… and 4xx more" errors
        assert "… and 490 more" in text  # warnings: 10 shown
        assert "… and 285 more" in text  # validation errors: 15 shown
    rec = record("failed", done=1, fail="x" * 10_000, reason="why " * 3000)
    for msg in (B.restore_result(rec, now=at(11), results=results),
                B.restore_approval_request(rec, now=at(1))):
        assert check_message(msg) == []
