"""The configuration as typed, validated, immutable values.

Two blocks share one file format (and usually one file):

- `velero:` is Enterprise RAG's own block. Every key and default of the playbook's
  `backup` role is here under the playbook's own (camelCase) names, so a user's
  existing `config.yaml` means the same thing to ragbot as to `backup.yaml`. Keys we
  do not know (installer settings such as `helm:` or `storageType:`) are ignored,
  never rejected.
- `ragbot:` is the bot's own block. It is strict: a key that is not known is an error,
  because a typo in an access rule must not silently open or close the door.

Durations, label selectors and cleanup entries are parsed while validating, so every
consumer gets typed values (`GoDuration`, `LabelSelector`, cleanup entries) and a bad
one is reported by the loader with its key path. Slack secrets never live here: only
the names of files holding them (see `SECRETS` and `config.loader.read_secret`).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)

from config.cleanup import (
    CleanupEntry,
    check_dns1123_label,
    check_dns1123_subdomain,
    dedupe,
    ordered_entries,
    parse_cleanup_entry,
    parse_deployments,
    with_namespace,
)
from config.durations import DurationError, GoDuration
from config.selectors import (
    LabelSelector,
    check_label_key,
    check_label_value,
    parse_selector,
)

# ---------------------------------------------------------------------------- value types


def _to_duration(value: Any) -> GoDuration:
    try:
        duration = GoDuration.of(value)
    except DurationError as err:
        raise ValueError(str(err)) from None
    if duration < timedelta(0):
        raise ValueError(f"duration {duration.text!r} must not be negative")
    return duration


def _positive(value: GoDuration) -> GoDuration:
    if value <= timedelta(0):
        raise ValueError(f"timeout {value.text!r} must be longer than 0")
    return value


def _to_selector(value: Any) -> LabelSelector:
    if isinstance(value, LabelSelector):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a label selector must be a string such as app=x, not {value!r}")
    if not value.strip():
        raise ValueError("empty selector, which matches everything; remove the entry instead")
    return parse_selector(value)


def _to_cleanup_entry(value: Any) -> CleanupEntry:
    # Bound to its namespace by BackupConfig once the dict key is known.
    if isinstance(value, CleanupEntry):
        return value
    return parse_cleanup_entry(value)


def _string_typed(validator: Any, description: str) -> tuple[Any, ...]:
    # Parsed from a string on load, written back as that string in JSON/YAML output.
    return (
        PlainValidator(validator),
        PlainSerializer(lambda v: str(v), return_type=str, when_used="json"),
        WithJsonSchema({"type": "string", "description": description}),
    )


Duration = Annotated[GoDuration, *_string_typed(_to_duration, "Go duration, e.g. 30m, 2h0m0s")]
"""A non-negative Go duration such as `90s`, `15m` or `2h0m0s`; `0` is allowed."""
Timeout = Annotated[Duration, AfterValidator(_positive)]
"""A Go duration longer than zero."""
Selector = Annotated[LabelSelector, *_string_typed(_to_selector, "label selector, e.g. a=b")]
CleanupItem = Annotated[
    CleanupEntry,
    *_string_typed(_to_cleanup_entry, "Helm/<release>, <Kind>/<name>, <Kind>/selector: <sel>"),
]
NamespaceName = Annotated[str, AfterValidator(lambda v: check_dns1123_label(v, "namespace"))]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
Labels = dict[LabelKey, LabelValue]


def _resource_prefix(value: str) -> str:
    # `<prefix>-<YYYYmmddtHHMMSS>` must stay a valid name and label value (63 characters).
    return check_dns1123_subdomain(value, "name prefix", 63 - 16)


def _backup_name_or_empty(value: str) -> str:
    return value if value == "" else check_dns1123_subdomain(value, "Backup name")


def _slack_id(prefixes: str, what: str, example: str) -> AfterValidator:
    pattern = re.compile(rf"^[{prefixes}][A-Z0-9]{{2,}}$")

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a Slack {what} ID (they look like {example})")
        return value

    return AfterValidator(check)


SlackUserId = Annotated[str, _slack_id("UW", "user", "U0123ABCD: profile, ⋮, Copy member ID")]
SlackGroupId = Annotated[str, _slack_id("S", "user group", "S0123ABCD")]
SlackChannelId = Annotated[str, _slack_id("CGD", "channel", "C0123ABCD: see channel details")]

# ------------------------------------------------------------------- the `velero:` block

DEFAULT_NAMESPACE_ORDER = (
    "system", "auth", "fingerprint", "chatqa", "chat-history", "edp", "seaweedfs", "vdb",
    "default",
)  # fmt: skip
DEFAULT_OR_SELECTORS = (
    "app.kubernetes.io/component=deployment-manifest",
    "app.kubernetes.io/instance notin "
    "(torchserve_embedding,vllm_embedding,torchserve_reranking,vllm,vllm-gaudi)",
)
DEFAULT_DEPLOYMENTS: dict[str, list[str]] = {
    "system": ["Helm/gmc"],
    "auth": ["Helm/keycloak"],
    "fingerprint": ["Helm/fingerprint", "Secret/mongo-database-secret"],
    "chatqa": ["Deployment/selector: app.kubernetes.io/managed-by=Helm"],
    "chat-history": ["Helm/chat-history", "Secret/mongo-database-secret"],
    "edp": [
        "Helm/edp",
        "Secret/vector-database-config",
        "Secret/tls-secret",
        "Secret/vector-database-config",  # duplicated in the original; deduped on parse
    ],
    "seaweedfs": ["Helm/seaweedfs"],
    "vdb": ["Helm/vdb", "Secret/vector-database-config"],
}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackupConfig(_Lenient):
    """`velero.backup.backupConfig`: what is backed up and what a restore removes first."""

    namespaceOrder: tuple[NamespaceName, ...] = DEFAULT_NAMESPACE_ORDER
    resourceSelectors: tuple[Selector, ...] = ()
    orSelectors: tuple[Selector, ...] = tuple(parse_selector(s) for s in DEFAULT_OR_SELECTORS)
    deployments: dict[NamespaceName, tuple[CleanupItem, ...]] = Field(
        default_factory=lambda: parse_deployments(DEFAULT_DEPLOYMENTS)
    )

    @field_validator("namespaceOrder")
    @classmethod
    def _unique_namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({ns for ns in value if value.count(ns) > 1})
        if twice:
            raise ValueError(f"namespace {twice[0]!r} is listed more than once")
        return value

    @field_validator("deployments", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {ns: ([] if entries is None else entries) for ns, entries in value.items()}
        return value

    @field_validator("deployments")
    @classmethod
    def _bind_namespaces(
        cls, value: dict[str, tuple[CleanupEntry, ...]]
    ) -> dict[str, tuple[CleanupEntry, ...]]:
        return {ns: dedupe(with_namespace(e, ns) for e in entries) for ns, entries in value.items()}

    def selector_spec(self) -> dict[str, Any]:
        """The Backup spec's selector, as the playbook sets it.

        `orLabelSelectors` when orSelectors is set (resourceSelectors are then ignored),
        else one `labelSelector` ANDing every resourceSelector, else nothing.
        """
        if self.orSelectors:
            return {"orLabelSelectors": [s.to_api() for s in self.orSelectors]}
        if self.resourceSelectors:
            anded = tuple(r for s in self.resourceSelectors for r in s.requirements)
            return {"labelSelector": LabelSelector(anded).to_api()}
        return {}

    def cleanup_entries(self) -> tuple[CleanupEntry, ...]:
        """Entries of namespaceOrder's namespaces in the playbook's order (see ordered_entries)."""
        return ordered_entries(self.deployments, self.namespaceOrder)


class VeleroBackup(_Lenient):
    """`velero.backup`: names, labels and timeouts of Backups and Restores."""

    prefix: Annotated[str, AfterValidator(_resource_prefix)] = "backup"
    restore_prefix: Annotated[str, AfterValidator(_resource_prefix)] = "restore"
    backupConfig: BackupConfig = Field(default_factory=BackupConfig)
    labels: Labels = Field(default_factory=lambda: {"backup-reason": "regular"})
    restore_labels: Labels = Field(default_factory=lambda: {"restore-reason": "recovery"})
    itemOperationTimeout: Duration = GoDuration("2h0m0s")
    csiSnapshotTimeout: Duration = GoDuration("2h0m0s")
    ttl: Duration = GoDuration("720h")


class VeleroConfig(_Lenient):
    """The `velero:` block of Enterprise RAG's config.yaml, with the playbook's defaults."""

    enabled: bool = False
    namespace: NamespaceName = "velero"
    velero_pod_labels: Labels = Field(
        default_factory=lambda: {
            "app.kubernetes.io/instance": "velero",
            "app.kubernetes.io/name": "velero",
        }
    )
    # Installer settings: the infrastructure playbook's business. Accepted as written.
    install_server: Any = True
    install_client: Any = True
    client_version: Any = "automatic"
    install_snapshot_class: Any = True
    snapshot_class_name: Any = "csi-snapclass"
    snapshot_class_driver: Any = ""
    restore_from: Annotated[str, AfterValidator(_backup_name_or_empty)] = ""
    backup_details_from: Literal["client", "server"] = "server"
    backup: VeleroBackup = Field(default_factory=VeleroBackup)


# ------------------------------------------------------------------- the `ragbot:` block

SECRETS: dict[str, str] = {
    "bot_token": "SLACK_BOT_TOKEN",
    "app_token": "SLACK_APP_TOKEN",
    "signing_secret": "SLACK_SIGNING_SECRET",
}
"""Slack secrets: name -> environment variable. `ragbot.slack.<name>_file` names a file."""

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)


def check_cron(expr: str) -> str:
    """Accept "" (no schedule) or a standard 5-field cron expression, else ValueError."""
    if expr.strip() == "":
        return ""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expr!r} has {len(fields)} fields; write 5 (minute hour day-of-month "
            "month day-of-week), e.g. '0 2 * * *' for 02:00 every day"
        )
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            base, slash, step = part.partition("/")
            if slash and not (step.isdigit() and int(step) > 0):
                raise ValueError(f"cron {name} field {text!r}: step {step!r} must be 1 or more")
            if base == "*":
                continue
            bounds = base.split("-")
            values = [int(b) if b.isdigit() else names.get(b.lower(), -1) for b in bounds]
            if len(bounds) > 2 or any(not low <= v <= high for v in values):
                raise ValueError(
                    f"cron {name} field {text!r}: {base!r} is not a value or range "
                    f"within {low}-{high}"
                )
            if len(values) == 2 and values[0] > values[1]:
                raise ValueError(f"cron {name} field {text!r}: range {base!r} runs backwards")
    return " ".join(fields)


def check_timezone(name: str) -> str:
    """Accept an IANA time zone name such as UTC or Europe/Berlin, else ValueError."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Berlin"
        ) from None
    return name


