"""keep_last's policy as a pure function, and the DeleteBackupRequest `velero backup delete` makes."""

from __future__ import annotations

from typing import Any

from config.models import Config
from k8s import labels as L
from k8s.prune import delete_request, prune_candidates


def backup(name: str, created: str, *, phase: str = "Completed", trigger: str | None = "schedule") -> dict[str, Any]:
    labels = {L.LABEL_TRIGGER: trigger} if trigger else {}
    return {"metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created, "labels": labels},
            "status": {"phase": phase}}  # fmt: skip


def test_keeps_the_newest_completed_of_ours_only() -> None:
    items = [
        backup("b1", "2025-01-01T02:00:00Z"),
        backup("b2", "2025-01-02T02:00:00Z", trigger="slack"),
        backup("b3", "2025-01-03T02:00:00Z", phase="Failed"),
        backup("b4", "2025-01-04T02:00:00Z"),
        backup("foreign", "2024-12-01T02:00:00Z", trigger=None),
        backup("b5", "2025-01-05T02:00:00Z", phase="InProgress"),
    ]
    assert [b["metadata"]["name"] for b in prune_candidates(items, 2)] == ["b1"]
    assert [b["metadata"]["name"] for b in prune_candidates(items, 1)] == ["b2", "b1"]
    assert prune_candidates(items, 3) == []
    assert prune_candidates(items, 0) == []


def test_delete_request_matches_velero_cli() -> None:
    body = delete_request(Config(), backup("backup-20250101t020000", "2025-01-01T02:00:00Z"))
    assert body["kind"] == "DeleteBackupRequest" and body["apiVersion"] == "velero.io/v1"
    assert body["metadata"]["generateName"] == "backup-20250101t020000-"
    assert body["metadata"]["labels"] == {"velero.io/backup-name": "backup-20250101t020000",
                                          "velero.io/backup-uid": "uid-backup-20250101t020000"}  # fmt: skip
    assert body["spec"] == {"backupName": "backup-20250101t020000"}
