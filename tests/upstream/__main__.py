"""python -m tests.upstream {smoke,up,measure} [--dir DIR] [--bin BINDIR] [--only ...]

smoke:   build if needed, start the whole upstream cluster (etcd, kube-apiserver,
         kube-controller-manager, kube-scheduler, kwok, moto S3, Velero) with the Enterprise
         RAG seed, print a JSON summary (versions, start-up timings, pods Ready), stop.
up:      the same, write DIR/kubeconfig and DIR/config.yaml, print one line naming both,
         run until Ctrl-C / SIGTERM, then stop everything.
measure: smoke, then a real Velero backup of the seed (the playbook's spec, via
         k8s.backups.build_backup) and a restore into the cleaned namespaces; prints timings.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path

from tests.upstream.cluster import COMPONENTS, Upstream, build


def summary(up: Upstream) -> dict:
    from kubernetes import client

    api = up.api_client()
    v = client.VersionApi(api).get_code()
    pods = client.CoreV1Api(api).list_pod_for_all_namespaces().items
    ready = sum(
        1
        for p in pods
        if p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    )
    return {
        "server": up.server,
        "kubeconfig": str(up.kubeconfig),
        "config": str(up.config),
        "s3": up.s3_url,
        "components": [n for n, _ in up.procs],
        "timings_seconds": up.timings,
        "pods": {"total": len(pods), "running_ready": ready},
        "version": {"git_version": v.git_version, "go_version": v.go_version},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.upstream")
    ap.add_argument("command", choices=["smoke", "up", "measure"])
    ap.add_argument("--dir", type=Path, help="state dir (default: a new temp dir)")
    ap.add_argument("--bin", type=Path, help="bin dir (default: run tests/upstream/build.sh)")
    ap.add_argument(
        "--only",
        default=",".join(COMPONENTS),
        help=f"components to start (default all: {','.join(COMPONENTS)})",
    )
    ap.add_argument("--no-seed", action="store_true", help="do not load the Enterprise RAG seed")
    ap.add_argument(
        "--velero-features",
        default="EnableCSI",
        help="Velero --features (default EnableCSI, as Enterprise RAG installs it; '' for none: "
        "PVC backups then skip snapshots instead of waiting for a CSI snapshot controller)",
    )
    a = ap.parse_args(argv)

    def _interrupt(*_):
        raise KeyboardInterrupt

    # SIGTERM (CI) and SIGINT (Ctrl-C, even if inherited as ignored) both stop everything
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    bindir = a.bin or build()
    d = (a.dir or Path(tempfile.mkdtemp(prefix="ragbot-upstream-"))).resolve()
    d.mkdir(parents=True, exist_ok=True)
    only = tuple(c for c in COMPONENTS if c in a.only.split(","))
    with Upstream(
        dir=d, bin=bindir, components=only, seed=not a.no_seed, velero_features=a.velero_features
    ) as up:
        if a.command == "up":
            print(f"upstream cluster up: kubeconfig {up.kubeconfig} config {up.config}", flush=True)
            try:
                while True:
                    time.sleep(1)
                    up.check_alive()
            except KeyboardInterrupt:
                pass
            return 0
        if a.command == "measure":
            from tests.upstream.measure import backup_restore

            out = summary(up)
            out["measure"] = backup_restore(up)
            print(json.dumps(out, indent=2))
            return 0
        print(json.dumps(summary(up), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
