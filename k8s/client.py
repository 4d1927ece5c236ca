"""The cluster handle every operation takes: API objects plus retry and clock policy.

No module-level client: a handle is built from a kubeconfig or the in-cluster service
account and passed explicitly, so tests, the CLI and the bot can talk to different
clusters in one process. Calls go through `call`/`raw`, which retry what the server
asked us to retry (429 with Retry-After, 5xx, dropped connections) with capped backoff
and turn everything else into the error tree of `k8s.errors`.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.config.config_exception import ConfigException

from .errors import ClusterError, is_transient, translate

T = TypeVar("T")

DEFAULT_REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), 60.0)
        return min(self.max_delay, self.base_delay * (2**attempt)) * (0.5 + random.random() / 2)


@dataclass
class Cluster:
    """An API client with the typed APIs ragbot uses and its retry/clock policy."""

    api_client: kclient.ApiClient
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    source: str = ""
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    _apis: dict[str, Any] = field(default_factory=dict)

    @property
    def core(self) -> kclient.CoreV1Api:
        return self._api("core", kclient.CoreV1Api)

    @property
    def apps(self) -> kclient.AppsV1Api:
        return self._api("apps", kclient.AppsV1Api)

    @property
    def custom(self) -> kclient.CustomObjectsApi:
        return self._api("custom", kclient.CustomObjectsApi)

    @property
    def coordination(self) -> kclient.CoordinationV1Api:
        return self._api("coordination", kclient.CoordinationV1Api)

    @property
    def apiext(self) -> kclient.ApiextensionsV1Api:
        return self._api("apiext", kclient.ApiextensionsV1Api)

    @property
    def storage(self) -> kclient.StorageV1Api:
        return self._api("storage", kclient.StorageV1Api)

    def _api(self, key: str, factory: Callable[[kclient.ApiClient], Any]) -> Any:
        api = self._apis.get(key)
        if api is None:
            api = self._apis[key] = factory(self.api_client)
        return api

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call fn, retrying transient failures; raise a ClusterError naming `what`."""
        kwargs.setdefault("_request_timeout", self.request_timeout)
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                err = translate(exc, what=what)
                if not is_transient(err) or attempt + 1 >= self.retry.attempts:
                    raise err from None
                self.sleep(self.retry.delay(attempt, getattr(err, "retry_after", None)))
                attempt += 1

    def raw(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Like call, but returns the response JSON as a dict (no model conversion).

        Typed core APIs deserialise into models whose field names differ from the wire;
        raw dicts keep one shape for built-ins and custom resources alike, and are faster.
        """
        kwargs["_preload_content"] = False
        resp = self.call(what, fn, *args, **kwargs)
        try:
            data = resp.data
        finally:
            resp.release_conn()
        try:
            out = json.loads(data) if data else {}
        except ValueError as exc:
            raise ClusterError(f"{what}: the API server sent something that is not JSON") from exc
        if not isinstance(out, dict):
            raise ClusterError(f"{what}: unexpected answer from the API server")
        return out

    def close(self) -> None:
        self.api_client.close()


def from_kubeconfig(path: str | Path | None = None, *, context: str | None = None) -> Cluster:
    cfg = kclient.Configuration()
    try:
        kconfig.load_kube_config(
            config_file=str(path) if path else None, context=context, client_configuration=cfg,
            persist_config=False,
        )
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        where = str(path) if path else "the default kubeconfig"
        raise ClusterError(f"cannot load kubeconfig {where}: {exc}") from None
    cfg.retries = 0  # Cluster.call retries with backoff; urllib3's own would multiply it
    return Cluster(kclient.ApiClient(cfg), source=str(path or "kubeconfig"))


def in_cluster() -> Cluster:
    cfg = kclient.Configuration()
    try:
        kconfig.load_incluster_config(client_configuration=cfg)
    except ConfigException as exc:
        raise ClusterError(f"not running in a cluster and no kubeconfig given: {exc}") from None
    cfg.retries = 0
    return Cluster(kclient.ApiClient(cfg), source="in-cluster service account")


def connect(kubeconfig: str | Path | None = None, environ: dict[str, str] | None = None) -> Cluster:
    """`--kubeconfig FILE`, else `$KUBECONFIG`, else the in-cluster service account."""
    env = os.environ if environ is None else environ
    path = kubeconfig or env.get("KUBECONFIG")
    if path:
        first = str(path).split(os.pathsep)[0]
        if not Path(first).exists():
            raise ClusterError(f"kubeconfig {first} does not exist")
        return from_kubeconfig(first)
    if env.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return from_kubeconfig(default)
    raise ClusterError(
        "no cluster to talk to: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod"
    )
