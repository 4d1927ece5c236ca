"""Kubernetes API failures as a small tree of meaningful errors.

Callers decide on kind, not status codes: NotFound and Conflict steer logic, Transient
means "retry after a backoff", Forbidden names exactly what the service account lacks,
Unreachable means the API server cannot be reached at all. Each message is written for
the operator who will read it in Slack or on stderr.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException


class ClusterError(Exception):
    """Base of every error the service layer raises; str() is a user-facing sentence."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint or type(self).hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class ApiError(ClusterError):
    """The API server answered with an error Status."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "", hint: str = "",
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason
        self.body = body or {}


class NotFound(ApiError):
    pass


class AlreadyExists(ApiError):
    pass


class Conflict(ApiError):
    """Optimistic concurrency lost: someone else wrote the object first."""


class Invalid(ApiError):
    pass


class Gone(ApiError):
    """A watch or continue token is older than the server's history: list again."""


class Forbidden(ApiError):
    hint = "grant it to ragbot's service account (see the chart's RBAC)"


class Unauthorized(ApiError):
    hint = "the credentials in the kubeconfig or service account token were refused"


class Transient(ApiError):
    """429, 5xx: the server asked us to come back later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Unreachable(ClusterError):
    hint = "check the kubeconfig's server address and that the API server is up"


class Timeout(ClusterError):
    """A wait ran past its deadline."""


def _status_body(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate(exc: BaseException, *, what: str = "") -> ClusterError:
    """Map a client exception to the error tree; `what` says what we were doing."""
    if isinstance(exc, ClusterError):
        return exc
    prefix = f"{what}: " if what else ""
    if isinstance(exc, ApiException):
        body = _status_body(exc)
        status = int(exc.status or 0)
        message = str(body.get("message") or exc.reason or f"HTTP {status}")
        reason = str(body.get("reason") or exc.reason or "")
        kw: dict[str, Any] = {"status": status, "reason": reason, "body": body}
        if status == 0:
            return Unreachable(f"{prefix}cannot reach the Kubernetes API server: {exc.reason}")
        if status == 404:
            return NotFound(prefix + message, **kw)
        if status == 409 and reason == "AlreadyExists":
            return AlreadyExists(prefix + message, **kw)
        if status == 409:
            return Conflict(prefix + message, **kw)
        if status == 410:
            return Gone(prefix + message, **kw)
        if status == 422:
            return Invalid(prefix + message, **kw)
        if status == 403:
            return Forbidden(prefix + message, **kw)
        if status == 401:
            return Unauthorized(prefix + "unauthorized", **kw)
        if status == 429 or status >= 500:
            retry_after = _retry_after(exc)
            return Transient(prefix + f"API server busy or failing ({status} {message})",
                             retry_after=retry_after, **kw)
        return ApiError(prefix + message, **kw)
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | OSError):
        return Unreachable(f"{prefix}cannot reach the Kubernetes API server: {_short(exc)}")
    return ClusterError(f"{prefix}{exc}")


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def is_transient(err: ClusterError) -> bool:
    return isinstance(err, Transient | Unreachable)
