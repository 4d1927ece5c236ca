"""The REST verbs of the sandbox API server: get, list, create, update, patch, delete.

Each turns a routed request into one Store call and answers as the kube-apiserver does
(Status bodies, Table answers for kubectl, the object or a Status after DELETE).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from config.selectors import SelectorError, parse_selector

from . import errors, tables
from .fields import parse_field_selector
from .patch import APPLY_PATCH, PatchError, apply_patch
from .resources import ResourceType

if TYPE_CHECKING:
    pass

from .handler_base import HandlerBase, Route, _int_param

# Kinds whose registry sets ReturnDeletedObject: DELETE answers with the object, not a
# Status (pkg/registry/core/*/storage); the typed client's response model depends on it.
_RETURNS_DELETED_OBJECT = frozenset(
    {
        "Pod",
        "Service",
        "ServiceAccount",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "StorageClass",
        "Node",
        "Namespace",
    }
)


# etcd3 store's answers (k8s.io/apiserver/pkg/storage/etcd3/store.go) once the RV is compacted.
LIST_EXPIRED = "The resourceVersion for the provided list is too old."
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


def list_options_errors(query: dict[str, str], watch: bool) -> list[tuple[str, str, str]]:
    """ValidateListOptions (apimachinery internalversion/validation): (reason, field, message)."""
    errs: list[tuple[str, str, str]] = []
    match = query.get("resourceVersionMatch", "")
    initial = "sendInitialEvents" in query

    def forbidden(field: str, why: str) -> None:
        errs.append(("FieldValueForbidden", field, f"Forbidden: {why}"))

    def unsupported(field: str, value: str, allowed: list[str]) -> None:
        quoted = ", ".join(f'"{a}"' for a in allowed)
        errs.append(
            (
                "FieldValueNotSupported",
                field,
                f'Unsupported value: "{value}": supported values: {quoted}',
            )
        )

    if watch:
        if initial and match != "NotOlderThan":
            forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )
        if match:
            if not initial:
                forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            if match != "NotOlderThan":
                unsupported("resourceVersionMatch", match, ["NotOlderThan"])
            if query.get("continue"):
                forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
        return errs
    if match:
        if not query.get("resourceVersion"):
            forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            )
        if query.get("continue"):
            forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            )
        if match not in ("Exact", "NotOlderThan"):
            unsupported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""])
        if match == "Exact" and query.get("resourceVersion") == "0":
            forbidden(
                "resourceVersionMatch",
                'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
            )
    if initial:
        forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
    return errs


def check_list_options(query: dict[str, str], watch: bool) -> None:
    """422 `ListOptions.meta.k8s.io "" is invalid: ...` as the apiserver answers."""
    errs = list_options_errors(query, watch)
    if not errs:
        return
    parts = [f"{field}: {msg}" for _, field, msg in errs]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = {
        "group": "meta.k8s.io",
        "kind": "ListOptions",
        "causes": [{"reason": r, "message": m, "field": f} for r, f, m in errs],
    }
    raise errors.ApiError(
        errors.status_body(
            422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: {joined}', details
        )
    )


def unknown_fields(rt: ResourceType, obj: Any) -> list[str]:
    """Paths a custom resource's schema does not know (pruned on write)."""
    if not rt.is_crd or rt.schema is None or not isinstance(obj, dict):
        return []
    from .crd_validation import prune_with_paths

    return prune_with_paths(obj, rt.schema)[1]


