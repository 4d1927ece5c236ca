"""apimachinery's field errors, ObjectMeta checks and Invalid Status, worded like kube-apiserver.

Split out of crd_validation.py (which re-exports the public names) to keep both modules short.
People and clients read the 422 text, so every string here is copied from Kubernetes 1.36
(k8s.io/apimachinery v0.36.0): pkg/util/validation/field/errors.go (ErrorBody),
pkg/api/validation/objectmeta.go + generic.go (ValidateObjectMetaAccessor[Update]),
pkg/util/validation/validation.go and pkg/api/validate/content (DNS names, label keys and values),
pkg/api/errors/errors.go (NewInvalid) and pkg/util/errors/errors.go (one error bare, several in
brackets). Older servers differ a little: before 1.35 label values say "characters" instead of
"bytes"; before 1.34 composite bad values print with Go's %#v (e.g. 0x0) instead of JSON.
Go iterates maps randomly, so the apiserver's order among labels varies; here it is sorted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

REQUIRED, INVALID, TYPE_INVALID = "FieldValueRequired", "FieldValueInvalid", "FieldValueTypeInvalid"
NOT_SUPPORTED, FORBIDDEN = "FieldValueNotSupported", "FieldValueForbidden"
TOO_LONG, TOO_MANY = "FieldValueTooLong", "FieldValueTooMany"
_TYPE_TEXT = {REQUIRED: "Required value", INVALID: "Invalid value", TYPE_INVALID: "Invalid value",
              NOT_SUPPORTED: "Unsupported value", FORBIDDEN: "Forbidden", TOO_LONG: "Too long",
              TOO_MANY: "Too many"}


@dataclass(frozen=True)
class FieldError:
    """One field.Error: ``message`` is ErrorBody(), ``str()`` is Error()."""

    path: str
    message: str
    reason: str = INVALID  # the field.ErrorType, which is also the Status cause's reason

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def field_error(reason: str, path: str, value: Any = "", detail: str = "") -> FieldError:
    """A field error as ErrorBody() prints it (Required, Forbidden and TooLong hide the value)."""
    body = _TYPE_TEXT[reason]
    if reason not in (REQUIRED, FORBIDDEN, TOO_LONG):
        body += ": " + go_value(value)
    return FieldError(path, body + (": " + detail if detail else ""), reason)


# ---- Go text rendering ---------------------------------------------------------------------------
_GO_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
               "\v": r"\v", '"': r"\"", "\\": "\\\\"}


def go_quote(text: str) -> str:
    """strconv.Quote, i.e. Go's %q: printable runes kept, the others escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def go_float(num: float, json_style: bool = False) -> str:
    """A float64 as Go's %v prints it (shortest, exponent from 1e+06) or encoding/json does."""
    if math.isnan(num) or math.isinf(num):
        return "NaN" if math.isnan(num) else ("+Inf" if num > 0 else "-Inf")
    if num == 0:
        return "-0" if math.copysign(1.0, num) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(num)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    x = len(digits) + int(exponent) - 1  # decimal exponent of the first digit
    if (abs(num) < 1e-6 or abs(num) >= 1e21) if json_style else (x < -4 or x >= 6):
        exp_text = f"{x:+03d}"
        if json_style and exp_text.startswith("-0"):
            exp_text = "-" + exp_text[2:]
        text = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + "e" + exp_text
    elif x < 0:
        text = "0." + "0" * (-x - 1) + digits
    elif len(digits) <= x + 1:
        text = digits.ljust(x + 1, "0")
    else:
        text = digits[: x + 1] + "." + digits[x + 1 :]
    return ("-" if sign else "") + text


def go_json(value: Any) -> str:
    """encoding/json.Marshal: sorted keys, no spaces, HTML-safe escapes, Go number text."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value, json_style=True)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                             ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
            text = text.replace(raw, escaped)
        return text
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"
    return "[" + ",".join(go_json(item) for item in value) + "]"


def go_value(value: Any) -> str:
    """A bad value as ErrorBody prints it: %v for numbers and bools, %q for strings, else JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    return go_quote(value) if isinstance(value, str) else go_json(value)


