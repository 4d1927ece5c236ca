"""ragbot's Backup is the playbook's Backup (plus ragbot's own label and annotations).

The expected objects below are written out by hand from
reference/enterprise-rag-backup.md ("Backup" and the `velero:` defaults), not computed
from the code under test, so a drift in either the config defaults or the builder shows.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_config
from config.models import Config
from k8s.backup_views import BackupSummary, summarize
from k8s.backups import backup_name, build_backup
from k8s.download import pvcs_in
from k8s.preflight import _pick_class

MODEL_SERVERS = ["torchserve_embedding", "torchserve_reranking", "vllm", "vllm-gaudi", "vllm_embedding"]

#: What `backup.yaml` creates with the role defaults (velero.enabled: true only).
PLAYBOOK_DEFAULT: dict[str, Any] = {
    "apiVersion": "velero.io/v1",
    "kind": "Backup",
    "metadata": {
        "name": "backup-20250916t114315",
        "namespace": "velero",
        "labels": {"backup-reason": "regular"},
    },
    "spec": {
        "includedNamespaces": [
            "system", "auth", "fingerprint", "chatqa", "chat-history", "edp", "seaweedfs",
            "vdb", "default",
        ],
        "orLabelSelectors": [
            {"matchLabels": {"app.kubernetes.io/component": "deployment-manifest"}},
            {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/instance", "operator": "NotIn", "values": MODEL_SERVERS}
                ]
            },
        ],
        "csiSnapshotTimeout": "2h0m0s",
        "itemOperationTimeout": "2h0m0s",
        "ttl": "720h",
    },
}  # fmt: skip

CUSTOM_YAML = """
deployment_type: onprem
velero:
  enabled: true
  namespace: backup
  backup:
    prefix: erag
    labels: {backup-reason: nightly, team: ai}
    ttl: 48h
    csiSnapshotTimeout: 30m
    backupConfig:
      namespaceOrder: [auth, edp, vdb]
      orSelectors: []
      resourceSelectors: ["app.kubernetes.io/part-of=enterprise-rag", "tier in (db,cache)"]
ragbot:
  solution_version: "2.1.1"
"""

#: The same playbook run with CUSTOM_YAML: labelSelector (ANDed), the version label.
PLAYBOOK_CUSTOM: dict[str, Any] = {
    "apiVersion": "velero.io/v1",
    "kind": "Backup",
    "metadata": {
        "name": "erag-20250916t114315",
        "namespace": "backup",
        "labels": {
            "backup-reason": "nightly",
            "team": "ai",
            "meta.erag/solution-version": "2.1.1",
        },
    },
    "spec": {
        "includedNamespaces": ["auth", "edp", "vdb"],
        "labelSelector": {
            "matchLabels": {"app.kubernetes.io/part-of": "enterprise-rag"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["cache", "db"]}],
        },
        "csiSnapshotTimeout": "30m",
        "itemOperationTimeout": "2h0m0s",
        "ttl": "48h",
    },
}

WHEN = datetime(2025, 9, 16, 11, 43, 15, tzinfo=UTC)


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config([path])


def _without_ragbot(obj: dict[str, Any]) -> dict[str, Any]:
    """The object minus what ragbot adds on top of the playbook's."""
    out = copy.deepcopy(obj)
    out["metadata"]["labels"].pop("ragbot.io/trigger")
    out["metadata"].pop("annotations", None)
    return out


def test_name_format_matches_playbook() -> None:
    assert backup_name("backup", WHEN) == "backup-20250916t114315"
    assert backup_name("erag", datetime(2026, 1, 2, 3, 4, 5)) == "erag-20260102t030405"


def test_default_config_builds_the_playbooks_backup(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "velero: {enabled: true}\n")
    obj = build_backup(cfg, name=backup_name(cfg.velero.backup.prefix, WHEN), trigger="cli")
    assert _without_ragbot(obj) == PLAYBOOK_DEFAULT
    assert obj["metadata"]["labels"]["ragbot.io/trigger"] == "cli"
    assert "annotations" not in obj["metadata"]  # nothing to say: no empty annotations
    assert "storageLocation" not in obj["spec"]  # Velero's default, as the playbook


def test_resource_selectors_and_solution_version(tmp_path: Path) -> None:
    cfg = _config(tmp_path, CUSTOM_YAML)
    obj = build_backup(
        cfg, name=backup_name(cfg.velero.backup.prefix, WHEN), trigger="slack",
        requester="U0OPERATOR1", note="before the upgrade",
    )
    assert _without_ragbot(obj) == PLAYBOOK_CUSTOM
    assert obj["metadata"]["annotations"] == {
        "ragbot.io/requester": "U0OPERATOR1",
        "ragbot.io/note": "before the upgrade",
    }


def test_top_level_solution_version_is_used(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "solution_version: 2.1.0\nvelero: {enabled: true}\n")
    obj = build_backup(cfg, name="backup-x", trigger="schedule")
    assert obj["metadata"]["labels"]["meta.erag/solution-version"] == "2.1.0"


