"""Server-side printing: `meta.k8s.io/v1 Table` answers for `kubectl get`.

kubectl asks for Tables (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) and
prints whatever columns the server defines, so the familiar `NAME READY STATUS` view of
pods and the printer columns of CRDs come from here.
"""

from __future__ import annotations

import time
from typing import Any

from .objects import get_path, parse_rfc3339
from .resources import ResourceType


def wants_table(accept: str) -> bool:
    return "as=Table" in (accept or "")


def _age(ts: str | None, now: float) -> str:
    if not ts:
        return "<unknown>"
    secs = max(0, int(now - parse_rfc3339(ts)))
    if secs < 120:
        return f"{secs}s"
    if secs < 3600 * 2:
        return f"{secs // 60}m"
    if secs < 86400 * 2:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _col(name: str, typ: str = "string", fmt: str = "", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": typ, "format": fmt, "description": name, "priority": priority}


def _pod_cells(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    total = len(spec.get("containers") or [])
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    phase = status.get("phase", "Pending")
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    return [f"{ready}/{total}", phase, restarts]


def _workload_cells(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}"]


def columns_for(rt: ResourceType) -> list[dict[str, Any]]:
    cols = [_col("Name", fmt="name")]
    if rt.kind == "Pod":
        cols += [_col("Ready"), _col("Status"), _col("Restarts", "integer")]
    elif rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        cols += [_col("Ready")]
    elif rt.kind == "PersistentVolumeClaim":
        cols += [_col("Status"), _col("Volume")]
    elif rt.kind == "Namespace":
        cols += [_col("Status")]
    for pc in rt.printer_columns:
        if pc.get("name", "").lower() != "age":
            cols.append(
                _col(
                    pc["name"],
                    pc.get("type", "string"),
                    pc.get("format", ""),
                    pc.get("priority", 0),
                )
            )
    if rt.group == "velero.io" and rt.kind in ("Backup", "Restore") and not rt.printer_columns:
        cols += [_col("Status")]
    cols.append(_col("Age", "date"))
    return cols


def cells_for(rt: ResourceType, obj: dict[str, Any], now: float) -> list[Any]:
    m = obj.get("metadata") or {}
    cells: list[Any] = [m.get("name", "")]
    if rt.kind == "Pod":
        cells += _pod_cells(obj)
    elif rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        cells += _workload_cells(obj)
    elif rt.kind == "PersistentVolumeClaim":
        cells += [
            get_path(obj, "status.phase") or "Pending",
            get_path(obj, "spec.volumeName") or "",
        ]
    elif rt.kind == "Namespace":
        cells += [get_path(obj, "status.phase") or "Active"]
    for pc in rt.printer_columns:
        if pc.get("name", "").lower() != "age":
            path = str(pc.get("jsonPath", "")).lstrip(".")
            value = get_path(obj, path)
            cells.append("" if value is None else value)
    if rt.group == "velero.io" and rt.kind in ("Backup", "Restore") and not rt.printer_columns:
        cells.append(get_path(obj, "status.phase") or "")
    cells.append(_age(m.get("creationTimestamp"), now))
    return cells


def table(
    rt: ResourceType,
    items: list[dict[str, Any]],
    list_meta: dict[str, Any],
    *,
    include_object: str = "Metadata",
    now: float | None = None,
    with_columns: bool = True,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": cells_for(rt, obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns_for(rt) if with_columns else [],
        "rows": rows,
    }
    return out
