"""Time a real Velero backup of the seed and a restore, on a started :class:`Upstream`.

The Backup is exactly ragbot's (`k8s.backups.build_backup`, the playbook's spec) and the
Restore uses the playbook's spec (`k8s.restore_plan.restore_spec`). Between the two the
backed-up application namespaces are deleted (not `default`, which cannot be), as a
restore into a cleaned cluster; then we wait for Velero and for every Deployment and
StatefulSet of the seed to be Ready again (kube-controller-manager + scheduler + kwok).
This is a measurement rig, not ragbot's restore flow (that lives in k8s/restore_executor).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from .apiload import request
from .cluster import VELERO_NAMESPACE, Upstream

TERMINAL = {"Completed", "PartiallyFailed", "Failed", "FailedValidation"}


def _wait_phase(api, path: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        obj = request(api, "GET", path)
        if (obj.get("status") or {}).get("phase") in TERMINAL:
            return obj
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {obj.get('status')}")
        time.sleep(0.5)


def _workloads(api, namespaces: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for ns in namespaces:
        for plural in ("deployments", "statefulsets"):
            items = request(api, "GET", f"/apis/apps/v1/namespaces/{ns}/{plural}")["items"]
            out += [(plural, ns, i["metadata"]["name"]) for i in items]
    return out


def _not_ready(api, workloads) -> list[str]:
    bad = []
    for plural, ns, name in workloads:
        try:
            o = request(api, "GET", f"/apis/apps/v1/namespaces/{ns}/{plural}/{name}")
        except ApiException as e:
            bad.append(f"{plural}/{ns}/{name}: {e.status}")
            continue
        want = o["spec"].get("replicas", 1)
        have = (o.get("status") or {}).get("readyReplicas", 0)
        if have < want:
            bad.append(f"{plural}/{ns}/{name} {have}/{want}")
    return bad


def _wait_ready(api, workloads, timeout: float) -> tuple[float, list[str]]:
    t0 = time.monotonic()
    while True:
        bad = _not_ready(api, workloads)
        if not bad or time.monotonic() - t0 > timeout:
            return round(time.monotonic() - t0, 2), bad
        time.sleep(0.5)


def backup_restore(up: Upstream, timeout: float = 300) -> dict[str, Any]:
    from config.loader import load_config
    from k8s.backups import backup_name, build_backup
    from k8s.restore_plan import restore_spec

    api = up.api_client()
    cfg = load_config([up.config])
    order = list(cfg.velero.backup.backupConfig.namespaceOrder)
    app_ns = [n for n in order if n != "default"]
    workloads = _workloads(api, order)
    out: dict[str, Any] = {"workloads": len(workloads)}
    t_ready, bad = _wait_ready(api, workloads, timeout)
    out["seed_ready_seconds"] = t_ready
    out["seed_not_ready"] = bad

    vpath = f"/apis/velero.io/v1/namespaces/{VELERO_NAMESPACE}"
    name = backup_name("backup", datetime.now(UTC))
    t0 = time.monotonic()
    request(api, "POST", f"{vpath}/backups", build_backup(cfg, name=name, trigger="cli"))
    b = _wait_phase(api, f"{vpath}/backups/{name}", timeout)
    st = b["status"]
    out["backup"] = {
        "name": name,
        "seconds": round(time.monotonic() - t0, 2),
        "phase": st.get("phase"),
        "progress": st.get("progress"),
        "errors": st.get("errors", 0),
        "warnings": st.get("warnings", 0),
        "failureReason": st.get("failureReason"),
        "volumeSnapshotsAttempted": st.get("volumeSnapshotsAttempted", 0),
        "csiVolumeSnapshotsAttempted": st.get("csiVolumeSnapshotsAttempted", 0),
        "csiVolumeSnapshotsCompleted": st.get("csiVolumeSnapshotsCompleted", 0),
    }

    # clean the application namespaces, as a restore into a wiped install
    t0 = time.monotonic()
    for ns in app_ns:
        try:
            request(api, "DELETE", f"/api/v1/namespaces/{ns}")
        except ApiException as e:
            if e.status != 404:
                raise
    deadline = time.monotonic() + timeout
    left = list(app_ns)
    while left and time.monotonic() < deadline:
        left = [n for n in left if _exists(api, f"/api/v1/namespaces/{n}")]
        time.sleep(0.5)
    out["namespaces_deleted_seconds"] = round(time.monotonic() - t0, 2)
    out["namespaces_left"] = left
    pvs = request(api, "GET", "/api/v1/persistentvolumes")["items"]
    out["pvs_after_delete"] = {
        p["metadata"]["name"]: (p.get("status") or {}).get("phase") for p in pvs
    }

    rname = f"restore-{name}"
    t0 = time.monotonic()
    request(
        api,
        "POST",
        f"{vpath}/restores",
        {
            "apiVersion": "velero.io/v1",
            "kind": "Restore",
            "metadata": {"name": rname, "namespace": VELERO_NAMESPACE},
            "spec": restore_spec(cfg, name),
        },
    )
    r = _wait_phase(api, f"{vpath}/restores/{rname}", timeout)
    rs = r["status"]
    out["restore"] = {
        "name": rname,
        "seconds": round(time.monotonic() - t0, 2),
        "phase": rs.get("phase"),
        "progress": rs.get("progress"),
        "errors": rs.get("errors", 0),
        "warnings": rs.get("warnings", 0),
        "failureReason": rs.get("failureReason"),
    }
    # StatefulSets first: their pods need the restored PVCs provisioned from CSI snapshots
    sts = [w for w in workloads if w[0] == "statefulsets"]
    t_sts, bad_sts = _wait_ready(api, sts, 120)
    out["restore"]["statefulsets_ready_after_seconds"] = t_sts
    out["restore"]["statefulsets_not_ready"] = bad_sts
    t_ready, bad = _wait_ready(api, workloads, 120)
    out["restore"]["ready_after_seconds"] = round(t_sts + t_ready, 2)
    out["restore"]["not_ready"] = bad
    pvcs = request(api, "GET", "/api/v1/persistentvolumeclaims")["items"]
    out["pvcs_after_restore"] = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": (p.get("status") or {}).get("phase")
        for p in pvcs
    }
    pvs = request(api, "GET", "/api/v1/persistentvolumes")["items"]
    out["pvs_after_restore"] = {
        p["metadata"]["name"]: (p.get("status") or {}).get("phase") for p in pvs
    }
    return out


def _exists(api, path: str) -> bool:
    try:
        request(api, "GET", path)
        return True
    except ApiException as e:
        if e.status == 404:
            return False
        raise
