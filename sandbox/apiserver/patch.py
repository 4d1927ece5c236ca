"""The three PATCH flavours the official client sends.

CustomObjectsApi sends JSON merge patches (RFC 7386); the typed APIs send strategic merge
patches for dict bodies and JSON patches (RFC 6902) for list bodies. Strategic merge is
implemented for the list fields ragbot and kubectl touch (merge keys below); other lists
are replaced, as for types without patch metadata.
"""

from __future__ import annotations

from typing import Any

import jsonpatch

from .objects import clone

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Field name -> merge key, from k8s.io/api's patchMergeKey tags for the fields we serve.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "tolerations": "key",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
# Lists of scalars that strategic merge treats as sets (patchStrategy: merge).
_MERGE_SETS = {"finalizers"}


class PatchError(ValueError):
    """A patch that cannot be applied (bad JSON patch path, wrong body type)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: clone(v) for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        result = clone(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith("$deleteFromPrimitiveList/"):
                name = key.split("/", 1)[1]
                current = result.get(name)
                if isinstance(current, list) and isinstance(value, list):
                    result[name] = [v for v in current if v not in value]
                continue
            if key.startswith("$"):  # $setElementOrder/, $retainKeys: ordering, pruning
                continue
            merged = None if value is None else strategic_merge_patch(result.get(key), value, key)
            if merged is None:  # null or `$patch: delete` removes the field
                result.pop(key, None)
            else:
                result[key] = merged
        return result
    if isinstance(patch, list):
        if field in _MERGE_SETS and isinstance(target, list):
            out = list(target)
            out.extend(v for v in patch if v not in out)
            return out
        key = _MERGE_KEYS.get(field)
        if (
            key is None
            or not isinstance(target, list)
            or not all(isinstance(v, dict) for v in patch)
        ):
            return clone(patch)
        out = [clone(v) for v in target]
        for item in patch:
            if item.get("$patch") == "replace":
                return [clone(v) for v in patch if v.get("$patch") != "replace"]
            idx = next(
                (
                    i
                    for i, cur in enumerate(out)
                    if isinstance(cur, dict) and cur.get(key) == item.get(key)
                ),
                None,
            )
            if item.get("$patch") == "delete":
                if idx is not None:
                    out.pop(idx)
            elif idx is None:
                out.append({k: clone(v) for k, v in item.items() if not k.startswith("$")})
            else:
                out[idx] = strategic_merge_patch(out[idx], item, "")
        return out
    return clone(patch)


def apply_patch(target: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
    """Apply a patch body of the given media type to a copy of target."""
    if content_type == MERGE_PATCH:
        if not isinstance(body, dict):
            raise PatchError("merge patch body must be a JSON object")
        return merge_patch(target, body)
    if content_type == STRATEGIC_PATCH:
        if not isinstance(body, dict):
            raise PatchError("strategic merge patch body must be a JSON object")
        return strategic_merge_patch(target, body)
    if content_type == JSON_PATCH:
        if not isinstance(body, list):
            raise PatchError("json patch body must be a JSON array")
        try:
            return jsonpatch.apply_patch(clone(target), body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise PatchError(str(exc)) from exc
    raise PatchError(f"unsupported patch type {content_type!r}")
