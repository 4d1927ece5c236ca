"""The sandbox's CRD validation must word its 422s exactly like kube-apiserver 1.36.

Expected strings come from the apimachinery / apiextensions-apiserver / kube-openapi sources named
in sandbox/apiserver/crd_validation.py, and were cross-checked by running the same objects through
the real v0.36.0 Go code; the "upstream" cases are copied from k8s.io/apiextensions-apiserver
v0.36.0 pkg/apiserver/validation/validation_test.go. The real apiserver lists errors of sibling
fields in Go's random map order; the sandbox sorts them, which these tests pin down.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sandbox.apiserver.crd_validation import (
    CRDInfo,
    FieldError,
    invalid_status,
    load_bundled_crds,
    prune,
    prune_with_paths,
    validate,
    validate_type_meta,
)

CRDS = {crd.kind: crd for crd in load_bundled_crds()}
SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
TARGET_KINDS = (
    '"BackupLog", "BackupContents", "BackupVolumeSnapshots", "BackupItemOperations", '
    '"BackupResourceList", "BackupResults", "RestoreLog", "RestoreResults", "RestoreResourceList", '
    '"RestoreItemOperations", "CSIBackupVolumeSnapshots", "CSIBackupVolumeSnapshotContents", '
    '"BackupVolumeInfos", "RestoreVolumeInfo"')


def schema_of(kind: str) -> dict[str, Any]:
    return dict(CRDS[kind].storage_version.schema)


def texts(errors: list[FieldError]) -> list[str]:
    return [str(e) for e in errors]


def playbook_backup() -> dict[str, Any]:
    """A Backup as Enterprise RAG's backup.yaml playbook (and ragbot) writes it."""
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {
            "name": "backup-20250916t114315",
            "namespace": "velero",
            "labels": {"backup-reason": "regular", "meta.erag/solution-version": "2.1.1"},
        },
        "spec": {
            "includedNamespaces": ["system", "auth", "fingerprint", "chatqa", "chat-history",
                                   "edp", "seaweedfs", "vdb", "default"],
            "orLabelSelectors": [
                {"matchLabels": {"app.kubernetes.io/component": "deployment-manifest"}},
                {"matchExpressions": [{
                    "key": "app.kubernetes.io/instance",
                    "operator": "NotIn",
                    "values": ["torchserve_embedding", "torchserve_reranking", "vllm",
                               "vllm-gaudi", "vllm_embedding"],
                }]},
            ],
            "csiSnapshotTimeout": "2h0m0s",
            "itemOperationTimeout": "2h0m0s",
            "ttl": "720h0m0s",
        },
    }


def download_request(**target: Any) -> dict[str, Any]:
    return {"apiVersion": "velero.io/v1", "kind": "DownloadRequest",
            "metadata": {"name": "backup-20250916t114315-1f2e", "namespace": "velero"},
            "spec": {"target": target}}


# ---- CRD loading ---------------------------------------------------------------------------------
def test_every_bundled_crd_loads() -> None:
    assert sorted(CRDS) == [
        "Backup", "BackupRepository", "BackupStorageLocation", "DataDownload", "DataUpload",
        "DeleteBackupRequest", "DownloadRequest", "PodVolumeBackup", "PodVolumeRestore", "Restore",
        "Schedule", "ServerStatusRequest", "VolumeSnapshotClass", "VolumeSnapshotLocation"]
    for crd in CRDS.values():
        assert isinstance(crd, CRDInfo)
        assert crd.list_kind == crd.kind + "List"
        assert crd.storage_version.served and crd.storage_version.schema["type"] == "object"
        assert crd.document["metadata"]["name"] == crd.name
        if crd.group == "velero.io":
            assert crd.namespaced
            assert not any(v.has_status_subresource for v in crd.versions)
    assert CRDS["BackupStorageLocation"].short_names == ("bsl",)
    assert CRDS["DataUpload"].storage_version.name == "v2alpha1"
    assert CRDS["Backup"].storage_version.additional_printer_columns == ()
    assert [c["name"] for c in CRDS["Schedule"].storage_version.additional_printer_columns] == [
        "Status", "Schedule", "LastBackup", "Age", "Paused"]


