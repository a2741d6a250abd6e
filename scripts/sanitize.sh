#!/usr/bin/env bash
# The sanitizer run: builds the op library and `_core` with AddressSanitizer and the
# UndefinedBehaviorSanitizer checks GCC 12 takes with TensorFlow's headers (float-cast-overflow,
# bounds, shift, signed-integer-overflow, integer-divide-by-zero; every report fatal) in a
# scratch copy of the checkout, then runs the op, `_core` and fuzz tests against that build.
#   bash scripts/sanitize.sh [pytest args]     (default: the tests in SANITIZED_TESTS)
# Python itself is not instrumented, so libasan is preloaded; leak checking is off (TensorFlow
# keeps its allocations to exit).
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
SANITIZED_TESTS=(
  tests/test_low_rank_blend.py tests/test_kmeans.py tests/test_simhash.py tests/test_householder_q.py
  tests/test_core_module.py tests/test_core_hardening.py tests/test_ops_hardening.py
  tests/test_xla_validation.py tests/test_fuzz.py
)
SANITIZE_FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address \
-fsanitize=float-cast-overflow,bounds,shift,signed-integer-overflow,integer-divide-by-zero \
-fno-sanitize-recover=all"
STAGE="${TF_MATCOMP_SANITIZE_DIR:-$(mktemp -d)/tf_matcomp_sanitized}"
mkdir -p "$STAGE"
cd "$REPO_ROOT" || exit 1
git ls-files -z --cached --others --exclude-standard | xargs -0 cp -p --parents -t "$STAGE"  # -p: a reused stage rebuilds only what changed
cd "$STAGE" || exit 1
echo "== sanitizer build in $STAGE"
TF_MATCOMP_MARCH=native TF_MATCOMP_EXTRA_FLAGS="$SANITIZE_FLAGS" "$VENV_PYTHON" setup.py -q build_ext --inplace
# libstdc++ too: Python itself does not link it, and ASan's __cxa_throw interceptor must find
# the real one when it starts ("CHECK failed: ... real___cxa_throw").
ASAN_LIB="$(${CXX:-g++} -print-file-name=libasan.so):$(${CXX:-g++} -print-file-name=libstdc++.so)"
echo "== tests against the sanitized build (preloaded: $ASAN_LIB)"
if [ "$#" -eq 0 ]; then set -- "${SANITIZED_TESTS[@]}"; fi
LD_PRELOAD="$ASAN_LIB" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  PYTHONPATH="$STAGE" TF_CPP_MIN_LOG_LEVEL=2 \
  "$VENV_PYTHON" -m pytest -q -p no:cacheprovider "$@"
