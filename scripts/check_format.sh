#!/usr/bin/env bash
# Checks the code style: ruff (format + lint, pyproject.toml) on the Python sources and
# clang-format (.clang-format) on the C++/CUDA sources. `--fix` rewrites the files instead.
# Uses the venv's ruff and clang-format (both from requirements-dev.txt).
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$REPO_ROOT"
BIN="$(dirname "$VENV_PYTHON")"
mapfile -t CXX < <(git ls-files --cached --others --exclude-standard \
  'cc/*.h' 'cc/*.cc' 'tests/*.cc' | grep -v '^third_party/')
if [ "${1:-}" = "--fix" ]; then
  "$BIN/ruff" format .
  "$BIN/ruff" check --fix .
  "$BIN/clang-format" -i "${CXX[@]}"
  exit 0
fi
status=0
"$BIN/ruff" format --check . || status=1
"$BIN/ruff" check . || status=1
"$BIN/clang-format" --dry-run -Werror "${CXX[@]}" || status=1
if [ "$status" -ne 0 ]; then
  echo "check_format: style differs; run: bash scripts/check_format.sh --fix" >&2
fi
exit "$status"
