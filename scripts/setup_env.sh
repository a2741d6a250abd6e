# Sourced by the other scripts: creates (once) and updates the virtual environment.
#   TF_MATCOMP_VENV  where it lives (default: .venv in the checkout)
#   PYTHON           the Python that creates it (default: python3)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TF_MATCOMP_VENV:-$REPO_ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating virtual environment $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
echo "== installing requirements into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REPO_ROOT/requirements-dev.txt"
VENV_PYTHON="$VENV/bin/python"
