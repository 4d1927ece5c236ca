"""The `ragbot` command line: one entry point, a subcommand module per area.

Each area module exposes `register(subparsers)` and sets `func` on its parsers; this
module only wires them and runs the chosen one through `run_command`, which owns exit
codes and one-line errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .cli_common import EXIT_USAGE, run_command
from .logs import configure_logging

# Area modules, each with register(subparsers). Imported lazily so one broken area
# (or a missing optional dependency) does not take the whole CLI down.
_AREAS = (
    "bot.cli_config",
    "bot.cli_backup",
    "bot.cli_restore",
    "bot.cli_sandbox",
    "bot.cli_serve",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"ragbot: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ragbot", description="Back up and restore Enterprise RAG through Velero.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _AREAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)  # JSON lines off a terminal; urllib3 kept quiet
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_command(func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
