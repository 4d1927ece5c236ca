"""pytest plugin: `--cluster=sandbox|upstream` and the session fixture `upstream_cluster`.

Register it from tests/conftest.py with `pytest_plugins = ["tests.upstream.pytest_plugin"]`
(it adds the option itself). With `--cluster=upstream` the first test that asks for
`upstream_cluster` starts the whole upstream stack (tests/upstream/cluster.py: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok, moto S3, Velero, the
Enterprise RAG seed) once per session in a temp dir; without it the fixture skips.

Build the binaries before pytest (`tests/upstream/build.sh`): a cold build takes minutes,
longer than pytest-timeout allows one test's setup. The fixture builds if needed anyway.
Under pytest-xdist every worker starts its own stack (all ports are free ports, so they
do not clash, but each costs ~1 GB RAM and CPU); prefer `-n 0` or few workers.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

CLUSTERS = ("sandbox", "upstream")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ragbot clusters")
    group.addoption(
        "--cluster",
        choices=CLUSTERS,
        default="sandbox",
        help="cluster for the cluster-side tests: the in-process sandbox (default) or the "
        "upstream stack built from Go modules (kube-apiserver, Velero, kwok, ...)",
    )
    group.addoption(
        "--upstream-velero-features",
        default=None,
        help="Velero's --features on the upstream cluster (default: the stack's, EnableCSI)",
    )
    group.addoption(
        "--upstream-keep",
        action="store_true",
        help="keep the upstream cluster's state dir (logs, kubeconfig) after the session",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"cluster: {config.getoption('--cluster')}"


@pytest.fixture(scope="session")
def cluster_kind(request: pytest.FixtureRequest) -> str:
    """"sandbox" or "upstream", from --cluster."""
    return request.config.getoption("--cluster")


@pytest.fixture(scope="session")
def upstream_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """The running upstream cluster: `.kubeconfig`, `.config` (paths), `.api_client()`.

    Also `.server`, `.s3_url`, `.dir` (logs in `.dir / "logs"`), `.timings`.
    """
    if request.config.getoption("--cluster") != "upstream":
        pytest.skip("upstream cluster not selected (run pytest with --cluster=upstream)")
    from tests.upstream.cluster import Upstream, build

    try:
        bindir = build(quiet=True)
    except Exception as exc:  # a refused module, no Go, ... : say so instead of erroring
        pytest.fail(f"building the upstream cluster failed: {exc}", pytrace=False)
    d = tmp_path_factory.mktemp("upstream")
    features = request.config.getoption("--upstream-velero-features")
    up = Upstream(dir=d, bin=bindir)
    if features is not None:
        up.velero_features = features
    with up:
        yield up
    if not request.config.getoption("--upstream-keep"):
        shutil.rmtree(d, ignore_errors=True)
