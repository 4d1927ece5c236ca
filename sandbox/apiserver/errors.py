"""API errors as the kube-apiserver words them.

ragbot's error handling (and kubectl's) keys on `reason`, `code` and the message text
of a `Status`, so each error here reproduces apimachinery's `NewNotFound`,
`NewAlreadyExists`, `NewConflict`, ... wording exactly.
"""

from __future__ import annotations

from typing import Any

from .resources import ResourceType


class ApiError(Exception):
    """An error response: HTTP code plus the Status body to send."""

    def __init__(self, status: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.code = int(status.get("code", 500))
        self.headers = headers or {}


def status_body(
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        d["group"] = rt.group
    return d


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status_body(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))
    )


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        status_body(
            404,
            "NotFound",
            f'namespaces "{namespace}" not found',
            {"name": namespace, "kind": "namespaces"},
        )
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status_body(
            409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name)
        )
    )


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status_body(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            _details(rt, name),
        )
    )


def precondition_failed(rt: ResourceType, name: str, why: str) -> ApiError:
    """A DELETE precondition that does not hold: storage.NewInvalidObjError as a Conflict
    naming the Kind (`ConfigMap`, `Backup.velero.io`), as the registry words it."""
    kind_group = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    details: dict[str, Any] = {"name": name, "kind": rt.kind}
    if rt.group:
        details["group"] = rt.group
    return ApiError(
        status_body(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {kind_group} "{name}": {why}',
            details,
        )
    )


def invalid(
    rt: ResourceType, name: str, causes: list[tuple[str, str, str]], *, use_resource: bool = False
) -> ApiError:
    """422 Invalid; causes are (reason, field, message-after-field).

    Strategy validation names the Kind (`Deployment.apps`); the generic store's own checks
    name the resource (`backups.velero.io`), and so does this with use_resource.
    """
    parts = [f"{field}: {msg}" if field else msg for _, field, msg in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = _details(rt, name)
    details["kind"] = rt.plural if use_resource else rt.kind
    details["causes"] = [
        {"reason": reason, "message": msg, "field": field} for reason, field, msg in causes
    ]
    kind_group = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    if use_resource:
        kind_group = rt.qualified
    return ApiError(
        status_body(422, "Invalid", f'{kind_group} "{name}" is invalid: {joined}', details)
    )


def bad_request(message: str) -> ApiError:
    return ApiError(status_body(400, "BadRequest", message))


def gone(message: str) -> ApiError:
    return ApiError(status_body(410, "Expired", message))


def method_not_allowed(message: str) -> ApiError:
    return ApiError(status_body(405, "MethodNotAllowed", message))


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        status_body(
            415,
            "UnsupportedMediaType",
            f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got "{content_type}")',
        )
    )


def path_not_found() -> ApiError:
    return ApiError(
        status_body(404, "NotFound", "the server could not find the requested resource", {})
    )


def forbidden(message: str, rt: ResourceType | None, name: str) -> ApiError:
    details: dict[str, Any] = {}
    if rt is not None:
        details = {"kind": rt.plural}
        if rt.group:
            details["group"] = rt.group
        if name:
            details["name"] = name
    return ApiError(status_body(403, "Forbidden", message, details))


def unauthorized() -> ApiError:
    return ApiError(status_body(401, "Unauthorized", "Unauthorized"))


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        status_body(
            429,
            "TooManyRequests",
            "The server has received too many requests and has asked us to try again later",
            {"retryAfterSeconds": retry_after},
        ),
        {"Retry-After": str(retry_after)},
    )


def internal_error(message: str) -> ApiError:
    return ApiError(status_body(500, "InternalError", f"Internal error occurred: {message}"))


def service_unavailable(message: str) -> ApiError:
    return ApiError(status_body(503, "ServiceUnavailable", message))
