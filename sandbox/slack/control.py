"""`/sandbox/…` on the emulator: the channel and the users, for a second terminal.

`ragbot sandbox` runs the emulator, the bot and the fake cluster in one process; the
commands a person types in another terminal (`ragbot sandbox send --as operator
"/ragbackup now"`, `click`, `channel --follow`) are separate processes, so they reach
the running workspace over HTTP:

- `GET /sandbox/channel?channel=&viewer=&since=&wait=` → `{"version", "lines"}`, the
  rendered channel; with `since` equal to the current version it long-polls up to
  `wait` seconds (at most 30) for a change, which is all `--follow` needs;
- `GET /sandbox/messages?channel=` → the stored messages as JSON;
- `GET /sandbox/calls?method=` → the recorded Web API calls;
- `POST /sandbox/command {"as", "text", "channel"?}` and `POST /sandbox/click {"as",
  "message" (ts or "latest"), "button", "confirm"?, "channel"?}` → the delivery, sent
  by the `Sender` attached with the transport the bot uses;
- `POST /sandbox/ratelimit {"method"?, "every_nth"?, "next_n"?, "storm_seconds"?,
  "retry_after"?, "clear"?}` switches 429s.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .render import render_channel

if TYPE_CHECKING:
    from .sender import Sender
    from .workspace import Workspace

MAX_WAIT = 30.0


class Control:
    def __init__(self, workspace: Workspace, sender: Sender | None = None) -> None:
        self.workspace = workspace
        self.sender = sender

    def handle(
        self, verb: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        route = (verb, path.removeprefix("/sandbox/").strip("/"))
        body = body if isinstance(body, dict) else {}
        try:
            if route == ("GET", "channel"):
                return 200, self.channel(query)
            if route == ("GET", "messages"):
                return 200, self.messages(query)
            if route == ("GET", "calls"):
                calls = self.workspace.calls(query.get("method") or None)
                return 200, {"calls": [dataclasses.asdict(c) for c in calls]}
            if route == ("POST", "command"):
                return self._send(lambda s: s.command(body["as"], body["text"], channel=body.get("channel")))
            if route == ("POST", "click"):
                return self._send(
                    lambda s: s.click(
                        body["as"],
                        str(body.get("message") or "latest"),
                        body["button"],
                        channel=body.get("channel"),
                        confirm=bool(body.get("confirm", True)),
                    )
                )
            if route == ("POST", "ratelimit"):
                return 200, self.ratelimit(body)
        except KeyError as exc:
            return 400, {"error": str(exc.args[0]) if exc.args else "missing field"}
        return 404, {"error": f"no route {verb} {path}"}

    def channel(self, query: dict[str, str]) -> dict[str, Any]:
        ws = self.workspace
        channel = query.get("channel") or ws.directory.channels[0].id
        if query.get("since"):
            wait = min(float(query.get("wait") or 0), MAX_WAIT)
            ws.wait_change(int(query["since"]), wait)
        version = ws.version
        lines = render_channel(ws, channel, viewer=query.get("viewer") or None)
        return {"version": version, "channel": channel, "lines": lines}

    def messages(self, query: dict[str, str]) -> dict[str, Any]:
        ws = self.workspace
        channel = query.get("channel") or ws.directory.channels[0].id
        out = []
        for m in ws.messages(channel, include_deleted=True):
            item = m.to_api(ws.team.id)
            item.update(
                ephemeral_to=m.ephemeral_to, deleted=m.deleted, via=m.via, edits=len(m.history)
            )
            out.append(item)
        return {"version": ws.version, "channel": channel, "messages": out}

    def ratelimit(self, body: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        method = body.get("method") or None
        retry_after = int(body.get("retry_after", 1))
        if body.get("clear"):
            ws.clear_rate_limits()
        elif body.get("storm_seconds"):
            ws.rate_limit_storm(float(body["storm_seconds"]), method, retry_after=retry_after)
        else:
            every = body.get("every_nth")
            ws.set_rate_limit(
                method,
                every_nth=int(every) if every else None,
                next_n=int(body.get("next_n", 0)),
                retry_after=retry_after,
            )
        return {"ok": True}

    def _send(self, action: Any) -> tuple[int, dict[str, Any]]:
        if self.sender is None:
            return 409, {"error": "no bot attached to the sandbox Slack yet"}
        delivery = action(self.sender)
        return 200, dataclasses.asdict(delivery) | {"acked": delivery.acked}
