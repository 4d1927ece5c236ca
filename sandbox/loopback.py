"""One way to run a sandbox HTTP server from a daemon thread, for every loopback server.

The API server, the Slack emulator and Velero's download server all serve a
ThreadingHTTPServer in the background and must stop promptly (a short poll interval:
`shutdown()` waits up to one interval for the serving loop).
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class BackgroundServer:
    """start()/stop() and the base URL of an HTTP server served from a daemon thread."""

    def __init__(self, httpd: ThreadingHTTPServer, name: str, poll_interval: float = 0.02) -> None:
        self.httpd = httpd
        self.name = name
        self.poll_interval = poll_interval
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": self.poll_interval},
            name=self.name, daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread = None
        self.httpd.server_close()
