"""Validate and prune custom objects against their CRD the way kube-apiserver 1.36 does.

Why hand-written: people and clients read the 422 text, and jsonschema words it differently.
Sources (apiextensions-apiserver v0.36.0, kube-openapi 43fb72c5454a): kube-openapi
pkg/validation/validate (schema.go: validator order; type.go, validator.go, object_validator.go,
slice_validator.go, values.go, formats.go) and pkg/validation/errors/schema.go (the "<path> in
body ..." texts); apiextensions-apiserver pkg/apiserver/validation/validation.go
(kubeOpenAPIResultToFieldErrors, ConvertJSONSchemaPropsWithPostProcess: int-or-string is type
[integer, string]), formats.go (unsupported formats ignored), pkg/registry/customresource/
validator.go (type meta, ObjectMeta, then schema), customresource_handler.go
unstructuredSchemaCoercer.apply + schema/pruning + schema/defaulting/prunenulls.go (pruning).
Checked against the real v0.36.0 code (a Go harness); differences: Go's random map order among
sibling fields (sorted here), invalid regex patterns are described by Python's re, no
multipleOf/uniqueItems/minProperties/allOf/oneOf/not, embedded resources' metadata not coerced.
Before 1.36 the "Checked value must be of type ..." number-format error did not exist.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from .field_errors import (
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    TOO_MANY,
    TYPE_INVALID,
    FieldError,
    field_error,
    go_float,
    go_json,
    go_quote,
    invalid_status,
    validate_object_meta,
)

__all__ = ["CRDInfo", "CRDVersion", "FieldError", "invalid_status", "load_bundled_crds", "load_crd",
           "prune", "prune_with_paths", "validate", "validate_type_meta"]

# ---- schema validation (kube-openapi, converted by kubeOpenAPIResultToFieldErrors) --------------
_NUMBER_FORMATS = {"integer": ("int32", "int64"), "number": ("float", "double")}
_STRING_FORMATS = frozenset((
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
    "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
    "byte", "password", "date", "duration", "datetime", "k8sshortname", "k8slongname"))
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")
_B64 = "[A-Za-z0-9+/]"
_BASE64 = re.compile(f"(?:{_B64}{{4}})*(?:{_B64}{{2}}==|{_B64}{{3}}=|{_B64}{{4}})")


def _is_date(text: str) -> bool:
    """time.Parse("2006-01-02"), which also checks the day against the month."""
    m = _DATE.fullmatch(text)
    if not m:
        return False
    year, month, day = map(int, m.groups())
    feb = 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    days = (31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


def _is_date_time(text: str) -> bool:
    """strfmt.IsDateTime, including its split on every "t"."""
    parts = text.lower().split("t")
    if len(text) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    m = _TIME.fullmatch(parts[1])
    return bool(m) and m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"


_SHORT_NAME = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
# Format checks done here (strfmt default.go, time.go, kubernetes-extensions.go); the other
# supported formats are accepted unchecked.
_FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "datetime": _is_date_time, "date": _is_date, "byte": lambda s: bool(_BASE64.fullmatch(s)),
    "k8sshortname": lambda s: len(s.encode()) <= 63 and bool(re.fullmatch(_SHORT_NAME, s)),
    "k8slongname": lambda s: len(s.encode()) <= 253
    and bool(re.fullmatch(rf"{_SHORT_NAME}(\.{_SHORT_NAME})*", s))}


def _pattern_error(pattern: str, data: str) -> str | None:
    """values.Pattern: None when it matches (Go regexp search; Python re is close enough)."""
    try:
        return None if re.search(pattern, data) else pattern
    except re.error as exc:
        return f"{pattern}, but pattern is invalid: error parsing regexp: {exc}"


def _types(schema: Mapping[str, Any]) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    return [schema["type"]] if schema.get("type") else []


def _format(schema: Mapping[str, Any], types: list[str]) -> str:
    """StripUnsupportedFormatsPostProcessorForVersion: unsupported formats are ignored."""
    fmt, kind = schema.get("format") or "", types[0] if len(types) == 1 else ""
    if kind in ("", "string"):
        return fmt if fmt.replace("-", "") in _STRING_FORMATS else ""
    return fmt if fmt in _NUMBER_FORMATS.get(kind, ()) else ""


def _info(data: Any) -> tuple[str, str]:
    """typeValidator.schemaInfoForType for JSON-decoded values."""
    if isinstance(data, bool):
        return "boolean", ""
    if isinstance(data, int):
        return "integer", "int64"
    if isinstance(data, float):
        return "number", "float64"
    if isinstance(data, str):
        return "string", ""
    return ("object", "") if isinstance(data, Mapping) else ("array", "")


def _enum_equal(data: Any, allowed: Any) -> bool:
    """reflect Convert + DeepEqual as basicCommonValidator does (an int even converts to a rune)."""
    if data is None or allowed is None or isinstance(data, bool) or isinstance(allowed, bool):
        return isinstance(data, bool) and isinstance(allowed, bool) and data == allowed
    if isinstance(allowed, str) and isinstance(data, int):
        valid_rune = 0 <= data <= 0x10FFFF and not 0xD800 <= data <= 0xDFFF
        return (chr(data) if valid_rune else "\ufffd") == allowed
    if isinstance(allowed, (int, float)):
        if not isinstance(data, (int, float)):
            return False
        return (int(data) if isinstance(allowed, int) else data) == allowed
    return type(data) is type(allowed) and data == allowed


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


class _Validator:
    """kube-openapi's SchemaValidator; each error is converted as the apiserver converts it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, FieldError]] = []  # (kube-openapi message, field error)

    def add(self, kind: str, name: str, msg: str, value: Any = None, limit: int = -1,
            allowed: Sequence[Any] = ()) -> None:
        """Result.AddErrors (messages kept unique) + kubeOpenAPIResultToFieldErrors."""
        if any(msg == seen for seen, _ in self.items):
            return
        path = name.removeprefix(".") if name not in ("", ".") else "<nil>"
        if kind == "required":
            err = field_error(REQUIRED, path)
        elif kind == "enum":
            listed = ", ".join(go_quote(v if isinstance(v, str) else go_json(v)) for v in allowed)
            err = field_error(NOT_SUPPORTED, path, value,
                              "supported values: " + listed if listed else "")
        elif kind == "too_long":
            detail = f"may not be more than {_count(limit, 'byte')}"
            err = field_error(TOO_LONG, path, detail=detail)
        elif kind == "too_many":
            err = field_error(TOO_MANY, path, value, f"must have at most {_count(limit, 'item')}")
        else:  # InvalidTypeCode -> TypeInvalid, the rest -> Invalid; both keep the openapi text
            err = field_error(TYPE_INVALID if kind == "type" else INVALID, path,
                              "" if value is None else value, msg)
        self.items.append((msg, err))

    def validate(self, data: Any, schema: Mapping[str, Any], path: str) -> None:
        """SchemaValidator.Validate: type, anyOf, string, format, number, slice, enum, object."""
        types = _types(schema)
        fmt = _format(schema, types)
        self._type(data, schema, types, fmt, path)
        kind = "null" if data is None else _info(data)[0]
        if data is not None:
            self._any_of(data, schema, path)
        if kind == "string":
            self._string(data, schema, path)
            check = _FORMAT_CHECKS.get(fmt.replace("-", ""))
            if check and not check(data):
                self._invalid_type(path, fmt, data)
        elif kind in ("integer", "number"):
            self._number(data, schema, types, path)
        elif kind == "array":
            self._slice(data, schema, path)
        enum = schema.get("enum")
        if enum and not any(_enum_equal(data, allowed) for allowed in enum):
            self.add("enum", path, f"{path} in body should be one of {enum!r}", data, allowed=enum)
        if kind == "object":
            self._object(data, schema, path)

    def _invalid_type(self, path: str, type_name: str, got: str) -> None:
        """errors.InvalidType with a string value (typeFailWithData)."""
        self.add("type", path, f"{path} in body must be of type {type_name}: {go_quote(got)}", got)

    def _type(self, data: Any, schema: Mapping[str, Any], types: list[str], fmt: str,
              path: str) -> None:
        """typeValidator, with its format, float-as-integer and nullable rules."""
        if not types and not fmt:
            return
        if data is None:
            if types and "null" not in types and not schema.get("nullable"):
                self._invalid_type(path, ",".join(types), "null")
            return
        got, got_fmt = _info(data)
        float_int = (got == "number" and "integer" in types and data.is_integer()
                     and abs(data) < 2**53)  # swag.IsFloat64AJSONInteger
        int_float = got == "integer" and "number" in types
        matches = got in types or float_int or int_float
        if got not in ("string", "array") and fmt and not (matches or got_fmt == fmt):
            self._invalid_type(path, fmt, got_fmt)
        elif fmt and got in ("string", "array") and not {"number", "integer"} & set(types):
            return
        elif not matches:
            self._invalid_type(path, ",".join(types), got)

    def _any_of(self, data: Any, schema: Mapping[str, Any], path: str) -> None:
        """anyOf, as int-or-string schemas use it; of failing branches the first is reported."""
        failures = []
        for branch in schema.get("anyOf") or ():
            sub = _Validator()
            sub.validate(data, branch, path)
            if not sub.items:
                return
            failures.append(sub)
        if failures:
            self.add("plain", "", f"{go_quote(path)} must validate at least one schema (anyOf)")
            self.items += [i for i in failures[0].items if all(i[0] != s for s, _ in self.items)]

    def _string(self, data: str, schema: Mapping[str, Any], path: str) -> None:
        """stringValidator: maxLength, minLength, pattern; stops at the first failure."""
        if "maxLength" in schema and len(data) > schema["maxLength"]:
            self.add("too_long", path, f"{path} in body should be at most {schema['maxLength']} "
                     "chars long", data, schema["maxLength"])
        elif "minLength" in schema and len(data) < schema["minLength"]:
            self.add("invalid", path, f"{path} in body should be at least {schema['minLength']} "
                     "chars long", data)
        elif schema.get("pattern") and (shown := _pattern_error(schema["pattern"], data)):
            self.add("invalid", path, f"{path} in body should match '{shown}'", data)

    def _fits(self, value: float, type_name: str, fmt: str, prefix: str, path: str) -> None:
        """IsValueValidAgainstRange (1.36+): a plain error, so it lands on field "<nil>"."""
        if type_name == "integer":
            bits = 31 if fmt == "int32" else 63
            ok = float(value).is_integer() and -(2**bits) <= int(value) < 2**bits
        else:
            ok = fmt != "float" or abs(value) <= 3.4028234663852886e38
        if not ok:
            how = f"with format {fmt}" if fmt else "(default format)"
            self.add("plain", "", f"{prefix} value must be of type {type_name} {how} in {path}")

    def _number(self, data: float, schema: Mapping[str, Any], types: list[str], path: str) -> None:
        """numberValidator: the type-range check, then minimum and maximum (no multipleOf)."""
        type_name = types[0] if len(types) == 1 and types[0] in _NUMBER_FORMATS else ""
        fmt = schema.get("format") or ""
        fmt = fmt if fmt in _NUMBER_FORMATS.get(type_name, ()) else ""
        if type_name:
            self._fits(data, type_name, fmt, "Checked", path)
        for key, word, sign in (("minimum", "greater", -1), ("maximum", "less", 1)):
            if schema.get(key) is None:
                continue
            if type_name:
                self._fits(schema[key], type_name, fmt, f"{key.capitalize()} boundary", path)
            exclusive = bool(schema.get("exclusive" + key.capitalize()))
            limit = int(schema[key]) if isinstance(data, int) else float(schema[key])
            if sign * (data - limit) > 0 or (exclusive and data == limit):
                shown = str(limit) if isinstance(limit, int) else go_float(limit)
                also = "" if exclusive else " or equal to"
                msg = f"{path} in body should be {word} than{also} {shown}"
                self.add("invalid", path, msg, data)

    def _slice(self, data: list[Any], schema: Mapping[str, Any], path: str) -> None:
        """schemaSliceValidator: items (at path[i]) first, then minItems and maxItems."""
        if isinstance(schema.get("items"), Mapping):
            for i, item in enumerate(data):
                self.validate(item, schema["items"], f"{path}[{i}]")
        size = len(data)
        if "minItems" in schema and size < schema["minItems"]:
            self.add("invalid", path, f"{path} in body should have at least {schema['minItems']} "
                     "items", size)
        if "maxItems" in schema and size > schema["maxItems"]:
            self.add("too_many", path, f"{path} in body should have at most {schema['maxItems']} "
                     "items", size, schema["maxItems"])

    def _object(self, data: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> None:
        """objectValidator: maxProperties, additionalProperties, properties, then required."""
        props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        if "maxProperties" in schema and len(data) > schema["maxProperties"]:
            self.add("too_many", path, f"{path} in body should have at most "
                     f"{schema['maxProperties']} properties", len(data), schema["maxProperties"])
        for key in sorted(k for k in data if k not in props):
            if extra is False:
                self.add("invalid", path, f"{path}.{key} in body is a forbidden property", key)
            elif isinstance(extra, Mapping):
                self.validate(data[key], extra, f"{path}.{key}")
        for key in sorted(k for k in props if k in data):
            self.validate(data[key], props[key], f"{path}.{key}" if path else key)
        for key in schema.get("required") or ():
            if key not in data:
                self.add("required", f"{path}.{key}", f"{path}.{key} in body is required")


# ---- pruning (unstructuredSchemaCoercer.apply) ---------------------------------------------
_META_KEYS = ("apiVersion", "kind", "metadata")
_OBJECT_META = frozenset((
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields"))


def _sub(schema: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    """A structural sub-schema; a boolean additionalProperties has none (everything is pruned)."""
    value = schema.get(key) if schema is not None else None
    return value if isinstance(value, Mapping) else None


def _prune(x: Any, schema: Mapping[str, Any] | None, parent: str, unknown: list[str],
           root: bool = False, skip: bool = False) -> None:
    """pruning.prune, or skipPrune (``skip``) below x-kubernetes-preserve-unknown-fields."""
    if not skip and schema is not None and schema.get("x-kubernetes-preserve-unknown-fields"):
        skip = True
    if skip and schema is None:
        return
    if isinstance(x, dict):
        if schema is None:
            unknown.extend(f"{parent}.{k}" if parent else k for k in x)
            x.clear()
            return
        embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
        props = schema.get("properties") or {}
        for key in list(x):
            child = f"{parent}.{key}" if parent else key
            if embedded and key in _META_KEYS:
                continue
            if key in props:
                _prune(x[key], props[key], child, unknown)
            elif "additionalProperties" in schema:
                _prune(x[key], _sub(schema, "additionalProperties"), child, unknown)
            elif not skip:
                if key not in _META_KEYS or parent:
                    unknown.append(child)
                del x[key]
    elif isinstance(x, list):
        for i, item in enumerate(x):
            _prune(item, _sub(schema, "items"), f"{parent}[{i}]", unknown, skip=skip)


def _prune_nulls(x: Any, schema: Mapping[str, Any] | None) -> None:
    """PruneNonNullableNullsWithoutDefaults: a null the schema does not allow means absent."""
    if isinstance(x, dict):
        for key in list(x):
            sub = (schema.get("properties") or {}).get(key) if schema is not None else None
            sub = sub if sub is not None else _sub(schema, "additionalProperties")
            nullable = sub is None or sub.get("nullable") or "default" in sub
            if x[key] is None and not nullable:
                del x[key]
            else:
                _prune_nulls(x[key], sub)
    elif isinstance(x, list):
        for item in x:
            _prune_nulls(item, _sub(schema, "items"))


def prune_with_paths(obj: Mapping[str, Any],
                     schema: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """prune(), plus the unknown-field paths the apiserver reports (as warnings or strict errors):
    unknown metadata fields first, then the sorted schema ones, e.g. "spec.foo"."""
    out = copy.deepcopy(dict(obj))
    unknown: list[str] = []
    meta = out.get("metadata")
    if isinstance(meta, dict):  # the ObjectMeta round trip drops unknown and empty fields
        unknown += [f"metadata.{k}" for k in meta if k not in _OBJECT_META]
        out["metadata"] = {k: v for k, v in meta.items()
                           if k in _OBJECT_META and v not in (None, "", {}, [])
                           and not (k == "generation" and v == 0)}
    pruned: list[str] = []
    _prune(out, schema, "", pruned, root=True)
    _prune_nulls(out, schema)
    return out, unknown + sorted(pruned)


def prune(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of obj as the apiserver keeps it: fields unknown to the schema dropped (apiVersion,
    kind and metadata kept; x-kubernetes-preserve-unknown-fields keeps unknowns below it),
    non-nullable nulls removed, unknown and empty metadata fields dropped."""
    return prune_with_paths(obj, schema)[0]


# ---- CRDs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CRDVersion:
    """One entry of spec.versions."""

    name: str
    served: bool
    storage: bool
    schema: Mapping[str, Any]  # openAPIV3Schema, {} when absent
    has_status_subresource: bool
    additional_printer_columns: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class CRDInfo:
    """What the fake apiserver needs to serve one CustomResourceDefinition."""

    group: str
    plural: str
    singular: str
    kind: str
    list_kind: str
    short_names: tuple[str, ...]
    scope: str  # "Namespaced" or "Cluster"
    versions: tuple[CRDVersion, ...]
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def storage_version(self) -> CRDVersion:
        return next(v for v in self.versions if v.storage)

    def version(self, name: str) -> CRDVersion | None:
        return next((v for v in self.versions if v.name == name), None)


def load_crd(doc: Mapping[str, Any]) -> CRDInfo:
    """Read an apiextensions.k8s.io/v1 CustomResourceDefinition (singular, listKind defaulted)."""
    if (doc.get("apiVersion"), doc.get("kind")) != ("apiextensions.k8s.io/v1",
                                                    "CustomResourceDefinition"):
        raise ValueError(f"not an apiextensions.k8s.io/v1 CRD: {doc.get('kind')!r}")
    spec, names = doc["spec"], doc["spec"]["names"]
    versions = tuple(
        CRDVersion(name=v["name"], served=bool(v.get("served")), storage=bool(v.get("storage")),
                   schema=(v.get("schema") or {}).get("openAPIV3Schema") or {},
                   has_status_subresource="status" in (v.get("subresources") or {}),
                   additional_printer_columns=tuple(v.get("additionalPrinterColumns") or ()))
        for v in spec["versions"])
    return CRDInfo(group=spec["group"], plural=names["plural"],
                   singular=names.get("singular") or names["kind"].lower(), kind=names["kind"],
                   list_kind=names.get("listKind") or names["kind"] + "List",
                   short_names=tuple(names.get("shortNames") or ()),
                   scope=spec.get("scope") or "Namespaced", versions=versions, document=doc)


def load_bundled_crds() -> list[CRDInfo]:
    """Every CRD in sandbox/crds/*.yaml, so the sandbox runs without the shared reference tree."""
    crd_dir = resources.files("sandbox").joinpath("crds")
    found = []
    for entry in sorted(crd_dir.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            docs = yaml.safe_load_all(entry.read_text(encoding="utf-8"))
            found += [load_crd(doc) for doc in docs if doc]
    return found


def validate(obj: Mapping[str, Any], schema: Mapping[str, Any], *, namespaced: bool | None = None,
             old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """What customResourceValidator reports: ObjectMeta errors first, then the schema's.

    ``namespaced`` (the CRD scope) turns on the metadata.namespace checks; leave it None when the
    server sets the namespace from the URL. ``old`` (the stored object) selects the update rules
    for metadata; the schema is checked the same way (no ratcheting of unchanged fields). Call
    prune() first: the apiserver prunes while decoding, before it validates.
    """
    def meta_of(o: Mapping[str, Any]) -> Mapping[str, Any]:
        return o["metadata"] if isinstance(o.get("metadata"), Mapping) else {}

    checker = _Validator()
    checker.validate(obj, schema, "")
    errs = validate_object_meta(meta_of(obj), namespaced, None if old is None else meta_of(old))
    return errs + [err for _, err in checker.items]


def validate_type_meta(obj: Mapping[str, Any], crd: CRDInfo, version: str) -> list[FieldError]:
    """customResourceValidator.ValidateTypeMeta, run first: if it fails, nothing else is said."""
    errs, want = [], f"{crd.group}/{version}"
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind != crd.kind:
        errs.append(field_error(INVALID, "kind", kind if isinstance(kind, str) else "",
                                f"must be {crd.kind}"))
    if api_version != want:
        shown = api_version if isinstance(api_version, str) else ""
        errs.append(field_error(INVALID, "apiVersion", shown, f"must be {want}"))
    return errs
