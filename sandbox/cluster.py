"""The whole sandbox cluster in one object: API server, controllers, seed, files.

Tests start it in-process in milliseconds; `ragbot sandbox cluster` runs the same thing
in the foreground. It writes a kubeconfig and an Enterprise RAG `config.yaml` with a
`ragbot:` block that works against it, so the product code under test reads exactly the
files a user would give it.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from . import seed as seed_module
from .apiserver import builtin_rules, crd_validation, errors
from .apiserver.resources import ResourceType
from .apiserver.server import ApiServer
from .apiserver.store import Store

BASE_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
BOT_NAMESPACE = "ragbot"

# Sandbox Slack identities (the Slack emulator of a later issue uses the same ids).
SANDBOX_CHANNEL = "C0SANDBOX01"
SANDBOX_USERS = {"operator": "U0OPERATOR1", "approver": "U0APPROVER1", "viewer": "U0VIEWER01"}
# Both sandbox approvers (U0APPROVER1, U0APPROVER2) are in this user group.
SANDBOX_APPROVERS_GROUP = "S0APPROVERS"


class Controller(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def validate_custom_resource(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """CRD schema validation with the apiserver's 422 answer; prunes unknown fields."""
    if not rt.is_crd or rt.schema is None:
        return
    pruned = crd_validation.prune(obj, rt.schema)
    obj.clear()
    obj.update(pruned)
    problems = crd_validation.validate(obj, rt.schema, namespaced=rt.namespaced)
    if problems:
        name = (obj.get("metadata") or {}).get("name", "")
        body = crd_validation.invalid_status(rt.kind, rt.group, rt.plural, name, problems)
        raise errors.ApiError(body)


def new_store(clock: Callable[[], float] = time.time) -> Store:
    store = Store(clock=clock)
    store.validators.append(builtin_rules.validate)
    store.validators.append(validate_custom_resource)
    return store


def load_objects(store: Store, objects: Sequence[dict[str, Any]]) -> None:
    """Create objects in order as a client would, then write their status where split off."""
    for obj in objects:
        rt = store.registry.by_kind(obj["apiVersion"], obj["kind"])
        if rt is None:
            raise ValueError(f"sandbox seed: no resource type for {obj['apiVersion']} {obj['kind']}")
        ns = (obj.get("metadata") or {}).get("namespace", "") if rt.namespaced else ""
        created = store.create(rt, ns, obj, defaults=builtin_rules.apply_defaults)
        if rt.has_status and obj.get("status"):
            update = dict(created)
            update["status"] = obj["status"]
            store.update(rt, ns, created["metadata"]["name"], update, subresource="status")
        if obj["kind"] == "PersistentVolumeClaim":
            _complete_prebinding(store, created)


def _complete_prebinding(store: Store, claim: dict[str, Any]) -> None:
    """Give the PV pre-bound to this claim the claim's uid, as a bound pair has in a cluster.

    A seed cannot know uids (the API server assigns them), and a bound claim whose PV's
    claimRef lacks its uid is Lost (kube-controller-manager's syncBoundClaim; the
    sandbox's binder applies the same rule). tests/upstream/apiload.py does the same.
    """
    volume = (claim.get("spec") or {}).get("volumeName")
    pvs = store.registry.by_kind("v1", "PersistentVolume")
    if not volume or pvs is None:
        return
    try:
        pv = store.get(pvs, "", volume)
    except errors.ApiError:
        return  # not loaded (yet): nothing to complete
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    meta = claim["metadata"]
    if (ref.get("namespace"), ref.get("name"), ref.get("uid")) != (meta["namespace"], meta["name"], None):
        return
    update = dict(pv)
    update["spec"] = {**pv["spec"], "claimRef": {**ref, "uid": meta["uid"]}}
    store.update(pvs, "", volume, update)


