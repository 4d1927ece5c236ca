"""The layer rules of DESIGN.md, enforced: bot -> handlers -> k8s -> config, and no
product layer below `bot` reaches into the sandbox or Slack (contracts in .importlinter).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [exe, "--config", str(REPO / ".importlinter"), "--no-cache"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
