"""Reading config files into a `Config`, or one `ConfigError` that says everything wrong.

Users point ragbot at their existing Enterprise RAG `config.yaml` (and optionally a
second file with the `ragbot:` block). Loading follows the playbook: files are YAML,
later files win, dicts merge key by key and lists are replaced whole, and the
`velero:` block is merged onto the backup role's defaults the same way. Top-level keys
other than ours are ignored.

Every problem is reported at once, each with the file it came from, the key path
(`velero.backup.backupConfig.deployments.edp[1]`), the value and what is wrong; pydantic's
errors are translated, never shown raw. Callers catch `ConfigError` and print it: no
traceback reaches a user. Slack secrets are read here too (environment first, then the
file named in config), and never appear in an error message.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.models import SECRETS, Config, SlackConfig, VeleroConfig

ENV_VAR = "RAGBOT_CONFIG"
"""Environment variable: config files, separated by os.pathsep, used when none are given."""

_TOP_KEYS = (
    "velero",
    "ragbot",
    "upgrade_backup_max_age_hours",
    "allow_upgrade_without_backup",
    "solution_version",
)
_DEFAULTS = "(defaults)"
_REDACTED = "<redacted>"
_SECRET_KEY_RE = re.compile(r"token|secret|password|passwd|api_?key", re.IGNORECASE)
_TOKEN_VALUE_RE = re.compile(r"^\s*(xox[a-z]-|xapp-)")
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_TYPE_MESSAGES = {
    "dict_type": "should be a mapping (key: value)",
    "model_type": "should be a mapping (key: value)",
    "model_attributes_type": "should be a mapping (key: value)",
    "list_type": "should be a list",
    "tuple_type": "should be a list",
    "string_type": "should be a string (put it in quotes)",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
    "path_type": "should be a file path",
}

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration."""

    file: str  # the file as given, "(defaults)", or "" when not tied to a file
    path: str  # dotted key path, "" for a problem with the whole file
    message: str
    value: str | None = None  # display form of the offending value; secrets redacted

    def __str__(self) -> str:
        where = "".join(f"{part}: " for part in (self.file, self.path) if part)
        shown = f" (value: {self.value})" if self.value is not None else ""
        return f"{where}{self.message}{shown}"


