"""The REST verbs of the sandbox API server: get, list, create, update, patch, delete.

Each turns a routed request into one Store call and answers as the kube-apiserver does
(Status bodies, Table answers for kubectl, the object or a Status after DELETE).
"""

from __future__ import annotations

import base64
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
    {"Pod", "Service", "ServiceAccount", "PersistentVolume", "PersistentVolumeClaim",
     "StorageClass", "Node", "Namespace"}
)


class RestVerbs(HandlerBase):
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
        labels, fields = self._selectors(route.rt, query)
        limit = max(0, _int_param(query, "limit"))
        start_after = None
        cont = query.get("continue") or ""
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                start_after = (token["ns"], token["name"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request(
                    "continue key is not valid: invalid continue token"
                ) from None
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
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if api_version != rt.api_version
                else f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
            )

    def _verb_update(self, route: Route, query: dict[str, str]) -> None:
        body = self._read_body()
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_kind(route.rt, body)
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