class SandboxCluster:
    """A seeded loopback cluster with its controllers. Use `start()`/`stop()` or `with`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        velero_seconds: float = 3.0,
        pod_ready_seconds: float = 0.5,
        seed: bool = True,
        rbac: bool = False,
        snapshot_path: Path | None = None,
        bookmark_interval: float = 5.0,
    ) -> None:
        self.velero_seconds = velero_seconds
        self.pod_ready_seconds = pod_ready_seconds
        self.snapshot_path = snapshot_path
        self.admin_token = "sandbox-" + secrets.token_hex(12)
        self.store = new_store()
        authorizer = None
        if rbac:
            from .apiserver.rbac import RbacAuthorizer

            authorizer = RbacAuthorizer(self.store)
        self.server = ApiServer(
            self.store,
            host=host,
            port=port,
            admin_token=self.admin_token,
            authorizer=authorizer,
            defaults=builtin_rules.apply_defaults,
            bookmark_interval=bookmark_interval,
        )
        self._seed = seed
        self.controllers: list[Controller] = []
        self._stopped = threading.Event()

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> SandboxCluster:
        restored = self._restore_snapshot()
        if not restored:
            load_objects(self.store, [_namespace(n) for n in (*BASE_NAMESPACES, BOT_NAMESPACE)])
            if self._seed:
                load_objects(self.store, _default_seed())
        self.controllers = self._make_controllers()
        saved = getattr(self, "_pending_controller_state", {})
        for c in self.controllers:
            load = getattr(c, "load", None)
            if load is not None and type(c).__name__ in saved:
                load(saved[type(c).__name__])
            c.start()
        self.server.start()
        return self

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.server.stop()
        for c in reversed(self.controllers):
            c.stop()
        self._save_snapshot()

    def __enter__(self) -> SandboxCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _make_controllers(self) -> list[Controller]:
        from .velero import VeleroSimulator
        from .workloads import WorkloadController

        self.workloads = WorkloadController(self.store, pod_ready_seconds=self.pod_ready_seconds)
        self.velero = VeleroSimulator(self.store, seconds=self.velero_seconds)
        return [self.workloads, self.velero]

    # ----- snapshot ----------------------------------------------------------------------

    def _restore_snapshot(self) -> bool:
        if self.snapshot_path is None or not self.snapshot_path.exists():
            return False
        data = json.loads(self.snapshot_path.read_text())
        self.store.load(data["store"])
        self._pending_controller_state = data.get("controllers", {})
        return True

    def _save_snapshot(self) -> None:
        if self.snapshot_path is None:
            return
        state: dict[str, Any] = {"store": self.store.dump(), "controllers": {}}
        for c in self.controllers:
            dump = getattr(c, "dump", None)
            if dump is not None:
                state["controllers"][type(c).__name__] = dump()
        tmp = self.snapshot_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.snapshot_path)

    # ----- files and clients -------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    def kubeconfig(self, token: str | None = None) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "ragbot-sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox-admin", "user": {"token": token or self.admin_token}}],
            "contexts": [
                {
                    "name": "ragbot-sandbox",
                    "context": {"cluster": "ragbot-sandbox", "user": "sandbox-admin", "namespace": "velero"},
                }
            ],
            "current-context": "ragbot-sandbox",
        }

    def write_files(self, directory: Path, token: str | None = None) -> tuple[Path, Path]:
        """Write DIR/kubeconfig and DIR/config.yaml; returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        kubeconfig = directory / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(self.kubeconfig(token), sort_keys=False))
        kubeconfig.chmod(0o600)
        config = directory / "config.yaml"
        config.write_text(sandbox_config_yaml())
        return kubeconfig, config

    def api_client(self, token: str | None = None) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        return client.ApiClient(cfg)


@functools.lru_cache(maxsize=1)
def _default_seed() -> tuple[dict[str, Any], ...]:
    """The seed is deterministic and costly to build (gzip of every Helm record): once
    per process. Never mutated: the store copies what it is given."""
    return tuple(seed_module.enterprise_rag_seed())


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def sandbox_config_yaml() -> str:
    """An Enterprise RAG config.yaml (other keys included, as users have) for the sandbox."""
    users = SANDBOX_USERS
    doc = {
        "deployment_type": "sandbox",
        "FQDN": "erag.sandbox.local",
        "huggingToken": "",
        "velero": {"enabled": True, "namespace": "velero"},
        "ragbot": {
            "namespace": BOT_NAMESPACE,
            "slack": {"channel": SANDBOX_CHANNEL},
            "access": {
                "backup": {"users": [users["operator"], users["approver"]]},
                "restore": {"users": [users["operator"]]},
                "approve": {"users": [users["approver"]], "usergroups": [SANDBOX_APPROVERS_GROUP]},
                "allow_self_approval": False,
            },
        },
    }
    header = (
        "# Written by `ragbot sandbox cluster`: an Enterprise RAG config.yaml whose `velero:`\n"
        "# block enables backups and whose `ragbot:` block works against this sandbox.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False)
