"""`ragbot restore plan|run|list|status|resume`: the restore side of the CLI.

Thin on purpose: planning, the record, the lock and the executor live in `k8s.`; this
module parses arguments, shows the plan, asks for `--yes`, prints progress and maps
outcomes to exit codes (0 succeeded, 1 failed, 2 usage/config or no `--yes`).

`run --yes --wait` drives the restore from this process. Without `--wait` it records
an approved restore and hands it to a detached `ragbot restore resume ID` process, as
`backup now` hands its work to Velero. A process killed mid-way loses nothing:
`ragbot restore resume ID` carries on from the last finished step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from k8s import backups
from k8s.restore_executor import Progress, run_restore
from k8s.restore_lock import restore_in_progress, running_backup
from k8s.restore_plan import build_plan, offline_summary, plan_to_dict, render_plan
from k8s.restore_record import (
    APPROVED,
    FAILED,
    SUCCEEDED,
    RestoreRecord,
    create_record,
    get_record,
    list_records,
)

from .cli_backup import requester
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
    restore = sub.add_parser("restore", help="plan, run and follow restores")
    rsub = restore.add_subparsers(dest="restore_command", metavar="COMMAND")
    backup_help = "a Backup name or `latest` (default: velero.restore_from, else latest)"

    plan = rsub.add_parser("plan", help="show what a restore would remove and restore")
    plan.add_argument("backup", nargs="?", default="", metavar="latest|NAME", help=backup_help)
    add_config_args(plan)
    add_output_arg(plan)
    plan.set_defaults(func=cmd_plan)

    run = rsub.add_parser("run", help="restore a backup (takes the application offline)")
    run.add_argument("backup", nargs="?", default="", metavar="latest|NAME", help=backup_help)
    run.add_argument("--yes", action="store_true", help="confirm: run the plan shown by `plan`")
    run.add_argument("--wait", action="store_true", help="run it here and follow it to the end")
    run.add_argument("--reason", default="", metavar="TEXT", help="why (kept in the record)")
    add_config_args(run)
    run.set_defaults(func=cmd_run)

    lst = rsub.add_parser("list", help="list restore records, newest first")
    add_config_args(lst)
    add_output_arg(lst)
    lst.set_defaults(func=cmd_list)

    status = rsub.add_parser("status", help="show one restore record")
    status.add_argument("id", metavar="ID")
    add_config_args(status)
    add_output_arg(status)
    status.set_defaults(func=cmd_status)

    resume = rsub.add_parser("resume", help="continue a restore from its last finished step")
    resume.add_argument("id", metavar="ID")
    resume.add_argument("--retry", action="store_true",
                        help="also run the failed step of a failed restore again")  # fmt: skip
    add_config_args(resume)
    resume.set_defaults(func=cmd_resume)


def _setup(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """(config, cluster, the Backup to restore); the caller closes the cluster."""
    cfg = load(args)
    try:
        backups.require_enabled(cfg)
    except backups.VeleroDisabled as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    cluster = cluster_for(args)
    try:
        return cfg, cluster, backups.resolve_backup(cluster, cfg, args.backup)
    except BaseException:
        cluster.close()
        raise


def cmd_plan(args: argparse.Namespace) -> int:
    cfg, cluster, backup = _setup(args)
    try:
        plan = build_plan(cluster, cfg, backup)
    finally:
        cluster.close()
    if args.output == "json":
        print_json(plan_to_dict(plan))
    else:
        sys.stdout.write(render_plan(plan))
    return EXIT_OK


def _preflight(cluster: Any, cfg: Any) -> None:
    """Refuse early (before planning) what the executor would refuse after the lock."""
    holder = restore_in_progress(cluster, cfg)
    if holder:
        raise CliError(f"restore already in progress: {holder} (`ragbot restore status {holder}`)")
    backup = running_backup(cluster, cfg)
    if backup:
        raise CliError(f"backup {backup} is still running; restore once it has finished")


def cmd_run(args: argparse.Namespace) -> int:
    cfg, cluster, backup = _setup(args)
    try:
        if args.yes:
            _preflight(cluster, cfg)
        plan = build_plan(cluster, cfg, backup)
        if not args.yes:
            sys.stdout.write(render_plan(plan))
            raise CliError(
                f"not run: this restore takes {offline_summary(plan)} offline; "
                "add --yes to run it", EXIT_USAGE,
            )  # fmt: skip
        record = create_record(cluster, cfg, plan, requester=requester(), reason=args.reason,
                               trigger="cli", state=APPROVED, approver="cli --yes")  # fmt: skip
        sys.stdout.write(f"restore {record.id} of backup {plan.backup}: {len(plan.steps)} steps\n")
        if not args.wait:
            pid, log_path = _run_in_background(args, record.id)
            sys.stdout.write(
                f"running in the background (pid {pid}, log {log_path}); follow it with "
                f"`ragbot restore status {record.id}`\n"
            )
            return EXIT_OK
        return _drive(cluster, cfg, record.id, retry=False)
    finally:
        cluster.close()


def _run_in_background(args: argparse.Namespace, record_id: str) -> tuple[int, Path]:
    """Start `ragbot restore resume ID` detached, so the restore goes on after we return.

    Like `backup now` without `--wait` (Velero carries on), the restore must not depend
    on this terminal staying open; the detached process survives it, and if it dies the
    record still says where to resume.
    """
    argv = [sys.executable, "-m", "bot", "restore", "resume", record_id]
    for path in args.config or []:
        argv += ["--config", str(Path(path).resolve())]
    if getattr(args, "kubeconfig", None):
        argv += ["--kubeconfig", str(Path(args.kubeconfig).resolve())]
    log_path = Path(tempfile.gettempdir()) / f"ragbot-{record_id}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    return proc.pid, log_path


def cmd_resume(args: argparse.Namespace) -> int:
    cfg = load(args)
    cluster = cluster_for(args)
    try:
        record = get_record(cluster, cfg, args.id)
        if record.state == SUCCEEDED:
            run_restore(cluster, cfg, record.id)  # only tidies up a lock left behind
            sys.stdout.write(f"restore {record.id} already succeeded\n")
            return EXIT_OK
        if record.state == FAILED and not args.retry:
            raise CliError(f"restore {record.id} failed: {record.data.get('error')}; add --retry "
                           "to run its failed step again, or start a new restore")  # fmt: skip
        done, total = record.progress()
        sys.stdout.write(f"resuming restore {record.id} ({record.state}, {done}/{total} steps done)\n")
        return _drive(cluster, cfg, record.id, retry=args.retry)
    finally:
        cluster.close()


class ProgressPrinter:
    """Step lines; Velero and readiness progress redrawn on one line on a terminal."""

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self.out, self.tty = out, tty
        self._last = ""
        self._open = False

    def __call__(self, p: Progress) -> None:
        prefix = f"[{p.step}/{p.steps}]"
        if p.status == "progress":
            text = p.detail
            if p.phase:
                text = f"Velero {p.phase or 'New'}"
                if p.items_total:
                    text += f", items restored {p.items_restored or 0}/{p.items_total}"
            line = f"{prefix}   {text}"
            if line == self._last:
                return
            self._last = line
            if self.tty:
                self.out.write("\r" + line[:160].ljust(80))
                self._open = True
            else:
                self.out.write(line + "\n")
        else:
            self._end_line()
            if p.status == "started":
                self.out.write(f"{prefix} {p.title} ...\n")
            elif p.status == "done":
                self.out.write(f"{prefix} done: {p.detail}\n")
            elif p.status == "failed":
                self.out.write(f"{prefix} FAILED: {p.detail}\n")
        self.out.flush()

    def _end_line(self) -> None:
        if self._open:
            self.out.write("\n")
            self._open = False

    def close(self) -> None:
        self._end_line()


def _drive(cluster: Any, cfg: Any, record_id: str, *, retry: bool) -> int:
    printer = ProgressPrinter(sys.stdout, tty=is_terminal(sys.stdout))
    try:
        record = run_restore(cluster, cfg, record_id, on_progress=printer, retry_failed=retry)
    except KeyboardInterrupt:
        printer.close()
        raise CliError(f"interrupted; restore {record_id} stays where it is: continue it with "
                       f"`ragbot restore resume {record_id}`", 130) from None  # fmt: skip
    finally:
        printer.close()
    if record.state == SUCCEEDED:
        sys.stdout.write(f"restore {record.id} succeeded (Velero Restore {record.velero_restore})\n")
        return EXIT_OK
    if record.state == FAILED:
        raise CliError(f"restore {record.id} failed: {record.data.get('error')}; the application "
                       f"is {record.data.get('application_state')}")  # fmt: skip
    raise CliError(f"restore {record.id} is {record.state}", EXIT_FAILED)


def cmd_list(args: argparse.Namespace) -> int:
    cfg = load(args)
    cluster = cluster_for(args)
    try:
        records = list_records(cluster, cfg)
    finally:
        cluster.close()
    if args.output == "json":
        print_json([{"id": r.id, **{k: v for k, v in r.data.items() if k != "plan"}} for r in records])
        return EXIT_OK
    if not records:
        sys.stdout.write(f"no restore records in namespace {cfg.ragbot.namespace}\n")
        return EXIT_OK
    header = ("ID", "STATE", "BACKUP", "STEPS", "TRIGGER", "REQUESTER", "CREATED", "VELERO RESTORE")
    rows = [header] + [
        (r.id, r.state, r.backup, "{}/{}".format(*r.progress()), str(r.data.get("trigger", "")),
         str(r.data.get("requester", "")), str(r.data.get("created", "")), r.velero_restore or "-")
        for r in records
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return EXIT_OK


_MARKS = {"pending": " ", "running": ">", "done": "x", "failed": "!"}


def render_record(record: RestoreRecord) -> str:
    d = record.data
    done, total = record.progress()
    fields = [
        ("Restore", record.id), ("State", record.state), ("Backup", record.backup),
        ("Requester", d.get("requester")), ("Reason", d.get("reason")),
        ("Trigger", d.get("trigger")), ("Approver", d.get("approver")),
        ("Created", d.get("created")), ("Started", d.get("started")),
        ("Finished", d.get("finished")), ("Steps done", f"{done}/{total}"),
        ("Velero restore", record.velero_restore),
        ("Velero phase", (d.get("velero") or {}).get("phase")),
        ("Offline", ", ".join((d.get("summary") or {}).get("offline") or [])),
        ("Error", d.get("error")), ("Application", d.get("application_state")),
    ]  # fmt: skip
    width = max(len(k) for k, _ in fields) + 1
    lines = [f"{k + ':':<{width}} {v}" for k, v in fields if v]
    lines.append("Steps:")
    for i, s in enumerate(record.steps, 1):
        lines.append(f"  [{_MARKS.get(s['status'], '?')}] {i:>2}. {s['title']}")
        if s.get("detail"):
            lines.append(f"           {s['detail']}")
    return "\n".join(lines) + "\n"


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load(args)
    cluster = cluster_for(args)
    try:
        record = get_record(cluster, cfg, args.id)
    finally:
        cluster.close()
    if args.output == "json":
        print_json({"id": record.id, **record.data})
    else:
        sys.stdout.write(render_record(record))
    return EXIT_OK
