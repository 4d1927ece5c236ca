"""What every `ragbot` subcommand shares: loading config, connecting, exit codes, output.

Exit codes: 0 success, 1 the operation failed, 2 usage or configuration error. Errors
are one line on stderr, never a traceback: subcommands raise `CliError` (or let a
`ConfigError`/`ClusterError` escape) and `run_command` turns it into that line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from config.loader import ConfigError, config_paths_from_env, load_config
from config.models import Config
from k8s.client import Cluster, connect
from k8s.errors import ClusterError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report as one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def add_config_args(parser: argparse.ArgumentParser, *, kubeconfig: bool = True) -> None:
    parser.add_argument(
        "--config", action="append", type=Path, default=None, metavar="FILE",
        help="config file (repeatable, later files win; default: $RAGBOT_CONFIG)",
    )
    if kubeconfig:
        parser.add_argument(
            "--kubeconfig", type=Path, default=None, metavar="FILE",
            help="kubeconfig (default: $KUBECONFIG, then the in-cluster service account)",
        )


def add_output_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text",
                        help="output format (json for scripts)")


def load(args: argparse.Namespace) -> Config:
    paths = args.config or list(config_paths_from_env())
    return load_config(paths)


def cluster_for(args: argparse.Namespace) -> Cluster:
    return connect(getattr(args, "kubeconfig", None))


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: foreground commands wait on it, then clean up."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def print_json(data: Any, out: TextIO | None = None) -> None:
    json.dump(data, out or sys.stdout, indent=2, sort_keys=False, default=str)
    (out or sys.stdout).write("\n")


def is_terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand, mapping every expected failure to one stderr line + exit code."""
    try:
        return func(args)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except ClusterError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _error(message: str) -> None:
    lines = message.strip().splitlines() or ["failed"]
    # Config errors list every problem; keep them, each on its own line, prefixed once.
    sys.stderr.write("ragbot: error: " + lines[0] + "\n")
    for line in lines[1:]:
        sys.stderr.write("  " + line + "\n")
