"""Who is asking, and may they: the sandbox's authentication and authorizer contract.

Bearer tokens are either the admin token written into the sandbox kubeconfig (member of
`system:masters`, allowed everything, as a cluster admin is) or a token that names a
ServiceAccount, `system:serviceaccount:<namespace>:<name>`, which the optional RBAC
authorizer judges against the Roles and bindings stored in the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class RequestAttributes:
    """What the authorizer judges, as in k8s.io/apiserver's authorizer.Attributes."""

    user: UserInfo
    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    resource_request: bool
    path: str


# Returns None when allowed, else the reason (unused in the message, kept for logs).
Authorizer = Callable[[RequestAttributes], str | None]


def authenticate(token: str | None, admin_token: str) -> UserInfo | None:
    """Map a bearer token to a user, or None when the token is unknown."""
    if token == admin_token:
        return UserInfo("sandbox-admin", ("system:masters", "system:authenticated"))
    if token and token.startswith(SA_PREFIX):
        rest = token[len(SA_PREFIX) :]
        namespace, _, name = rest.partition(":")
        if namespace and name:
            return UserInfo(
                token,
                (
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{namespace}",
                    "system:authenticated",
                ),
            )
    return None


def forbidden_message(attrs: RequestAttributes, qualified: str) -> str:
    """The apiserver's 403 text (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters)."""
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    who = f'User "{attrs.user.name}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}"'
    where = f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    if attrs.name:
        return f'{qualified} "{attrs.name}" is forbidden: {who}{where}'
    return f"{qualified} is forbidden: {who}{where}"
