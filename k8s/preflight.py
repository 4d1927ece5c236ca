"""Is the cluster ready for a backup? Every precondition the playbook checks, and more.

The playbook checks Velero (enabled, namespace, CRDs, a ready server pod, a storage
location) and then finds out about anything else by failing an hour later. ragbot
reports all of it at once, without waiting, as a list of findings an operator can act
on: each names what was checked, ok/warning/failure, what was seen and how to fix it.
It also checks what nobody checked before: a VolumeSnapshotClass Velero would pick for
the application's volumes (without one a backup "completes" without volume data).

A check the service account may not perform becomes a failure naming the permission,
not a crash, so `ragbot check` is also how to find gaps in RBAC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from config.models import Config

from . import resources as R
from .backups import label_selector, running_backups
from .client import Cluster
from .errors import ApiError, Forbidden, NotFound, Unauthorized

Status = Literal["ok", "warning", "failure"]
OK: Status = "ok"
WARNING: Status = "warning"
FAILURE: Status = "failure"

VELERO_CRDS = ("backups", "restores", "backupstoragelocations", "volumesnapshotlocations")
SNAPSHOT_CLASS_LABEL = "velero.io/csi-volumesnapshot-class"


@dataclass(frozen=True)
class CheckResult:
    """One finding: what was checked, the verdict, what was seen, how to fix it."""

    item: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def passed(results: Iterable[CheckResult]) -> bool:
    """True when nothing failed (warnings do not block a backup)."""
    return all(r.status != FAILURE for r in results)


def run_checks(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    """Run every check in order. Unreachable/Unauthorized API servers still raise."""
    checks: list[tuple[str, Callable[[Cluster, Config], list[CheckResult]]]] = [
        ("Velero namespace", _velero_namespace),
        ("Velero CRDs", _velero_crds),
        ("Velero server pod", _velero_pod),
        ("BackupStorageLocation", _storage_location),
        ("VolumeSnapshotClass", _snapshot_class),
        ("running backups", _running_backup),
        ("bot namespace", _bot_namespace),
    ]
    results = [_enabled(cfg)]
    for item, check in checks:
        results.extend(_guarded(item, check, cluster, cfg))
    return results


def _guarded(
    item: str, check: Callable[[Cluster, Config], list[CheckResult]], cluster: Cluster, cfg: Config
) -> list[CheckResult]:
    try:
        return check(cluster, cfg)
    except Forbidden as err:
        return [CheckResult(item, FAILURE, f"not allowed: {err.args[0]}", err.hint)]
    except Unauthorized:
        raise
    except ApiError as err:
        return [CheckResult(item, FAILURE, f"the API server refused: {err}")]


def _enabled(cfg: Config) -> CheckResult:
    if cfg.velero.enabled:
        return CheckResult("velero.enabled", OK, "backups are enabled")
    where = ", ".join(str(p) for p in cfg.sources) or "the config file"
    return CheckResult(
        "velero.enabled", FAILURE, "velero.enabled is false: backup and restore are refused",
        f"set `velero: {{enabled: true}}` in {where}",
    )


def _namespace_exists(cluster: Cluster, name: str) -> bool:
    return R.try_get(cluster, R.NAMESPACE, None, name) is not None


def _velero_namespace(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    ns = cfg.velero.namespace
    if _namespace_exists(cluster, ns):
        return [CheckResult("Velero namespace", OK, f"namespace {ns} exists")]
    return [CheckResult(
        "Velero namespace", FAILURE, f"namespace {ns} does not exist",
        "install Velero (velero.install_server: true in the installer) or set velero.namespace",
    )]


def _velero_crds(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    # Discovery, not CRD reads: every authenticated client may read it, and it says what
    # the API server actually serves.
    try:
        listing = cluster.raw("discover velero.io/v1", cluster.custom.get_api_resources, "velero.io", "v1")
        served = {str(r.get("name")) for r in listing.get("resources") or []}
    except NotFound:
        served = set()
    missing = [f"{p}.velero.io" for p in VELERO_CRDS if p not in served]
    if not missing:
        return [CheckResult("Velero CRDs", OK, f"{len(VELERO_CRDS)} Velero CRDs are served")]
    return [CheckResult(
        "Velero CRDs", FAILURE, f"missing: {', '.join(missing)}",
        "install Velero's CRDs (`velero install --crds-only`, or the Enterprise RAG installer)",
    )]


def _pod_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("ready") for c in status.get("containerStatuses") or []
    )


def _velero_pod(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    ns = cfg.velero.namespace
    selector = label_selector(dict(cfg.velero.velero_pod_labels))
    pods, _ = R.list_all(cluster, R.POD, ns, label_selector=selector)
    ready = [p["metadata"]["name"] for p in pods if _pod_ready(p)]
    if ready:
        return [CheckResult("Velero server pod", OK, f"{ready[0]} is Running and ready")]
    seen = ", ".join(
        f"{p['metadata']['name']} ({(p.get('status') or {}).get('phase', 'Pending')})" for p in pods
    )
    return [CheckResult(
        "Velero server pod", FAILURE,
        f"no Running, ready pod labelled {selector} in {ns}" + (f"; found {seen}" if seen else ""),
        f"kubectl -n {ns} get pods -l {selector}; kubectl -n {ns} describe deployment velero "
        "(or fix velero.velero_pod_labels)",
    )]


def _storage_location(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    ns = cfg.velero.namespace
    item = "BackupStorageLocation"
    bsls, _ = R.list_all(cluster, R.BSL, ns)
    if not bsls:
        return [CheckResult(item, FAILURE, f"no BackupStorageLocation in {ns}",
                            "create one (velero install --bucket ... or velero backup-location create)")]
    phase = {b["metadata"]["name"]: (b.get("status") or {}).get("phase", "") for b in bsls}
    available = [n for n, p in phase.items() if p == "Available"]
    unavailable = [f"{n} ({p or 'unknown'})" for n, p in phase.items() if p != "Available"]
    fix = f"kubectl -n {ns} describe backupstoragelocation; check the bucket and credentials"
    if not available:
        return [CheckResult(item, FAILURE, f"none Available: {', '.join(unavailable)}", fix)]
    # ragbot, like the playbook, leaves spec.storageLocation to Velero's default location.
    default = next((b for b in bsls if (b.get("spec") or {}).get("default")), None)
    if default is not None:
        name = default["metadata"]["name"]
        if phase[name] != "Available":
            return [CheckResult(item, FAILURE,
                                f"the default location {name} is {phase[name] or 'not Available'}; "
                                "backups use it and would fail validation", fix)]
        if (default.get("spec") or {}).get("accessMode") == "ReadOnly":
            return [CheckResult(item, FAILURE, f"the default location {name} is ReadOnly",
                                f"kubectl -n {ns} patch backupstoragelocation {name} --type merge "
                                "-p '{\"spec\":{\"accessMode\":\"ReadWrite\"}}'")]
    if unavailable:
        return [CheckResult(item, WARNING,
                            f"Available: {', '.join(available)}; not Available: {', '.join(unavailable)}",
                            fix)]
    return [CheckResult(item, OK, f"Available: {', '.join(available)}")]


def _claim_drivers(cluster: Cluster, cfg: Config) -> dict[str, list[str]]:
    """CSI driver -> the PVCs ("ns/name") of namespaceOrder that Velero would snapshot with it."""
    claims: list[dict[str, Any]] = []
    for ns in cfg.velero.backup.backupConfig.namespaceOrder:
        items, _ = R.list_all(cluster, R.PVC, ns)
        claims.extend(items)
    if not claims:
        return {}
    pvs, _ = R.list_all(cluster, R.resolve(cluster, "v1", "PersistentVolume"), None)
    pv_driver = {
        p["metadata"]["name"]: ((p.get("spec") or {}).get("csi") or {}).get("driver", "")
        for p in pvs
    }
    classes, _ = R.list_all(cluster, R.resolve(cluster, "storage.k8s.io/v1", "StorageClass"), None)
    provisioner = {c["metadata"]["name"]: str(c.get("provisioner") or "") for c in classes}
    out: dict[str, list[str]] = {}
    for pvc in claims:
        spec = pvc.get("spec") or {}
        driver = pv_driver.get(str(spec.get("volumeName") or "")) or provisioner.get(
            str(spec.get("storageClassName") or ""), ""
        )
        ref = f"{pvc['metadata'].get('namespace', '')}/{pvc['metadata']['name']}"
        out.setdefault(driver, []).append(ref)
    return out


def _snapshot_class(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    item = "VolumeSnapshotClass"
    drivers = _claim_drivers(cluster, cfg)
    if not drivers:
        return [CheckResult(item, OK, "no PVCs in the backed-up namespaces; nothing to snapshot")]
    try:
        classes, _ = R.list_all(cluster, R.VOLUME_SNAPSHOT_CLASS, None)
    except NotFound:
        return [CheckResult(item, FAILURE, "the cluster does not serve snapshot.storage.k8s.io/v1",
                            "install the external-snapshotter CRDs and controller")]
    results: list[CheckResult] = []
    for driver, pvcs in sorted(drivers.items()):
        results.append(_pick_class(driver, pvcs, classes))
    return results


def _pick_class(driver: str, pvcs: list[str], classes: list[dict[str, Any]]) -> CheckResult:
    """Velero's rule: the first class of the driver with the label, else its only class."""
    item = "VolumeSnapshotClass"
    shown = ", ".join(pvcs[:3]) + (f" and {len(pvcs) - 3} more" if len(pvcs) > 3 else "")
    if not driver:
        return CheckResult(item, WARNING, f"no CSI driver found for {shown}: no CSI snapshot",
                           "bind the PVCs to CSI volumes, or back them up with the node agent")
    mine = [c for c in classes if c.get("driver") == driver]
    names = [c["metadata"]["name"] for c in mine]
    labelled = [c for c in mine if SNAPSHOT_CLASS_LABEL in ((c["metadata"].get("labels")) or {})]
    label_cmd = "kubectl label volumesnapshotclass {} " + SNAPSHOT_CLASS_LABEL + '="true"'
    if labelled:
        name = labelled[0]["metadata"]["name"]
        return CheckResult(item, OK, f"{name} (driver {driver}) is labelled for Velero; covers {shown}")
    if len(mine) == 1:
        return CheckResult(
            item, WARNING,
            f"{names[0]} is the only class of driver {driver}, so Velero uses it unlabelled; "
            "a second class of that driver would break backups",
            label_cmd.format(names[0]),
        )
    if not mine:
        return CheckResult(
            item, FAILURE, f"no VolumeSnapshotClass for driver {driver} ({shown}): volumes "
            "would not be snapshotted",
            f"create one for {driver} (velero.install_snapshot_class) and "
            + label_cmd.format("<name>"),
        )
    return CheckResult(
        item, FAILURE,
        f"{len(mine)} classes of driver {driver} ({', '.join(names)}) and none labelled "
        f"{SNAPSHOT_CLASS_LABEL}: Velero cannot pick one for {shown}",
        label_cmd.format(names[0]),
    )


def _running_backup(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    running = running_backups(cluster, cfg)
    if not running:
        return [CheckResult("running backups", OK, "no backup of ragbot's is running")]
    first = running[0]
    return [CheckResult(
        "running backups", WARNING,
        f"{first.name} is still {first.phase or 'New'}; a new backup is refused until it ends",
        f"ragbot backup describe {first.name}",
    )]


def _bot_namespace(cluster: Cluster, cfg: Config) -> list[CheckResult]:
    ns = cfg.ragbot.namespace
    if _namespace_exists(cluster, ns):
        return [CheckResult("bot namespace", OK, f"namespace {ns} exists")]
    return [CheckResult("bot namespace", FAILURE,
                        f"namespace {ns} does not exist (restore records are kept there)",
                        f"kubectl create namespace {ns}, or set ragbot.namespace")]


__all__ = ["FAILURE", "OK", "WARNING", "CheckResult", "Status", "passed", "run_checks"]
