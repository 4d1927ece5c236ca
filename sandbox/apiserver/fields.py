"""Field selectors (`fieldSelector=metadata.name=x`), with the per-kind field sets.

A real apiserver only accepts the fields each kind registers for selection and answers
400 `field label not supported: X` otherwise; the sandbox does the same so a client that
relies on an unsupported field fails here before it fails in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import errors
from .objects import get_path

_COMMON = {"metadata.name", "metadata.namespace"}
_PER_KIND: Mapping[str, set[str]] = {
    "Pod": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "Event": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "Secret": {"type"},
    "Namespace": {"status.phase"},
    "ReplicaSet": {"status.replicas"},
    "Job": {"status.successful"},
    "Node": {"spec.unschedulable"},
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for r in self.requirements:
            actual = get_path(obj, r.field)
            text = (
                ""
                if actual is None
                else str(actual).lower()
                if isinstance(actual, bool)
                else str(actual)
            )
            if (text == r.value) != r.equal:
                return False
        return True


def parse_field_selector(text: str, kind: str) -> FieldSelector:
    """Parse `a=b,c!=d` and check each field is selectable for kind (400 otherwise)."""
    reqs: list[FieldRequirement] = []
    allowed = _COMMON | _PER_KIND.get(kind, set())
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            name, value = term.split("!=", 1)
            equal = False
        elif "==" in term:
            name, value = term.split("==", 1)
            equal = True
        elif "=" in term:
            name, value = term.split("=", 1)
            equal = True
        else:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        name = name.strip()
        if name not in allowed:
            raise errors.bad_request(f"field label not supported: {name}")
        reqs.append(FieldRequirement(name, equal, value.strip()))
    return FieldSelector(tuple(reqs))