# ---- names, label keys and values -------------------------------------------------------
_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + "(\\." + _LABEL_FMT + ")*"
_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_KEY_MSG = ("consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, including its double space before "or"."""
    if not examples:
        return msg + " (regex used for validation is '" + fmt + "')"
    listed = " or ".join(f"'{example}', " for example in examples)
    return f"{msg} (e.g. {listed}regex used for validation is '{fmt}')"


def dns_subdomain_errors(value: str, unit: str = "characters") -> list[str]:
    """IsDNS1123Subdomain (util/validation counts characters, api/validate/content bytes)."""
    errs = [f"must be no more than 253 {unit}"] if len(value.encode()) > 253 else []
    if not re.fullmatch(_SUBDOMAIN_FMT, value):
        errs.append(_regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character", _SUBDOMAIN_FMT,
            "example.com"))
    return errs


def dns_label_errors(value: str) -> list[str]:
    """IsDNS1123Label: what namespace names must be."""
    errs = ["must be no more than 63 characters"] if len(value.encode()) > 63 else []
    if re.fullmatch(_LABEL_FMT, value):
        return errs
    if re.fullmatch(_SUBDOMAIN_FMT, value):
        return [*errs, "must not contain dots"]
    return [*errs, _regex_error(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
        "must start and end with an alphanumeric character", _LABEL_FMT, "my-name", "123-abc")]


