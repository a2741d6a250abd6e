#!/usr/bin/env bash
# The main job: sets up the venv, builds the native library in place (incremental), runs the demo.
# Arguments go to `python -m tf_matcomp.demo` (try --help).
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$REPO_ROOT"
echo "== building the native libraries for this CPU (incremental)"
TF_MATCOMP_MARCH="${TF_MATCOMP_MARCH-native}" "$VENV_PYTHON" setup.py -q build_ext --inplace
exec "$VENV_PYTHON" -m tf_matcomp.demo "$@"