def test_volume_snapshot_class_crd() -> None:
    vsc = CRDS["VolumeSnapshotClass"]
    assert (vsc.name, vsc.scope, vsc.namespaced) == (
        "volumesnapshotclasses.snapshot.storage.k8s.io", "Cluster", False)
    assert vsc.short_names == ("vsclass", "vsclasses")
    assert [v.name for v in vsc.versions] == ["v1"]
    obj = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
           "metadata": {"name": "csi-snapclass", "namespace": "velero",
                        "labels": {"velero.io/csi-volumesnapshot-class": "true"}},
           "deletionPolicy": "Keep"}
    assert texts(validate(obj, vsc.storage_version.schema, namespaced=False)) == [
        "metadata.namespace: Forbidden: not allowed on this type",
        'deletionPolicy: Unsupported value: "Keep": supported values: "Delete", "Retain"',
        "driver: Required value",
    ]


# ---- the cases the bot runs into -----------------------------------------------------------------
def test_playbook_backup_is_valid_and_unchanged_by_pruning() -> None:
    backup = playbook_backup()
    assert validate(backup, schema_of("Backup"), namespaced=True) == []
    assert prune_with_paths(backup, schema_of("Backup")) == (backup, [])


def test_backup_ttl_integer() -> None:
    backup = playbook_backup()
    backup["spec"]["ttl"] = 5
    errors = validate(backup, schema_of("Backup"))
    assert errors == [FieldError(
        "spec.ttl", 'Invalid value: "integer": spec.ttl in body must be of type string: "integer"',
        "FieldValueTypeInvalid")]
    assert invalid_status("Backup", "velero.io", "backups", "backup-20250916t114315", errors) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Backup.velero.io "backup-20250916t114315" is invalid: spec.ttl: Invalid value: '
                   '"integer": spec.ttl in body must be of type string: "integer"',
        "reason": "Invalid",
        "details": {
            "name": "backup-20250916t114315",
            "group": "velero.io",
            "kind": "Backup",
            "causes": [{
                "reason": "FieldValueTypeInvalid",
                "message": 'Invalid value: "integer": spec.ttl in body must be of type string: '
                           '"integer"',
                "field": "spec.ttl",
            }],
        },
        "code": 422,
    }


def test_restore_existing_resource_policy_has_no_enum_but_phase_has() -> None:
    restore = {"apiVersion": "velero.io/v1", "kind": "Restore",
               "metadata": {"name": "restore-20250916t120000", "namespace": "velero"},
               "spec": {"backupName": "backup-20250916t114315", "existingResourcePolicy": "bogus",
                        "itemOperationTimeout": "2h0m0s"}}
    # Velero's CRD leaves existingResourcePolicy a free string: the controller rejects "bogus".
    assert validate(restore, schema_of("Restore")) == []
    restore["status"] = {"phase": "bogus"}
    assert texts(validate(restore, schema_of("Restore"))) == [
        'status.phase: Unsupported value: "bogus": supported values: "New", "FailedValidation", '
        '"InProgress", "WaitingForPluginOperations", "WaitingForPluginOperationsPartiallyFailed", '
        '"Completed", "PartiallyFailed", "Failed", "Finalizing", "FinalizingPartiallyFailed"']


def test_download_request_missing_target_kind() -> None:
    errors = validate(download_request(name="backup-20250916t114315"), schema_of("DownloadRequest"))
    assert errors == [FieldError("spec.target.kind", "Required value", "FieldValueRequired")]
    status = invalid_status("DownloadRequest", "velero.io", "downloadrequests", "dr-1", errors)
    assert status["message"] == 'DownloadRequest.velero.io "dr-1" is invalid: spec.target.kind: ' \
                                "Required value"
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.target.kind"}]


def test_download_request_target_kind_enum() -> None:
    errors = validate(download_request(kind="BackupLogs", name="b"), schema_of("DownloadRequest"))
    assert errors == [FieldError(
        "spec.target.kind", f'Unsupported value: "BackupLogs": supported values: {TARGET_KINDS}',
        "FieldValueNotSupported")]