def qualified_name_errors(value: str) -> list[str]:
    """content.IsLabelKey: label keys, annotation keys and finalizer names."""
    parts = value.split("/")
    key_error = _regex_error("must " + _KEY_MSG, _KEY_FMT, "MyName", "my.name", "123-abc")
    if len(parts) > 2:
        return [f"a valid label key {key_error} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    errs = []
    if len(parts) == 2:
        prefix_errs = dns_subdomain_errors(parts[0], "bytes") if parts[0] else ["must be non-empty"]
        errs = ["prefix part " + msg for msg in prefix_errs]
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errs.append("name part must be no more than 63 bytes")
    if not re.fullmatch(_KEY_FMT, name):
        errs.append("name part " + key_error)
    return errs


def label_value_errors(value: str) -> list[str]:
    """content.IsLabelValue."""
    errs = ["must be no more than 63 bytes"] if len(value.encode()) > 63 else []
    if not re.fullmatch(f"({_KEY_FMT})?", value):
        errs.append(_regex_error("a valid label must be an empty string or " + _KEY_MSG,
                                 f"({_KEY_FMT})?", "MyValue", "my_value", "12345"))
    return errs


# ---- ObjectMeta ---------------------------------------------------------------------------
def _meta_common(meta: Mapping[str, Any], update: bool) -> list[FieldError]:
    """Labels, annotations, owner references, and on create generation and finalizer names."""
    errs = []
    generation = meta.get("generation")
    if not update and isinstance(generation, int) and generation < 0:
        errs.append(field_error(INVALID, "metadata.generation", generation,
                                "must be greater than or equal to 0"))
    labels = meta.get("labels") if isinstance(meta.get("labels"), Mapping) else {}
    for key in sorted(labels):
        errs += [field_error(INVALID, "metadata.labels", key, m)
                 for m in qualified_name_errors(key)]
        errs += [field_error(INVALID, "metadata.labels", labels[key], m)
                 for m in label_value_errors(str(labels[key]))]
    notes = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    for key in sorted(notes):  # keys are checked lower-cased
        errs += [field_error(INVALID, "metadata.annotations", key, m)
                 for m in qualified_name_errors(key.lower())]
    if sum(len(k.encode()) + len(str(v).encode()) for k, v in notes.items()) > 256 * 1024:
        errs.append(field_error(TOO_LONG, "metadata.annotations",
                                detail="may not be more than 262144 bytes"))
    for ref in meta.get("ownerReferences") or ():
        api_version = str(ref.get("apiVersion") or "")
        if api_version.count("/") > 1 or not api_version.split("/")[-1]:
            errs.append(field_error(INVALID, "metadata.ownerReferences.apiVersion", api_version,
                                    "version must not be empty"))
        errs += [field_error(INVALID, f"metadata.ownerReferences.{key}", "", "must not be empty")
                 for key in ("kind", "name", "uid") if not ref.get(key)]
    if not update:
        for name in meta.get("finalizers") or ():
            errs += [field_error(INVALID, "metadata.finalizers", name, m)
                     for m in qualified_name_errors(name)]
    return errs


def _meta_update(meta: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """ValidateObjectMetaAccessorUpdate (after rest.BeforeUpdate copied uid and timestamps)."""
    errs = []
    added = sorted(set(meta.get("finalizers") or ()) - set(old.get("finalizers") or ()))
    if old.get("deletionTimestamp") and added:
        listed = ", ".join(go_quote(f) for f in added)
        errs.append(field_error(FORBIDDEN, "metadata.finalizers", detail="no new finalizers can be "
                                f"added if the object is being deleted, found new finalizers "
                                f"[]string{{{listed}}}"))
    if not meta.get("resourceVersion"):
        errs.append(field_error(INVALID, "metadata.resourceVersion", "",
                                "must be specified for an update"))
    if (meta.get("generation") or 0) < (old.get("generation") or 0):
        errs.append(field_error(INVALID, "metadata.generation", meta.get("generation") or 0,
                                "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds"):
        new, prev = meta.get(key), old.get(key)
        if key in ("name", "namespace", "uid"):
            new, prev = new or "", prev or ""
        elif key != "deletionGracePeriodSeconds":  # a zero metav1.Time renders as null
            new, prev = new or None, prev or None
        if new != prev:
            errs.append(field_error(INVALID, "metadata." + key, new, "field is immutable"))
    return errs + _meta_common(meta, update=True)


def validate_object_meta(meta: Mapping[str, Any], namespaced: bool | None = None,
                         old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """ValidateObjectMetaAccessor with NameIsDNSSubdomain, or the update rules when ``old`` is set.

    ``namespaced`` (the resource's scope) turns on the metadata.namespace checks; None skips them.
    """
    if old is not None:
        return _meta_update(meta, old)
    errs = []
    generate_name, name = meta.get("generateName") or "", meta.get("name") or ""
    if generate_name:  # a trailing dash is masked; the [:-2] is upstream's (maskTrailingDash)
        masked = generate_name
        if len(generate_name) > 1 and generate_name.endswith("-"):
            masked = generate_name[:-2] + "a"
        errs += [field_error(INVALID, "metadata.generateName", generate_name, m)
                 for m in dns_subdomain_errors(masked)]
    if not name:
        errs.append(field_error(REQUIRED, "metadata.name",
                                detail="name or generateName is required"))
    else:
        errs += [field_error(INVALID, "metadata.name", name, m) for m in dns_subdomain_errors(name)]
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        errs.append(field_error(REQUIRED, "metadata.namespace"))
    elif namespaced:
        errs += [field_error(INVALID, "metadata.namespace", namespace, m)
                 for m in dns_label_errors(namespace)]
    elif namespaced is False and namespace:
        errs.append(field_error(FORBIDDEN, "metadata.namespace", detail="not allowed on this type"))
    return errs + _meta_common(meta, update=False)


# ---- the 422 body ---------------------------------------------------------------------------
def invalid_status(kind: str, group: str, plural: str, name: str, errors: list[FieldError], *,
                   use_resource: bool = False) -> dict[str, Any]:
    """apierrors.NewInvalid(...).ErrStatus, in metav1.Status field order with omitempty applied.

    Strategy validation passes the GroupKind: 'Backup.velero.io "x" is invalid: ...' with
    details.kind "Backup". The generic store's own checks (an update of a custom resource without
    resourceVersion) pass GroupKind{group, plural}: use_resource=True gives 'backups.velero.io ...'.
    """
    qualified_kind = plural if use_resource else kind
    qualified = f"{qualified_kind}.{group}" if group else qualified_kind
    texts = list(dict.fromkeys(str(e) for e in errors))  # ToAggregate drops repeated texts
    message = f"{qualified} {go_quote(name)} is invalid"
    if texts:
        message += ": " + (texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]")
    details: dict[str, Any] = {
        k: v for k, v in (("name", name), ("group", group), ("kind", qualified_kind)) if v}
    if errors:
        details["causes"] = [{k: v for k, v in (("reason", e.reason), ("message", e.message),
                                                ("field", e.path)) if v} for e in errors]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Invalid", "details": details, "code": 422}
