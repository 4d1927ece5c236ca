"""The upstream test cluster (issue 9): real upstream components as loopback processes.

:class:`Upstream` starts, on free 127.0.0.1 ports with all state under one directory:
embedded etcd, kube-apiserver, kube-controller-manager, kube-scheduler (v1.36.3), kwok with
one fake Node (pods go Pending -> Running -> Ready), an S3 store (moto server), a CSI
driver with external-provisioner, csi-snapshotter and snapshot-controller (`csi.py`), and
the Velero server with the AWS object-store plugin. It loads the Enterprise RAG seed the
sandbox uses, through the API (`tests/upstream/apiload.py`), and waits until Velero has
validated the default BackupStorageLocation itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "build.sh"


#: Every component, in start order; `Upstream(components=...)` starts a prefix-closed subset.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "s3",
    "csi",
    "velero",
)
NODE_NAME = "kwok-node-0"
VELERO_NAMESPACE = "velero"
BUCKET = "velero"


def build(*, quiet: bool = False) -> Path:
    """Run build.sh (a no-op when binaries for these pins exist) and return the bin dir."""
    out = subprocess.run(
        ["bash", str(BUILD_SH)],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- PKI ---------------------------------------------------------------------------------


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _cert(subject, issuer, pub, signer, *, ca=False, server=False, client=False, sans=()):
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        b = b.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(signer, hashes.SHA256())


def make_pki(d: Path) -> None:
    """CA, apiserver serving cert, admin client cert (system:masters), SA key pair."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ragbot-upstream-ca")])
    ca = _cert(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    _write_key(d / "ca.key", ca_key)
    _write_cert(d / "ca.crt", ca)

    srv_key = ec.generate_private_key(ec.SECP256R1())
    sans = [
        x509.DNSName(n)
        for n in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1", "10.96.0.1")]
    srv = _cert(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        ca_name,
        srv_key.public_key(),
        ca_key,
        server=True,
        sans=sans,
    )
    _write_key(d / "apiserver.key", srv_key)
    _write_cert(d / "apiserver.crt", srv)

    adm_key = ec.generate_private_key(ec.SECP256R1())
    adm = _cert(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "ragbot-admin"),
            ]
        ),
        ca_name,
        adm_key.public_key(),
        ca_key,
        client=True,
    )
    _write_key(d / "admin.key", adm_key)
    _write_cert(d / "admin.crt", adm)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(d / "sa.key", sa_key)
    (d / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def kubeconfig_dict(server: str, pki: Path, namespace: str | None = None) -> dict[str, Any]:
    """An admin kubeconfig with the CA and client cert embedded (the file can be copied)."""

    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    context: dict[str, str] = {"cluster": "ragbot-upstream", "user": "upstream-admin"}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "ragbot-upstream",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": "upstream-admin",
                "user": {
                    "client-certificate-data": b64("admin.crt"),
                    "client-key-data": b64("admin.key"),
                },
            }
        ],
        "contexts": [{"name": "ragbot-upstream", "context": context}],
        "current-context": "ragbot-upstream",
    }


def write_kubeconfig(path: Path, server: str, pki: Path, namespace: str | None = None) -> None:
    import yaml

    path.write_text(yaml.safe_dump(kubeconfig_dict(server, pki, namespace), sort_keys=False))
    path.chmod(0o600)


def kwok_config(bin_dir: Path) -> str:
    """KwokConfiguration + the Stages shipped in the kwok module (copied by build.sh).

    node-initialize (fast) and node-heartbeat-with-lease keep the fake Node Ready;
    pod-ready / pod-complete / pod-delete (the "fast" pod stages) take a scheduled Pending
    pod straight to Running with Ready conditions and a pod IP, finish Job pods, and
    finish deletions (no kubelet), exactly as kwokctl's default cluster does.
    """
    stages = sorted((bin_dir / "kwok-stages").glob("*.yaml"))
    if not stages:
        raise FileNotFoundError(f"no kwok stages in {bin_dir / 'kwok-stages'}; rerun build.sh")
    docs = [
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\n"
        # the options of kwok's own kustomize/kwok/kwok.yaml (its deployment); without
        # nodeLeaseParallelism kwok v0.8.0 exits "node leases parallelism must be greater than 0"
        "options:\n  cidr: 10.244.0.0/16\n  nodeLeaseDurationSeconds: 40\n"
        "  nodeLeaseParallelism: 4\n  podPlayStageParallelism: 4\n"
        "  nodePlayStageParallelism: 4\n  podsOnNodeSyncParallelism: 1\n"
        "  enablePodsOnNodeSyncListPager: false\n  enablePodsOnNodeSyncStreamWatch: true\n"
    ]
    docs += [s.read_text() for s in stages]
    return "\n---\n".join(d.strip("-\n") + "\n" for d in docs)