def test_bad_metadata_name_and_several_errors_in_brackets() -> None:
    obj = download_request(kind="BackupLog")
    obj["metadata"]["name"] = "Bad_Name"
    errors = validate(obj, schema_of("DownloadRequest"), namespaced=True)
    assert texts(errors) == [f'metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_ERROR}',
                             "spec.target.name: Required value"]
    status = invalid_status("DownloadRequest", "velero.io", "downloadrequests", "Bad_Name", errors)
    assert status["message"] == ('DownloadRequest.velero.io "Bad_Name" is invalid: [metadata.name: '
                                 f'Invalid value: "Bad_Name": {SUBDOMAIN_ERROR}, spec.target.name: '
                                 "Required value]")
    assert [c["reason"] for c in status["details"]["causes"]] == [
        "FieldValueInvalid", "FieldValueRequired"]


def test_unknown_fields_pruned() -> None:
    backup = playbook_backup()
    backup["metadata"]["bogus"] = 1
    backup["metadata"]["annotations"] = {}
    backup["spec"]["foo"] = "bar"
    backup["spec"]["orLabelSelectors"][0]["extra"] = True
    backup["spec"]["ttl"] = None  # not nullable: the apiserver treats it as absent
    backup["spec"]["includedNamespaces"] = None  # nullable: kept
    backup["status"] = {"phase": "New", "unknownCounter": 3, "expiration": None}
    pruned, unknown = prune_with_paths(backup, schema_of("Backup"))
    assert unknown == ["metadata.bogus", "spec.foo", "spec.orLabelSelectors[0].extra",
                       "status.unknownCounter"]
    want = playbook_backup()
    del want["spec"]["ttl"]
    want["spec"]["includedNamespaces"] = None
    want["status"] = {"phase": "New", "expiration": None}
    assert pruned == want
    assert "bogus" in backup["metadata"]  # the input is not modified
    assert prune(backup, schema_of("Backup")) == pruned


def test_preserve_unknown_fields_keeps_unknowns() -> None:
    container = {"name": "restore-wait", "image": "busybox", "command": ["sh"], "anything": {"x": 1}}
    restore = {"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": {"name": "r"},
               "spec": {"hooks": {"resources": [{"name": "h", "bogus": 1, "postHooks": [
                   {"init": {"initContainers": [container]}}]}]}}}
    pruned, unknown = prune_with_paths(restore, schema_of("Restore"))
    assert unknown == ["spec.hooks.resources[0].bogus"]
    assert pruned["spec"]["hooks"]["resources"][0]["postHooks"][0]["init"]["initContainers"] == [
        container]


# ---- paths and the other schema keywords ---------------------------------------------------------
def test_field_paths_for_items_and_map_values() -> None:
    backup = playbook_backup()
    backup["spec"]["includedNamespaces"][1] = 7
    backup["spec"]["orLabelSelectors"][0]["matchLabels"]["foo"] = False
    backup["spec"]["orLabelSelectors"][1]["matchExpressions"][0].pop("operator")
    backup["spec"]["hooks"] = {"resources": [{"name": "h", "pre": [
        {"exec": {"command": [], "onError": "Retry"}}]}]}
    assert texts(validate(backup, schema_of("Backup"))) == [
        'spec.hooks.resources[0].pre[0].exec.command: Invalid value: 0: '
        "spec.hooks.resources[0].pre[0].exec.command in body should have at least 1 items",
        'spec.hooks.resources[0].pre[0].exec.onError: Unsupported value: "Retry": supported '
        'values: "Continue", "Fail"',
        'spec.includedNamespaces[1]: Invalid value: "integer": spec.includedNamespaces[1] in body '
        'must be of type string: "integer"',
        'spec.orLabelSelectors[0].matchLabels.foo: Invalid value: "boolean": '
        'spec.orLabelSelectors[0].matchLabels.foo in body must be of type string: "boolean"',
        "spec.orLabelSelectors[1].matchExpressions[0].operator: Required value",
    ]


def test_nullable_date_time_and_integer_fields() -> None:
    backup = playbook_backup()
    backup["status"] = {"expiration": None, "startTimestamp": "2025-09-16T11:43:15Z",
                        "completionTimestamp": "2025-02-30T10:00:00Z", "phase": None,
                        "progress": {"totalItems": 1.5, "itemsBackedUp": 2.0}}
    assert texts(validate(backup, schema_of("Backup"))) == [
        'status.completionTimestamp: Invalid value: "2025-02-30T10:00:00Z": '
        'status.completionTimestamp in body must be of type date-time: "2025-02-30T10:00:00Z"',
        'status.phase: Invalid value: "null": status.phase in body must be of type string: "null"',
        'status.phase: Unsupported value: null: supported values: "New", "FailedValidation", '
        '"InProgress", "WaitingForPluginOperations", "WaitingForPluginOperationsPartiallyFailed", '
        '"Finalizing", "FinalizingPartiallyFailed", "Completed", "PartiallyFailed", "Failed", '
        '"Deleting"',
        'status.progress.totalItems: Invalid value: "number": status.progress.totalItems in body '
        'must be of type integer: "number"',
        '<nil>: Invalid value: "": Checked value must be of type integer (default format) in '
        "status.progress.totalItems",
    ]


