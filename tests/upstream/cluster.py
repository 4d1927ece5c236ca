"""Start upstream etcd + kube-apiserver (+ kube-controller-manager when built) on loopback.

This is the first step of issue 9: it proves the pinned upstream build runs and answers the
official Python client. Later steps (controller-manager, scheduler, kwok, Velero, seed) hang
off the same :class:`Upstream`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "build.sh"


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


def write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: upstream\n  cluster:\n    server: {server}\n"
        f"    certificate-authority: {pki / 'ca.crt'}\n"
        f"users:\n- name: admin\n  user:\n    client-certificate: {pki / 'admin.crt'}\n"
        f"    client-key: {pki / 'admin.key'}\n"
        "contexts:\n- name: upstream\n  context: {cluster: upstream, user: admin}\n"
        "current-context: upstream\n"
    )


# --- processes ---------------------------------------------------------------------------


@dataclass
class Upstream:
    dir: Path
    bin: Path
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    etcd_url: str = ""
    server: str = ""

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - lives with proc
        p = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, p))
        return p

    def _check_alive(self, name: str, p: subprocess.Popen) -> None:
        if p.poll() is not None:
            tail = (self.dir / "logs" / f"{name}.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{name} exited with {p.returncode}:\n{tail}")

    def start(self, timeout: float = 90.0) -> None:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        pki = self.dir / "pki"
        make_pki(pki)

        # etcd: a fresh data dir every time (an old one brings back old state)
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
        write_kubeconfig(self.kubeconfig, self.server, pki)
        self._wait_https("kube-apiserver", api, port, "/readyz", pki, timeout)

        if (self.bin / "kube-controller-manager").exists():
            kport = free_port()
            kcm = self._spawn(
                "kube-controller-manager",
                [
                    str(self.bin / "kube-controller-manager"),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={kport}",
                    f"--cert-dir={self.dir / 'kcm-certs'}",
                    "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                ],
            )
            # serves with a self-signed cert of its own, hence no CA check for /healthz
            self._wait_https("kube-controller-manager", kcm, kport, "/healthz", None, timeout)

    def _wait_http(self, name, p, url, timeout):
        import urllib.request

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
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
