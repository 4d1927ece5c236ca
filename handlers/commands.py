"""The `/ragbackup` and `/ragrestore` verbs: one table, one pure parser, generated help.

Botkube's lesson (STYLE.md): when the verbs, their usage and their help live in one
table, help can never drift from what the bot accepts. Each `Verb` row names the verb,
its usage, a one-line summary, the permission it needs and the function that turns the
rest of the line into typed arguments; `parse` and `help_text` (and the Block Kit help in
`handlers.blocks.notices`) only read the table.

Decisions, each chosen so a slip of the keyboard never starts something expensive:

- A bare `/ragbackup` or `/ragrestore` shows help. DESIGN.md writes `/ragbackup [now]`,
  but a backup takes snapshots of every volume; it must be asked for by name.
- An unknown first word of `/ragbackup` is a usage error (with "did you mean"), not the
  start of a note: `/ragbackup lsit` must not start a backup noted "lsit".
- For `/ragrestore`, a first word that is not a verb is a backup name and must be a
  DNS-1123 subdomain. A Backup literally named `list`, `status`, `cancel`, `help` or
  `latest` can therefore not be restored from Slack (the playbook's names look like
  `backup-20250916t114315`; the CLI can still restore any name).
- Verbs are case-insensitive; names and ids are not (Kubernetes names are lower case,
  and guessing the case of the backup to restore is not our call).
- Slack escapes `&`, `<` and `>` in a command's text; notes and reasons are unescaped
  here so the cluster stores what the user typed, and the renderers escape again.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from config.cleanup import check_dns1123_subdomain

Permission = Literal["backup", "restore", "approve", "none"]

BACKUP_COMMAND = "/ragbackup"
RESTORE_COMMAND = "/ragrestore"
COMMANDS = (BACKUP_COMMAND, RESTORE_COMMAND)

MAX_LIST = 50
DEFAULT_LIST = 10
#: Notes and reasons are kept on cluster objects and shown in Slack; a paragraph is plenty.
MAX_FREE_TEXT = 500
LATEST = "latest"

# ------------------------------------------------------------------- typed arguments


@dataclass(frozen=True)
class BackupNow:
    note: str = ""


@dataclass(frozen=True)
class BackupList:
    count: int = DEFAULT_LIST


@dataclass(frozen=True)
class BackupStatus:
    name: str = ""  # "" means the newest backup


@dataclass(frozen=True)
class BackupCheck:
    pass


@dataclass(frozen=True)
class Schedule:
    action: Literal["pause", "resume"] | None = None  # None: show the schedule


@dataclass(frozen=True)
class RestoreRequest:
    backup: str  # LATEST or a Backup name
    reason: str = ""


@dataclass(frozen=True)
class RestoreStatus:
    record_id: str = ""  # "" means the newest restore


@dataclass(frozen=True)
class RestoreList:
    pass


@dataclass(frozen=True)
class RestoreCancel:
    record_id: str


@dataclass(frozen=True)
class Help:
    command: str


Args = (
    BackupNow | BackupList | BackupStatus | BackupCheck | Schedule | RestoreRequest
    | RestoreStatus | RestoreList | RestoreCancel | Help
)  # fmt: skip


@dataclass(frozen=True)
class ParsedCommand:
    """A command that parsed: which verb, the permission it needs, its typed arguments."""

    command: str
    verb: str
    permission: Permission
    args: Args

    @property
    def key(self) -> str:
        """`/ragbackup now`, `/ragrestore <backup>`: stable for logs and metrics."""
        return f"{self.command} {self.verb}"


@dataclass(frozen=True)
class UsageError:
    """What is wrong with the text, and the usage of what the user probably meant."""

    command: str
    message: str
    usage: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.message}\nUsage: " + "\n       ".join(self.usage)


class _Bad(Exception):
    """Raised by an argument parser; `parse` turns it into a UsageError."""


# ------------------------------------------------------------------- argument parsers


def _unescape(text: str) -> str:
    # Slack's escaping of slash command text; &amp; last so "&amp;lt;" stays "&lt;".
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _free_text(rest: str, what: str) -> str:
    text = _unescape(rest.strip())
    if len(text) > MAX_FREE_TEXT:
        raise _Bad(f"the {what} is {len(text)} characters long; keep it under {MAX_FREE_TEXT}")
    return text


def _no_args(rest: str, verb: str) -> None:
    if rest.strip():
        raise _Bad(f"`{verb}` takes no arguments, but got {_quote(rest.strip())}")


def _at_most_one(rest: str, verb: str) -> str:
    words = rest.split()
    if len(words) > 1:
        raise _Bad(f"`{verb}` takes one argument, but got {len(words)}: {_quote(rest.strip())}")
    return words[0] if words else ""


def _quote(text: str, limit: int = 60) -> str:
    text = _unescape(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _object_name(word: str, what: str) -> str:
    if any(c.isupper() for c in word):
        raise _Bad(f"{what} {_quote(word)} has capital letters; Kubernetes names are lower case")
    try:
        return check_dns1123_subdomain(_unescape(word), what)
    except ValueError as err:
        raise _Bad(str(err)) from None


def _backup_now(rest: str) -> Args:
    return BackupNow(note=_free_text(rest, "note"))


def _backup_list(rest: str) -> Args:
    word = _at_most_one(rest, "list")
    if not word:
        return BackupList()
    if not re.fullmatch(r"[+-]?\d+", word):
        raise _Bad(f"n must be a number from 1 to {MAX_LIST}, not {_quote(word)}")
    count = int(word)
    if not 1 <= count <= MAX_LIST:
        raise _Bad(f"n must be from 1 to {MAX_LIST}, not {count}")
    return BackupList(count=count)


def _backup_status(rest: str) -> Args:
    word = _at_most_one(rest, "status")
    return BackupStatus(name=_object_name(word, "backup name") if word else "")


def _backup_check(rest: str) -> Args:
    _no_args(rest, "check")
    return BackupCheck()


def _schedule(rest: str) -> Args:
    word = _at_most_one(rest, "schedule").lower()
    if word == "pause":
        return Schedule("pause")
    if word == "resume":
        return Schedule("resume")
    if word:
        raise _Bad(f"unknown schedule action {_quote(word)}: use `pause` or `resume`, or nothing")
    return Schedule()


def _restore_latest(rest: str) -> Args:
    return RestoreRequest(backup=LATEST, reason=_free_text(rest, "reason"))


def _restore_status(rest: str) -> Args:
    word = _at_most_one(rest, "status")
    return RestoreStatus(record_id=_object_name(word, "restore id") if word else "")


def _restore_list(rest: str) -> Args:
    _no_args(rest, "list")
    return RestoreList()


def _restore_cancel(rest: str) -> Args:
    word = _at_most_one(rest, "cancel")
    if not word:
        raise _Bad("`cancel` needs the id of the restore request (`/ragrestore list` shows them)")
    return RestoreCancel(record_id=_object_name(word, "restore id"))


# ------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Verb:
    """One row of the table. `positional`: the row that takes a name instead of a verb."""

    command: str
    name: str
    args: str
    summary: str
    permission: Permission
    parse_args: Callable[[str], Args]
    positional: bool = False
    permission_note: str = ""  # help's wording when the permission depends on the arguments

    @property
    def usage(self) -> str:
        return f"{self.command} {self.name} {self.args}".strip()


def _help_of(command: str) -> Callable[[str], Args]:
    return lambda _rest: Help(command)


VERBS: tuple[Verb, ...] = (
    Verb(BACKUP_COMMAND, "now", "[note…]",
         "start a backup now; the note is kept on the Backup", "backup", _backup_now),
    Verb(BACKUP_COMMAND, "list", "[n]",
         f"the newest n backups (default {DEFAULT_LIST}, at most {MAX_LIST})", "none",
         _backup_list),
    Verb(BACKUP_COMMAND, "status", "[name]",
         "one backup in detail (default: the newest)", "none", _backup_status),
    Verb(BACKUP_COMMAND, "check", "",
         "is the cluster ready for a backup? every check, with fixes", "none", _backup_check),
    Verb(BACKUP_COMMAND, "schedule", "[pause|resume]",
         "show the backup schedule; pause or resume it", "backup", _schedule,
         permission_note="pause and resume need backup permission"),
    Verb(BACKUP_COMMAND, "help", "", "this help", "none", _help_of(BACKUP_COMMAND)),
    Verb(RESTORE_COMMAND, "latest", "[reason…]",
         "ask to restore the latest Completed backup; a second person approves", "restore",
         _restore_latest),
    Verb(RESTORE_COMMAND, "<backup>", "[reason…]",
         "ask to restore that Completed backup; a second person approves", "restore",
         lambda rest: RestoreRequest(backup="", reason=_free_text(rest, "reason")),
         positional=True),
    Verb(RESTORE_COMMAND, "status", "[id]",
         "one restore in detail (default: the newest)", "none", _restore_status),
    Verb(RESTORE_COMMAND, "list", "", "recent restore requests and restores", "none",
         _restore_list),
    Verb(RESTORE_COMMAND, "cancel", "<id>",
         "cancel a restore request that is not running yet", "restore", _restore_cancel),
    Verb(RESTORE_COMMAND, "help", "", "this help", "none", _help_of(RESTORE_COMMAND)),
)  # fmt: skip

TITLES = {
    BACKUP_COMMAND: "back up Enterprise RAG with Velero",
    RESTORE_COMMAND: "restore Enterprise RAG from a Velero backup, with a second person's approval",
}
BARE_NOTE = "With no text, {command} shows this help."


def verbs_of(command: str) -> tuple[Verb, ...]:
    """The rows of one command, in help order."""
    return tuple(v for v in VERBS if v.command == command)


def verb(command: str, name: str) -> Verb:
    """The row of `command name` (KeyError if there is none)."""
    for v in VERBS:
        if v.command == command and v.name == name:
            return v
    raise KeyError(f"{command} {name}")


# ---------------------------------------------------------------------------- parsing


def _unknown(command: str, word: str) -> UsageError:
    names = [v.name for v in verbs_of(command) if not v.positional]
    close = difflib.get_close_matches(word.lower(), names, n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return UsageError(
        command,
        f"unknown subcommand {_quote(word)}{hint}; {command} knows "
        + ", ".join(f"`{n}`" for n in names),
        tuple(v.usage for v in verbs_of(command)),
    )


def parse(command: str, text: str) -> ParsedCommand | UsageError:
    """Turn a slash command's text into typed arguments, or say what is wrong (pure)."""
    command = command.strip().lower()
    if command not in COMMANDS:
        return UsageError(command, f"ragbot does not handle {command or 'that command'}",
                          tuple(v.usage for v in VERBS if v.name == "help"))  # fmt: skip
    match = re.match(r"\s*(\S*)\s*(.*)", text, re.DOTALL)
    first, rest = (match.group(1), match.group(2)) if match else ("", "")
    if not first:
        return ParsedCommand(command, "help", "none", Help(command))
    rows = verbs_of(command)
    row = next((v for v in rows if not v.positional and v.name == first.lower()), None)
    if row is None:
        positional = next((v for v in rows if v.positional), None)
        if positional is None:
            return _unknown(command, first)
        return _parse_positional(positional, first, rest)
    try:
        args = row.parse_args(rest)
    except _Bad as err:
        return UsageError(command, str(err), (row.usage,))
    permission: Permission = "none" if isinstance(args, Schedule) and args.action is None \
        else row.permission  # fmt: skip
    return ParsedCommand(command, row.name, permission, args)


