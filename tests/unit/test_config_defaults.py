"""Defaults equal reference/enterprise-rag-backup.md, written out here by hand.

Installer settings the reference only names (install_server, client_version, ...) take
the values of the backup role's defaults/main.yaml.
"""

from __future__ import annotations

from datetime import timedelta

from config.cleanup import HelmRelease, NamedDelete, SelectorDelete
from config.loader import load_config
from config.models import Config, RagbotConfig, VeleroConfig
from config.selectors import Requirement

EXPECTED_VELERO_YAML = {
    "enabled": False,
    "namespace": "velero",
    "velero_pod_labels": {
        "app.kubernetes.io/instance": "velero",
        "app.kubernetes.io/name": "velero",
    },
    "install_server": True,
    "install_client": True,
    "client_version": "automatic",
    "install_snapshot_class": True,
    "snapshot_class_name": "csi-snapclass",
    "snapshot_class_driver": "",
    "restore_from": "",
    "backup_details_from": "server",
    "backup": {
        "prefix": "backup",
        "restore_prefix": "restore",
        "backupConfig": {
            "namespaceOrder": [
                "system",
                "auth",
                "fingerprint",
                "chatqa",
                "chat-history",
                "edp",
                "seaweedfs",
                "vdb",
                "default",
            ],
            "resourceSelectors": [],
            "orSelectors": [
                "app.kubernetes.io/component=deployment-manifest",
                # `in`/`notin` values are a set: printed sorted, as the API server does.
                "app.kubernetes.io/instance notin (torchserve_embedding,torchserve_reranking,"
                "vllm,vllm-gaudi,vllm_embedding)",
            ],
            "deployments": {
                "system": ["Helm/gmc"],
                "auth": ["Helm/keycloak"],
                "fingerprint": ["Helm/fingerprint", "Secret/mongo-database-secret"],
                "chatqa": ["Deployment/selector: app.kubernetes.io/managed-by=Helm"],
                "chat-history": ["Helm/chat-history", "Secret/mongo-database-secret"],
                "edp": ["Helm/edp", "Secret/vector-database-config", "Secret/tls-secret"],
                "seaweedfs": ["Helm/seaweedfs"],
                "vdb": ["Helm/vdb", "Secret/vector-database-config"],
            },
        },
        "labels": {"backup-reason": "regular"},
        "restore_labels": {"restore-reason": "recovery"},
        "itemOperationTimeout": "2h0m0s",
        "csiSnapshotTimeout": "2h0m0s",
        "ttl": "720h",
    },
}


def test_velero_defaults_equal_the_reference_table() -> None:
    assert VeleroConfig().model_dump(mode="json") == EXPECTED_VELERO_YAML


def test_loading_no_file_gives_the_same_defaults() -> None:
    config = load_config([], environ={})
    assert config.velero.model_dump(mode="json") == EXPECTED_VELERO_YAML
    assert config.sources == ()
    assert config.upgrade_backup_max_age_hours == 6
    assert config.allow_upgrade_without_backup is False
    assert config.effective_solution_version is None


def test_typed_defaults() -> None:
    backup = VeleroConfig().backup
    assert backup.ttl == timedelta(days=30)
    assert backup.ttl.text == "720h"
    assert backup.itemOperationTimeout == timedelta(hours=2)
    assert backup.itemOperationTimeout.text == "2h0m0s"
    assert backup.csiSnapshotTimeout == timedelta(hours=2)
    or_selectors = backup.backupConfig.orSelectors
    assert or_selectors[0].requirements == (
        Requirement("app.kubernetes.io/component", "=", ("deployment-manifest",)),
    )
    excluded = (
        "torchserve_embedding",
        "torchserve_reranking",
        "vllm",
        "vllm-gaudi",
        "vllm_embedding",
    )
    assert or_selectors[1].requirements == (
        Requirement("app.kubernetes.io/instance", "notin", excluded),
    )
    assert not or_selectors[1].matches({"app.kubernetes.io/instance": "vllm"})
    assert or_selectors[1].matches({"app.kubernetes.io/instance": "edp"})


def test_default_cleanup_entries_typed_and_deduped() -> None:
    d = VeleroConfig().backup.backupConfig.deployments
    assert d["edp"] == (
        HelmRelease("edp", "edp"),
        NamedDelete("edp", "Secret", "vector-database-config"),
        NamedDelete("edp", "Secret", "tls-secret"),
    )
    (chatqa,) = d["chatqa"]
    assert isinstance(chatqa, SelectorDelete)
    assert (chatqa.namespace, chatqa.kind) == ("chatqa", "Deployment")
    assert str(chatqa.selector) == "app.kubernetes.io/managed-by=Helm"
    assert "default" not in d


def test_default_backup_selector_spec_is_or_selectors() -> None:
    spec = VeleroConfig().backup.backupConfig.selector_spec()
    assert spec == {
        "orLabelSelectors": [
            {"matchLabels": {"app.kubernetes.io/component": "deployment-manifest"}},
            {
                "matchExpressions": [
                    {
                        "key": "app.kubernetes.io/instance",
                        "operator": "NotIn",
                        "values": [
                            "torchserve_embedding",
                            "torchserve_reranking",
                            "vllm",
                            "vllm-gaudi",
                            "vllm_embedding",
                        ],
                    }
                ]
            },
        ]
    }


def test_ragbot_defaults() -> None:
    r = RagbotConfig()
    assert r.namespace == "ragbot"
    assert r.ops_port == 8080
    assert r.solution_version is None
    assert r.slack.model_dump() == {
        "channel": "",
        "bot_token_file": None,
        "app_token_file": None,
        "signing_secret_file": None,
    }
    for rule in (r.access.backup, r.access.restore):
        assert (rule.users, rule.usergroups, rule.channels) == ((), (), ())
    assert (r.access.approve.users, r.access.approve.usergroups) == ((), ())
    assert r.access.allow_self_approval is False
    assert r.restore.approval_timeout == timedelta(minutes=15)
    assert r.restore.step_timeout == timedelta(seconds=300)
    assert r.restore.pvc_timeout == timedelta(seconds=300)
    assert r.restore.velero_timeout == timedelta(minutes=60)
    assert r.restore.ready_timeout == timedelta(hours=2)
    assert r.backup.timeout == timedelta(minutes=60)
    assert (r.schedule.cron, r.schedule.timezone, r.schedule.keep_last) == ("", "UTC", 0)
    assert r.schedule.misfire_grace == timedelta(hours=1)
    assert r.alerts.max_backup_age == timedelta(hours=26)
    assert r.alerts.stuck_after == timedelta(minutes=30)


def test_models_are_frozen() -> None:
    config = Config()
    try:
        config.velero.enabled = True  # type: ignore[misc]
    except Exception as err:  # pydantic raises ValidationError for frozen instances
        assert "frozen" in str(err)
    else:  # pragma: no cover
        raise AssertionError("config models must be immutable")
