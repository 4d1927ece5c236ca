"""Defaulting and validation of built-in kinds, as far as ragbot and kubectl can observe.

The real apiserver defaults and validates every field; the sandbox covers what a client
of ours could notice: object names, initial statuses, the Deployment selector rules,
immutable fields, and the 1 MiB Secret limit that large Helm release records hit.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
from typing import Any

from config.selectors import from_api

from . import errors
from .objects import dns1123_label_error, dns1123_subdomain_error
from .resources import ResourceType

_SECRET_LIMIT = 1_048_576
_cluster_ips = itertools.count(10)
_DNS_LABEL_KINDS = {"Namespace", "Service"}


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fields the apiserver fills on create (status is dropped before this runs)."""
    spec = obj.setdefault("spec", {}) if rt.kind in _SPEC_KINDS else None
    if rt.kind == "Namespace":
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]
    elif rt.kind == "Pod":
        assert spec is not None
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rt.kind == "PersistentVolumeClaim":
        assert spec is not None
        spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}
    elif rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        assert spec is not None
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if rt.kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
        if rt.kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault(
                "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            )
        obj["status"] = {"replicas": 0}
    elif rt.kind == "Service":
        assert spec is not None
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None":
            n = next(_cluster_ips)
            spec.setdefault("clusterIP", str(ipaddress.IPv4Address("10.96.0.0") + n))
        spec.setdefault("sessionAffinity", "None")
        obj["status"] = {"loadBalancer": {}}
    elif rt.kind == "CustomResourceDefinition":
        names = dict((obj.get("spec") or {}).get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        obj["status"] = {
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
            "storedVersions": [v["name"] for v in (obj.get("spec") or {}).get("versions", []) if v.get("storage")],
        }
    elif rt.kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


_SPEC_KINDS = {"Pod", "PersistentVolumeClaim", "Deployment", "StatefulSet", "ReplicaSet", "Service"}


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raise 422 Invalid for what the real apiserver would refuse on these kinds."""
    if rt.is_crd:
        return
    m = obj.get("metadata") or {}
    name = m.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    if not name:
        causes.append(
            (
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        )
    else:
        check = dns1123_label_error if rt.kind in _DNS_LABEL_KINDS else dns1123_subdomain_error
        problem = check(name)
        if problem and rt.kind not in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
            causes.append(
                ("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {problem}')
            )
    if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        spec = obj.get("spec") or {}
        selector = spec.get("selector")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(("FieldValueRequired", "spec.selector", "Required value"))
        elif not from_api(selector).matches(labels):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
                )
            )
        if old is not None and selector != (old.get("spec") or {}).get("selector"):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.selector",
                    f"Invalid value: {_go_selector(selector)}: field is immutable",
                )
            )
    if rt.kind == "Secret":
        total = sum(len(base64.b64decode(v)) for v in (obj.get("data") or {}).values())
        if total > _SECRET_LIMIT:
            causes.append(
                (
                    "FieldValueTooLong",
                    "data",
                    f"Too long: may not be more than {_SECRET_LIMIT} bytes",
                )
            )
        if old is not None and old.get("type") != obj.get("type"):
            causes.append(
                (
                    "FieldValueInvalid",
                    "type",
                    f'Invalid value: "{obj.get("type")}": field is immutable',
                )
            )
    if causes:
        raise errors.invalid(rt, name, causes)


def _go_map(labels: dict[str, str]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


def _go_selector(selector: Any) -> str:
    return f"v1.LabelSelector{{MatchLabels:{_go_map((selector or {}).get('matchLabels') or {})}}}"
