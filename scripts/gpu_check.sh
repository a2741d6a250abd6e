#!/usr/bin/env bash
# One-command GPU check, for a fresh Linux machine with an NVIDIA GPU and only package registries
# reachable: makes its own venv with the CUDA build of TensorFlow 2.21, builds the op library with
# its GPU kernels (nvcc from NVIDIA's CUDA 12 pip wheels, matching TF's CUDA 12 runtime), runs the
# GPU tests and the GPU benchmark, and prints one table. Exits non-zero on any failure.
#   TF_MATCOMP_GPU_VENV  the venv (default: build/gpu_check/venv, ignored by git and Bazel;
#                        reused when present)
#   PYTHON               the Python that creates it (default: python3)
#   TF_MATCOMP_NVCC      use this nvcc instead of the pip one (its CUDA major must be TF's, 12)
#   GPU_CHECK_QUICK=1    small benchmark sizes
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO_ROOT/build/gpu_check"
VENV="${TF_MATCOMP_GPU_VENV:-$BUILD/venv}"
START=$SECONDS
cd "$REPO_ROOT"

step() { echo "== [$((SECONDS - START)) s] $*"; }

step "GPU"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L; then
  echo "gpu_check: no NVIDIA GPU (nvidia-smi missing or failing)" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

step "venv $VENV with tensorflow[and-cuda]==2.21.*"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip
# requirements-dev.txt without its tensorflow-cpu line: the CUDA build replaces it here.
grep -v '^tensorflow-cpu' requirements-dev.txt > "$VENV/requirements-gpu.txt"
"$PY" -m pip install -q --disable-pip-version-check "tensorflow[and-cuda]==2.21.*" \
  -r "$VENV/requirements-gpu.txt"
# nvcc and the CCCL headers (cuda_fp16.h needs <nv/target>) of the very CUDA 12 release whose
# runtime TF's extra installed, so that headers, compiler and runtime agree.
CUDA_RELEASE="$("$PY" -m pip show nvidia-cuda-runtime-cu12 | sed -n 's/^Version: \([0-9]*\.[0-9]*\).*/\1/p')"
if [ -z "$CUDA_RELEASE" ]; then
  echo "gpu_check: tensorflow[and-cuda] installed no nvidia-cuda-runtime-cu12" >&2
  exit 1
fi
PIP=("$PY" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" "nvidia-cuda-nvcc-cu12==$CUDA_RELEASE.*"
# CCCL is headers only; take the nearest release when this one has no wheel.
"${PIP[@]}" "nvidia-cuda-cccl-cu12==$CUDA_RELEASE.*" || "${PIP[@]}" nvidia-cuda-cccl-cu12

# The pip CUDA layout: nvidia/cuda_nvcc (nvcc), nvidia/cuda_runtime (headers, libcudart.so.12),
# nvidia/cuda_cccl (headers). Printed as shell assignments, one per line.
CUDA_PATHS="$("$PY" - <<'PYEOF'
import os
import nvidia
roots = list(nvidia.__path__)
def find(*parts):
    for root in roots:
        path = os.path.join(root, *parts)
        if os.path.exists(path):
            return path
    return ""
includes = [find(name, "include") for name in ("cuda_runtime", "cuda_nvcc", "cuda_cccl")]
print("PIP_NVCC=" + find("cuda_nvcc", "bin", "nvcc"))
print("PIP_CUDA_INCLUDE=" + os.pathsep.join(p for p in includes if p))
print("PIP_CUDA_LIB=" + find("cuda_runtime", "lib"))
PYEOF
)"
PIP_NVCC="$(sed -n 's/^PIP_NVCC=//p' <<<"$CUDA_PATHS")"
PIP_CUDA_INCLUDE="$(sed -n 's/^PIP_CUDA_INCLUDE=//p' <<<"$CUDA_PATHS")"
PIP_CUDA_LIB="$(sed -n 's/^PIP_CUDA_LIB=//p' <<<"$CUDA_PATHS")"
if [ -z "${TF_MATCOMP_NVCC:-}" ]; then  # the pip toolkit: headers and cudart from its wheels
  export TF_MATCOMP_NVCC="$PIP_NVCC"
  export TF_MATCOMP_CUDA_INCLUDE="$PIP_CUDA_INCLUDE"
  export TF_MATCOMP_CUDA_LIB="$PIP_CUDA_LIB"
fi
if [ -z "$TF_MATCOMP_NVCC" ] || [ ! -x "$TF_MATCOMP_NVCC" ]; then
  echo "gpu_check: no nvcc (pip nvidia-cuda-nvcc-cu12 has none here); set TF_MATCOMP_NVCC" >&2
  exit 1
fi
# ptxas and friends sit beside the pip nvcc.
PATH="$(dirname "$TF_MATCOMP_NVCC"):$PATH"
export PATH
"$TF_MATCOMP_NVCC" --version | tail -n 2

step "building the op library with GPU kernels (TF_MATCOMP_CUDA=1)"
TF_MATCOMP_CUDA=1 "$PY" setup.py -q build_ext --build-lib "$BUILD/lib" --build-temp "$BUILD/temp"
LIBRARY="$(ls "$BUILD"/lib/tf_matcomp/_matcomp_ops*.so)"
export TF_MATCOMP_OPS_LIBRARY="$LIBRARY"
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=2

step "loading it"
"$PY" - <<'PYEOF'
import sys
import tensorflow as tf
from tf_matcomp.ops import _loader
library = _loader.native_library()
gpus = tf.config.list_logical_devices("GPU")
print(f"TensorFlow {tf.__version__}, CUDA build: {tf.test.is_built_with_cuda()}, GPUs: "
      f"{[g.name for g in gpus]}, library: {library.reason}, GPU kernels: {library.gpu_kernels}")
sys.exit(0 if gpus and library.module is not None and library.gpu_kernels else 1)
PYEOF

step "GPU tests"
"$PY" -m pytest -p no:cacheprovider -q -rs tests/test_gpu_kernels.py tests/test_gpu_build.py \
  tests/test_gpu_dispatch.py

# The ops' own tests, whose native cases now run the GPU kernels ("auto" and "native" place them
# on the GPU). Their tolerances are float32's, so TensorFloat-32 is off for them (cuBLAS-wide).
step "op tests on the GPU (TF32 off)"
NVIDIA_TF32_OVERRIDE=0 "$PY" -m pytest -p no:cacheprovider -q -rs tests/test_low_rank_blend.py \
  tests/test_simhash.py tests/test_kmeans.py

step "GPU benchmark"
BENCH_ARGS=()
if [ "${GPU_CHECK_QUICK:-0}" = "1" ]; then BENCH_ARGS+=(--quick); fi
"$PY" bench/bench_gpu.py "${BENCH_ARGS[@]}"

step "all passed"
