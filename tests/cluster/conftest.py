"""Fixtures of the cluster-side suite that runs on both clusters.

`pytest tests/cluster` runs every test here against the sandbox (a fresh seeded
SandboxCluster per test); `pytest tests/cluster --cluster=upstream` runs the same tests
against the upstream stack (tests/upstream: kube-apiserver, controllers, kwok, Velero and
S3 built from source), one per session. Only tests here take `--cluster` into account:
the rest of the suite drives the sandbox's fault injection, which upstream cannot do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main
from tests.cluster.targets import Target, sandbox_target, upstream_target


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies would capture loopback traffic to either cluster."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _upstream_target(
    cluster_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Target | None:
    if cluster_kind != "upstream":
        return None
    up = request.getfixturevalue("upstream_cluster")
    return upstream_target(up, tmp_path_factory.mktemp("ragbot-sa"))


@pytest.fixture
def target(
    cluster_kind: str, _upstream_target: Target | None, tmp_path: Path
) -> Iterator[Target]:
    """The cluster under test, with ragbot's ServiceAccount kubeconfig and config."""
    if _upstream_target is not None:
        yield _upstream_target
        return
    with sandbox_target(tmp_path) as t:
        yield t


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@pytest.fixture
def ragbot(target: Target, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """`ragbot <argv> --kubeconfig <ragbot's SA, or another> --config C`, in-process."""

    def run(*argv: str, kubeconfig: Path | None = None) -> CliResult:
        capsys.readouterr()
        code = main([*argv, "--kubeconfig", str(kubeconfig or target.kubeconfig),
                     "--config", str(target.config)])  # fmt: skip
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
