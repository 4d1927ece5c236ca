"""The backup side end to end: `ragbot check` and `ragbot backup ...` against the sandbox.

Everything goes through the real `kubernetes` client over loopback HTTP to a seeded
SandboxCluster with its simulated Velero and pod controller, mostly via the CLI entry
point in-process (`bot.cli.main`), once as a real `python -m bot` subprocess for the
exit-code/stderr contract. Waits are watches or deadline-bound conditions, never sleeps.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.cli_backup import ProgressView
from config.loader import load_config
from config.models import Config
from k8s import resources as R
from k8s.backups import (
    BackupInProgress,
    BackupNotFound,
    BackupNotUsable,
    NoCompletedBackup,
    backup_name,
    create_backup,
    latest_completed,
    resolve_backup,
    wait_backup,
)
from k8s.client import Cluster, from_kubeconfig
from k8s.download import DownloadError, backup_resource_list, download, pvcs_in
from k8s.watch import Collection, wait_for
from sandbox.cluster import SandboxCluster
from tests.conftest import ApiServerHandle, make_client
from tests.conftest import wait_for as poll

REPO = Path(__file__).resolve().parents[2]
VELERO_POD_LABELS = "app.kubernetes.io/instance=velero,app.kubernetes.io/name=velero"


@dataclass
class Sandbox:
    cluster_sim: SandboxCluster
    cluster: Cluster
    cfg: Config
    args: list[str]
    kubeconfig: Path
    config: Path

    def run(
        self, capsys: pytest.CaptureFixture[str], *argv: str, after: tuple[str, ...] = ()
    ) -> tuple[int, str, str]:
        """`ragbot <argv> --kubeconfig K --config C <after>` in-process: (code, stdout, stderr)."""
        capsys.readouterr()
        code = main([*argv, *self.args, *after])
        out, err = capsys.readouterr()
        return code, out, err


def _start(tmp_path: Path, *, need_velero: bool = True, **kwargs: Any) -> tuple[SandboxCluster, Path, Path]:
    sim = SandboxCluster(velero_seconds=0.3, pod_ready_seconds=0.05, **kwargs).start()
    if need_velero and getattr(sim, "velero", None) is None:
        sim.stop()
        pytest.skip("sandbox/velero.py (the Velero simulation) is not there yet")
    kubeconfig, config = sim.write_files(tmp_path)
    return sim, kubeconfig, config


def _sandbox(tmp_path: Path, *, need_velero: bool) -> Iterator[Sandbox]:
    sim, kubeconfig, config = _start(tmp_path, need_velero=need_velero)
    cluster = from_kubeconfig(kubeconfig)
    try:
        yield Sandbox(sim, cluster, load_config([config]), ["--kubeconfig", str(kubeconfig), "--config", str(config)], kubeconfig, config)
    finally:
        cluster.close()
        sim.stop()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A seeded sandbox with its Velero simulation (tests skip while it is missing)."""
    yield from _sandbox(tmp_path, need_velero=True)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Sandbox]:
    """A seeded sandbox for tests that never need Velero to act."""
    yield from _sandbox(tmp_path, need_velero=False)


def _velero_ready(sb: Sandbox) -> None:
    """Wait (by watch) until the pod controller has the Velero server pod ready."""

    def ready(view: Collection) -> bool | None:
        for pod in view.objects.values():
            status = pod.get("status") or {}
            if status.get("phase") == "Running" and any(
                c.get("ready") for c in status.get("containerStatuses") or []
            ):
                return True
        return None

    wait_for(sb.cluster, R.POD, "velero", ready, timeout=30, what="the Velero pod",
             label_selector=VELERO_POD_LABELS)


def _completed_backup(sb: Sandbox) -> str:
    obj = create_backup(sb.cluster, sb.cfg, trigger="cli", requester="test@host")
    name = obj["metadata"]["name"]
    final = wait_backup(sb.cluster, sb.cfg, name, timeout=30)
    assert final["status"]["phase"] == "Completed", final["status"]
    return name


def _stuck(sb: Sandbox) -> None:
    """Make the simulator leave the next Backup InProgress until the test ends."""
    sb.cluster_sim.velero.inject(None, "Stuck", kind="backup")


# ------------------------------------------------------------------------------- check


