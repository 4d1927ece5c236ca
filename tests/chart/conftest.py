"""tests/chart runs in its own virtualenv (tests/chart/run.sh): the chart tools are heavy
and pin their own versions. In the main suite these modules are missing: skip quietly."""

from __future__ import annotations

import importlib.util

collect_ignore_glob = (
    []
    if all(importlib.util.find_spec(m) for m in ("helm_python", "kubernetes_validate"))
    else ["test_*.py"]
)
