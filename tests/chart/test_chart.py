"""The Helm chart checked without a cluster or a helm binary.

helm-python-sdk (Helm's Go SDK through a C ABI) lints and renders charts/ragbot with the
default values and with non-default ones (existingSecret, HA, NetworkPolicy,
ServiceMonitor, a custom Velero namespace, namespaceOrder and cleanup entries); every
rendered object is validated against the Kubernetes OpenAPI schemas
(kubernetes-validate); checkov scans the manifests (every failed check must be fixed,
or skipped in the chart with a reason); hadolint checks the Dockerfile; and the RBAC the
chart renders must equal `k8s.permissions.render_roles` for the config the chart writes,
so the chart cannot drift from the code's declaration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from config.loader import load_config
from k8s.permissions import HELM_RELEASE_KINDS, render_roles
from k8s.resources import _KNOWN

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "ragbot"
K8S_VERSION = "1.33.0"
RBAC_KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")

CUSTOM: dict[str, Any] = {
    "replicaCount": 3,
    "image": {"digest": "sha256:" + "a" * 64},
    "slack": {"existingSecret": "my-slack-tokens"},
    "commonLabels": {"team": "platform"},
    "commonAnnotations": {"owner": "platform@example.com"},
    "podDisruptionBudget": {"enabled": True},
    "networkPolicy": {"enabled": True, "apiServerCIDRs": ["10.96.0.1/32", "192.168.10.5/32"]},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "opsPort": 9090,
    "config": {
        "velero": {
            "namespace": "backup-system",
            "backup": {"backupConfig": {
                "namespaceOrder": ["rag-a", "rag-b", "ops"],
                "deployments": {
                    "rag-a": ["Helm/app", {"Job/selector": "app=batch"}],
                    "rag-b": ["Secret/s1", "CronJob/nightly", "Ingress/web", "Deployment/api"],
                    "ops": ["ConfigMap/leftover"],
                },
            }},
        },
        "ragbot": {"slack": {"channel": "C0123456789"}},
    },
}  # fmt: skip

#: (release name, namespace, values)
CASES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "default": ("ragbot", "ragbot", None),
    "custom": ("prod", "ops", CUSTOM),
}


def render(case: str) -> dict[str, str]:
    name, namespace, values = CASES[case]
    chart = helm.Chart.load(CHART)
    return chart.render(values, name=name, namespace=namespace, is_install=True)


def objects(case: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path, text in sorted(render(case).items()):
        if path.endswith("NOTES.txt"):
            continue
        out += [doc for doc in yaml.safe_load_all(text) if doc]
    return out


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----- lint, schema, Kubernetes schemas -------------------------------------------------------


def test_lint_is_clean(case: str) -> None:
    _, namespace, values = CASES[case]
    report = helm.lint(CHART, values, strict=True, namespace=namespace, kube_version="v" + K8S_VERSION)
    problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
    assert not problems and not report.get("errors"), report


def test_every_object_is_valid_against_the_kubernetes_schemas(case: str) -> None:
    checked = 0
    for obj in objects(case):
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD kind: no schema in kubernetes-validate
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("typo", [
    {"replicas": 2},
    {"image": {"repo": "x"}},
    {"networkPolicy": {"enable": True}},
    {"config": {"ragbot": {"slak": {}}}},
    {"rbac": {"extraRules": [{"namespace": "x", "apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]}},
    {"rbac": {"extraRules": [{"namespace": "x", "apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}},
    {"config": {"velero": {"namespace": "Not_A_Namespace"}}},
])  # fmt: skip
def test_schema_refuses_typos_and_wildcards(typo: dict[str, Any]) -> None:
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmError):
        chart.render(typo, name="ragbot", namespace="ragbot")


# ----- what the objects say ------------------------------------------------------------------


def test_deployment_is_hardened_and_highly_available(case: str) -> None:
    objs = objects(case)
    (dep,) = by_kind(objs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == (3 if case == "custom" else 2)
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert spec["topologySpreadConstraints"] and spec["affinity"]["podAntiAffinity"]
    assert spec["automountServiceAccountToken"] is True
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] and pod["runAsUser"] == 10001
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/etc/ragbot", "/tmp"}
    port = 9090 if case == "custom" else 8080
    assert c["ports"] == [{"name": "ops", "containerPort": port, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["requests"] and c["resources"]["limits"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    secret = "my-slack-tokens" if case == "custom" else "ragbot"
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret
    assert len(by_kind(objs, "Secret")) == (0 if case == "custom" else 1)
    (sa,) = by_kind(objs, "ServiceAccount")
    assert spec["serviceAccountName"] == sa["metadata"]["name"]


def test_optional_objects_are_off_by_default_and_render_when_on(case: str) -> None:
    objs = objects(case)
    on = case == "custom"
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"):
        assert len(by_kind(objs, kind)) == (1 if on else 0), kind
    if on:
        (policy,) = by_kind(objs, "NetworkPolicy")
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert egress_ports == {53, 443, 6443}
        for obj in objs:
            assert obj["metadata"]["labels"]["team"] == "platform", obj["kind"]


def test_the_config_the_chart_writes_loads(case: str, tmp_path: Path) -> None:
    _, namespace, _ = CASES[case]
    cfg = chart_config(objects(case), tmp_path)
    assert cfg.ragbot.namespace == namespace
    assert cfg.velero.enabled


# ----- RBAC: the chart equals the code's declaration --------------------------------------------


def chart_config(objs: list[dict[str, Any]], tmp_path: Path) -> Any:
    (cm,) = [o for o in by_kind(objs, "ConfigMap") if "config.yaml" in o.get("data", {})]
    path = tmp_path / "config.yaml"
    path.write_text(cm["data"]["config.yaml"])
    return load_config([path])


def _rbac_view(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    view = {"kind": obj["kind"], "name": meta["name"], "namespace": meta.get("namespace")}
    for key in ("rules", "roleRef", "subjects"):
        if key in obj:
            view[key] = obj[key]
    return view


def test_rendered_rbac_equals_the_code_declaration(case: str, tmp_path: Path) -> None:
    objs = objects(case)
    cfg = chart_config(objs, tmp_path)
    (dep,) = by_kind(objs, "Deployment")
    (sa,) = by_kind(objs, "ServiceAccount")
    expected = render_roles(cfg, name=dep["metadata"]["name"], service_account=sa["metadata"]["name"])
    rendered = [o for o in objs if o["kind"] in RBAC_KINDS]
    assert [_rbac_view(o) for o in rendered] == [_rbac_view(o) for o in expected]
    for obj in rendered:
        for rule in obj.get("rules") or ():
            for key in ("verbs", "resources", "apiGroups"):
                assert "*" not in rule[key], (obj["metadata"], rule)


def test_custom_rbac_follows_the_config() -> None:
    objs = objects("custom")
    roles = {o["metadata"]["namespace"]: o["rules"] for o in by_kind(objs, "Role")}
    assert list(roles) == ["backup-system", "ops", "rag-a", "rag-b"]
    assert any("backups" in r["resources"] for r in roles["backup-system"])
    granted = {(g, res) for r in roles["rag-b"] for g in r["apiGroups"] for res in r["resources"]}
    assert {("batch", "cronjobs"), ("networking.k8s.io", "ingresses"), ("", "secrets")} <= granted
    assert ("batch", "jobs") not in granted
    # `ops` is the bot's namespace and cleans up one ConfigMap: no Secret access there.
    assert not any("secrets" in r["resources"] for r in roles["ops"])


def test_extra_rules_are_added_to_the_namespace_role() -> None:
    extra = {"namespace": "vdb", "apiGroups": ["redis.example.com"], "resources": ["clusters"],
             "verbs": ["get", "list", "watch", "delete"]}  # fmt: skip
    chart = helm.Chart.load(CHART)
    out = chart.render({"rbac": {"extraRules": [extra]}}, name="ragbot", namespace="ragbot")
    docs = [d for d in yaml.safe_load_all(out["ragbot/templates/rbac.yaml"]) if d]
    (vdb,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "vdb"]
    assert vdb["rules"][-1] == {k: v for k, v in extra.items() if k != "namespace"}


def test_chart_kind_table_matches_the_code() -> None:
    text = (CHART / "templates" / "_kinds.tpl").read_text()

    def block(name: str) -> str:
        start = text.index('{{- define "' + name + '" -}}')
        body = text[text.index("\n", start) + 1:]
        return body[: body.index("{{- end }}")]

    table = yaml.safe_load(block("ragbot.kindTable"))
    assert table == {r.kind: {"group": r.group, "plural": r.plural} for r in _KNOWN.values() if r.namespaced}
    assert tuple(yaml.safe_load(block("ragbot.helmReleaseKinds"))) == HELM_RELEASE_KINDS


def test_values_defaults_equal_the_playbook_defaults(tmp_path: Path) -> None:
    from config.models import Config

    cfg = chart_config(objects("default"), tmp_path)
    code = Config().velero.backup.backupConfig
    assert cfg.velero.backup.backupConfig.namespaceOrder == code.namespaceOrder
    assert cfg.velero.backup.backupConfig.deployments == code.deployments


# ----- scanners ----------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.fail(f"{name} is not installed: run tests/chart/run.sh")
    return found


def test_checkov_finds_nothing_unjustified(tmp_path: Path) -> None:
    for case in CASES:
        for path, text in render(case).items():
            if not path.endswith("NOTES.txt"):
                target = tmp_path / case / Path(path).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    proc = subprocess.run(
        [_tool("checkov"), "-d", str(tmp_path), "--framework", "kubernetes", "-o", "json",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [(c["check_id"], c["check_name"], c["resource"]) for r in reports
              for c in r.get("results", {}).get("failed_checks", [])]  # fmt: skip
    skipped = [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])]
    assert not failed, "\n".join(map(str, failed))
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) > 40, (check["check_id"], check["resource"], reason)
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    print(f"\n[checkov] passed {passed}, failed 0, skipped {len(skipped)}: "
          + ", ".join(sorted({c['check_id'] for c in skipped})))  # fmt: skip


def test_hadolint_passes_the_dockerfile() -> None:
    proc = subprocess.run([_tool("hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
