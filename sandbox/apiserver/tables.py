"""Server-side printing: `meta.k8s.io Table` answers for `kubectl get` and `get -w`.

kubectl asks for Tables (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`)
and prints whatever columns the server defines, so this is where `kubectl get` output
comes from. It follows k8s.io/apiserver's endpoint handlers: content negotiation of the
Table media type, `includeObject` (`Metadata` by default: rows carry a
PartialObjectMetadata; `Object`; `None`), list metadata copied onto the Table, and on a
watch the column definitions only in the first event (later ones carry
`"columnDefinitions": null`, as the apiserver's NoHeaders option does). Rows come from
the built-in printers (printer_table.py) or, for custom resources, from the CRD's
additionalPrinterColumns with apiextensions' default `Age` column, evaluated the way its
tableconvertor does. Column definitions, cells and watch framing were compared with a
real kube-apiserver v1.36 for every kind the sandbox serves; the differences left are
shortened column descriptions (kubectl never prints them).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import errors
from .objects import parse_rfc3339
from .printer_table import builtin_cells, builtin_columns
from .printers import CREATED_DESC, NAME, col, human_duration, pod_conditions
from .resources import ResourceType

_TABLE_VERSIONS = ("v1", "v1beta1")
_INCLUDE = ("Metadata", "Object", "None")


@dataclass(frozen=True)
class TableOptions:
    """A negotiated Table answer: meta.k8s.io version and what each row carries."""

    version: str = "v1"
    include_object: str = "Metadata"

    @property
    def api_version(self) -> str:
        return f"meta.k8s.io/{self.version}"


def _media_types(accept: str) -> list[tuple[str, dict[str, str]]]:
    """Accept clauses in preference order (q-value, then the client's order)."""
    clauses: list[tuple[float, int, str, dict[str, str]]] = []
    for index, clause in enumerate(filter(None, (c.strip() for c in (accept or "").split(",")))):
        kind, *raw = (p.strip() for p in clause.split(";"))
        params = {}
        for p in raw:
            key, _, value = p.partition("=")
            params[key.strip().lower()] = value.strip()
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            clauses.append((-q, index, kind.lower(), params))
    return [(kind, params) for _, _, kind, params in sorted(clauses)]


def negotiate(accept: str) -> str | None:
    """The Table version the client prefers, or None when plain JSON wins (or is all)."""
    for kind, params in _media_types(accept):
        if kind not in ("application/json", "application/*", "*/*"):
            continue
        target = params.get("as")
        if not target:
            return None
        version = params.get("v", "")
        if target == "Table" and params.get("g") == "meta.k8s.io" and version in _TABLE_VERSIONS:
            return version
    return None


def options(accept: str, query: Mapping[str, str]) -> TableOptions | None:
    """Table options for a request (400 on a bad includeObject), None for plain JSON."""
    version = negotiate(accept)
    if version is None:
        return None
    include = query.get("includeObject", "")
    if include not in ("", *_INCLUDE):
        raise errors.bad_request(
            "Unable to convert to Table as requested: includeObject: Invalid value: "
            f"{json.dumps(include)}: must be 'Metadata', 'Object', 'None', or empty"
        )
    return TableOptions(version, include or "Metadata")


def columns_for(rt: ResourceType) -> list[dict[str, Any]]:
    if not rt.is_crd:
        return builtin_columns(rt.group, rt.kind)
    cols = [NAME]
    for pc in _printer_columns(rt):
        path = pc.get("jsonPath", "")
        desc = pc.get("description") or (
            f"Custom resource definition column (in JSONPath format): {path}"
        )
        typ, fmt = pc.get("type", "string"), pc.get("format", "")
        cols.append(col(pc.get("name", ""), typ, desc, int(pc.get("priority", 0)), fmt))
    return cols


def _printer_columns(rt: ResourceType) -> tuple[Mapping[str, Any], ...]:
    """serveDefaultColumnsIfEmpty: a CRD without printer columns shows an Age column."""
    if rt.printer_columns:
        return rt.printer_columns
    age = {"name": "Age", "type": "date", "description": CREATED_DESC}
    return ({**age, "jsonPath": ".metadata.creationTimestamp"},)


def cells_for(rt: ResourceType, obj: Mapping[str, Any], now: float) -> list[Any]:
    if not rt.is_crd:
        return builtin_cells(rt.group, rt.kind, obj, now)
    cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
    for pc in _printer_columns(rt):
        found = jsonpath_first(obj, str(pc.get("jsonPath", "")))
        typ = str(pc.get("type", "string"))
        cells.append(None if found is _MISSING else _cell(typ, found, now))
    return cells


def table(
    rt: ResourceType,
    items: list[dict[str, Any]],
    list_meta: dict[str, Any],
    opts: TableOptions | None = None,
    *,
    no_headers: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """The Table for items (one object for a GET or a watch event, all for a LIST)."""
    opts = opts or TableOptions()
    now = time.time() if now is None else now
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": cells_for(rt, obj, now)}
        if rt.kind == "Pod" and not rt.group and (conditions := pod_conditions(obj)):
            row["conditions"] = conditions
        if opts.include_object == "Object":
            row["object"] = obj
        elif opts.include_object == "None":
            row["object"] = None
        else:
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": opts.api_version,
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": opts.api_version,
        "metadata": list_meta,
        "columnDefinitions": None if no_headers else columns_for(rt),
        "rows": rows,
    }


# ----- CRD cells: apiextensions tableconvertor + client-go jsonpath ----------------------

_MISSING = object()
_STEP = re.compile(
    r"\.([^.\[]+)"  # .field
    r"|\[(\*|-?\d+)\]"  # [*] or [index]
    r"|\[\?\(@\.([\w.]+)\s*(==|!=)\s*['\"]([^'\"]*)['\"]\)\]"  # [?(@.key=="value")]
)


def jsonpath_first(obj: Any, path: str) -> Any:
    """First result of a simple JSONPath (`.a.b`, `[0]`, `[*]`, `[?(@.type=="Ready")]`)."""
    current = [obj]
    pos = 1 if path.startswith("$") else 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            return _MISSING
        pos = m.end()
        field, index, key, op, value = m.groups()
        nxt: list[Any] = []
        for node in current:
            if field is not None and isinstance(node, dict) and field in node:
                nxt.append(node[field])
            elif index == "*" and isinstance(node, list | dict):
                nxt.extend(node if isinstance(node, list) else node.values())
            elif index not in (None, "*") and isinstance(node, list):
                if -len(node) <= int(index) < len(node):
                    nxt.append(node[int(index)])
            elif key is not None and isinstance(node, list):
                for item in node:
                    got = jsonpath_first(item, "." + key)
                    if (got is not _MISSING and str(got) == value) == (op == "=="):
                        nxt.append(item)
        current = nxt
    return current[0] if current else _MISSING


def _text(value: Any) -> str:
    """jsonpath PrintResults: JSON for maps and lists, Go's %v for scalars."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return "<nil>" if value is None else str(value)


def _cell(typ: str, value: Any, now: float) -> Any:
    """cellForJSONValue (strings go through jsonpath's printer)."""
    if typ == "string":
        return _text(value)
    if value is None:
        return None
    if typ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if typ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ == "boolean" and isinstance(value, bool):
        return value
    if typ == "date" and isinstance(value, str):
        if not value:
            return "<unknown>"
        try:
            return human_duration(now - parse_rfc3339(value))
        except ValueError:
            return "<invalid>"
    return None