SYNTHETIC = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 1, "maximum": 10, "format": "int32"},
        "ratio": {"type": "number", "maximum": 1, "exclusiveMaximum": True},
        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
        "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        "port": {"x-kubernetes-int-or-string": True,
                 "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "caCert": {"type": "string", "format": "byte"},
    },
}


@pytest.mark.parametrize(("value", "expected"), [
    ({"count": 0}, ["count: Invalid value: 0: count in body should be greater than or equal to 1"]),
    ({"count": 11}, ["count: Invalid value: 11: count in body should be less than or equal to 10"]),
    ({"count": 2**31}, ['<nil>: Invalid value: "": Checked value must be of type integer with '
                        "format int32 in count",
                        "count: Invalid value: 2147483648: count in body should be less than or "
                        "equal to 10"]),
    ({"ratio": 1.0}, ["ratio: Invalid value: 1: ratio in body should be less than 1"]),
    ({"ratio": 2500000.5}, ["ratio: Invalid value: 2.5000005e+06: ratio in body should be less "
                            "than 1"]),
    ({"name": "a"}, ['name: Invalid value: "a": name in body should be at least 2 chars long']),
    ({"name": "abcdef"}, ["name: Too long: may not be more than 5 bytes"]),
    ({"name": "AB"}, ["name: Invalid value: \"AB\": name in body should match '^[a-z]+$'"]),
    ({"tags": ["a", "b"]}, ["tags: Too many: 2: must have at most 1 item"]),
    ({"port": "http"}, []),
    ({"port": 8080}, []),
    ({"port": True}, ['port: Invalid value: "boolean": port in body must be of type '
                      'integer,string: "boolean"',
                      '<nil>: Invalid value: "": "port" must validate at least one schema (anyOf)',
                      'port: Invalid value: "boolean": port in body must be of type integer: '
                      '"boolean"']),
    ({"caCert": "bm90IGJhc2U2NA=="}, []),
    ({"caCert": "not base64!"}, ['caCert: Invalid value: "not base64!": caCert in body must be of '
                                 'type byte: "not base64!"']),
])
def test_schema_keywords(value: dict[str, Any], expected: list[str]) -> None:
    obj = {"metadata": {"name": "x"}, **value}
    assert texts(validate(obj, SYNTHETIC)) == expected


