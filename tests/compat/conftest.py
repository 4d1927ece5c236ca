"""Names the official client version under test in pytest's header.

`tests/compat/run.sh` runs this directory with kubernetes==33.1.0 in its own venv; the
main suite runs it with the project's client (37.x). The header line shows which.
"""

from __future__ import annotations

import os

import kubernetes
import pytest


def pytest_report_header(config: pytest.Config) -> str:
    where = os.path.dirname(kubernetes.__file__)
    return f"kubernetes client: {kubernetes.__version__} ({where})"