class ConfigError(Exception):
    """The configuration cannot be used; `str()` lists every problem, one per line."""

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", "", problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"invalid configuration: {self.problems[0]}"
        lines = [f"invalid configuration ({len(self.problems)} problems):"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def config_paths_from_env(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The files listed in RAGBOT_CONFIG (os.pathsep-separated), empty parts skipped."""
    env = os.environ if environ is None else environ
    return tuple(Path(p) for p in env.get(ENV_VAR, "").split(os.pathsep) if p.strip())


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge like Ansible's `combine(recursive=True)`: dicts key by key, the rest replaced.

    Lists are replaced whole. One liberty: a key left empty (null) where `base` has a
    mapping counts as an empty mapping, so a `velero:` header whose keys are all
    commented out does not wipe the defaults.
    """
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(old, value)
        elif isinstance(old, Mapping) and value is None:
            continue
        else:
            out[key] = value
    return out


def load_config(
    paths: Sequence[str | Path] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config:
    """Load, merge and validate config files (later ones win).

    With no paths, the files of RAGBOT_CONFIG are used; with none there either, the
    result is the defaults. Raises ConfigError listing every problem found.
    """
    files = [Path(p) for p in paths] if paths else list(config_paths_from_env(environ))
    problems: list[Problem] = []
    merged: dict[str, Any] = {}
    origin: dict[Loc, str] = {}
    for path in files:
        data = _read_yaml(path, problems)
        if data is None:
            continue
        ours = {k: data[k] for k in _TOP_KEYS if k in data}
        _record(origin, (), ours, str(path))
        merged = deep_merge(merged, ours)
    if problems:
        raise ConfigError(problems)

    velero = merged.get("velero")
    if velero is None or isinstance(velero, Mapping):
        merged["velero"] = deep_merge(_velero_defaults(), velero or {})
    merged = _drop_empty_sections(merged, ())
    ragbot = merged.get("ragbot")
    if isinstance(ragbot, Mapping):
        merged["ragbot"] = _strip_secrets(ragbot, ("ragbot",), origin, problems)
        _resolve_secret_files(merged["ragbot"], origin)
    try:
        config = Config.model_validate({**merged, "sources": tuple(files)})
    except ValidationError as err:
        problems += [_translate(e, origin) for e in err.errors(include_url=False)]
    if problems:
        order = {str(p): i for i, p in enumerate(files)}
        raise ConfigError(sorted(problems, key=lambda p: order.get(p.file, len(order))))
    return config


def read_secret(
    slack: SlackConfig, name: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """A Slack secret (`bot_token`, `app_token`, `signing_secret`), or None if not set.

    The environment variable (SECRETS[name]) wins; otherwise the file named by
    `ragbot.slack.<name>_file` is read and stripped. An unreadable file is a ConfigError.
    """
    env = os.environ if environ is None else environ
    value = env.get(SECRETS[name], "").strip()
    if value:
        return value
    path = slack.secret_file(name)
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not UTF-8 text"
        problem = Problem("", f"ragbot.slack.{name}_file", f"cannot read {path}: {reason}")
        raise ConfigError([problem]) from None


def secret_status(slack: SlackConfig, name: str, environ: Mapping[str, str] | None = None) -> str:
    """Where secret `name` comes from and whether it is there, never its value."""
    var = SECRETS[name]
    path = slack.secret_file(name)
    env = os.environ if environ is None else environ
    if env.get(var, "").strip():
        extra = f", overrides ragbot.slack.{name}_file" if path else ""
        return f"<from env {var}: set{extra}>"
    if path is None:
        return f"<not set: set env {var} or ragbot.slack.{name}_file>"
    try:
        state = "set" if path.read_text(encoding="utf-8").strip() else "empty"
    except (OSError, UnicodeDecodeError) as err:
        state = f"unreadable: {getattr(err, 'strerror', None) or 'not UTF-8 text'}"
    return f"<from file {path}: {state}>"


# ------------------------------------------------------------------------- internals


def _velero_defaults() -> dict[str, Any]:
    return VeleroConfig().model_dump(mode="json")


def _read_yaml(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem(name, "", "config file not found"))
        return None
    except IsADirectoryError:
        problems.append(Problem(name, "", "is a directory, not a config file"))
        return None
    except PermissionError:
        problems.append(Problem(name, "", "cannot read the file: permission denied"))
        return None
    except UnicodeDecodeError as err:
        problems.append(Problem(name, "", f"not UTF-8 text (bad byte at offset {err.start})"))
        return None
    except OSError as err:
        problems.append(Problem(name, "", f"cannot read the file: {err.strerror or err}"))
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(str(s) for s in (err.context, err.problem) if s) or "invalid YAML"
        problems.append(Problem(name, "", f"YAML syntax error{where}: {what}"))
        return None
    except yaml.YAMLError as err:
        problems.append(Problem(name, "", f"YAML syntax error: {err}"))
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        message = f"the top level must be a mapping (velero:, ragbot:, ...), found {kind}"
        problems.append(Problem(name, "", message))
        return None
    return data


def _record(origin: dict[Loc, str], loc: Loc, value: Any, file: str) -> None:
    """Note that `file` set `loc` and everything under it."""
    origin[loc] = file
    if isinstance(value, Mapping):
        for key, item in value.items():
            _record(origin, (*loc, key), item, file)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _record(origin, (*loc, i), item, file)


def _origin_of(origin: Mapping[Loc, str], loc: Loc) -> str:
    loc = tuple(part for part in loc if part != "[key]")
    for end in range(len(loc), 0, -1):
        if loc[:end] in origin:
            return origin[loc[:end]]
    return _DEFAULTS


def _format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY_RE.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _strip_secrets(node: Any, loc: Loc, origin: Mapping[Loc, str], problems: list[Problem]) -> Any:
    """Report and remove secrets written into the ragbot block, never echoing them."""
    if isinstance(node, Mapping):
        out = {}
        for key, value in node.items():
            here = (*loc, key)
            if _is_secret_key(key) or _is_token(value):
                problems.append(_secret_problem(here, key, origin))
            else:
                out[key] = _strip_secrets(value, here, origin, problems)
        return out
    if isinstance(node, list):
        kept = []
        for i, value in enumerate(node):
            if _is_token(value):
                problems.append(_secret_problem((*loc, i), "", origin))
            else:
                kept.append(_strip_secrets(value, (*loc, i), origin, problems))
        return kept
    return node


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY_RE.search(key)) and not key.endswith("_file")


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and bool(_TOKEN_VALUE_RE.match(value))


def _secret_problem(loc: Loc, key: Any, origin: Mapping[Loc, str]) -> Problem:
    if loc[:2] == ("ragbot", "slack") and key in SECRETS:
        fix = f"set env {SECRETS[key]} or name a file in ragbot.slack.{key}_file"
    else:
        fix = "secrets come from the environment or from files named in the config"
    return Problem(
        _origin_of(origin, loc),
        _format_path(loc),
        f"secrets must not be written in a config file: {fix}",
        _REDACTED,
    )


def _resolve_secret_files(ragbot: dict[str, Any], origin: Mapping[Loc, str]) -> None:
    """Relative `*_file` paths are relative to the config file that names them."""
    slack = ragbot.get("slack")
    if not isinstance(slack, dict):
        return
    for name in SECRETS:
        key = f"{name}_file"
        value = slack.get(key)
        source = origin.get(("ragbot", "slack", key))
        if isinstance(value, str) and value and source and not Path(value).is_absolute():
            slack[key] = str(Path(source).parent / value)


def _drop_empty_sections(node: Mapping[str, Any], loc: Loc) -> dict[str, Any]:
    """A section left empty (`ragbot:` with every key commented out) means its defaults."""
    out = {}
    for key, value in node.items():
        if value is None and _model_at((*loc, key)) is not None:
            continue
        out[key] = _drop_empty_sections(value, (*loc, key)) if isinstance(value, Mapping) else value
    return out


def _model_at(loc: Loc) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _translate(error: Mapping[str, Any], origin: Mapping[Loc, str]) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    message = str(error["msg"])
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = list(model.model_fields) if model else []
        key = str(loc[-1])
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        message = f"unknown key {key!r}{hint}; known keys here: {', '.join(known)}"
    elif kind in _TYPE_MESSAGES:
        message = _TYPE_MESSAGES[kind]
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    elif message.startswith("Input should"):
        message = "should" + message.removeprefix("Input should")
    if loc and loc[-1] == "[key]":
        message = f"bad key: {message}"
    value = error.get("input")
    if isinstance(value, str) and "{{" in value:
        message += " (ragbot does not evaluate Ansible templates: write the value itself)"
    shown = None if kind == "missing" or isinstance(value, Mapping) else _show(value)
    return Problem(_origin_of(origin, loc), _format_path(loc), message, shown)
