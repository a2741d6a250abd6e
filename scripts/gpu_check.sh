#!/usr/bin/env bash
# One-command GPU check, for a fresh Linux machine with an NVIDIA GPU and only package registries
# reachable: makes its own venv with the CUDA build of TensorFlow 2.21, builds the op library with
# its GPU kernels (the machine's nvcc, or NVIDIA's CUDA 13 pip toolkit), runs the
# GPU tests and the GPU benchmark, and prints one table. Exits non-zero on any failure.
#   TF_MATCOMP_GPU_VENV  the venv (default: build/gpu_check/venv, ignored by git and Bazel;
#                        reused when present)
#   PYTHON               the Python that creates it (default: python3)
#   TF_MATCOMP_NVCC      use this nvcc (default: nvcc on PATH or in $CUDA_HOME/bin, else NVIDIA's
#                        CUDA 13 pip wheels; the driver must support its CUDA major)
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

step "nvcc"
# TF_MATCOMP_NVCC, else a CUDA toolkit's nvcc (PATH, $CUDA_HOME/bin), else NVIDIA's CUDA
# $PIP_CUDA_RELEASE pip wheels: nvidia-cuda-nvcc, -crt, -runtime, -cccl and nvidia-nvvm together are
# a toolkit under nvidia/cu13 (nvcc, headers, libcudart_static.a). The CUDA 12 wheels that TF's extra installs
# carry ptxas but no nvcc, in every 12.x release. The kernels link their toolkit's cudart
# statically, beside TF's own CUDA 12 runtime, so the driver must support that toolkit's CUDA
# major: checked below.
PIP_CUDA_RELEASE=13.0
if [ -z "${TF_MATCOMP_NVCC:-}" ]; then
  TF_MATCOMP_NVCC="$(command -v nvcc || true)"
fi
if [ -z "$TF_MATCOMP_NVCC" ] && [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  TF_MATCOMP_NVCC="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
fi
if [ -z "$TF_MATCOMP_NVCC" ]; then
  # Every part pinned: nvidia-cuda-nvcc asks for nvvm and crt unpinned, and a newer nvvm writes
  # PTX that this ptxas refuses.
  "$PY" -m pip install -q --disable-pip-version-check \
    "nvidia-cuda-nvcc==$PIP_CUDA_RELEASE.*" "nvidia-nvvm==$PIP_CUDA_RELEASE.*" \
    "nvidia-cuda-crt==$PIP_CUDA_RELEASE.*" "nvidia-cuda-runtime==$PIP_CUDA_RELEASE.*" \
    "nvidia-cuda-cccl==$PIP_CUDA_RELEASE.*"
  TF_MATCOMP_NVCC="$("$PY" -c 'import glob, nvidia, os
found = [p for root in nvidia.__path__ for p in glob.glob(os.path.join(root, "cu*", "bin", "nvcc"))]
print(found[0] if found else "")')"
fi
if [ -z "$TF_MATCOMP_NVCC" ] || [ ! -x "$TF_MATCOMP_NVCC" ]; then
  echo "gpu_check: no nvcc found or installed; set TF_MATCOMP_NVCC" >&2
  exit 1
fi
export TF_MATCOMP_NVCC
# ptxas and friends sit beside nvcc.
PATH="$(dirname "$TF_MATCOMP_NVCC"):$PATH"
export PATH
"$TF_MATCOMP_NVCC" --version | tail -n 2
NVCC_MAJOR="$("$TF_MATCOMP_NVCC" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')"
DRIVER_MAJOR="$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9]*\)\..*/\1/p' | head -n 1)"
if [ -n "$DRIVER_MAJOR" ] && [ -n "$NVCC_MAJOR" ] && [ "$DRIVER_MAJOR" -lt "$NVCC_MAJOR" ]; then
  echo "gpu_check: the driver supports CUDA $DRIVER_MAJOR, nvcc is CUDA $NVCC_MAJOR; set" \
    "TF_MATCOMP_NVCC to an nvcc of CUDA <= $DRIVER_MAJOR" >&2
  exit 1
fi

step "building the op library with GPU kernels (TF_MATCOMP_CUDA=1)"
TF_MATCOMP_CUDA=1 "$PY" setup.py -q build_ext --build-lib "$BUILD/lib" --build-temp "$BUILD/temp"
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=2
# The build holds one library per ISA level (tf_matcomp/_isa.py): the one the loader would take.
TF_MATCOMP_OPS_LIBRARY="$("$PY" -c 'import sys
from tf_matcomp.ops import _loader
print(_loader.library_in(sys.argv[1]) or "")' "$BUILD/lib/tf_matcomp")"
export TF_MATCOMP_OPS_LIBRARY

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
