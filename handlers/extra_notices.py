"""The "working on it" ack the Slack listeners send when the cluster is slower than
Slack's 3 s allow: the real answer follows through `respond`."""

from __future__ import annotations

from .blocks.kit import Message, esc, message, section


def working(command_line: str) -> Message:
    """The ack when the answer takes longer than Slack waits: the answer follows."""
    line = esc(command_line.strip())
    text = f":hourglass_flowing_sand: Working on `{line}`; the answer follows here."
    return message(f"Working on {line}", [section(text)])


__all__ = ["working"]
