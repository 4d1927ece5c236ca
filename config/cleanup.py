"""What must be removed before a restore: the `backupConfig.deployments` entries.

Enterprise RAG lists, per namespace, strings in three forms (see
reference/enterprise-rag-backup.md):

    Helm/<release>                      uninstall that Helm release
    <Kind>/selector: <label selector>   delete every object of that kind matching it
    <Kind>/<name>                       delete that one object

The playbook splits these strings with Jinja at run time, so a typo surfaces in the
middle of a restore, after the application is half uninstalled. Here they are parsed
once, at load time, into frozen typed values; names, kinds and selectors are checked
the way the API server would check them, and duplicates (the default `edp` list names
`Secret/vector-database-config` twice) are dropped. `str()` of a value gives back the
entry's syntax.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from config.selectors import LabelSelector, SelectorError, parse_selector

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL_RE = re.compile(rf"^{_DNS_LABEL}$")
_DNS_SUBDOMAIN_RE = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_KIND_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_SELECTOR_RE = re.compile(r"^([^/]+)/selector:(.*)$", re.DOTALL)  # the playbook's own test
_SYNTAX = "Helm/<release>, <Kind>/<name> or <Kind>/selector: <label selector>"


class CleanupError(ValueError):
    """A cleanup entry that cannot be understood or would be refused by the cluster."""


def check_dns1123_label(value: str, what: str = "name") -> str:
    """A namespace-style name: lower-case letters, digits and '-', at most 63 characters."""
    if not isinstance(value, str) or not value:
        raise CleanupError(f"{what} must be a non-empty string")
    if len(value) > 63 or not _DNS_LABEL_RE.match(value):
        raise CleanupError(
            f"invalid {what} {value!r}: at most 63 lower-case letters, digits or '-', "
            "starting and ending with a letter or digit (DNS-1123 label)"
        )
    return value


def check_dns1123_subdomain(value: str, what: str = "name", max_len: int = 253) -> str:
    """An object name: lower-case DNS labels joined by '.', at most `max_len` characters."""
    if not isinstance(value, str) or not value:
        raise CleanupError(f"{what} must be a non-empty string")
    if len(value) > max_len or not _DNS_SUBDOMAIN_RE.match(value):
        raise CleanupError(
            f"invalid {what} {value!r}: at most {max_len} lower-case letters, digits, '-' "
            "or '.', starting and ending with a letter or digit (DNS-1123 subdomain)"
        )
    return value


def check_kind(kind: str) -> str:
    """A Kubernetes Kind as written in manifests: CamelCase, e.g. Secret or ConfigMap."""
    if kind.lower() == "helm" and kind != "Helm":
        raise CleanupError(f"unknown kind {kind!r}: Helm releases are written Helm/<release>")
    if not _KIND_RE.match(kind) or len(kind) > 63:
        raise CleanupError(
            f"invalid kind {kind!r}: write the Kind as in a manifest, CamelCase and "
            "singular, e.g. Secret, Deployment or ConfigMap"
        )
    return kind


@dataclass(frozen=True)
class HelmRelease:
    """`Helm/<release>`: uninstall the Helm release `release` in `namespace`."""

    namespace: str
    release: str

    def __str__(self) -> str:
        return f"Helm/{self.release}"


@dataclass(frozen=True)
class SelectorDelete:
    """`<Kind>/selector: <selector>`: delete every `kind` in `namespace` matching it."""

    namespace: str
    kind: str
    selector: LabelSelector

    def __str__(self) -> str:
        return f"{self.kind}/selector: {self.selector}"


@dataclass(frozen=True)
class NamedDelete:
    """`<Kind>/<name>`: delete the object `kind`/`name` in `namespace`."""

    namespace: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


CleanupEntry = HelmRelease | SelectorDelete | NamedDelete


def _entry_text(entry: object) -> str:
    if isinstance(entry, str):
        return entry.strip()
    if isinstance(entry, Mapping) and len(entry) == 1:
        # `- Deployment/selector: app=x` without quotes is a one-key mapping in YAML.
        ((key, value),) = entry.items()
        if isinstance(key, str) and key.endswith("/selector") and isinstance(value, str):
            return f"{key}: {value}".strip()
        raise CleanupError(
            f"expected a string such as {_SYNTAX}; YAML read this entry as a mapping "
            "because of ': ', so put the whole entry in quotes"
        )
    raise CleanupError(f"expected a string such as {_SYNTAX}, not {entry!r}")


def parse_cleanup_entry(entry: object, namespace: str = "") -> CleanupEntry:
    """Parse one entry of `deployments[namespace]` into its typed value.

    `entry` is normally a string; a one-key mapping `{"Kind/selector": "k=v"}` (what
    YAML makes of an unquoted selector entry) is accepted too. Raises CleanupError.
    """
    text = _entry_text(entry)
    selector = _SELECTOR_RE.match(text)
    if selector:
        kind = selector.group(1).strip()
        if kind == "Helm":
            raise CleanupError(
                f"{text!r}: Helm entries name a release (Helm/<release>); "
                "selectors are for Kubernetes kinds, e.g. Deployment/selector: app=x"
            )
        check_kind(kind)
        expr = selector.group(2).strip()
        if not expr:
            raise CleanupError(
                f"{text!r}: empty selector, which would delete every {kind} in the "
                "namespace; write e.g. app.kubernetes.io/managed-by=Helm"
            )
        try:
            parsed = parse_selector(expr)
        except SelectorError as err:
            raise CleanupError(f"{text!r}: bad selector: {err}") from None
        return SelectorDelete(namespace, kind, parsed)
    parts = text.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise CleanupError(f"{text!r} is not a cleanup entry: expected {_SYNTAX}")
    kind, name = parts[0].strip(), parts[1].strip()
    if kind == "Helm":
        # Helm limits release names to 53 characters.
        return HelmRelease(namespace, check_dns1123_subdomain(name, "Helm release name", 53))
    check_kind(kind)
    return NamedDelete(namespace, kind, check_dns1123_subdomain(name, f"{kind} name"))


def with_namespace(entry: CleanupEntry, namespace: str) -> CleanupEntry:
    """The same entry bound to `namespace`."""
    return dataclasses.replace(entry, namespace=namespace)


def dedupe(entries: Iterable[CleanupEntry]) -> tuple[CleanupEntry, ...]:
    """Drop repeated entries, keeping the first of each, in order."""
    return tuple(dict.fromkeys(entries))


def parse_cleanup_list(
    namespace: str, entries: Sequence[object] | None
) -> tuple[CleanupEntry, ...]:
    """Parse and dedupe one namespace's list; errors name the entry as `ns[i]`."""
    check_dns1123_label(namespace, "namespace")
    out: list[CleanupEntry] = []
    for i, entry in enumerate(entries or ()):
        try:
            out.append(parse_cleanup_entry(entry, namespace))
        except CleanupError as err:
            raise CleanupError(f"{namespace}[{i}]: {err}") from None
    return dedupe(out)


def parse_deployments(
    deployments: Mapping[str, Sequence[object] | None],
) -> dict[str, tuple[CleanupEntry, ...]]:
    """Parse a whole `deployments` mapping (namespace -> entries)."""
    return {ns: parse_cleanup_list(ns, entries) for ns, entries in deployments.items()}


def ordered_entries(
    deployments: Mapping[str, Sequence[CleanupEntry]], namespace_order: Sequence[str]
) -> tuple[CleanupEntry, ...]:
    """The entries in the order the playbook acts on them.

    The playbook runs three passes over the namespaces of namespaceOrder: first every
    selector delete, then every Helm uninstall, then every named delete. Namespaces
    that are not in namespaceOrder are not cleaned up.
    """
    entries = dedupe(e for ns in namespace_order for e in deployments.get(ns, ()))
    return tuple(
        [e for e in entries if isinstance(e, SelectorDelete)]
        + [e for e in entries if isinstance(e, HelmRelease)]
        + [e for e in entries if isinstance(e, NamedDelete)]
    )
