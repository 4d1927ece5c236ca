"""The command table: every verb parses to its typed arguments, every mistake says what
is wrong and the right usage, and help is generated from the table."""

from __future__ import annotations

import pytest

from handlers.commands import (
    BACKUP_COMMAND,
    MAX_FREE_TEXT,
    RESTORE_COMMAND,
    VERBS,
    BackupCheck,
    BackupList,
    BackupNow,
    BackupStatus,
    Help,
    ParsedCommand,
    RestoreCancel,
    RestoreList,
    RestoreRequest,
    RestoreStatus,
    Schedule,
    UsageError,
    help_text,
    parse,
    verb,
    verbs_of,
)

B, R = BACKUP_COMMAND, RESTORE_COMMAND


def ok(command: str, text: str) -> ParsedCommand:
    result = parse(command, text)
    assert isinstance(result, ParsedCommand), str(result)
    return result


def bad(command: str, text: str) -> UsageError:
    result = parse(command, text)
    assert isinstance(result, UsageError), result
    return result


@pytest.mark.parametrize(
    ("command", "text", "verb_name", "permission", "args"),
    [
        (B, "", "help", "none", Help(B)),
        (B, "   ", "help", "none", Help(B)),
        (B, "help", "help", "none", Help(B)),
        (B, "now", "now", "backup", BackupNow()),
        (B, "NOW before the upgrade", "now", "backup", BackupNow("before the upgrade")),
        (B, "now  two  spaces kept ", "now", "backup", BackupNow("two  spaces kept")),
        (B, "now a &amp; b &lt;c&gt;", "now", "backup", BackupNow("a & b <c>")),
        (B, "now line one\nline two", "now", "backup", BackupNow("line one\nline two")),
        (B, "list", "list", "none", BackupList(10)),
        (B, "list 1", "list", "none", BackupList(1)),
        (B, "list 50", "list", "none", BackupList(50)),
        (B, "status", "status", "none", BackupStatus("")),
        (B, "status backup-20250916t114315", "status", "none", BackupStatus("backup-20250916t114315")),
        (B, "check", "check", "none", BackupCheck()),
        (B, "schedule", "schedule", "none", Schedule(None)),
        (B, "schedule pause", "schedule", "backup", Schedule("pause")),
        (B, "schedule Resume", "schedule", "backup", Schedule("resume")),
        (R, "", "help", "none", Help(R)),
        (R, "help", "help", "none", Help(R)),
        (R, "latest", "latest", "restore", RestoreRequest("latest", "")),
        (R, "latest keycloak DB is corrupt", "latest", "restore",
         RestoreRequest("latest", "keycloak DB is corrupt")),
        (R, "backup-20250916t114315", "<backup>", "restore",
         RestoreRequest("backup-20250916t114315", "")),
        (R, "backup-20250916t114315 bad upgrade", "<backup>", "restore",
         RestoreRequest("backup-20250916t114315", "bad upgrade")),
        (R, "status", "status", "none", RestoreStatus("")),
        (R, "status restore-20250916t120000", "status", "none",
         RestoreStatus("restore-20250916t120000")),
        (R, "list", "list", "none", RestoreList()),
        (R, "cancel restore-20250916t120000", "cancel", "restore",
         RestoreCancel("restore-20250916t120000")),
    ],
)  # fmt: skip
def test_every_verb_parses_to_typed_arguments(
    command: str, text: str, verb_name: str, permission: str, args: object
) -> None:
    parsed = ok(command, text)
    assert (parsed.command, parsed.verb, parsed.permission, parsed.args) == (
        command, verb_name, permission, args,
    )  # fmt: skip
    assert parsed.key == f"{command} {verb_name}"


def test_the_command_name_is_matched_case_insensitively() -> None:
    assert ok(" /RagBackup ", "check").args == BackupCheck()


