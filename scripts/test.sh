#!/usr/bin/env bash
# The whole test suite: sets up the venv and Bazel, then `bazel test //...` (every pytest file is
# a py_test) and the style check (scripts/check_format.sh). Extra arguments go to `bazel test`.
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
source "$REPO_ROOT/scripts/ensure_bazel.sh"
cd "$REPO_ROOT"
export PYTHON_BIN_PATH="$VENV_PYTHON"
trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT
status=0
bazel test //... "$@" || status=$?
"$VENV_PYTHON" scripts/summarize_tests.py bazel-testlogs || status=$((status ? status : 1))
# The code style (ruff, clang-format) is part of the suite: a style difference fails it.
bash "$REPO_ROOT/scripts/check_format.sh" || status=$((status ? status : 1))
exit "$status"
