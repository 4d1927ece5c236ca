"""`ragbot check` and `ragbot backup now|list|describe`: the backup side of the CLI.

Thin on purpose: every decision (preconditions, names, refusal while one runs, the
latest rule) lives in `k8s.backups` / `k8s.preflight`, shared with the Slack bot. This
module only parses arguments, renders results for a terminal or a script, and maps
outcomes to exit codes (0 ok, 1 failed, 2 usage/config).
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from k8s import backups
from k8s.backup_views import BackupSummary, format_time, summarize
from k8s.errors import Timeout
from k8s.preflight import FAILURE, OK, WARNING, CheckResult, passed, run_checks

from .cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_config_args,
    add_output_arg,
    cluster_for,
    is_terminal,
    load,
    print_json,
)


def register(sub: Any) -> None:
    check = sub.add_parser("check", help="check that the cluster is ready for backups")
    add_config_args(check)
    add_output_arg(check)
    check.set_defaults(func=cmd_check)

    backup = sub.add_parser("backup", help="create and inspect Velero backups")
    backup_sub = backup.add_subparsers(dest="backup_command", metavar="COMMAND")
    now = backup_sub.add_parser("now", help="create a backup now, as the playbook does")
    add_config_args(now)
    now.add_argument("--wait", action="store_true", help="follow it until Velero finishes")
    now.add_argument("--note", default="", metavar="TEXT", help="why (kept on the Backup)")
    now.set_defaults(func=cmd_backup_now)
    lst = backup_sub.add_parser("list", help="list backups, newest first")
    add_config_args(lst)
    add_output_arg(lst)
    lst.set_defaults(func=cmd_backup_list)
    describe = backup_sub.add_parser("describe", help="show one backup")
    describe.add_argument("name", metavar="NAME")
    add_config_args(describe)
    add_output_arg(describe)
    describe.set_defaults(func=cmd_backup_describe)


def requester() -> str:
    """`$USER@hostname`: who ran the CLI, as kept on the Backup."""
    user = os.environ.get("USER", "")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


# ------------------------------------------------------------------------------ check

_MARK = {OK: "ok", WARNING: "WARNING", FAILURE: "FAILED"}


def render_checks(results: list[CheckResult], out: TextIO) -> None:
    width = max(len(r.item) for r in results)
    for r in results:
        out.write(f"{_MARK[r.status]:<8} {r.item:<{width}}  {r.detail}\n")
        if r.fix and r.status != OK:
            out.write(f"{'':<8} {'':<{width}}  fix: {r.fix}\n")
    counts = {s: sum(1 for r in results if r.status == s) for s in (OK, WARNING, FAILURE)}
    out.write(f"{counts[OK]} ok, {counts[WARNING]} warning(s), {counts[FAILURE]} failure(s)\n")


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load(args)
    cluster = cluster_for(args)
    try:
        results = run_checks(cluster, cfg)
    finally:
        cluster.close()
    if args.output == "json":
        print_json({"passed": passed(results), "checks": [r.to_dict() for r in results]})
    else:
        render_checks(results, sys.stdout)
    return EXIT_OK if passed(results) else EXIT_FAILED


# ----------------------------------------------------------------------------- backup


class ProgressView:
    """Live progress: one bar redrawn with \\r on a terminal, else a line per change."""

    def __init__(self, out: TextIO, *, tty: bool, clock: Callable[[], datetime] | None = None) -> None:
        self.out = out
        self.tty = tty
        self.clock = clock or (lambda: datetime.now(UTC))
        self._last = ""
        self._drawn = False

    def update(self, obj: dict[str, Any]) -> None:
        s = summarize(obj)
        if self.tty:
            line = f"{s.name} {_bar(s)} {_counts(s)}"
            elapsed = s.elapsed(self.clock())
            if elapsed is not None:
                line += f"  {elapsed:.0f}s"
            self.out.write("\r" + line.ljust(len(self._last)))
            self._last = line
            self._drawn = True
        else:
            line = f"{s.name}: {_counts(s)}"
            if line != self._last:
                self.out.write(line + "\n")
                self._last = line
        self.out.flush()

    def close(self) -> None:
        if self._drawn:
            self.out.write("\n")
            self._drawn = False


def _bar(s: BackupSummary, width: int = 24) -> str:
    fraction = s.items_backed_up / s.items_total if s.items_total else 0.0
    if s.succeeded:
        fraction = 1.0
    filled = round(min(1.0, fraction) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _counts(s: BackupSummary, *, phase: bool = True) -> str:
    parts = [s.phase or "New"] if phase else []
    if s.progress_text:
        parts.append(f"items {s.progress_text}")
    if s.csi_text:
        parts.append(f"CSI snapshots {s.csi_text}")
    if s.errors or s.warnings:
        parts.append(f"{s.errors} error(s), {s.warnings} warning(s)")
    return "  ".join(parts)


def cmd_backup_now(args: argparse.Namespace) -> int:
    cfg = load(args)
    cluster = cluster_for(args)
    try:
        try:
            obj = backups.create_backup(
                cluster, cfg, trigger="cli", requester=requester(), note=args.note
            )
        except backups.VeleroDisabled as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        name = obj["metadata"]["name"]
        sys.stdout.write(f"backup {name} created in namespace {cfg.velero.namespace}\n")
        if not args.wait:
            return EXIT_OK
        view = ProgressView(sys.stdout, tty=is_terminal(sys.stdout))
        timeout = cfg.ragbot.backup.timeout.total_seconds()
        try:
            final = backups.wait_backup(cluster, cfg, name, timeout=timeout, on_change=view.update)
        except Timeout:
            raise CliError(
                f"backup {name} did not finish within {cfg.ragbot.backup.timeout}; it keeps "
                f"running in the cluster (`ragbot backup describe {name}`)"
            ) from None
        finally:
            view.close()
    finally:
        cluster.close()
    s = summarize(final)
    elapsed = s.elapsed()
    took = f" in {elapsed:.0f}s" if elapsed is not None else ""
    sys.stdout.write(f"backup {name} {s.phase}{took}: {_counts(s, phase=False) or 'no items'}\n")
    if not s.succeeded:
        why = s.failure_reason or "; ".join(s.validation_errors) or "see its Velero logs"
        raise CliError(f"backup {name} ended {s.phase}: {why} (`ragbot backup describe {name}`)")
    return EXIT_OK


def cmd_backup_list(args: argparse.Namespace) -> int:
    cfg = load(args)
    cluster = cluster_for(args)
    try:
        found = backups.list_backups(cluster, cfg)
    finally:
        cluster.close()
    if args.output == "json":
        print_json([s.to_dict() for s in found])
        return EXIT_OK
    if not found:
        sys.stdout.write(f"no backups in namespace {cfg.velero.namespace}\n")
        return EXIT_OK
    header = ("NAME", "PHASE", "ITEMS", "CSI", "ERRORS", "WARNINGS", "CREATED", "EXPIRES", "TRIGGER", "REQUESTER")
    rows = [header] + [
        (s.name, s.phase or "New", s.progress_text or "-", s.csi_text or "-", str(s.errors),
         str(s.warnings), format_time(s.created), format_time(s.expires), s.trigger or "-",
         s.requester or "-")
        for s in found
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return EXIT_OK


def cmd_backup_describe(args: argparse.Namespace) -> int:
    cfg = load(args)
    cluster = cluster_for(args)
    try:
        s = backups.describe_backup(cluster, cfg, args.name)
    finally:
        cluster.close()
    if args.output == "json":
        print_json(s.to_dict())
        return EXIT_OK
    elapsed = s.elapsed()
    fields = [
        ("Name", s.name),
        ("Namespace", s.namespace),
        ("Phase", s.phase or "New"),
        ("Items", s.progress_text or "-"),
        ("CSI snapshots", s.csi_text or "-"),
        ("Errors", str(s.errors)),
        ("Warnings", str(s.warnings)),
        ("Failure reason", s.failure_reason),
        ("Validation errors", "; ".join(s.validation_errors)),
        ("Created", format_time(s.created)),
        ("Started", format_time(s.started)),
        ("Completed", format_time(s.completed)),
        ("Duration", f"{elapsed:.0f}s" if elapsed is not None and s.completed else ""),
        ("Expires", format_time(s.expires)),
        ("Storage location", s.storage_location),
        ("Trigger", s.trigger or "(not made by ragbot)"),
        ("Requester", s.requester),
        ("Note", s.note),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items()))),
    ]
    width = max(len(k) for k, _ in fields) + 1
    for key, value in fields:
        if value:
            sys.stdout.write(f"{key + ':':<{width}} {value}\n")
    return EXIT_OK
