"""The GPU build of the op library (TF_MATCOMP_CUDA=1 / Bazel's //cc:_matcomp_ops_gpu.so) loads in
the TensorFlow of the suite, tensorflow-cpu included, and registers every GPU kernel.

Runs where the loaded library holds CUDA kernels (//tests:test_gpu_build points the loader at the
GPU build when nvcc exists; tests/run_gpu_build.py); skips otherwise. Running the kernels on a GPU
is tests/test_gpu_kernels.py's job.
"""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import kernels

import tf_matcomp
from tf_matcomp.ops import _dispatch, _loader

pytestmark = pytest.mark.skipif(
    not (_loader.native_available() and _loader.native_gpu_kernels()),
    reason="the loaded op library has no GPU kernels (no nvcc: the GPU build was not compiled)",
)

# Every op and the dtypes its GPU kernels are registered for (as the CPU kernels).
GPU_KERNELS = {
    "Matcomp>LowRankBlend": {"T": {tf.float16, tf.bfloat16, tf.float32, tf.float64}},
    "Matcomp>SimhashCompress": {"T": {tf.float32, tf.float64}},
    "Matcomp>SimhashDecompress": {"T": {tf.float32, tf.float64}},
    "Matcomp>SimhashProjection": {"T": {tf.float32, tf.float64}},
    "Matcomp>KMeansQuantize": {"T": {tf.float32, tf.float64}, "code_dtype": {tf.uint8, tf.int32}},
}


# Ops with CPU kernels only: "auto" runs their composite on a GPU (`_dispatch`'s gpu_kernel).
CPU_ONLY_OPS = ("Matcomp>HouseholderQ",)


def test_gpu_build_loads_and_says_so():
    library = _loader.native_library()
    assert library.reason == "loaded"
    assert _loader.built_with_cuda(library.path)


def _registered(op, device_type):
    found = []
    for kernel in kernels.get_registered_kernels_for_op(op).kernel:
        if kernel.device_type == device_type:
            found.append(
                (
                    {c.name: tf.as_dtype(c.allowed_values.list.type[0]) for c in kernel.constraint},
                    set(kernel.host_memory_arg),
                )
            )
    return found


@pytest.mark.parametrize("op", sorted(GPU_KERNELS))
def test_gpu_build_registers_gpu_kernels_like_cpu_ones(op):
    gpu, cpu = _registered(op, "GPU"), _registered(op, "CPU")
    assert sorted(str(c) for c, _ in gpu) == sorted(str(c) for c, _ in cpu)
    for attr, dtypes in GPU_KERNELS[op].items():
        assert {constraints[attr] for constraints, _ in gpu} == dtypes
    host_memory = {arg for _, args in gpu for arg in args}
    assert host_memory == ({"alpha"} if op == "Matcomp>LowRankBlend" else set())


@pytest.mark.parametrize("op", CPU_ONLY_OPS)
def test_gpu_build_registers_only_cpu_kernels_for_cpu_only_ops(op):
    assert _registered(op, "GPU") == [] and _registered(op, "CPU")


def test_gpu_build_runs_its_cpu_kernels_without_a_gpu():
    a = np.random.default_rng(0).standard_normal((16, 24)).astype(np.float32)
    with tf.device("/CPU:0"):
        w = tf_matcomp.ops.low_rank_blend(a, a[:, :4], a[:4], 0.25, implementation="native")
        signs, scales = tf_matcomp.ops.simhash_compress(a, 8, implementation="native")
        codebook, codes = tf_matcomp.ops.kmeans_quantize(a, 4, implementation="native")
    np.testing.assert_allclose(w.numpy(), 0.25 * a + 0.75 * a[:, :4] @ a[:4], rtol=1e-5, atol=1e-5)
    assert signs.shape == (8, 3) and scales.shape == (24,)
    assert codebook.shape == (4, 1) and codes.dtype == tf.uint8


def test_gpu_build_auto_stays_native_on_the_cpu():
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible: test_gpu_kernels.py covers the GPU placement")
    assert _dispatch._placement() == "CPU"
    calls = []
    _dispatch.dispatch(
        "probe", "auto", lambda lib: calls.append("native"), lambda: calls.append("composite")
    )
    assert calls == ["native"]