@pytest.mark.parametrize(
    ("command", "text", "message", "usage"),
    [
        (B, "lsit", "unknown subcommand 'lsit' (did you mean `list`?); /ragbackup knows `now`, "
         "`list`, `status`, `check`, `schedule`, `help`", 6),
        (B, "before the upgrade", "unknown subcommand 'before'; /ragbackup knows `now`, `list`, "
         "`status`, `check`, `schedule`, `help`", 6),
        (B, "list 0", "n must be from 1 to 50, not 0", 1),
        (B, "list 51", "n must be from 1 to 50, not 51", 1),
        (B, "list -3", "n must be from 1 to 50, not -3", 1),
        (B, "list ten", "n must be a number from 1 to 50, not 'ten'", 1),
        (B, "list 5 6", "`list` takes one argument, but got 2: '5 6'", 1),
        (B, "status Backup-1", "backup name 'Backup-1' has capital letters; Kubernetes names "
         "are lower case", 1),
        (B, "status backup_1", "invalid backup name 'backup_1': at most 253 lower-case letters, "
         "digits, '-' or '.', starting and ending with a letter or digit (DNS-1123 subdomain)", 1),
        (B, "status a b", "`status` takes one argument, but got 2: 'a b'", 1),
        (B, "check now", "`check` takes no arguments, but got 'now'", 1),
        (B, "schedule stop", "unknown schedule action 'stop': use `pause` or `resume`, or nothing", 1),
        (B, "now " + "x" * (MAX_FREE_TEXT + 1),
         f"the note is {MAX_FREE_TEXT + 1} characters long; keep it under {MAX_FREE_TEXT}", 1),
        (R, "cancel", "`cancel` needs the id of the restore request (`/ragrestore list` shows them)", 1),
        (R, "cancel Restore-1", "restore id 'Restore-1' has capital letters; Kubernetes names "
         "are lower case", 1),
        (R, "cancel a b", "`cancel` takes one argument, but got 2: 'a b'", 1),
        (R, "status -x", "invalid restore id '-x': at most 253 lower-case letters, digits, '-' or "
         "'.', starting and ending with a letter or digit (DNS-1123 subdomain)", 1),
        (R, "list all", "`list` takes no arguments, but got 'all'", 1),
        (R, "Lates", "'Lates' is neither a subcommand (`latest`, `status`, `list`, `cancel`, "
         "`help`) nor a backup name (backup name 'Lates' has capital letters; Kubernetes names "
         "are lower case); did you mean `latest`?", 6),
        (R, "backup_1 why", "'backup_1' is neither a subcommand (`latest`, `status`, `list`, "
         "`cancel`, `help`) nor a backup name (invalid backup name 'backup_1': at most 253 "
         "lower-case letters, digits, '-' or '.', starting and ending with a letter or digit "
         "(DNS-1123 subdomain))", 6),
        (R, "latest " + "y" * (MAX_FREE_TEXT + 1),
         f"the reason is {MAX_FREE_TEXT + 1} characters long; keep it under {MAX_FREE_TEXT}", 1),
        (R, "backup-1 " + "y" * (MAX_FREE_TEXT + 1),
         f"the reason is {MAX_FREE_TEXT + 1} characters long; keep it under {MAX_FREE_TEXT}", 1),
    ],
)  # fmt: skip
def test_every_usage_error_says_what_is_wrong_and_the_usage(
    command: str, text: str, message: str, usage: int
) -> None:
    err = bad(command, text)
    assert err.command == command
    assert err.message == message
    assert len(err.usage) == usage
    assert all(u.startswith(command) for u in err.usage)
    assert str(err).startswith(message + "\nUsage: " + err.usage[0])


def test_a_single_usage_line_is_the_verb_the_user_meant() -> None:
    assert bad(B, "list x").usage == ("/ragbackup list [n]",)
    assert bad(B, "schedule x").usage == ("/ragbackup schedule [pause|resume]",)
    assert bad(R, "cancel").usage == ("/ragrestore cancel <id>",)
    assert bad(R, "backup-1 " + "z" * 600).usage == ("/ragrestore <backup> [reason…]",)


def test_an_unknown_command_is_a_usage_error() -> None:
    err = bad("/ragdelete", "everything")
    assert err.message == "ragbot does not handle /ragdelete"
    assert err.usage == ("/ragbackup help", "/ragrestore help")


def test_a_word_that_looks_like_a_verb_but_is_a_valid_name_is_a_backup() -> None:
    # Documented: any valid name that is not a verb is a backup; the cluster says if it exists.
    assert ok(R, "lsit").args == RestoreRequest("lsit", "")


def test_the_table_has_one_row_per_verb_of_the_design() -> None:
    assert [v.name for v in verbs_of(B)] == ["now", "list", "status", "check", "schedule", "help"]
    assert [v.name for v in verbs_of(R)] == ["latest", "<backup>", "status", "list", "cancel", "help"]
    assert len({(v.command, v.name) for v in VERBS}) == len(VERBS)
    assert verb(R, "cancel").permission == "restore"
    with pytest.raises(KeyError):
        verb(B, "delete")


def test_help_is_generated_from_the_table() -> None:
    for command in (B, R):
        text = help_text(command)
        for row in verbs_of(command):
            assert row.usage in text
            assert row.summary in text
        assert f"With no text, {command} shows this help." in text
    assert "(needs backup permission)" in help_text(B)
    assert "(pause and resume need backup permission)" in help_text(B)
    assert help_text(R).splitlines()[0] == (
        "/ragrestore: restore Enterprise RAG from a Velero backup, with a second person's approval"
    )
    with pytest.raises(KeyError):
        help_text("/ragdelete")


def test_help_text_golden() -> None:
    assert help_text(B) == (
        "/ragbackup: back up Enterprise RAG with Velero\n"
        "  /ragbackup now [note…]              start a backup now; the note is kept on the "
        "Backup (needs backup permission)\n"
        "  /ragbackup list [n]                 the newest n backups (default 10, at most 50)\n"
        "  /ragbackup status [name]            one backup in detail (default: the newest)\n"
        "  /ragbackup check                    is the cluster ready for a backup? every check, "
        "with fixes\n"
        "  /ragbackup schedule [pause|resume]  show the backup schedule; pause or resume it "
        "(pause and resume need backup permission)\n"
        "  /ragbackup help                     this help\n"
        "With no text, /ragbackup shows this help."
    )
