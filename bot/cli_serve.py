"""`ragbot serve`: run the Slack bot in the foreground until SIGTERM or SIGINT.

Configuration and secrets are checked before anything connects, so a missing token stops
the process at start with one clear line and exit code 2 (the way a Kubernetes
Deployment shows it in `kubectl logs`). Stopping leaves running restores `running` in
the cluster; the next process resumes them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from .cli_common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_config_args,
    cluster_for,
    load,
    stop_on_signals,
)

log = logging.getLogger("ragbot.serve")


def register(sub: Any) -> None:
    serve = sub.add_parser(
        "serve", help="run the Slack bot",
        description="Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP "
        "mode on --port (POST /slack/events, checked with SLACK_SIGNING_SECRET). "
        "SLACK_BOT_TOKEN is required; RAGBOT_SLACK_API_URL overrides Slack's Web API URL.",
    )  # fmt: skip
    add_config_args(serve)
    serve.add_argument("--port", type=int, default=3000, help="HTTP mode port (default 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP mode address (default all)")
    serve.add_argument("--ops-port", type=int, default=None,
                       help="port of /healthz, /readyz and /metrics (default ragbot.ops_port, 8080)")
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from .serve import BotServer, MissingSecret, load_secrets

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port number (0-65535)", EXIT_USAGE)
    cfg = load(args)
    ops_port = cfg.ragbot.ops_port if args.ops_port is None else args.ops_port
    if not 0 <= ops_port <= 65535:
        raise CliError(f"--ops-port {ops_port} is not a port number (0-65535)", EXIT_USAGE)
    if not args.verbose:
        logging.getLogger("ragbot").setLevel(logging.INFO)  # a service logs what it does
    try:
        secrets = load_secrets(cfg)
    except MissingSecret as err:
        raise CliError(str(err), EXIT_USAGE) from None
    if not cfg.ragbot.slack.channel:
        log.warning("ragbot.slack.channel is empty: progress and announcements are not posted")
    cluster = cluster_for(args)
    stop = stop_on_signals()
    try:
        server = BotServer(cfg, cluster, secrets, host=args.host, port=args.port,
                           ops_port=ops_port).start()
    except (SlackApiError, SlackClientError) as err:
        cluster.close()
        raise CliError(f"cannot connect to Slack: {err}") from None
    except OSError as err:
        cluster.close()
        raise CliError(f"cannot serve on {args.host}:{args.port}: {err}") from None
    mode = "Socket Mode" if secrets.socket_mode else f"HTTP mode at {server.url}"
    sys.stderr.write(f"ragbot serving Slack in {mode}\n")
    sys.stderr.flush()
    try:
        stop.wait()
    finally:
        server.stop()
        cluster.close()
    return EXIT_OK
