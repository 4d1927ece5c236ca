"""`ragbot sandbox cluster`: run the loopback cluster in the foreground.

The only place product code reaches into `sandbox/` (as STYLE.md allows), so users can
try every command without a real cluster: it writes DIR/kubeconfig and DIR/config.yaml,
prints one line naming both, and stops cleanly on SIGINT/SIGTERM (saving a snapshot so
the next start carries on where this one stopped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .cli_common import EXIT_OK, CliError, stop_on_signals


def register(sub: Any) -> None:
    sandbox = sub.add_parser("sandbox", help="run the local sandbox (fake cluster, Velero)")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="COMMAND")
    from .cli_sandbox_bot import register_bot  # `ragbot sandbox` alone, send, click, channel

    register_bot(sandbox, sandbox_sub)
    cluster = sandbox_sub.add_parser(
        "cluster", help="start the sandbox cluster in the foreground",
        description="Start a loopback Kubernetes API server with a simulated Velero and an "
        "Enterprise RAG deployment. Writes DIR/kubeconfig and DIR/config.yaml.",
    )
    cluster.add_argument("--dir", type=Path, default=Path(".ragbot-sandbox"),
                         help="where to write kubeconfig, config.yaml and the snapshot")
    cluster.add_argument("--port", type=int, default=0, help="API server port (0: any free one)")
    cluster.add_argument("--velero-seconds", type=float, default=5.0,
                         help="how long a simulated Backup or Restore runs")
    cluster.add_argument("--pod-ready-seconds", type=float, default=1.0,
                         help="how long a new pod takes to become ready")
    cluster.add_argument("--fresh", action="store_true",
                         help="ignore a saved snapshot and start from the seed")
    cluster.add_argument("--rbac", action="store_true",
                         help="authorize service-account tokens against stored RBAC objects")
    cluster.set_defaults(func=run_cluster)


def run_cluster(args: argparse.Namespace) -> int:
    from sandbox.cluster import SandboxCluster

    if args.port < 0 or args.port > 65535:
        raise CliError(f"--port {args.port} is not a port number (0-65535)", 2)
    if args.velero_seconds < 0:
        raise CliError("--velero-seconds must be >= 0", 2)
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = directory / "snapshot.json"
    if args.fresh and snapshot.exists():
        snapshot.unlink()
    try:
        cluster = SandboxCluster(
            port=args.port, velero_seconds=args.velero_seconds,
            pod_ready_seconds=args.pod_ready_seconds, snapshot_path=snapshot, rbac=args.rbac,
        ).start()
    except OSError as exc:
        raise CliError(f"cannot start the sandbox API server on port {args.port}: {exc}") from None
    stop = stop_on_signals()
    try:
        kubeconfig, config = cluster.write_files(directory)
        print(
            f"sandbox cluster serving at {cluster.url}; kubeconfig: {kubeconfig.resolve()} "
            f"config: {config.resolve()}",
            flush=True,
        )
        stop.wait()
    finally:
        cluster.stop()
    sys.stderr.write("sandbox cluster stopped; state saved to " + str(snapshot) + "\n")
    return EXIT_OK