def _check_channel(value: str) -> str:
    if value == "":
        return value  # not configured
    if value.startswith("#"):
        raise ValueError(
            f"{value!r} is a channel name; use the channel ID (C0123ABCD, shown at the "
            "bottom of the channel's About tab): messages are edited by ID"
        )
    if not re.match(r"^[CGD][A-Z0-9]{2,}$", value):
        raise ValueError(f"{value!r} is not a Slack channel ID (they look like C0123ABCD)")
    return value


class SlackConfig(_Strict):
    """Where the bot talks. Tokens come from the environment or from the files named here."""

    channel: Annotated[str, AfterValidator(_check_channel)] = ""
    bot_token_file: Path | None = None
    app_token_file: Path | None = None
    signing_secret_file: Path | None = None

    def secret_file(self, name: str) -> Path | None:
        """The file configured for secret `name` (a key of SECRETS), if any."""
        path: Path | None = getattr(self, f"{name}_file")
        return path


class AccessRule(_Strict):
    """Who may run an operation. Empty users and groups: nobody; empty channels: any."""

    users: tuple[SlackUserId, ...] = ()
    usergroups: tuple[SlackGroupId, ...] = ()
    channels: tuple[SlackChannelId, ...] = ()


class ApproveRule(_Strict):
    """Who may approve a restore. Empty: nobody."""

    users: tuple[SlackUserId, ...] = ()
    usergroups: tuple[SlackGroupId, ...] = ()


