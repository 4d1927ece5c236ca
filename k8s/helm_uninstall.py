"""`helm uninstall` through the Kubernetes API alone (no helm binary, no hooks).

The playbook's `Helm/<release>` cleanup entries run `helm uninstall`. ragbot's image
has no helm binary and must not need one, so this module does what Helm's uninstall
action does, in Helm's order (reference/helm-release-storage.md §3-§6):

1. read every revision Secret (`owner=helm,name=<release>`), take the highest JSON
   `version`; none: nothing to do (like `--ignore-not-found`); newest already
   `uninstalled`: only purge the Secrets;
2. store the newest record back as `uninstalling` (label and JSON, re-encoded) with an
   optimistic-concurrency update;
3. resolve every manifest kind through discovery before deleting anything;
4. DELETE each manifest object in UninstallOrder, propagationPolicy Background, 404 is
   success; `helm.sh/resource-policy` (read from the stored manifest) keeps objects;
5. wait by watch until the deleted objects are gone;
6. delete every revision Secret, oldest first, tolerating ones already gone.

Hooks are never run (an API-only uninstall acts like `--no-hooks`); the pre/post-delete
hooks it skips are reported. The wait comes before the purge, as in Helm, so that a
process killed at any point leaves a release record behind and running this again
finishes the job: an `uninstalling` record is simply carried on, objects already gone
are 404s, Secrets already gone are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .client import Cluster
from .errors import ClusterError, Conflict, NotFound, Timeout
from .helm_release import (
    HelmHook,
    ManifestObject,
    encode_release_secret,
    latest_release,
    manifest_objects,
    release_dict_with_status,
)
from .resources import SECRET, Resource, delete, get, list_all, replace, resolve
from .watch import Collection, wait_for

UNINSTALLING_DESCRIPTION = "Deletion in progress (or silently failed)"
_DELETE_HOOK_EVENTS = frozenset({"pre-delete", "post-delete"})


class UninstallError(ClusterError):
    """The uninstall stopped; the release record stays `uninstalling`, as with Helm."""


@dataclass(frozen=True)
class UninstallResult:
    release: str
    namespace: str
    found: bool
    revision: int = 0
    deleted: tuple[str, ...] = ()  # "Kind ns/name" of objects we deleted
    already_gone: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # resource-policy keep (or another value Helm drops)
    hooks_skipped: tuple[HelmHook, ...] = ()
    secrets_deleted: tuple[str, ...] = ()
    message: str = ""


def _label(obj: ManifestObject) -> str:
    return f"{obj.kind} {obj.namespace}/{obj.name}" if obj.namespace else f"{obj.kind} {obj.name}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list_secrets(cluster: Cluster, namespace: str, release: str) -> list[dict[str, Any]]:
    items, _ = list_all(cluster, SECRET, namespace, label_selector=f"owner=helm,name={release}")
    return items


def mark_uninstalling(cluster: Cluster, namespace: str, release: str) -> int | None:
    """Store the newest record as `uninstalling`; returns its revision (None: no release).

    A Conflict (someone else wrote the Secret) re-reads and decides again.
    """
    for _ in range(5):
        secrets = _list_secrets(cluster, namespace, release)
        latest = latest_release(secrets, name=release)
        if latest is None:
            return None
        if latest.status in ("uninstalling", "uninstalled"):
            return latest.version
        doc = release_dict_with_status(
            latest, "uninstalling", description=UNINSTALLING_DESCRIPTION, deleted=_now()
        )
        encoded = encode_release_secret(doc, namespace)
        current = next(
            s for s in secrets if s["metadata"]["name"] == latest.secret_name
        )
        body = dict(current)
        meta = dict(current["metadata"])
        meta["labels"] = {
            **(meta.get("labels") or {}),
            "status": "uninstalling",
            "modifiedAt": str(int(datetime.now(UTC).timestamp())),
        }
        body["metadata"] = meta
        body["data"] = {**(current.get("data") or {}), "release": encoded["data"]["release"]}
        try:
            replace(cluster, SECRET, namespace, latest.secret_name, body)
        except Conflict:
            continue
        except NotFound:
            continue
        return latest.version
    raise UninstallError(f"release {release} in {namespace}: its record keeps changing under us")


def _resolve_all(cluster: Cluster, objects: list[ManifestObject]) -> list[tuple[ManifestObject, Resource]]:
    out = []
    for obj in objects:
        try:
            out.append((obj, resolve(cluster, obj.api_version, obj.kind)))
        except ClusterError as err:
            raise UninstallError(
                f"{obj.api_version} {obj.kind} of {_label(obj)} is not served by the cluster "
                f"({err}); nothing was deleted (helm/helm#11513)"
            ) from None
    return out


def _wait_gone(
    cluster: Cluster,
    targets: list[tuple[Resource, str, str, str]],
    *,
    deadline: float,
    what: str,
    stop: Callable[[], bool] | None,
) -> None:
    """Wait by watch until every (resource, namespace, name, uid) is gone or replaced."""
    groups: dict[tuple[Resource, str], dict[str, str]] = {}
    for res, ns, name, uid in targets:
        groups.setdefault((res, ns), {})[name] = uid
    for (res, ns), names in groups.items():

        def gone(view: Collection, ns: str = ns, names: dict[str, str] = names) -> bool | None:
            for name, uid in names.items():
                obj = view.get(ns, name)
                if obj is not None and (not uid or obj["metadata"].get("uid") == uid):
                    return None
            return True

        remaining = deadline - cluster.monotonic()
        if remaining <= 0:
            raise Timeout(f"timed out waiting for {what}")
        wait_for(
            cluster, res, ns or None, gone, timeout=remaining,
            what=f"{what}: {res.kind} {', '.join(sorted(names))} to be gone", stop=stop,
        )  # fmt: skip


def delete_and_wait(
    cluster: Cluster,
    objects: list[tuple[Resource, str, str]],
    *,
    timeout: float,
    what: str,
    stop: Callable[[], bool] | None = None,
) -> tuple[list[tuple[Resource, str, str]], list[tuple[Resource, str, str]]]:
    """Delete (Background) each (resource, namespace, name) and wait until all are gone.

    Returns (deleted, already gone). The uid read before the DELETE is what the wait
    waits for, so an object recreated under the same name does not hold the wait up.
    """
    deadline = cluster.monotonic() + timeout
    deleted: list[tuple[Resource, str, str]] = []
    missing: list[tuple[Resource, str, str]] = []
    waits: list[tuple[Resource, str, str, str]] = []
    errors: list[str] = []
    for res, ns, name in objects:
        scope = ns if res.namespaced else None
        try:
            uid = str(get(cluster, res, scope, name)["metadata"].get("uid") or "")
            if delete(cluster, res, scope, name):
                deleted.append((res, ns, name))
                waits.append((res, ns if res.namespaced else "", name, uid))
            else:
                missing.append((res, ns, name))
        except NotFound:
            missing.append((res, ns, name))
        except ClusterError as err:
            errors.append(str(err))
    if errors:
        raise UninstallError(f"{what}: " + "; ".join(errors))
    _wait_gone(cluster, waits, deadline=deadline, what=what, stop=stop)
    return deleted, missing


def uninstall_release(
    cluster: Cluster,
    namespace: str,
    release: str,
    *,
    timeout: float,
    stop: Callable[[], bool] | None = None,
) -> UninstallResult:
    """Uninstall `release` from `namespace` as `helm uninstall --no-hooks --wait` would."""
    secrets = _list_secrets(cluster, namespace, release)
    latest = latest_release(secrets, name=release)
    if latest is None:
        return UninstallResult(release, namespace, False,
                               message=f"release {release} not found in {namespace}: nothing to do")  # fmt: skip
    hooks = tuple(h for h in latest.hooks if _DELETE_HOOK_EVENTS.intersection(h.events))
    deleted: list[str] = []
    gone: list[str] = []
    kept: list[str] = []
    if latest.status != "uninstalled":
        objects = manifest_objects(latest)  # a corrupt manifest aborts here, as in Helm
        mark_uninstalling(cluster, namespace, release)
        kept = [_label(o) for o in objects if not o.helm_deletes]
        resolved = _resolve_all(cluster, [o for o in objects if o.helm_deletes])
        targets = [(res, obj.namespace if res.namespaced else "", obj.name) for obj, res in resolved]
        done, missing = delete_and_wait(
            cluster, targets, timeout=timeout, what=f"uninstall {release} in {namespace}", stop=stop
        )
        label = {(r, n, m): _label(o) for (o, r), (_, n, m) in zip(resolved, targets, strict=True)}
        deleted = [label[t] for t in done]
        gone = [label[t] for t in missing]
    purged = purge_records(cluster, namespace, release)
    parts = [f"uninstalled {release} revision {latest.version}: {len(deleted)} objects deleted"]
    if gone:
        parts.append(f"{len(gone)} already gone")
    if kept:
        parts.append(f"kept {', '.join(kept)}")
    if hooks:
        parts.append("hooks skipped: " + ", ".join(f"{h.kind} {h.name}" for h in hooks))
    return UninstallResult(
        release, namespace, True, latest.version, tuple(deleted), tuple(gone), tuple(kept),
        hooks, tuple(purged), "; ".join(parts),
    )  # fmt: skip


def purge_records(cluster: Cluster, namespace: str, release: str) -> list[str]:
    """Delete every revision Secret of the release, oldest first; gone ones are skipped."""

    def revision(secret: dict[str, Any]) -> int:
        text = str((secret["metadata"].get("labels") or {}).get("version", ""))
        return int(text) if text.isdigit() else 0

    purged = []
    for secret in sorted(_list_secrets(cluster, namespace, release), key=revision):
        name = str(secret["metadata"]["name"])
        if delete(cluster, SECRET, namespace, name):
            purged.append(name)
    return purged