def test_check_all_ok_on_the_seeded_sandbox(seeded: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    _velero_ready(seeded)
    code, out, err = seeded.run(capsys, "check")
    assert code == 0, out + err
    assert "WARNING" not in out and "FAILED" not in out, out
    code, out, _ = seeded.run(capsys, "check", "-o", "json")
    report = json.loads(out)
    assert code == 0 and report["passed"] is True
    assert {c["status"] for c in report["checks"]} == {"ok"}, report
    items = {c["item"] for c in report["checks"]}
    assert {"velero.enabled", "Velero namespace", "Velero CRDs", "Velero server pod",
            "BackupStorageLocation", "VolumeSnapshotClass", "running backups",
            "bot namespace"} <= items


def test_check_fails_without_the_snapshot_class_label(
    seeded: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _velero_ready(seeded)
    vsc = R.VOLUME_SNAPSHOT_CLASS
    R.merge_patch(seeded.cluster, vsc, None, "csi-snapclass",
                  {"metadata": {"labels": {"velero.io/csi-volumesnapshot-class": None}}})
    # The only class of its driver: Velero still uses it, so only a warning.
    code, out, _ = seeded.run(capsys, "check")
    assert code == 0 and "WARNING  VolumeSnapshotClass" in out, out
    driver = R.get(seeded.cluster, vsc, None, "csi-snapclass")["driver"]
    R.create(seeded.cluster, vsc, None, {
        "apiVersion": vsc.api_version, "kind": vsc.kind, "metadata": {"name": "second"},
        "driver": driver, "deletionPolicy": "Retain",
    })  # fmt: skip
    code, out, _ = seeded.run(capsys, "check")
    assert code == 1, out
    assert "FAILED   VolumeSnapshotClass" in out
    assert 'fix: kubectl label volumesnapshotclass csi-snapclass velero.io/csi-volumesnapshot-class="true"' in out


def test_check_with_velero_disabled_and_backup_refused_as_config_error(
    seeded: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    off = tmp_path / "off.yaml"
    off.write_text("velero: {enabled: false}\n")
    code, out, _ = seeded.run(capsys, "check", after=("--config", str(off)))
    assert code == 1 and "FAILED   velero.enabled" in out
    code, _, err = seeded.run(capsys, "backup", "now", after=("--config", str(off)))
    assert code == 2
    assert err.startswith("ragbot: error: backups are disabled: set `velero: {enabled: true}`")
    assert len(err.splitlines()) == 1


# ------------------------------------------------------------------------------ backup


def test_backup_now_wait_reaches_completed(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = sandbox.run(capsys, "backup", "now", "--wait", "--note", "before upgrade")
    assert code == 0, out + err
    lines = out.splitlines()
    name = lines[0].split()[1]
    assert lines[0] == f"backup {name} created in namespace velero"
    assert re.match(rf"backup {name} Completed in \d+s: items (\d+)/\1", lines[-1]), lines[-1]
    assert any("InProgress" in line for line in lines[1:-1]), out  # live progress, plain lines
    obj = R.get(sandbox.cluster, R.BACKUP, "velero", name)
    meta = obj["metadata"]
    assert meta["labels"]["ragbot.io/trigger"] == "cli"
    assert meta["labels"]["backup-reason"] == "regular"
    assert meta["annotations"]["ragbot.io/note"] == "before upgrade"
    assert meta["annotations"]["ragbot.io/requester"].endswith("@" + socket.gethostname())


def test_second_backup_is_refused_while_one_runs(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _stuck(sandbox)
    code, out, _ = sandbox.run(capsys, "backup", "now")
    assert code == 0
    first = out.split()[1]
    code, _, err = sandbox.run(capsys, "backup", "now")
    assert code == 1
    assert err.startswith(f"ragbot: error: backup {first} (requested by ")
    assert "still running" in err and len(err.splitlines()) == 1
    with pytest.raises(BackupInProgress) as caught:
        create_backup(sandbox.cluster, sandbox.cfg, trigger="slack", requester="U0OPERATOR1")
    assert caught.value.running == first
    # (Stuck also makes the Velero pod not ready, like an OOM kill: check may fail on it.)
    _, out, _ = sandbox.run(capsys, "check", "-o", "json")
    running = {c["item"]: c for c in json.loads(out)["checks"]}["running backups"]
    assert running["status"] == "warning" and running["detail"].startswith(first), running


def test_same_second_requests_do_not_crash(sandbox: Sandbox) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    base = backup_name("backup", now)
    velero = sandbox.cluster_sim.store.registry.by_kind("velero.io/v1", "Backup")
    # The playbook made one this very second: we take the next name.
    sandbox.cluster_sim.store.create(velero, "velero", {
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": base, "labels": {"backup-reason": "regular"}},
        "spec": {}, "status": {"phase": "Completed"},
    })  # fmt: skip
    mine = create_backup(sandbox.cluster, sandbox.cfg, trigger="slack", requester="U1", now=now)
    assert mine["metadata"]["name"] == f"{base}-2"
    wait_backup(sandbox.cluster, sandbox.cfg, f"{base}-2", timeout=30)
    # The same requester again in that second (a retried command): the same backup.
    again = create_backup(sandbox.cluster, sandbox.cfg, trigger="slack", requester="U1", now=now)
    assert again["metadata"]["uid"] == mine["metadata"]["uid"]
    # Someone else in that second gets the next free suffix.
    other = create_backup(sandbox.cluster, sandbox.cfg, trigger="cli", requester="U2", now=now)
    assert other["metadata"]["name"] == f"{base}-3"


def test_backup_list_and_describe(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    first = _completed_backup(sandbox)
    code, out, _ = sandbox.run(capsys, "backup", "list", "-o", "json")
    assert code == 0
    listed = json.loads(out)
    assert [b["name"] for b in listed] == [first]
    assert listed[0]["phase"] == "Completed" and listed[0]["trigger"] == "cli"
    assert listed[0]["requester"] == "test@host"
    assert listed[0]["progress"]["itemsBackedUp"] == listed[0]["progress"]["totalItems"] > 0
    code, out, _ = sandbox.run(capsys, "backup", "list")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["NAME", "PHASE", "ITEMS"]
    assert out.splitlines()[1].startswith(first)
    code, out, _ = sandbox.run(capsys, "backup", "describe", first)
    assert code == 0 and "Phase:" in out and "Completed" in out and "Requester:" in out
    code, out, _ = sandbox.run(capsys, "backup", "describe", first, "-o", "json")
    assert json.loads(out)["name"] == first
    code, _, err = sandbox.run(capsys, "backup", "describe", "backup-nope")
    assert code == 1 and err == "ragbot: error: no Backup 'backup-nope' in namespace velero (`ragbot backup list` shows them)\n"


def test_progress_bar_on_a_terminal() -> None:
    out = StringIO()
    view = ProgressView(out, tty=True, clock=lambda: datetime(2025, 1, 1, 0, 0, 10, tzinfo=UTC))
    base = {"metadata": {"name": "b", "creationTimestamp": "2025-01-01T00:00:00Z"}}
    view.update({**base, "status": {"phase": "InProgress", "progress": {"totalItems": 4, "itemsBackedUp": 1}}})
    view.update({**base, "status": {"phase": "Completed", "progress": {"totalItems": 4, "itemsBackedUp": 4}}})
    view.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[######------------------] InProgress  items 1/4  10s" in text
    assert "[########################] Completed  items 4/4" in text


# ------------------------------------------------------------------------- latest, list


def test_latest_completed_among_10000_backups(seeded: Sandbox) -> None:
    store = seeded.cluster_sim.store
    velero = store.registry.by_kind("velero.io/v1", "Backup")
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    phases = ("Completed", "Completed", "PartiallyFailed", "Failed")
    started = time.perf_counter()
    for i in range(10_000):
        done = t0 + timedelta(minutes=7 * i % 9_973)  # scrambled completion order
        labels = {"backup-reason": "regular"} if i % 10 else {"backup-reason": "manual"}
        store.create(velero, "velero", {
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": f"backup-{i:05d}", "labels": labels},
            "spec": {"includedNamespaces": ["vdb"]},
            "status": {"phase": phases[i % 4], "completionTimestamp": done.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "expiration": "2099-01-01T00:00:00Z"},
        })  # fmt: skip
    seed_seconds = time.perf_counter() - started
    expected = max(
        (t0 + timedelta(minutes=7 * i % 9_973), f"backup-{i:05d}")
        for i in range(10_000) if i % 10 and phases[i % 4] == "Completed"
    )[1]
    started = time.perf_counter()
    latest = latest_completed(seeded.cluster, seeded.cfg)
    elapsed = time.perf_counter() - started
    print(f"\nlatest completed among 10,000 Backups: {latest['metadata']['name']} in "
          f"{elapsed * 1000:.0f} ms (seeding took {seed_seconds:.1f} s)")
    assert latest["metadata"]["name"] == expected
    assert elapsed < 10
    assert resolve_backup(seeded.cluster, seeded.cfg, "latest")["metadata"]["name"] == expected
    assert resolve_backup(seeded.cluster, seeded.cfg, "backup-00001")["metadata"]["name"] == "backup-00001"
    with pytest.raises(BackupNotUsable, match="ended PartiallyFailed"):
        resolve_backup(seeded.cluster, seeded.cfg, "backup-00002")
    with pytest.raises(BackupNotFound):
        resolve_backup(seeded.cluster, seeded.cfg, "backup-99999")
    pinned = seeded.cfg.model_copy(update={"velero": seeded.cfg.velero.model_copy(update={"restore_from": "backup-00005"})})
    assert resolve_backup(seeded.cluster, pinned, "")["metadata"]["name"] == "backup-00005"


def test_no_completed_backup_is_a_clear_error(seeded: Sandbox) -> None:
    with pytest.raises(NoCompletedBackup) as caught:
        latest_completed(seeded.cluster, seeded.cfg)
    assert str(caught.value).startswith(
        "no Completed Backup labelled backup-reason=regular in namespace velero: nothing to restore"
    )


# ---------------------------------------------------------------------------- download


def test_resource_list_holds_the_seeded_pvcs(sandbox: Sandbox) -> None:
    name = _completed_backup(sandbox)
    listing = backup_resource_list(sandbox.cluster, "velero", name, timeout=15)
    order = sandbox.cfg.velero.backup.backupConfig.namespaceOrder
    selectors = sandbox.cfg.velero.backup.backupConfig.orSelectors
    seeded = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for ns in order
        for p in R.list_all(sandbox.cluster, R.PVC, ns)[0]
        if any(s.matches(p["metadata"].get("labels")) for s in selectors)
    }
    assert seeded, "the seed has PVCs in the backed-up namespaces"
    assert set(pvcs_in(listing)) == seeded
    leftovers, _ = R.list_all(sandbox.cluster, R.DOWNLOAD_REQUEST, "velero")
    assert leftovers == [], "the DownloadRequest is deleted after use"


# ------------------------------------------------------------------ permissions, network


def test_forbidden_names_the_missing_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import sandbox.apiserver.rbac  # noqa: F401
    except ImportError:
        pytest.skip("sandbox/apiserver/rbac.py (the RBAC authorizer) is not there yet")
    sim, _, config = _start(tmp_path, need_velero=False, rbac=True)
    try:
        kubeconfig, _ = sim.write_files(tmp_path / "sa", token="system:serviceaccount:ragbot:ragbot")
        args = ["--kubeconfig", str(kubeconfig), "--config", str(config)]
        capsys.readouterr()
        code = main(["backup", "list", *args])
        _, err = capsys.readouterr()
        assert code == 1 and len(err.splitlines()) == 1, err
        assert 'cannot list resource "backups" in API group "velero.io" in the namespace "velero"' in err
        assert "grant it to ragbot's service account" in err
        code = main(["check", "-o", "json", *args])
        report = json.loads(capsys.readouterr().out)
        assert code == 1 and report["passed"] is False
        by_item = {c["item"]: c for c in report["checks"]}
        assert by_item["Velero namespace"]["status"] == "failure"
        assert 'cannot get resource "namespaces"' in by_item["Velero namespace"]["detail"]
        assert by_item["Velero CRDs"]["status"] == "ok"  # discovery needs no grant
    finally:
        sim.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_api_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": f"http://127.0.0.1:{_closed_port()}"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
    }))  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text("velero: {enabled: true}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "backup", "list", "--kubeconfig", str(kubeconfig), "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ragbot: error: list backups.velero.io in velero: cannot reach the Kubernetes API server")
    assert "Traceback" not in proc.stderr


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["backup", "describe"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith("ragbot: error: the following arguments are required: NAME")


# ----------------------------------------------------------- download errors (no Velero)


class _FakeVelero:
    """Answers the next DownloadRequest with a URL the test chooses, through the store."""

    def __init__(self, store: Any, url: str | None) -> None:
        self.store = store
        self.url = url
        self.thread = threading.Thread(target=self._answer, daemon=True)

    def _answer(self) -> None:
        rt = self.store.registry.by_kind("velero.io/v1", "DownloadRequest")
        items = poll(lambda: self.store.list(rt, "velero")[0], 10, "a DownloadRequest")
        if self.url is None:
            return
        obj = dict(items[0])
        obj["status"] = {"phase": "Processed", "downloadURL": self.url}
        self.store.update(rt, "velero", obj["metadata"]["name"], obj)


def _serve(body: bytes, status: int = 200) -> tuple[str, Callable[[], None]]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}/file", stop


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not-gzip", "is not gzip data"),
        ("http-403", "HTTP 403"),
        ("bad-url", "unusable download URL"),
        ("refused", "cannot download the BackupResourceList of b1 from http://127.0.0.1:"),
        ("no-answer", "Velero did not answer DownloadRequest"),
    ],
)
def test_download_errors_are_clear(api_server: ApiServerHandle, case: str, message: str) -> None:
    """A bare API server (no Velero): the test answers the DownloadRequest itself."""
    url: str | None = None
    stop: Callable[[], None] = lambda: None  # noqa: E731
    if case == "not-gzip":
        url, stop = _serve(b"{}")
    elif case == "http-403":
        url, stop = _serve(b"denied", status=403)
    elif case == "bad-url":
        url = "file:///etc/passwd"
    elif case == "refused":
        url = f"http://127.0.0.1:{_closed_port()}/x"
    fake = _FakeVelero(api_server.store, url)
    fake.thread.start()
    cluster = Cluster(make_client(api_server.url))
    try:
        with pytest.raises(DownloadError, match=message):
            download(cluster, "velero", "BackupResourceList", "b1", timeout=2.0)
        fake.thread.join(10)
        assert R.list_all(cluster, R.DOWNLOAD_REQUEST, "velero")[0] == []
    finally:
        cluster.close()
        stop()