class RestVerbs(HandlerBase):
    def _field_validation(self, rt: ResourceType, query: dict[str, str], obj: Any) -> None:
        """fieldValidation: Strict answers 400, Warn (the default) adds Warning headers."""
        mode = query.get("fieldValidation") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(
                f"fieldValidation parameter unsupported: {mode}. Supported values are: "
                "Ignore, Warn, Strict"
            )
        unknown = unknown_fields(rt, obj) if mode != "Ignore" else []
        if not unknown:
            return
        if mode == "Strict":
            listed = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {listed}"
            )
        self._warnings = [
            *getattr(self, "_warnings", []),
            *(f'299 - "unknown field \\"{f}\\""' for f in unknown),
        ]

    def _selectors(self, rt: ResourceType, query: dict[str, str]) -> tuple[Any, Any]:
        try:
            labels = parse_selector(query.get("labelSelector", ""))
        except SelectorError as exc:
            raise errors.bad_request(f"unable to parse requirement: {exc}") from None
        fields = parse_field_selector(query.get("fieldSelector", ""), rt.kind)
        return labels, fields

    def _verb_get(self, route: Route, query: dict[str, str]) -> None:
        obj = self.api.store.get(route.rt, route.namespace or "", route.name)
        table_opts = tables.options(self.headers.get("Accept", ""), query)
        if table_opts is not None:
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            self._send_json(200, tables.table(route.rt, [obj], meta, table_opts))
            return
        self._send_json(200, obj)

    def _verb_list(self, route: Route, query: dict[str, str]) -> None:
        check_list_options(query, watch=False)
        labels, fields = self._selectors(route.rt, query)
        limit = max(0, _int_param(query, "limit"))
        start_after = None
        cont = query.get("continue") or ""
        store = self.api.store
        if query.get("resourceVersionMatch") == "Exact":
            # Only a compacted RV is judged; a list of an older, retained state is served
            # from the current one (the sandbox keeps no past states).
            try:
                exact = int(query.get("resourceVersion", ""))
            except ValueError:
                raise errors.bad_request(
                    f'invalid resource version "{query.get("resourceVersion")}"'
                ) from None
            if exact < store.history_floor():
                raise errors.gone(LIST_EXPIRED)
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                start_after = (token["ns"], token["name"])
                token_rv = int(token.get("rv", -1))
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request(
                    "continue key is not valid: invalid continue token"
                ) from None
            if token_rv >= 0 and token_rv < store.history_floor():
                # etcd3 handleCompactedErrorForPaging: a fresh token (rv -1) goes along.
                fresh = json.dumps({"ns": start_after[0], "name": start_after[1], "rv": -1})
                err = errors.gone(CONTINUE_EXPIRED)
                err.status["metadata"] = {
                    "continue": base64.urlsafe_b64encode(fresh.encode()).decode()
                }
                raise err
        items, rv, last, remaining = self.api.store.list(
            route.rt, route.namespace, labels, fields, start_after=start_after, limit=limit
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if last is not None:
            token = json.dumps({"ns": last[0], "name": last[1], "rv": rv})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                meta["remainingItemCount"] = remaining
        table_opts = tables.options(self.headers.get("Accept", ""), query)
        if table_opts is not None:
            self._send_json(200, tables.table(route.rt, items, meta, table_opts))
            return
        body = {
            "kind": route.rt.list_kind,
            "apiVersion": route.rt.api_version,
            "metadata": meta,
            "items": items,
        }
        self._send_json(200, body)

    def _verb_create(self, route: Route, query: dict[str, str]) -> None:
        body = self._read_body()
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_kind(route.rt, body)
        self._field_validation(route.rt, query, body)
        obj = self.api.store.create(
            route.rt,
            route.namespace or "",
            body,
            dry_run=query.get("dryRun") == "All",
            defaults=self.api.defaults,
        )
        self._send_json(201, obj)

    def _check_kind(self, rt: ResourceType, body: dict[str, Any]) -> None:
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
            if api_version != rt.api_version:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected "
                    f"API version ({rt.api_version})"
                )
            if rt.is_crd:
                # unstructured objects decode as anything; the CR strategy's validation
                # refuses the kind (named by the body's kind, as upstream does)
                other = dataclasses.replace(rt, kind=kind)
                raise errors.invalid(
                    other,
                    (body.get("metadata") or {}).get("name", ""),
                    [("FieldValueInvalid", "kind", f'Invalid value: "{kind}": must be {rt.kind}')],
                )
            internal = rt.group.split(".")[0] if rt.group else "core"
            raise errors.bad_request(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: converting '
                f"({rt.version}.{kind}) to ({internal}.{rt.kind}): unknown conversion"
            )

    def _verb_update(self, route: Route, query: dict[str, str]) -> None:
        body = self._read_body()
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_kind(route.rt, body)
        if not route.subresource:
            self._field_validation(route.rt, query, body)
        obj = self.api.store.update(
            route.rt,
            route.namespace or "",
            route.name,
            body,
            subresource=route.subresource,
            dry_run=query.get("dryRun") == "All",
        )
        self._send_json(200, obj)

    def _verb_patch(self, route: Route, query: dict[str, str]) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == APPLY_PATCH or not ctype:
            raise errors.unsupported_media_type(ctype)
        body = self._read_body()

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            try:
                patched = apply_patch(current, ctype, body)
            except PatchError as exc:
                if ctype.startswith("application/") and "patch" not in ctype:
                    raise errors.unsupported_media_type(ctype) from None
                raise errors.ApiError(
                    errors.status_body(422, "Invalid", str(exc))
                    if "json-patch" in ctype
                    else errors.status_body(400, "BadRequest", str(exc))
                ) from None
            if not isinstance(patched, dict):
                raise errors.bad_request("patch result is not an object")
            if not route.subresource:
                self._field_validation(route.rt, query, patched)
            return patched

        if ctype not in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json-patch+json",
        ):
            raise errors.unsupported_media_type(ctype)
        if ctype == "application/strategic-merge-patch+json" and route.rt.is_crd:
            raise errors.unsupported_media_type(ctype)
        obj = self.api.store.apply_update(
            route.rt,
            route.namespace or "",
            route.name,
            mutate,
            subresource=route.subresource,
            dry_run=query.get("dryRun") == "All",
        )
        self._send_json(200, obj)

    def _delete_options(self, query: dict[str, str]) -> dict[str, Any]:
        body = self._read_body() or {}
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        opts = dict(body)
        if "propagationPolicy" in query:
            opts["propagationPolicy"] = query["propagationPolicy"]
        if query.get("dryRun") == "All":
            opts["dryRun"] = ["All"]
        policy = opts.get("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is not None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.ApiError(
                errors.status_body(
                    422,
                    "Invalid",
                    f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
                )
            )
        opts["propagationPolicy"] = policy
        return opts

    def _verb_delete(self, route: Route, query: dict[str, str]) -> None:
        opts = self._delete_options(query)
        pre = opts.get("preconditions") or {}
        obj, gone = self.api.store.delete(
            route.rt,
            route.namespace or "",
            route.name,
            propagation=opts["propagationPolicy"],
            precondition_uid=pre.get("uid"),
            precondition_rv=pre.get("resourceVersion"),
            dry_run="All" in (opts.get("dryRun") or []),
        )
        if gone and route.rt.kind not in _RETURNS_DELETED_OBJECT:
            details: dict[str, Any] = {
                "name": route.name,
                "kind": route.rt.plural,
                "uid": obj["metadata"].get("uid"),
            }
            if route.rt.group:
                details["group"] = route.rt.group
            self._send_json(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                },
            )
        else:
            self._send_json(200, obj)

    def _verb_deletecollection(self, route: Route, query: dict[str, str]) -> None:
        opts = self._delete_options(query)
        labels, fields = self._selectors(route.rt, query)
        items, _, _, _ = self.api.store.list(route.rt, route.namespace, labels, fields)
        deleted = []
        for obj in items:
            m = obj["metadata"]
            try:
                gone_obj, _ = self.api.store.delete(
                    route.rt,
                    m.get("namespace", ""),
                    m["name"],
                    propagation=opts["propagationPolicy"],
                    dry_run="All" in (opts.get("dryRun") or []),
                )
                deleted.append(gone_obj)
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        meta = {"resourceVersion": str(self.api.store.resource_version)}
        self._send_json(
            200,
            {
                "kind": route.rt.list_kind,
                "apiVersion": route.rt.api_version,
                "metadata": meta,
                "items": deleted,
            },
        )