# Cases from apiextensions-apiserver v0.36.0 validation_test.go TestValidateCustomResource (the
# upstream test compares sets of messages).
UPSTREAM = [
    ({"type": "object", "properties": {"field": {"type": "object"}}}, {"field": None},
     {'field: Invalid value: "null": field in body must be of type object: "null"'}),
    ({"type": "object", "properties": {"field": {"type": "object"}}}, {"field": 1.2},
     {'field: Invalid value: "number": field in body must be of type object: "number"'}),
    ({"type": "object", "properties": {"field": {"x-kubernetes-int-or-string": True,
                                                 "anyOf": [{"type": "integer"}, {"type": "string"}]}}},
     {"field": 1.2},
     {'<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)',
      'field: Invalid value: "number": field in body must be of type integer,string: "number"',
      'field: Invalid value: "number": field in body must be of type integer: "number"',
      '<nil>: Invalid value: "": Checked value must be of type integer (default format) in field'}),
    ({"type": "object", "required": ["field"], "properties": {"field": {
        "type": "object", "required": ["nested"], "properties": {"nested": {}}}}},
     {"field": {}}, {"field.nested: Required value"}),
    ({"type": "object", "properties": {"field": {
        "type": "object", "required": ["nestedint", "nestedstring"], "properties": {
            "nestedint": {"type": "integer", "enum": [1, 2]},
            "nestedstring": {"type": "string", "enum": ["a", "b"]}}}}},
     {"field": {"nestedint": "x", "nestedstring": True}},
     {'field.nestedint: Invalid value: "string": field.nestedint in body must be of type integer: '
      '"string"',
      'field.nestedint: Unsupported value: "x": supported values: "1", "2"',
      'field.nestedstring: Invalid value: "boolean": field.nestedstring in body must be of type '
      'string: "boolean"',
      'field.nestedstring: Unsupported value: true: supported values: "a", "b"'}),
    ({"type": "object", "properties": {"fieldX": {"type": "object", "maxProperties": 2}}},
     {"fieldX": {"a": True, "b": True, "c": True}}, {"fieldX: Too many: 3: must have at most 2 items"}),
    ({"type": "object", "properties": {"fieldX": {"type": "string", "format": "k8s-long-name"}}},
     {"fieldX": "a.-"},
     {'fieldX: Invalid value: "a.-": fieldX in body must be of type k8s-long-name: "a.-"'}),
    ({"type": "object", "properties": {"fieldX": {"type": "string", "format": "k8s-short-name"}}},
     {"fieldX": "a-"},
     {'fieldX: Invalid value: "a-": fieldX in body must be of type k8s-short-name: "a-"'}),
    ({"type": "object", "properties": {"intSixtyFour": {"type": "integer", "format": "int64"}}},
     {"intSixtyFour": float(2**63) * 1.1},
     {'intSixtyFour: Invalid value: "float64": intSixtyFour in body must be of type int64: '
      '"float64"',
      '<nil>: Invalid value: "": Checked value must be of type integer with format int64 in '
      "intSixtyFour"}),
]


@pytest.mark.parametrize(("schema", "obj", "expected"), UPSTREAM)
def test_upstream_cases(schema: dict[str, Any], obj: dict[str, Any], expected: set[str]) -> None:
    checked = copy.deepcopy(obj)
    checked["metadata"] = {"name": "x"}
    assert set(texts(validate(checked, schema))) == expected


# ---- metadata ------------------------------------------------------------------------------------
def test_metadata_rules_on_create() -> None:
    obj = {"metadata": {"generateName": "Backup-", "namespace": "Velero",
                        "labels": {"ok": "x" * 64, "bad key!": "v"},
                        "finalizers": ["a/b/c"]}}
    assert texts(validate(obj, {"type": "object"}, namespaced=True)) == [
        f'metadata.generateName: Invalid value: "Backup-": {SUBDOMAIN_ERROR}',
        "metadata.name: Required value: name or generateName is required",
        'metadata.namespace: Invalid value: "Velero": a lowercase RFC 1123 label must consist of '
        "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
        "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        'metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        f'metadata.labels: Invalid value: "{"x" * 64}": must be no more than 63 bytes',
        'metadata.finalizers: Invalid value: "a/b/c": a valid label key must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
        "'/' (e.g. 'example.com/MyName')",
    ]


def test_metadata_rules_on_update() -> None:
    old = {"metadata": {"name": "b", "uid": "u1", "resourceVersion": "5", "finalizers": ["a/x"],
                        "deletionTimestamp": "2025-09-16T11:43:15Z"}}
    new = copy.deepcopy(old)
    new["metadata"].update(name="c", finalizers=["a/x", "a/y"])
    assert texts(validate(new, {"type": "object"}, old=old)) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being '
        'deleted, found new finalizers []string{"a/y"}',
        'metadata.name: Invalid value: "c": field is immutable',
    ]


def test_store_level_resource_version_error_uses_the_resource() -> None:
    from sandbox.apiserver.field_errors import INVALID, field_error

    err = field_error(INVALID, "metadata.resourceVersion", 0, "must be specified for an update")
    status = invalid_status("Backup", "velero.io", "backups", "x", [err], use_resource=True)
    assert status["message"] == ('backups.velero.io "x" is invalid: metadata.resourceVersion: '
                                 "Invalid value: 0: must be specified for an update")
    assert status["details"]["kind"] == "backups"


def test_type_meta() -> None:
    obj = {"apiVersion": "velero.io/v2", "kind": "Restore"}
    assert texts(validate_type_meta(obj, CRDS["Backup"], "v1")) == [
        'kind: Invalid value: "Restore": must be Backup',
        'apiVersion: Invalid value: "velero.io/v2": must be velero.io/v1',
    ]
