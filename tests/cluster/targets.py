"""One cluster for the cluster-side tests, whichever it is: the sandbox or upstream.

A `Target` is what a test needs to drive ragbot against a cluster and to judge the
result from outside: ragbot's kubeconfig (the ServiceAccount `ragbot/ragbot` holding
exactly the RBAC of `k8s.permissions.render_roles`, so the cluster's own authorizer
judges the grant), the config file, an admin client for setting up and checking, and
the keys Velero wrote into the backup bucket.

The sandbox target is a fresh `SandboxCluster(rbac=True)` per test. The upstream target
is one stack per session (starting it takes ~12 s and a GB of memory), so tests on it
must leave it usable: unique names, no assumptions about what other tests created.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from config.loader import load_config
from config.models import Config
from k8s.permissions import render_roles

SA_NAMESPACE = "ragbot"
SA_NAME = "ragbot"
SA_USER = f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"
#: Velero's bucket on both clusters (the seed's BackupStorageLocation `default`).
BSL = "default"


@dataclass
class Target:
    """A cluster ragbot runs against, plus an outside view of it."""

    kind: str  # "sandbox" | "upstream"
    kubeconfig: Path  # ragbot's ServiceAccount
    admin_kubeconfig: Path
    config: Path
    cfg: Config
    admin_client: Callable[[], client.ApiClient]
    bucket_keys: Callable[[str], list[str]]  # object keys under a prefix of the bucket
    handle: Any  # SandboxCluster or tests.upstream.cluster.Upstream
    token_for: Callable[[str], str]  # a bearer token of ServiceAccount ragbot/<name>

    @property
    def args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig), "--config", str(self.config)]

    def kubeconfig_as(self, service_account: str) -> Path:
        """A kubeconfig for ServiceAccount ragbot/<name> (created if needed, no grants)."""
        with self.admin() as api:
            try:
                client.CoreV1Api(api).create_namespaced_service_account(
                    SA_NAMESPACE, {"metadata": {"name": service_account}}
                )
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
        path = self.kubeconfig.with_name(f"{service_account}.kubeconfig")
        return token_kubeconfig(self.admin_kubeconfig, self.token_for(service_account), path)

    @contextlib.contextmanager
    def admin(self) -> Iterator[client.ApiClient]:
        api = self.admin_client()
        try:
            yield api
        finally:
            api.close()


def grant(api: client.ApiClient, cfg: Config) -> None:
    """As the admin: ServiceAccount ragbot/ragbot and every object of render_roles(cfg).

    The same objects the chart installs (a chart test asserts the equality), created
    through the typed API so both clusters see the same requests. Idempotent.
    """
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    creators = {
        "Role": lambda o: rbac.create_namespaced_role(o["metadata"]["namespace"], o),
        "RoleBinding": lambda o: rbac.create_namespaced_role_binding(o["metadata"]["namespace"], o),
        "ClusterRole": rbac.create_cluster_role,
        "ClusterRoleBinding": rbac.create_cluster_role_binding,
    }
    calls: list[Callable[[], Any]] = [
        lambda: core.create_namespaced_service_account(SA_NAMESPACE, {"metadata": {"name": SA_NAME}})
    ]
    calls += [lambda o=obj: creators[o["kind"]](o) for obj in render_roles(cfg)]
    for call in calls:
        try:
            call()
        except client.ApiException as exc:
            if exc.status != 409:
                raise


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """A copy of the admin kubeconfig's cluster with a bearer token as the only credential."""
    src = yaml.safe_load(admin_kubeconfig.read_text())
    ctx = next(c for c in src["contexts"] if c["name"] == src["current-context"])["context"]
    cluster = next(c for c in src["clusters"] if c["name"] == ctx["cluster"])["cluster"]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "target", "cluster": cluster}],
        "users": [{"name": SA_USER, "user": {"token": token}}],
        "contexts": [
            {"name": "target", "context": {"cluster": "target", "user": SA_USER, "namespace": "velero"}}
        ],
        "current-context": "target",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@contextlib.contextmanager
def sandbox_target(directory: Path, **sandbox_kwargs: Any) -> Iterator[Target]:
    """A fresh seeded SandboxCluster with RBAC on; ragbot runs as its ServiceAccount."""
    from sandbox.cluster import SandboxCluster

    sandbox_kwargs.setdefault("velero_seconds", 0.3)
    sandbox_kwargs.setdefault("pod_ready_seconds", 0.05)
    sim = SandboxCluster(rbac=True, **sandbox_kwargs).start()
    try:
        admin_kubeconfig, config = sim.write_files(directory)
        kubeconfig, _ = sim.write_files(directory / "sa", token=SA_USER)
        cfg = load_config([config])
        api = sim.api_client()
        try:
            grant(api, cfg)
        finally:
            api.close()

        def keys(prefix: str) -> list[str]:
            velero = sim.velero
            return [] if velero is None else velero.objects.keys(BSL, prefix)

        def token_for(name: str) -> str:
            return f"system:serviceaccount:{SA_NAMESPACE}:{name}"  # the sandbox's tokens

        yield Target("sandbox", kubeconfig, admin_kubeconfig, config, cfg, sim.api_client, keys,
                     sim, token_for)  # fmt: skip
    finally:
        sim.stop()


def upstream_target(up: Any, directory: Path) -> Target:
    """ragbot's ServiceAccount on a running upstream stack, with a TokenRequest token."""
    from kubernetes import config as kube_config

    admin_kubeconfig, config = up.kubeconfig, up.config
    cfg = load_config([config])

    def admin_client() -> client.ApiClient:
        return kube_config.new_client_from_config(str(admin_kubeconfig))

    def token_for(name: str) -> str:
        api = admin_client()
        try:
            request = {"spec": {"expirationSeconds": 24 * 3600}}
            return str(client.CoreV1Api(api).create_namespaced_service_account_token(
                name, SA_NAMESPACE, request
            ).status.token)  # fmt: skip
        finally:
            api.close()

    api = admin_client()
    try:
        grant(api, cfg)
    finally:
        api.close()
    kubeconfig = token_kubeconfig(admin_kubeconfig, token_for(SA_NAME), directory / "ragbot.kubeconfig")

    def keys(prefix: str) -> list[str]:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=up.s3_url,
            region_name="us-east-1",
            aws_access_key_id="ragbot-sandbox",
            aws_secret_access_key="ragbot-sandbox",
        )
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="velero", Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    return Target("upstream", kubeconfig, admin_kubeconfig, config, cfg, admin_client, keys, up,
                  token_for)  # fmt: skip

