"""python -m tests.upstream {smoke,up} [--dir DIR] [--bin BINDIR]

smoke: build if needed, start etcd + kube-apiserver (+ kube-controller-manager when built),
       ask /version through the official kubernetes client (and wait for the controller-
       manager to create ServiceAccount default/default), stop. Exit 0 when it all answers.
up:    the same, then keep running until Ctrl-C (kubeconfig at DIR/kubeconfig).
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path

from tests.upstream.cluster import Upstream, build


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.upstream")
    ap.add_argument("command", choices=["smoke", "up"])
    ap.add_argument("--dir", type=Path, help="state dir (default: a new temp dir)")
    ap.add_argument("--bin", type=Path, help="bin dir (default: run tests/upstream/build.sh)")
    a = ap.parse_args(argv)

    def _interrupt(*_):
        raise KeyboardInterrupt

    # SIGTERM (CI) and SIGINT (Ctrl-C, even if inherited as ignored) both stop everything
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    bindir = a.bin or build()
    d = (a.dir or Path(tempfile.mkdtemp(prefix="ragbot-upstream-"))).resolve()
    t0 = time.monotonic()
    with Upstream(dir=d, bin=bindir) as up:
        started = time.monotonic() - t0
        from kubernetes import client, config

        api = config.new_client_from_config(str(up.kubeconfig))
        v = client.VersionApi(api).get_code()
        sa = None
        if any(n == "kube-controller-manager" for n, _ in up.procs):
            # the controller-manager's serviceaccount controller creates default/default
            core = client.CoreV1Api(api)
            for _ in range(120):
                names = [
                    x.metadata.name for x in core.list_namespaced_service_account("default").items
                ]
                if "default" in names:
                    sa = "default/default"
                    break
                time.sleep(0.5)
        print(
            json.dumps(
                {
                    "server": up.server,
                    "etcd": up.etcd_url,
                    "kubeconfig": str(up.kubeconfig),
                    "startup_seconds": round(started, 1),
                    "components": [n for n, _ in up.procs],
                    "controller_manager_created_sa": sa,
                    "version": {
                        "git_version": v.git_version,
                        "major": v.major,
                        "minor": v.minor,
                        "go_version": v.go_version,
                        "platform": v.platform,
                    },
                },
                indent=2,
            )
        )
        if sa is None and "kube-controller-manager" in [n for n, _ in up.procs]:
            print("kube-controller-manager did not create ServiceAccount default/default")
            return 1
        if a.command == "up":
            print("running; Ctrl-C to stop", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