def test_no_selectors_at_all(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "velero: {backup: {backupConfig: {orSelectors: []}}}\n")
    spec = build_backup(cfg, name="backup-x", trigger="cli")["spec"]
    assert "orLabelSelectors" not in spec and "labelSelector" not in spec


def test_unknown_trigger_is_refused() -> None:
    with pytest.raises(ValueError, match="trigger"):
        build_backup(Config(), name="backup-x", trigger="cron")


FULL_STATUS: dict[str, Any] = {
    "apiVersion": "velero.io/v1",
    "kind": "Backup",
    "metadata": {
        "name": "backup-20250916t114315",
        "namespace": "velero",
        "creationTimestamp": "2025-09-16T11:43:15Z",
        "labels": {"backup-reason": "regular", "ragbot.io/trigger": "slack"},
        "annotations": {"ragbot.io/requester": "U0OPERATOR1", "ragbot.io/note": "nightly"},
    },
    "spec": {"storageLocation": "default"},
    "status": {
        "phase": "PartiallyFailed",
        "progress": {"totalItems": 120, "itemsBackedUp": 118},
        "csiVolumeSnapshotsAttempted": 7,
        "csiVolumeSnapshotsCompleted": 6,
        "errors": 2,
        "warnings": 3,
        "failureReason": "",
        "startTimestamp": "2025-09-16T11:43:16Z",
        "completionTimestamp": "2025-09-16T11:45:16Z",
        "expiration": "2025-10-16T11:43:16Z",
    },
}


def test_summarize_full_status() -> None:
    s = summarize(FULL_STATUS)
    assert s == BackupSummary(
        name="backup-20250916t114315",
        namespace="velero",
        phase="PartiallyFailed",
        items_backed_up=118,
        items_total=120,
        csi_snapshots_attempted=7,
        csi_snapshots_completed=6,
        errors=2,
        warnings=3,
        created=datetime(2025, 9, 16, 11, 43, 15, tzinfo=UTC),
        started=datetime(2025, 9, 16, 11, 43, 16, tzinfo=UTC),
        completed=datetime(2025, 9, 16, 11, 45, 16, tzinfo=UTC),
        expires=datetime(2025, 9, 16, 11, 43, 16, tzinfo=UTC) + timedelta(days=30),
        storage_location="default",
        trigger="slack",
        requester="U0OPERATOR1",
        note="nightly",
        labels={"backup-reason": "regular", "ragbot.io/trigger": "slack"},
    )
    assert s.terminal and not s.succeeded and not s.running and s.ours
    assert (s.progress_text, s.csi_text, s.elapsed()) == ("118/120", "6/7", 120.0)
    assert s.to_dict()["progress"] == {"itemsBackedUp": 118, "totalItems": 120}
    assert s.to_dict()["completed"] == "2025-09-16T11:45:16Z"


def test_summarize_new_backup_and_validation_failure() -> None:
    new = summarize({"metadata": {"name": "backup-a"}})
    assert (new.phase, new.running, new.terminal, new.ours) == ("", True, False, False)
    assert (new.progress_text, new.csi_text, new.elapsed()) == ("", "", None)
    failed = summarize({
        "metadata": {"name": "backup-b"},
        "status": {"phase": "FailedValidation", "validationErrors": ["BSL default is Unavailable"]},
    })  # fmt: skip
    assert failed.terminal and failed.validation_errors == ("BSL default is Unavailable",)


def test_summarize_tolerates_odd_values() -> None:
    s = summarize({"metadata": {"name": "x", "creationTimestamp": "not a time"},
                   "status": {"errors": "many", "progress": None}})
    assert (s.created, s.errors, s.items_total) == (None, 0, 0)


def test_pvcs_in_resource_list() -> None:
    listing = {
        "apps/v1/StatefulSet": ["vdb/vdb-redis-cluster"],
        "v1/PersistentVolumeClaim": ["vdb/data-0", "edp/pg-0", "vdb/data-0", "broken"],
        "v1/PersistentVolume": ["pvc-123"],
    }
    assert pvcs_in(listing) == [("vdb", "data-0"), ("edp", "pg-0")]
    assert pvcs_in({}) == []


def _vsc(name: str, driver: str, labelled: bool = False) -> dict[str, Any]:
    labels = {"velero.io/csi-volumesnapshot-class": "true"} if labelled else {}
    return {"metadata": {"name": name, "labels": labels}, "driver": driver}


@pytest.mark.parametrize(
    ("classes", "status", "needle"),
    [
        ([_vsc("a", "d"), _vsc("b", "d", labelled=True)], "ok", "b (driver d)"),
        ([_vsc("a", "d")], "warning", "only class"),
        ([_vsc("a", "d"), _vsc("b", "d")], "failure", "none labelled"),
        ([_vsc("a", "other", labelled=True)], "failure", "no VolumeSnapshotClass"),
    ],
)
def test_snapshot_class_rule_is_velero_s(classes: list[dict[str, Any]], status: str, needle: str) -> None:
    result = _pick_class("d", ["vdb/data-0"], classes)
    assert result.status == status and needle in result.detail
    if status == "failure" and len(classes) == 2:
        assert result.fix == 'kubectl label volumesnapshotclass a velero.io/csi-volumesnapshot-class="true"'