class AccessConfig(_Strict):
    """Access rules per operation; deny by default."""

    backup: AccessRule = AccessRule()
    restore: AccessRule = AccessRule()
    approve: ApproveRule = ApproveRule()
    allow_self_approval: bool = False


class RestoreSettings(_Strict):
    """Restore timing: approval window and the deadline of each step."""

    approval_timeout: Timeout = GoDuration("15m")
    step_timeout: Timeout = GoDuration("300s")  # each cleanup step, as the playbook waits
    pvc_timeout: Timeout = GoDuration("300s")  # PVCs gone (the playbook: 30 x 10 s)
    velero_timeout: Timeout = GoDuration("60m")  # Restore to a terminal phase
    ready_timeout: Timeout = GoDuration("2h")  # application ready (the playbook: 120 x 60 s)


class BackupSettings(_Strict):
    """Backup timing."""

    timeout: Timeout = GoDuration("60m")  # Backup to a terminal phase, as the playbook


class ScheduleConfig(_Strict):
    """Scheduled backups; an empty cron means none.

    `cron` has standard crontab semantics: day-of-week 0 and 7 are Sunday. APScheduler
    3.x counts 0 as Monday, so hand it weekday names, not numbers.
    """

    cron: Annotated[str, AfterValidator(check_cron)] = ""
    timezone: Annotated[str, AfterValidator(check_timezone)] = "UTC"
    misfire_grace: Duration = GoDuration("1h")
    keep_last: Annotated[int, Field(ge=0)] = 0  # 0: leave expiry to Velero's ttl


