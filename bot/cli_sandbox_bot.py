"""`ragbot sandbox` (all-in-one) and `ragbot sandbox send|click|channel`.

`ragbot sandbox` alone starts the fake cluster, the Slack emulator and the bot, wired
together in this process (the bot is the same `BotServer` as `ragbot serve`, pointed at
the emulator), writes DIR/kubeconfig, DIR/config.yaml and DIR/slack.json (where the
emulator listens) and prints how to drive it. `send`, `click` and `channel` run in a
second terminal: they read DIR/slack.json and act through the emulator's `/sandbox/…`
endpoints, which sign and deliver requests to the bot exactly as Slack would.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .cli_common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, stop_on_signals

DEFAULT_DIR = Path(".ragbot-sandbox")
SLACK_FILE = "slack.json"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def register_bot(sandbox: argparse.ArgumentParser, sub: Any) -> None:
    sandbox.description = ("With no COMMAND: start the fake cluster, the Slack emulator and the "
                           "bot together, and print how to drive them from a second terminal.")  # fmt: skip
    sandbox.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where to write the files")
    sandbox.add_argument("--velero-seconds", type=float, default=5.0,
                         help="how long a simulated Backup or Restore runs")  # fmt: skip
    sandbox.add_argument("--pod-ready-seconds", type=float, default=1.0)
    sandbox.add_argument("--socket-mode", action="store_true",
                         help="connect the bot in Socket Mode (default: HTTP mode)")  # fmt: skip
    sandbox.add_argument("--fresh", action="store_true", help="ignore a saved snapshot")
    sandbox.set_defaults(func=run_all)

    send = sub.add_parser("send", help="send a slash command as a sandbox user")
    send.add_argument("--as", dest="user", default="operator",
                      help="operator, approver, approver2 or viewer (default operator)")  # fmt: skip
    send.add_argument("line", help='e.g. "/ragbackup now before the upgrade"')
    send.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    send.set_defaults(func=run_send)

    click = sub.add_parser("click", help="press a button as a sandbox user")
    click.add_argument("--as", dest="user", default="approver")
    click.add_argument("message", help="the message's ts, or `latest` (newest with buttons)")
    click.add_argument("button", help="the button's label (Approve, Reject) or action id")
    click.add_argument("--deny", action="store_true", help="answer the confirm dialog with Cancel")
    click.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    click.set_defaults(func=run_click)

    channel = sub.add_parser("channel", help="print the sandbox channel as text")
    channel.add_argument("--follow", "-f", action="store_true", help="print again on every change")
    channel.add_argument("--as", dest="user", default=None, help="show that user's ephemeral messages only")
    channel.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    channel.set_defaults(func=run_channel)


# ----- the all-in-one sandbox ------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> int:
    from config.loader import load_config
    from k8s.client import from_kubeconfig
    from sandbox.cluster import SandboxCluster
    from sandbox.slack import SlackEmulator

    from .serve import BotServer, Secrets

    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = directory / "snapshot.json"
    if args.fresh and snapshot.exists():
        snapshot.unlink()
    cluster = SandboxCluster(velero_seconds=args.velero_seconds, snapshot_path=snapshot,
                             pod_ready_seconds=args.pod_ready_seconds).start()  # fmt: skip
    emulator = SlackEmulator().start()
    bot = None
    try:
        kubeconfig, config = cluster.write_files(directory)
        ws = emulator.workspace
        secrets = Secrets(ws.bot_token, ws.app_token if args.socket_mode else None,
                          None if args.socket_mode else ws.signing_secret)  # fmt: skip
        kube = from_kubeconfig(kubeconfig)
        bot = BotServer(load_config([config]), kube, secrets, slack_api_url=emulator.api_url,
                        host="127.0.0.1", port=0).start()  # fmt: skip
        if args.socket_mode:
            emulator.socket_mode.wait_connections(1)
            transport: Any = emulator.socket_transport()
        else:
            transport = emulator.http_transport(bot.url)
        emulator.sender(transport)
        (directory / SLACK_FILE).write_text(json.dumps({"url": emulator.url, "api_url": emulator.api_url,
                                                        "bot_url": bot.url}, indent=1))  # fmt: skip
        d = "" if directory == DEFAULT_DIR else f" --dir {directory}"
        mode = "Socket Mode" if args.socket_mode else f"HTTP mode at {bot.url}"
        print(f"ragbot sandbox running: cluster {cluster.url}, Slack emulator {emulator.url}, "
              f"bot in {mode}\n"
              f"files: {kubeconfig.resolve()} {config.resolve()}\n\n"
              "From another terminal:\n"
              f"  ragbot sandbox channel --follow{d}\n"
              f'  ragbot sandbox send{d} --as operator "/ragbackup now first backup"\n'
              f'  ragbot sandbox send{d} --as operator "/ragrestore latest trying it out"\n'
              f"  ragbot sandbox click{d} --as approver latest Approve\n"
              "Users: operator (backup, restore), approver and approver2 (approve), viewer (none).\n"
              "Ctrl-C stops everything.", flush=True)  # fmt: skip
        stop_on_signals().wait()
    finally:
        if bot is not None:
            bot.stop()
        emulator.stop()
        cluster.stop()
    sys.stderr.write(f"sandbox stopped; cluster state saved to {snapshot}\n")
    return EXIT_OK


# ----- the second terminal ---------------------------------------------------------------------


def _base(directory: Path) -> str:
    path = directory / SLACK_FILE
    try:
        return str(json.loads(path.read_text())["url"])
    except (OSError, ValueError, KeyError):
        raise CliError(f"no running sandbox found ({path} is missing): start `ragbot sandbox` "
                       "first, with the same --dir", EXIT_USAGE) from None  # fmt: skip


def _request(directory: Path, path: str, body: dict[str, Any] | None = None,
             timeout: float = 40.0) -> dict[str, Any]:  # fmt: skip
    url = _base(directory) + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with _NO_PROXY.open(req, timeout=timeout) as resp:
            out: dict[str, Any] = json.loads(resp.read() or b"{}")
            return out
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")
        raise CliError(f"the sandbox refused: {detail}") from None
    except OSError as err:
        raise CliError(f"cannot reach the sandbox at {url}: {err} (is `ragbot sandbox` running?)") from None


def _show_ack(result: dict[str, Any]) -> int:
    if not result.get("sent", True):
        print("not sent (the confirm dialog was cancelled)")
        return EXIT_OK
    seconds = float(result.get("seconds") or 0)
    if not result.get("acked"):
        print(f"not acknowledged: {result.get('error') or result.get('status')}")
        return EXIT_FAILED
    print(f"acknowledged in {seconds * 1000:.0f} ms")
    ack = result.get("ack") or {}
    if isinstance(ack, dict) and ack.get("text"):
        print(ack["text"])
    return EXIT_OK


def run_send(args: argparse.Namespace) -> int:
    return _show_ack(_request(args.dir, "/sandbox/command", {"as": args.user, "text": args.line}))


def run_click(args: argparse.Namespace) -> int:
    body = {"as": args.user, "message": args.message, "button": args.button, "confirm": not args.deny}
    return _show_ack(_request(args.dir, "/sandbox/click", body))


def run_channel(args: argparse.Namespace) -> int:
    query: dict[str, str] = {"viewer": args.user} if args.user else {}
    state = _request(args.dir, "/sandbox/channel?" + urllib.parse.urlencode(query))
    print("\n".join(state.get("lines") or ["(the channel is empty)"]), flush=True)
    while args.follow:
        q = dict(query, since=str(state["version"]), wait="25")
        new = _request(args.dir, "/sandbox/channel?" + urllib.parse.urlencode(q))
        if new["version"] != state["version"] and new.get("lines") != state.get("lines"):
            print(f"\n----- version {new['version']} -----", flush=True)
            print("\n".join(new.get("lines") or []), flush=True)
        state = new
    return EXIT_OK
