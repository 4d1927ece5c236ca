#!/usr/bin/env bash
# Run tests/compat against the official kubernetes client 33.1.0 in its own virtualenv.
#
# The main suite runs with the client pinned by the project (37.x); 33.x speaks a
# different wire dialect (Content-Type on POST/PUT/DELETE, "True" booleans), so this
# installs it in a plain venv (no --system-site-packages: the 37.x client must not leak
# in) and points PYTHONPATH at the checkout. The venv is reused while it holds 33.1.0.
#
#   tests/compat/run.sh [pytest args...]
#   RAGBOT_COMPAT_VENV=/some/dir PYTHON=python3.11 tests/compat/run.sh -x
set -euo pipefail

CLIENT_VERSION="33.1.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${RAGBOT_COMPAT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ragbot/compat-kubernetes-$CLIENT_VERSION}"
PYTHON="${PYTHON:-python3}"

has_client() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$CLIENT_VERSION" <<'PY' 2>/dev/null
import sys
import kubernetes, pytest, yaml, pydantic, jsonpatch, jsonschema  # noqa: F401
sys.exit(kubernetes.__version__ != sys.argv[1])
PY
}

if ! has_client; then
  echo "compat: creating $VENV with kubernetes==$CLIENT_VERSION" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes==$CLIENT_VERSION" pytest pyyaml "pydantic>=2.7,<3" "jsonpatch>=1.33" "jsonschema>=4.20"
fi

echo "compat: kubernetes client $("$VENV/bin/python" -c 'import kubernetes; print(kubernetes.__version__)')" \
  "from $("$VENV/bin/python" -c 'import kubernetes, os; print(os.path.dirname(kubernetes.__file__))')"

cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# addopts/timeout of pyproject.toml name plugins the venv does not have.
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -o addopts="-ra" \
  -W "ignore::pytest.PytestConfigWarning" tests/compat "$@"
