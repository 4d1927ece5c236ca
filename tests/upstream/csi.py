"""The CSI pieces of the upstream cluster: a driver, its sidecars and the snapshot controller.

Four loopback processes, all under DIR (README: "Volumes"):

- ``csi-mock-driver`` (Kubernetes' e2e CSI mock driver, k8s.io/kubernetes v1.36.3; the
  module proxy refuses every csi-driver-host-path version) on ``unix://DIR/csi/csi.sock``,
  named after the seed's StorageClass provisioner / VolumeSnapshotClass driver
  (``nfs.csi.k8s.io``). Volumes and snapshots live in its memory: no mounts, no root.
- ``csi-provisioner`` (external-provisioner): PVC -> CreateVolume (also from a VolumeSnapshot).
- ``csi-snapshotter`` (external-snapshotter sidecar): VolumeSnapshotContent -> CreateSnapshot.
- ``snapshot-controller`` (external-snapshotter): VolumeSnapshot -> VolumeSnapshotContent.

The snapshot.storage.k8s.io v1 CRDs come from the seed (`sandbox.seed.snapshot_crd_documents`;
created here when the seed is not loaded). The group-snapshot CRDs are not installed, so both
external-snapshotter binaries run with the group-snapshot feature gate off (otherwise each
first waits for those CRDs, then disables it). A fallback socket dir under /tmp (deep DIR)
is left behind empty.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.seed_workloads import CSI_DRIVER

if TYPE_CHECKING:
    from .cluster import Upstream

#: Process names, in start order (logs in DIR/logs/<name>.log).
PROCESSES = ("csi-mock-driver", "csi-provisioner", "csi-snapshotter", "snapshot-controller")
#: the gate is named CSIVolumeGroupSnapshot (GA, on by default) in external-snapshotter v8.7.0
NO_GROUP_SNAPSHOTS = "--feature-gates=CSIVolumeGroupSnapshot=false"
#: sockaddr_un.sun_path is 108 bytes on Linux.
_MAX_SOCKET_PATH = 100


def socket_path(state: Path) -> Path:
    """DIR/csi/csi.sock, or a short temp dir when DIR is too deep for a unix socket path."""
    sock = state / "csi" / "csi.sock"
    if len(str(sock)) > _MAX_SOCKET_PATH:
        sock = Path(tempfile.mkdtemp(prefix="ragbot-csi-")) / "csi.sock"
    sock.parent.mkdir(parents=True, exist_ok=True)
    return sock


def driver_argv(bin_dir: Path, sock: Path, driver: str = CSI_DRIVER) -> list[str]:
    return [
        str(bin_dir / "csi-mock-driver"),
        f"--drivername={driver}",
        f"--endpoint=unix://{sock}",
        "--v=3",  # one JSON line per gRPC call (CreateVolume, CreateSnapshot, ...)
    ]


def provisioner_argv(bin_dir: Path, sock: Path, kubeconfig: Path, http: str) -> list[str]:
    return [
        str(bin_dir / "csi-provisioner"),
        f"--csi-address={sock}",
        f"--kubeconfig={kubeconfig}",
        "--leader-election=false",
        "--extra-create-metadata",  # csi.storage.k8s.io/pvc/{name,namespace} as the NFS driver gets
        f"--http-endpoint={http}",
        "--timeout=30s",
        "--v=2",
    ]


def snapshotter_argv(bin_dir: Path, sock: Path, kubeconfig: Path, http: str) -> list[str]:
    return [
        str(bin_dir / "csi-snapshotter"),
        f"--csi-address={sock}",
        f"--kubeconfig={kubeconfig}",
        "--leader-election=false",
        "--extra-create-metadata",
        f"--http-endpoint={http}",
        NO_GROUP_SNAPSHOTS,
        "--v=2",
    ]


def snapshot_controller_argv(bin_dir: Path, kubeconfig: Path, http: str) -> list[str]:
    return [
        str(bin_dir / "snapshot-controller"),
        f"--kubeconfig={kubeconfig}",
        "--leader-election=false",
        f"--http-endpoint={http}",
        NO_GROUP_SNAPSHOTS,
        "--v=2",
    ]


def start(up: Upstream, timeout: float) -> None:
    """Start the four processes on `up` (after the seed's CRDs and StorageClass exist)."""
    from .cluster import free_port

    if not up.seed:  # snapshot-controller exits when the snapshot CRDs never appear
        from sandbox.seed import snapshot_crd_documents

        from .apiload import create_objects

        create_objects(up.api_client(), snapshot_crd_documents(), exist_ok=True)
    kubeconfig = up.dir / "admin.kubeconfig"
    sock = socket_path(up.dir)
    up._spawn("csi-mock-driver", driver_argv(up.bin, sock))
    up._wait_for(f"CSI driver socket {sock}", sock.is_socket, timeout)  # checks liveness too
    http = {name: f"127.0.0.1:{free_port()}" for name in PROCESSES[1:]}
    for name, argv in (
        ("csi-provisioner", provisioner_argv(up.bin, sock, kubeconfig, http["csi-provisioner"])),
        ("csi-snapshotter", snapshotter_argv(up.bin, sock, kubeconfig, http["csi-snapshotter"])),
        (
            "snapshot-controller",
            snapshot_controller_argv(up.bin, kubeconfig, http["snapshot-controller"]),
        ),
    ):
        p = up._spawn(name, argv)
        # /metrics answers once the sidecar has connected to the driver
        up._wait_http(name, p, f"http://{http[name]}/metrics", timeout)
