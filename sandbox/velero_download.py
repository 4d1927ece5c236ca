"""DownloadRequests and the loopback "S3" that serves their pre-signed URLs.

`velero backup describe --details` and ragbot read a backup's resource list the same
way: create a DownloadRequest, wait for `status.downloadURL`, GET it and gunzip. Real
Velero hands out a pre-signed URL of the BSL's object store valid for 10 minutes; here
a ThreadingHTTPServer on 127.0.0.1:0 plays the bucket, with S3's answers: 200 with the
stored bytes, 403 AccessDenied once the URL has expired, 403 SignatureDoesNotMatch for
an unknown signature, 404 NoSuchKey for a signed URL whose object does not exist
(S3 signs URLs without checking that the key exists, and so does this).
The reconcile follows download_request_controller.go of v1.16.2.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .apiserver.objects import parse_rfc3339
from .loopback import BackgroundServer
from .velero_common import DOWNLOAD_URL_TTL, stamp
from .velero_objectstore import Layout, ObjectStore

if TYPE_CHECKING:
    from .velero import VeleroSimulator

log = logging.getLogger("sandbox.velero")

_RESTORE_KINDS = {
    "RestoreLog",
    "RestoreResults",
    "RestoreResourceList",
    "RestoreItemOperations",
    "RestoreVolumeInfo",
}


class DownloadServer:
    """Pre-signed GET URLs over an ObjectStore, answered the way S3 answers them."""

    def __init__(self, objects: ObjectStore, clock: Callable[[], float] = time.time) -> None:
        self.objects = objects
        self.clock = clock
        self._signed: dict[str, tuple[str, str, str, float]] = {}  # sig -> bsl, bucket, key, expiry
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.download = self  # type: ignore[attr-defined]
        self._background = BackgroundServer(self._httpd, "velero-download", poll_interval=0.05)

    @property
    def base_url(self) -> str:
        return self._background.url

    def start(self) -> None:
        self._background.start()

    def stop(self) -> None:
        self._background.stop()

    def sign(self, bsl: str, bucket: str, key: str, ttl: float = DOWNLOAD_URL_TTL) -> str:
        """A URL shaped like an AWS SigV4 pre-signed GET, valid for `ttl` seconds."""
        now = self.clock()
        sig = secrets.token_hex(32)
        with self._lock:
            self._signed = {s: v for s, v in self._signed.items() if v[3] > now - 3600}
            self._signed[sig] = (bsl, bucket, key, now + ttl)
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        query = (
            f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ragbot-sandbox%2F{date[:8]}"
            f"%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={int(ttl)}"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}"
        )
        return f"{self.base_url}/{quote(bucket)}/{quote(key)}?{query}"

    def lookup(self, path: str, query: str) -> tuple[int, str, bytes]:
        """(HTTP status, S3 error code or "", body) for a GET."""
        sig = (parse_qs(query).get("X-Amz-Signature") or [""])[0]
        with self._lock:
            entry = self._signed.get(sig)
        if entry is None or path.lstrip("/") != f"{entry[1]}/{entry[2]}":
            return 403, "SignatureDoesNotMatch", _s3_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        bsl, _, key, expiry = entry
        if self.clock() > expiry:
            return 403, "AccessDenied", _s3_error("AccessDenied", "Request has expired")
        data = self.objects.read(bsl, key)
        if data is None:
            return 404, "NoSuchKey", _s3_error("NoSuchKey", "The specified key does not exist.")
        return 200, "", data


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("download server: connection from %s ended abruptly", client_address)


def _s3_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("download " + format, *args)

    def do_GET(self) -> None:
        server: DownloadServer = self.server.download  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        code, error, body = server.lookup(unquote(parts.path), parts.query)
        self.send_response(code)
        self.send_header(
            "Content-Type", "application/xml" if error else "application/octet-stream"
        )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()


# ----- the DownloadRequest controller ------------------------------------------------------


def reconcile_download_request(sim: VeleroSimulator, name: str) -> None:
    """downloadRequestReconciler.Reconcile, one request by name."""
    rt = sim.rt("downloadrequests")
    obj = sim.get(rt, name)
    if obj is None:
        return
    status = obj.get("status") or {}
    now = sim.clock()
    expiration = status.get("expiration")
    if status and expiration:
        if parse_rfc3339(expiration) < now:
            sim.delete(rt, name)  # expired, whatever its phase
            return
        if status.get("phase") == "Processed":
            return
    if status.get("phase") not in (None, "", "New"):
        return
    target = (obj.get("spec") or {}).get("target") or {}
    kind, target_name = target.get("kind", ""), target.get("name", "")
    # Already answered "not found" once: Velero only looks again on a new event.
    if expiration and sim.get(sim.rt("backups"), _backup_of(sim, kind, target_name) or "") is None:
        return

    def expire_only(cur: dict[str, Any]) -> None:
        cur.setdefault("status", {})["expiration"] = stamp(now + DOWNLOAD_URL_TTL)

    backup_name = _backup_of(sim, kind, target_name)
    backup = sim.get(sim.rt("backups"), backup_name) if backup_name else None
    bsl = sim.bsl((backup.get("spec") or {}).get("storageLocation", "")) if backup else None
    key = None
    if bsl is not None:
        layout = Layout(((bsl.get("spec") or {}).get("objectStorage") or {}).get("prefix", ""))
        key = layout.download_key(kind, target_name)
    if backup is None or bsl is None or key is None:
        # Target or its BSL not found (logged, not retried), or an unsupported kind:
        # the deferred patch still writes the expiration, and no URL.
        sim.patch(rt, name, expire_only)
        return
    bucket = ((bsl.get("spec") or {}).get("objectStorage") or {}).get("bucket", "velero")
    url = sim.downloads.sign(bsl["metadata"]["name"], bucket, key)

    def processed(cur: dict[str, Any]) -> None:
        st = cur.setdefault("status", {})
        st["downloadURL"] = url
        st["phase"] = "Processed"
        st["expiration"] = stamp(now + DOWNLOAD_URL_TTL)

    sim.patch(rt, name, processed)


def _backup_of(sim: VeleroSimulator, kind: str, target_name: str) -> str | None:
    if kind not in _RESTORE_KINDS:
        return target_name
    restore = sim.get(sim.rt("restores"), target_name)
    if restore is None:
        return None
    return (restore.get("spec") or {}).get("backupName") or None


def expired_download_requests(sim: VeleroSimulator) -> list[str]:
    """Names the periodic enqueue source would hand to the reconciler (expired ones)."""
    now = sim.clock()
    out = []
    for obj in sim.list(sim.rt("downloadrequests")):
        exp = (obj.get("status") or {}).get("expiration")
        if exp and parse_rfc3339(exp) < now:
            out.append(obj["metadata"]["name"])
    return out