def fake_node(name: str = NODE_NAME) -> dict[str, Any]:
    """A Node kwok manages (annotation selector), no NoSchedule taint, room for the seed."""
    room = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "type": "kwok",
            },
        },
        "status": {"capacity": room, "allocatable": room},
    }


# --- processes ---------------------------------------------------------------------------


@dataclass
class Upstream:
    dir: Path
    bin: Path
    components: tuple[str, ...] = COMPONENTS
    seed: bool = True
    #: Velero's --features. EnableCSI is what Enterprise RAG installs (the seed's Deployment);
    #: without the "csi" component each PVC's VolumeSnapshot never gets a content and the
    #: backup waits csiSnapshotTimeout per PVC (README: "Volumes").
    velero_features: str = "EnableCSI"
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    etcd_url: str = ""
    server: str = ""
    s3_url: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    def api_client(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(str(self.kubeconfig))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - lives with proc
        p = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.dir,
            env=env,
        )
        log.close()
        self.procs.append((name, p))
        return p

    def _check_alive(self, name: str, p: subprocess.Popen) -> None:
        if p.poll() is not None:
            tail = (self.dir / "logs" / f"{name}.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{name} exited with {p.returncode}:\n{tail}")

    def check_alive(self) -> None:
        for name, p in self.procs:
            self._check_alive(name, p)

    def _mark(self, what: str, t0: float) -> None:
        self.timings[what] = round(time.monotonic() - t0, 2)

    def start(self, timeout: float = 90.0) -> None:
        t0 = time.monotonic()
        want = set(self.components)
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        make_pki(self.pki)
        self._start_etcd(timeout)
        self._start_apiserver(timeout)
        self._mark("kube-apiserver ready", t0)
        if "kube-controller-manager" in want:
            self._start_kcm(timeout)
        if "kube-scheduler" in want:
            self._start_scheduler(timeout)
        if "kwok" in want:
            self._start_kwok(timeout)
        self._mark("control plane ready", t0)
        if "s3" in want:
            self._start_s3(timeout)
        if self.seed:
            self.load_seed()
            self._mark("seed loaded", t0)
        if "csi" in want:  # needs the seed's snapshot CRDs and StorageClass
            from . import csi

            csi.start(self, timeout)
            self._mark("csi ready", t0)
        if "velero" in want:
            self._start_velero(timeout)
            self._mark("velero BSL Available", t0)
        self._mark("total", t0)

    # -- control plane --

    def _start_etcd(self, timeout: float) -> None:
        # a fresh data dir every time (an old one brings back old state)
        data = self.dir / "etcd-data"
        if data.exists():
            subprocess.run(["rm", "-rf", str(data)], check=True)
        self.etcd_url = f"http://127.0.0.1:{free_port()}"
        etcd = self._spawn(
            "etcd",
            [
                str(self.bin / "etcd"),
                f"--data-dir={data}",
                f"--listen-client-url={self.etcd_url}",
                f"--listen-peer-url=http://127.0.0.1:{free_port()}",
            ],
        )
        self._wait_http("etcd", etcd, self.etcd_url + "/health", timeout)

    def _start_apiserver(self, timeout: float) -> None:
        pki = self.pki
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        api = self._spawn(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--authorization-mode=Node,RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
            ],
        )
        # components get their own kubeconfig; DIR/kubeconfig is the user's (namespace velero)
        write_kubeconfig(self.dir / "admin.kubeconfig", self.server, pki)
        write_kubeconfig(self.kubeconfig, self.server, pki, namespace=VELERO_NAMESPACE)
        self._wait_https("kube-apiserver", api, port, "/readyz", pki, timeout)

    def _start_kcm(self, timeout: float) -> None:
        pki = self.pki
        kport = free_port()
        kcm = self._spawn(
            "kube-controller-manager",
            [
                str(self.bin / "kube-controller-manager"),
                f"--kubeconfig={self.dir / 'admin.kubeconfig'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kport}",
                f"--cert-dir={self.dir / 'kcm-certs'}",
                "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                # every default-on controller: garbage collector, namespace, serviceaccount(+token),
                # deployment, replicaset, statefulset, job, persistentvolume-binder and
                # -protection, node-lifecycle, ... (what a kubeadm cluster runs)
                "--controllers=*",
                "--node-monitor-period=5s",
                "--node-monitor-grace-period=40s",
            ],
        )
        # serves with a self-signed cert of its own, hence no CA check for /healthz
        self._wait_https("kube-controller-manager", kcm, kport, "/healthz", None, timeout)
        # the serviceaccount controller creates default/default (pods need it)
        self._wait_for(
            "ServiceAccount default/default",
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            timeout,
        )

    def _start_scheduler(self, timeout: float) -> None:
        sport = free_port()
        sched = self._spawn(
            "kube-scheduler",
            [
                str(self.bin / "kube-scheduler"),
                f"--kubeconfig={self.dir / 'admin.kubeconfig'}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={sport}",
                f"--cert-dir={self.dir / 'scheduler-certs'}",
                "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            ],
        )
        self._wait_https("kube-scheduler", sched, sport, "/healthz", None, timeout)

    def _start_kwok(self, timeout: float) -> None:
        cfg = self.dir / "kwok.yaml"
        cfg.write_text(kwok_config(self.bin))
        wport = free_port()
        kwok = self._spawn(
            "kwok",
            [
                str(self.bin / "kwok"),
                f"--kubeconfig={self.dir / 'admin.kubeconfig'}",
                f"--config={cfg}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.0.0.1",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{wport}",
            ],
        )
        self._wait_http("kwok", kwok, f"http://127.0.0.1:{wport}/healthz", timeout)
        from .apiload import create_objects

        create_objects(self.api_client(), [fake_node()], exist_ok=True)

        def node_ready() -> bool:
            node = self._get(f"/api/v1/nodes/{NODE_NAME}") or {}
            conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
            taints = [t["key"] for t in node.get("spec", {}).get("taints", []) or []]
            return conds.get("Ready") == "True" and "node.kubernetes.io/not-ready" not in taints

        self._wait_for(f"Node {NODE_NAME} Ready and untainted", node_ready, timeout)

    # -- S3 + Velero --

    def _start_s3(self, timeout: float) -> None:
        port = free_port()
        self.s3_url = f"http://127.0.0.1:{port}"
        s3 = self._spawn(
            "s3",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        )
        self._wait_http("s3", s3, self.s3_url + "/moto-api/", timeout)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id="ragbot-sandbox",
            aws_secret_access_key="ragbot-sandbox",
        ).create_bucket(Bucket=BUCKET)

    def load_seed(self) -> int:
        """The sandbox's Enterprise RAG seed plus the `ragbot` namespace, through the API."""
        from sandbox.cluster import BOT_NAMESPACE
        from sandbox.seed import enterprise_rag_seed

        from .apiload import create_objects

        objs = enterprise_rag_seed(
            velero_namespace=VELERO_NAMESPACE, s3_url=self.s3_url or "http://127.0.0.1:9"
        )
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BOT_NAMESPACE}})
        return create_objects(self.api_client(), objs)

    def _start_velero(self, timeout: float) -> None:
        home = self.dir / "velero-home"  # no developer ~/.config/velero/config.json
        tmp = self.dir / "tmp"  # Velero writes BSL credentials from the Secret here
        home.mkdir(exist_ok=True)
        tmp.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "VELERO_NAMESPACE": VELERO_NAMESPACE,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        velero = self._spawn(
            "velero",
            [
                str((self.bin / "velero").resolve()),  # os.Args[0] starts the built-in plugins
                "server",
                f"--kubeconfig={self.dir / 'admin.kubeconfig'}",
                f"--namespace={VELERO_NAMESPACE}",
                f"--plugin-dir={self.bin / 'plugins'}",
                f"--features={self.velero_features}",
                "--default-backup-storage-location=default",
                "--uploader-type=kopia",
                f"--metrics-address=127.0.0.1:{free_port()}",
                "--profiler-address=",
                "--store-validation-frequency=10s",
                "--log-format=json",
            ],
            env=env,
        )
        path = f"/apis/velero.io/v1/namespaces/{VELERO_NAMESPACE}/backupstoragelocations/default"

        def available() -> bool:
            self._check_alive("velero", velero)
            st = (self._get(path) or {}).get("status") or {}
            last = st.get("lastValidationTime")
            if not last:
                return False
            when = dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
            return when >= started and st.get("phase") == "Available"

        self._wait_for("BackupStorageLocation default Available (validated by Velero)", available, timeout)

    # -- waiting --

    def _get(self, path: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        from .apiload import request

        if not hasattr(self, "_api"):
            self._api = self.api_client()
        try:
            return request(self._api, "GET", path)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def _wait_for(self, what: str, cond, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not reached after {timeout}s")
            time.sleep(0.25)

    def _wait_http(self, name, p, url, timeout):
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(name, p)
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not healthy at {url} after {timeout}s")
            time.sleep(0.2)

    def _wait_https(self, name, p, port, path, pki, timeout):
        if pki is None:
            ctx = ssl._create_unverified_context()
        else:
            ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            self._check_alive(name, p)
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
                c.request("GET", path)
                r = c.getresponse()
                last = f"{r.status} {r.read()[-500:]!r}"
                c.close()
                if r.status == 200:
                    return
            except OSError as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} {path} not 200 after {timeout}s: {last}")
            time.sleep(0.3)

    # -- files and teardown --

    def write_files(self) -> tuple[Path, Path]:
        """DIR/kubeconfig (admin, namespace velero; written at start) and DIR/config.yaml."""
        from sandbox.cluster import sandbox_config_yaml

        self.config.write_text(sandbox_config_yaml())
        return self.kubeconfig, self.config

    def stop(self) -> None:
        for _name, p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.procs.clear()

    def __enter__(self) -> Upstream:
        try:
            self.start()
            self.write_files()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
