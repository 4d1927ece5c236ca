"""Watch streaming: chunked JSON lines, bookmarks, timeouts, drops and 410 as ERROR.

One thread per watch drains its Store watcher into the connection; a bookmark is sent
only when nothing is pending, so it never promises a resourceVersion ahead of an event.
"""

from __future__ import annotations

import contextlib
import json
import queue
import time
from typing import TYPE_CHECKING, Any

from . import errors, tables

if TYPE_CHECKING:
    pass

from .handler_base import _TRUE, HandlerBase, Route, _int_param, _peer_closed


class WatchStreaming(HandlerBase):
    def _verb_watch(self, route: Route, query: dict[str, str]) -> None:
        if route.name:  # GET .../{name}?watch=true watches that one object, as upstream
            query = dict(query)
            query["fieldSelector"] = ",".join(
                filter(None, (query.get("fieldSelector"), f"metadata.name={route.name}"))
            )
        from .verbs import check_list_options

        check_list_options(query, watch=True)
        labels, fields = self._selectors(route.rt, query)
        rv = query.get("resourceVersion", "")
        api = self.api
        initial = query.get("sendInitialEvents")
        if initial is not None:
            # sendInitialEvents=true: the state (at least as new as rv) as ADDED events,
            # then the initial-events-end bookmark; =false: only changes after rv (or now).
            if initial in _TRUE:
                rv = ""
            elif rv in ("", "0"):
                rv = str(api.store.resource_version)
        gone = rv not in ("", "0") and api.faults.take_watch_gone(self.path)
        timeout = float(_int_param(query, "timeoutSeconds") or api.max_watch_seconds)
        bookmarks = query.get("allowWatchBookmarks") in _TRUE
        try:
            if gone:
                raise errors.gone(f"too old resource version: {rv} ({api.store.resource_version})")
            watcher = api.store.watch(
                route.rt,
                route.namespace,
                labels,
                fields,
                rv,
                initial_events_end=initial in _TRUE,
            )
        except errors.ApiError as exc:
            if exc.code != 410:
                raise
            # A real apiserver answers 200 and sends the 410 as an ERROR event.
            self._start_stream()
            self._chunk({"type": "ERROR", "object": exc.status})
            self._end_stream()
            return
        self.watcher = watcher
        with api._lock:
            api._open_watches.add(self)
        try:
            self._stream(route, watcher, time.monotonic() + timeout, bookmarks, query)
        finally:
            with api._lock:
                api._open_watches.discard(self)
            api.store.stop_watch(watcher)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stream(
        self, route: Route, watcher: Any, deadline: float, bookmarks: bool, query: dict[str, str]
    ) -> None:
        api = self.api
        table_opts = tables.options(self.headers.get("Accept", ""), query)
        self._start_stream()
        sent = 0
        headers_sent = False  # a Table watch carries column definitions once (NoHeaders)
        next_bookmark = time.monotonic() + api.bookmark_interval
        drop_after = api.faults.get().watch_drop_after_events
        while not self.abort:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = min(deadline, next_bookmark if bookmarks else deadline) - now
            try:
                item = watcher.events.get(timeout=max(0.0, min(wait, 1.0)))
            except queue.Empty:
                if _peer_closed(self.connection):
                    # The client went away (Watch.stop, a killed process): free the watcher
                    # now rather than at the next event or after max_watch_seconds.
                    self.close_connection = True
                    return
                if bookmarks and time.monotonic() >= next_bookmark:
                    headers_sent = self._bookmark(route, table_opts, headers_sent) or headers_sent
                    next_bookmark = time.monotonic() + api.bookmark_interval
                continue
            if item is None or self.abort:
                break
            etype, obj = item
            if etype == "BOOKMARK":  # initial-events-end, queued by the store
                obj = {"kind": route.rt.kind, "apiVersion": route.rt.api_version, **obj}
                if table_opts is not None:
                    meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                    obj = tables.table(route.rt, [obj], meta, table_opts, no_headers=headers_sent)
                    headers_sent = True
                self._chunk({"type": etype, "object": obj})
                continue
            if table_opts is not None:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                obj = tables.table(route.rt, [obj], meta, table_opts, no_headers=headers_sent)
                headers_sent = True
            self._chunk({"type": etype, "object": obj})
            sent += 1
            if drop_after and sent >= drop_after:
                self.abort = True
        if self.abort:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        self._end_stream()

    def _bookmark(self, route: Route, table_opts: Any = None, no_headers: bool = False) -> bool:
        """Send a BOOKMARK unless an event is pending; True when one was sent.

        Under the store lock (writes emit under it), an empty queue means every event up
        to the current resourceVersion has been sent, so the bookmark never runs ahead of
        an event still to come (a client resuming from it would miss that event).
        """
        store = self.api.store
        with store.lock:
            if self.watcher is not None and not self.watcher.events.empty():
                return False
            rv = str(store.resource_version)
        obj: dict[str, Any] = {
            "kind": route.rt.kind,
            "apiVersion": route.rt.api_version,
            "metadata": {"resourceVersion": rv},
        }
        if table_opts is not None:  # the apiserver converts bookmarks like any object
            obj = tables.table(
                route.rt, [obj], {"resourceVersion": rv}, table_opts, no_headers=no_headers
            )
        self._chunk({"type": "BOOKMARK", "object": obj})
        return True
