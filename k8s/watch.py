"""Waiting on the cluster: list once, then watch, until a condition holds or a deadline.

Every wait in ragbot goes through `wait_for`: it keeps a local copy of the watched
collection (an informer in miniature), resumes a broken watch from the last
resourceVersion it saw, lists again on 410 Gone, reconnects with capped backoff when
the connection drops or the server answers 429/5xx, and never sleeps to poll.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .client import Cluster
from .errors import ClusterError, Gone, Timeout, is_transient, translate
from .resources import Resource, _core_method, list_all

log = logging.getLogger("ragbot.k8s.watch")

T = TypeVar("T")
Key = tuple[str, str]


@dataclass
class WatchStats:
    """Counters a caller can read; `listener` hears each restart as it happens.

    The listener gets the counter's name ("reconnects", "relists_after_gone") so bot/
    can feed its metrics without k8s/ importing prometheus.
    """

    lists: int = 0
    watches: int = 0
    reconnects: int = 0
    relists_after_gone: int = 0
    events: int = 0
    listener: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def restarted(self, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        if self.listener is not None:
            try:
                self.listener(what)
            except Exception:  # metrics must never break a watch
                log.exception("watch stats listener failed")


@dataclass
class Collection:
    """The current view of a watched collection, keyed by (namespace, name)."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    resource_version: str = ""

    def replace(self, items: list[dict[str, Any]], rv: str) -> None:
        self.objects = {_key(o): o for o in items}
        self.resource_version = rv

    def apply(self, etype: str, obj: dict[str, Any]) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = str(rv)
        if etype == "DELETED":
            self.objects.pop(_key(obj), None)
        elif etype in ("ADDED", "MODIFIED"):
            self.objects[_key(obj)] = obj

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))


def _key(obj: dict[str, Any]) -> Key:
    m = obj.get("metadata") or {}
    return (str(m.get("namespace") or ""), str(m.get("name") or ""))


def _watch_fn(cluster: Cluster, res: Resource, namespace: str | None) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    if res.group:
        if res.namespaced and namespace:
            return cluster.custom.list_namespaced_custom_object, (res.group, res.version, namespace, res.plural)
        return cluster.custom.list_cluster_custom_object, (res.group, res.version, res.plural)
    if res.namespaced and namespace:
        return _core_method(cluster, "list", res), (namespace,)
    from .resources import _snake

    name = f"list_{_snake(res.kind)}_for_all_namespaces" if res.namespaced else f"list_{_snake(res.kind)}"
    return getattr(cluster.core, name), ()


def _lines(resp: Any) -> Iterator[str]:
    """Split a chunked watch body into lines without waiting for more than one event."""
    buf = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line.decode()
    if buf.strip():
        yield buf.decode()


def wait_for(
    cluster: Cluster,
    res: Resource,
    namespace: str | None,
    condition: Callable[[Collection], T | None],
    *,
    timeout: float,
    what: str,
    label_selector: str = "",
    field_selector: str = "",
    on_change: Callable[[Collection], None] | None = None,
    stats: WatchStats | None = None,
    stop: Callable[[], bool] | None = None,
) -> T:
    """Return condition(collection) as soon as it is not None; Timeout after `timeout` s.

    The condition sees the whole matching collection after the initial list and after
    every event; on_change is called at the same moments (for progress reporting).
    """
    stats = stats or WatchStats()
    deadline = cluster.monotonic() + timeout
    view = Collection()
    need_list = True
    attempt = 0
    while True:
        remaining = deadline - cluster.monotonic()
        if remaining <= 0:
            raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}")
        if stop is not None and stop():
            raise ClusterError(f"stopped while waiting for {what}")
        try:
            if need_list:
                items, rv = list_all(cluster, res, namespace, label_selector=label_selector, field_selector=field_selector)
                stats.lists += 1
                view.replace(items, rv)
                need_list = False
                if on_change:
                    on_change(view)
                result = condition(view)
                if result is not None:
                    return result
            result = _watch_once(cluster, res, namespace, view, condition, min(remaining, 300.0), label_selector, field_selector, on_change, stats, stop)
            if result is not None:
                return result
            attempt = 0
        except Gone:
            stats.restarted("relists_after_gone")
            need_list = True
        except ClusterError as err:
            if not is_transient(err):
                raise
            stats.restarted("reconnects")
            cluster.sleep(min(cluster.retry.delay(attempt, getattr(err, "retry_after", None)), max(0.0, deadline - cluster.monotonic())))
            attempt += 1


def _watch_once(
    cluster: Cluster,
    res: Resource,
    namespace: str | None,
    view: Collection,
    condition: Callable[[Collection], T | None],
    seconds: float,
    label_selector: str,
    field_selector: str,
    on_change: Callable[[Collection], None] | None,
    stats: WatchStats,
    stop: Callable[[], bool] | None,
) -> T | None:
    """One watch request from view.resource_version; None when it ended without result."""
    fn, args = _watch_fn(cluster, res, namespace)
    kw: dict[str, Any] = {
        "watch": True,
        "resource_version": view.resource_version,
        "timeout_seconds": max(1, int(seconds)),
        "allow_watch_bookmarks": True,
        "_preload_content": False,
        "_request_timeout": (10, max(1, int(seconds)) + 30),
    }
    if label_selector:
        kw["label_selector"] = label_selector
    if field_selector:
        kw["field_selector"] = field_selector
    stats.watches += 1
    try:
        resp = fn(*args, **kw)
    except Exception as exc:
        raise translate(exc, what=f"watch {res.qualified}") from None
    try:
        for line in _lines(resp):
            if stop is not None and stop():
                return None
            event = json.loads(line)
            etype = event.get("type")
            obj = event.get("object") or {}
            if etype == "ERROR":
                code = int(obj.get("code") or 0)
                if code == 410:
                    raise Gone(str(obj.get("message", "resource version too old")), status=410)
                raise translate_status(obj, res)
            if etype == "BOOKMARK":
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    view.resource_version = str(rv)
                continue
            if etype not in ("ADDED", "MODIFIED", "DELETED"):
                log.debug("ignoring watch event type %r", etype)
                continue
            stats.events += 1
            view.apply(etype, obj)
            if on_change:
                on_change(view)
            result = condition(view)
            if result is not None:
                return result
    except ClusterError:
        raise
    except Exception as exc:
        raise translate(exc, what=f"watch {res.qualified}") from None
    finally:
        resp.close()
        resp.release_conn()
    return None


def translate_status(status: dict[str, Any], res: Resource) -> ClusterError:
    from kubernetes.client.exceptions import ApiException

    exc = ApiException(status=int(status.get("code") or 500), reason=str(status.get("reason", "")))
    exc.body = json.dumps(status)
    return translate(exc, what=f"watch {res.qualified}")