class AlertsConfig(_Strict):
    """Channel alerts; a duration of 0 turns that alert off."""

    max_backup_age: Duration = GoDuration("26h")
    stuck_after: Duration = GoDuration("30m")


class RagbotConfig(_Strict):
    """The `ragbot:` block: the bot's own settings. Unknown keys are errors.

    `solution_version` labels Backups `meta.erag/solution-version` as the playbook does;
    Enterprise RAG's config.yaml has no key for it, so it is set here (or through the
    playbook's top-level `solution_version` variable, see Config).
    """

    namespace: NamespaceName = "ragbot"
    ops_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    solution_version: LabelValue | None = None
    slack: SlackConfig = SlackConfig()
    access: AccessConfig = AccessConfig()
    restore: RestoreSettings = RestoreSettings()
    backup: BackupSettings = BackupSettings()
    schedule: ScheduleConfig = ScheduleConfig()
    alerts: AlertsConfig = AlertsConfig()


# --------------------------------------------------------------------------- the whole


class Config(_Lenient):
    """Everything ragbot reads from its config files (other top-level keys are ignored)."""

    velero: VeleroConfig = Field(default_factory=VeleroConfig)
    ragbot: RagbotConfig = RagbotConfig()
    upgrade_backup_max_age_hours: Annotated[float, Field(gt=0)] = 6.0
    allow_upgrade_without_backup: bool = False
    # The playbook's `solution_version` variable, if the file sets it at top level.
    # `ragbot.solution_version` wins over it.
    solution_version: LabelValue | None = None
    sources: tuple[Path, ...] = ()

    @property
    def effective_solution_version(self) -> str | None:
        """The value for the Backup label `meta.erag/solution-version`, if known."""
        return self.ragbot.solution_version or self.solution_version
