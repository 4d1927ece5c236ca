"""Refusals and the API-only Helm uninstall, judged on the sandbox and on upstream alike.

A ServiceAccount with no grant meets the cluster's authorizer (the real one upstream):
ragbot must turn the 403 into one line naming the missing permission. The Helm uninstall
is replayed from every point a killed process could have left it at, against the real
API server's deletes, as tests/integration/test_restore.py does on the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from k8s import resources as R
from k8s.client import Cluster, from_kubeconfig
from k8s.helm_release import encode_release_secret
from k8s.helm_uninstall import mark_uninstalling, uninstall_release
from tests.cluster.conftest import CliResult
from tests.cluster.targets import Target
from tests.integration.test_restore import _release_objects

NAMESPACE = "edp"


def test_forbidden_names_the_missing_permission(target: Target, ragbot: Callable[..., CliResult]) -> None:
    nobody = target.kubeconfig_as("nobody")
    res = ragbot("backup", "list", kubeconfig=nobody)
    assert res.code == 1 and len(res.err.splitlines()) == 1, res
    assert 'cannot list resource "backups" in API group "velero.io" in the namespace "velero"' in res.err
    assert 'User "system:serviceaccount:ragbot:nobody"' in res.err, res
    assert "grant it to ragbot's service account" in res.err
    res = ragbot("check", "-o", "json", kubeconfig=nobody)
    report = json.loads(res.out)
    assert res.code == 1 and report["passed"] is False
    by_item = {c["item"]: c for c in report["checks"]}
    assert by_item["Velero namespace"]["status"] == "failure"
    assert 'cannot get resource "namespaces"' in by_item["Velero namespace"]["detail"]
    assert by_item["Velero CRDs"]["status"] == "ok"  # discovery needs no grant


@pytest.fixture
def admin(target: Target) -> Iterator[Cluster]:
    with target.admin() as api:
        yield Cluster(api)


def _install_demo(admin: Cluster) -> None:
    live, release = _release_objects(NAMESPACE)
    for obj in live:
        R.create(admin, R.resolve(admin, "v1", obj["kind"]), NAMESPACE, obj)
    old = {**release, "version": 1, "info": {**release["info"], "status": "superseded"}}
    for doc in (old, release):
        R.create(admin, R.SECRET, NAMESPACE, encode_release_secret(doc, NAMESPACE))


def _demo_left(admin: Cluster) -> set[str]:
    names: set[Any] = set()
    for kind in (R.CONFIGMAP, R.SECRET):
        names |= {o["metadata"]["name"] for o in R.list_all(admin, kind, NAMESPACE)[0]}
    return {n for n in names if "demo" in n}


@pytest.mark.parametrize("crash_point", ["none", "marked", "half-deleted", "half-purged"])
def test_helm_uninstall_finishes_whatever_a_crash_left(
    target: Target, admin: Cluster, crash_point: str
) -> None:
    _install_demo(admin)
    cluster = from_kubeconfig(target.kubeconfig)  # ragbot's ServiceAccount
    try:
        if crash_point != "none":  # replay what a killed uninstall had done
            assert mark_uninstalling(cluster, NAMESPACE, "demo") == 2
            secret = R.get(admin, R.SECRET, NAMESPACE, "sh.helm.release.v1.demo.v2")
            assert secret["metadata"]["labels"]["status"] == "uninstalling"
        if crash_point in ("half-deleted", "half-purged"):
            R.delete(admin, R.CONFIGMAP, NAMESPACE, "demo-config")
        if crash_point == "half-purged":
            R.delete(admin, R.SECRET, NAMESPACE, "demo-secret")
            R.delete(admin, R.SECRET, NAMESPACE, "sh.helm.release.v1.demo.v1")
        result = uninstall_release(cluster, NAMESPACE, "demo", timeout=60)
        assert result.found and result.revision == 2
        assert result.kept == (f"ConfigMap {NAMESPACE}/demo-keep",)
        assert [h.name for h in result.hooks_skipped] == ["demo-pre-delete"]
        assert set(result.deleted) | set(result.already_gone) == {
            f"ConfigMap {NAMESPACE}/demo-config", f"Secret {NAMESPACE}/demo-secret"}  # fmt: skip
        assert _demo_left(admin) == {"demo-keep"}
        again = uninstall_release(cluster, NAMESPACE, "demo", timeout=60)
        assert not again.found and "not found" in again.message
    finally:
        cluster.close()
        R.delete(admin, R.CONFIGMAP, NAMESPACE, "demo-keep")  # kept by policy; the cluster is shared