def _parse_positional(row: Verb, first: str, rest: str) -> ParsedCommand | UsageError:
    try:
        name = _object_name(first, "backup name")
    except _Bad as err:
        names = [v.name for v in verbs_of(row.command) if not v.positional]
        known = ", ".join(f"`{n}`" for n in names)
        close = difflib.get_close_matches(first.lower(), names, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return UsageError(
            row.command,
            f"{_quote(first)} is neither a subcommand ({known}) nor a backup name ({err}){hint}",
            tuple(v.usage for v in verbs_of(row.command)),
        )
    try:
        args = row.parse_args(rest)
    except _Bad as err:
        return UsageError(row.command, str(err), (row.usage,))
    assert isinstance(args, RestoreRequest)
    return ParsedCommand(row.command, row.name, row.permission,
                         RestoreRequest(backup=name, reason=args.reason))  # fmt: skip


# ------------------------------------------------------------------------------- help


def permission_text(row: Verb) -> str:
    """How help names the permission: "" for verbs anyone may run."""
    if row.permission_note:
        return row.permission_note
    if row.permission == "none":
        return ""
    return f"needs {row.permission} permission"


def help_text(command: str) -> str:
    """Plain-text help of one command, generated from the table (the fallback text)."""
    rows = verbs_of(command)
    if not rows:
        raise KeyError(command)
    width = max(len(r.usage) for r in rows)
    lines = [f"{command}: {TITLES[command]}"]
    for r in rows:
        extra = permission_text(r)
        lines.append(f"  {r.usage.ljust(width)}  {r.summary}" + (f" ({extra})" if extra else ""))
    lines.append(BARE_NOTE.format(command=command))
    return "\n".join(lines)


__all__ = [
    "BACKUP_COMMAND", "COMMANDS", "LATEST", "MAX_FREE_TEXT", "MAX_LIST", "RESTORE_COMMAND",
    "VERBS", "Args", "BackupCheck", "BackupList", "BackupNow", "BackupStatus", "Help",
    "ParsedCommand", "Permission", "RestoreCancel", "RestoreList", "RestoreRequest",
    "RestoreStatus", "Schedule", "UsageError", "Verb", "help_text", "parse", "verb", "verbs_of",
]  # fmt: skip
