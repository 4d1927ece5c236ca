"""`ragbot config show`: the effective configuration, secrets redacted."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from config.render import render_effective

from .cli_common import EXIT_OK, add_config_args, load


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="COMMAND")
    show = config_sub.add_parser("show", help="print the effective configuration")
    add_config_args(show, kubeconfig=False)
    show.set_defaults(func=show_config)


def show_config(args: argparse.Namespace) -> int:
    sys.stdout.write(render_effective(load(args)))
    return EXIT_OK
