"""GPU kernels against the CPU kernels and the composites, for every op, dtype and gradient.

Needs a visible GPU and an op library built with its CUDA kernels (TF_MATCOMP_CUDA=1; see
scripts/gpu_check.sh); skips cleanly otherwise. float32 GEMMs are compared with TensorFloat-32
off (a fixture), since TF32 rounds their inputs to 10 mantissa bits by design; one test checks
that the setting is honoured.
"""

import numpy as np
import pytest
import tensorflow as tf

import tf_matcomp
from tf_matcomp.ops import _dispatch, _loader

ops = tf_matcomp.ops

pytestmark = pytest.mark.skipif(
    not tf.config.list_logical_devices("GPU")
    or not _loader.native_available()
    or not _loader.native_gpu_kernels(),
    reason="needs a GPU and the op library built with TF_MATCOMP_CUDA=1",
)

GPU, CPU = "/GPU:0", "/CPU:0"
BLEND_TOLERANCE = {tf.float16: 2e-2, tf.bfloat16: 1e-1, tf.float32: 1e-5, tf.float64: 1e-12}


@pytest.fixture(autouse=True)
def exact_float32():
    """float32 GEMMs in full precision (TF's default allows TensorFloat-32)."""
    enabled = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(enabled)


def on(device, fn, *args, **kwargs):
    with tf.device(device):
        outputs = fn(*args, **kwargs)
    return tf.nest.map_structure(lambda t: t.numpy(), outputs)


def ran_on_gpu(fn, op_type):
    """Whether `fn`, traced under the GPU scope with implementation="auto", holds op_type on
    the GPU (the dispatcher chose the native kernel)."""
    with tf.device(GPU):
        graph = tf.function(fn).get_concrete_function().graph
    nodes = [op for op in graph.get_operations() if op.type == op_type]
    return bool(nodes) and all("GPU" in op.device.upper() or op.device == "" for op in nodes)


def assert_close(actual, expected, tolerance):
    """Relative to the largest |expected| (16-bit results round at their own magnitude)."""
    expected = np.asarray(expected, np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), expected, rtol=tolerance, atol=tolerance * scale
    )


# ---------------------------------------------------------------- LowRankBlend


def blend_inputs(dtype, m=96, n=80, k=24, seed=0):
    rng = np.random.default_rng(seed)
    a, b, c = (tf.constant(rng.standard_normal(shape), dtype) for shape in ((m, n), (m, k), (k, n)))
    return a, b, c


@pytest.mark.parametrize("dtype", list(BLEND_TOLERANCE))
@pytest.mark.parametrize("k", [0, 1, 24, 256])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_low_rank_blend_gpu_matches_cpu_and_composite(dtype, k, alpha):
    a, b, c = blend_inputs(dtype, k=k)
    gpu = on(GPU, ops.low_rank_blend, a, b, c, alpha, implementation="native")
    cpu = on(CPU, ops.low_rank_blend, a, b, c, alpha, implementation="native")
    composite = on(GPU, ops.low_rank_blend, a, b, c, alpha, implementation="composite")
    assert_close(gpu, cpu, BLEND_TOLERANCE[dtype])
    assert_close(gpu, composite, BLEND_TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", list(BLEND_TOLERANCE))
def test_low_rank_blend_gradients_on_gpu(dtype):
    a, b, c = blend_inputs(dtype, m=40, n=32, k=8, seed=1)
    alpha = tf.constant(0.4, dtype)
    upstream = tf.constant(np.random.default_rng(2).standard_normal((40, 32)), dtype)

    def gradients(implementation):
        with tf.device(GPU), tf.GradientTape() as tape:
            tape.watch([a, b, c, alpha])
            w = ops.low_rank_blend(a, b, c, alpha, implementation=implementation)
            loss = tf.reduce_sum(w * upstream)
        return [g.numpy() for g in tape.gradient(loss, [a, b, c, alpha])]

    for native, composite in zip(gradients("native"), gradients("composite")):
        assert_close(native, composite, 4 * BLEND_TOLERANCE[dtype])


def test_low_rank_blend_forwarded_input_buffer_and_mixed_placement():
    with tf.device(CPU):  # inputs on the host, op on the GPU: TF copies them
        a, b, c = blend_inputs(tf.float32, seed=3)
    expected = on(CPU, ops.low_rank_blend, a, b, c, 0.7, implementation="native")

    @tf.function
    def temporary_a(a, b, c):  # a + 0 is a temporary whose buffer the kernel may take over
        return ops.low_rank_blend(a + 0, b, c, 0.7, implementation="native"), a

    w, a_after = on(GPU, temporary_a, a, b, c)
    assert_close(w, expected, 1e-5)
    np.testing.assert_array_equal(a_after, a.numpy())


def test_low_rank_blend_honours_tensor_float_32():
    a, b, c = blend_inputs(tf.float32, m=256, n=256, k=1024, seed=4)
    exact = on(GPU, ops.low_rank_blend, a, b, c, 0.5, implementation="native")
    tf.config.experimental.enable_tensor_float_32_execution(True)
    reference = on(GPU, lambda: tf.matmul(b, c))
    fast = on(GPU, ops.low_rank_blend, a, b, c, 0.5, implementation="native")
    # Same rounding as TF's own matmul under the same setting (cuBLAS TF32 either way).
    assert_close(fast, 0.5 * a.numpy() + 0.5 * reference, 1e-4)
    assert_close(fast, exact, 5e-2)


def test_low_rank_blend_auto_runs_native_on_gpu():
    a, b, c = blend_inputs(tf.float32)
    assert ran_on_gpu(lambda: ops.low_rank_blend(a, b, c, 0.5), "Matcomp>LowRankBlend")


def test_low_rank_blend_gpu_validation_is_the_cpu_one():
    a, b, c = blend_inputs(tf.float32)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)] * 3)
    def unknown_shapes(a, b, c):
        return ops.low_rank_blend(a, b, c, 0.5, implementation="native")

    for device in (GPU, CPU):
        with (
            tf.device(device),
            pytest.raises(tf.errors.InvalidArgumentError, match="`c` must have shape"),
        ):
            unknown_shapes(a, b, tf.transpose(c))


# ---------------------------------------------------------------- Simhash

SIMHASH_SHAPES = [(64, 48, 16), (300, 200, 1025), (33, 17, 9), (1, 8, 3)]


@pytest.mark.parametrize("projection", ops.simhash.PROJECTIONS)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("rows,bits", [(1, 1), (100, 33), (1000, 257)])
def test_simhash_projection_gpu_is_bit_identical(dtype, rows, bits, projection):
    kwargs = dict(seed=9, dtype=dtype, implementation="native", projection=projection)
    gpu = on(GPU, ops.simhash_projection, rows, bits, **kwargs)
    cpu = on(CPU, ops.simhash_projection, rows, bits, **kwargs)
    np.testing.assert_array_equal(gpu, cpu)


@pytest.mark.parametrize("projection", ops.simhash.PROJECTIONS)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("rows,cols,bits", SIMHASH_SHAPES)
@pytest.mark.parametrize("scale", ["least_squares", "norm"])
def test_simhash_compress_gpu_matches_cpu_and_composite(dtype, rows, cols, bits, scale, projection):
    a = tf.constant(np.random.default_rng(rows).standard_normal((rows, cols)), dtype)
    results = {
        name: on(
            device,
            ops.simhash_compress,
            a,
            bits,
            seed=5,
            scale=scale,
            implementation=implementation,
            projection=projection,
        )
        for name, device, implementation in (
            ("gpu", GPU, "native"),
            ("cpu", CPU, "native"),
            ("composite", GPU, "composite"),
        )
    }
    tolerance = 1e-4 if dtype == tf.float32 else 1e-10
    # Signs may differ only where Rᵀa is within the GEMMs' rounding of zero.
    r = on(CPU, ops.simhash_projection, rows, bits, seed=5, dtype=tf.float64, projection=projection)
    a64 = a.numpy().astype(np.float64)
    near_zero = np.abs(r.T @ a64) <= tolerance * (np.abs(r.T) @ np.abs(a64))
    signs, scales = results["gpu"]
    bits_gpu = np.unpackbits(signs, axis=1, bitorder="little")
    assert not bits_gpu[:, cols:].any()  # padding bits are 0
    for other in ("cpu", "composite"):
        other_signs, other_scales = results[other]
        bits_other = np.unpackbits(other_signs, axis=1, bitorder="little")[:, :cols]
        differ = bits_gpu[:, :cols] != bits_other
        assert not (differ & ~near_zero).any()
        if not differ.any():
            assert_close(scales, other_scales, tolerance)


@pytest.mark.parametrize("projection", ops.simhash.PROJECTIONS)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_simhash_round_trip_and_gradient_on_gpu(dtype, projection):
    a = tf.constant(np.random.default_rng(6).standard_normal((120, 40)), dtype)
    with tf.device(GPU):
        signs, scales = ops.simhash_compress(
            a, 64, seed=2, implementation="native", projection=projection
        )
    rebuilt = {
        device: on(
            device,
            ops.simhash_decompress,
            signs,
            scales,
            120,
            seed=2,
            implementation="native",
            projection=projection,
        )
        for device in (GPU, CPU)
    }
    assert_close(rebuilt[GPU], rebuilt[CPU], 1e-5 if dtype == tf.float32 else 1e-12)
    upstream = tf.constant(np.random.default_rng(7).standard_normal((120, 40)), dtype)

    def scales_gradient(implementation):
        with tf.device(GPU), tf.GradientTape() as tape:
            tape.watch(scales)
            out = ops.simhash_decompress(
                signs, scales, 120, seed=2, implementation=implementation, projection=projection
            )
            loss = tf.reduce_sum(out * upstream)
        return tape.gradient(loss, scales).numpy()

    assert_close(scales_gradient("native"), scales_gradient("composite"), 1e-4)


def test_simhash_empty_shapes_and_non_finite_on_gpu():
    signs, scales = on(GPU, ops.simhash_compress, tf.zeros((0, 13)), 4, implementation="native")
    np.testing.assert_array_equal(signs, np.array([[0xFF, 0x1F]] * 4, np.uint8))
    np.testing.assert_array_equal(scales, np.zeros(13, np.float32))
    signs, scales = on(GPU, ops.simhash_compress, tf.zeros((5, 0)), 4, implementation="native")
    assert signs.shape == (4, 0) and scales.shape == (0,)
    bad = np.ones((8, 8), np.float32)
    bad[3, 4] = np.nan
    with tf.device(GPU), pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        ops.simhash_compress(tf.constant(bad), 4, implementation="native")


def test_simhash_auto_runs_native_on_gpu():
    a = tf.ones((16, 16))
    assert ran_on_gpu(lambda: ops.simhash_compress(a, 8), "Matcomp>SimhashCompress")


# ---------------------------------------------------------------- k-means


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("num_clusters", [1, 16, 300])
@pytest.mark.parametrize("method", ["lloyd", "optimal"])
def test_kmeans_scalar_small_gpu_equals_cpu(dtype, num_clusters, method):
    if method == "optimal" and num_clusters > 256:
        pytest.skip("optimal supports up to 256 clusters")
    a = tf.constant(np.random.default_rng(num_clusters).standard_normal((128, 96)), dtype)
    gpu = on(GPU, ops.kmeans_quantize, a, num_clusters, method=method, implementation="native")
    cpu = on(CPU, ops.kmeans_quantize, a, num_clusters, method=method, implementation="native")
    # <= 65,536 values: the exact distinct values on both sides, so the same bits.
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[1], cpu[1])


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("snap_zero", [False, True])
def test_kmeans_scalar_histogram_path_matches_cpu(dtype, snap_zero):
    a = tf.constant(np.random.default_rng(8).standard_normal((512, 512)), dtype)
    gpu = on(GPU, ops.kmeans_quantize, a, 16, snap_zero=snap_zero, implementation="native")
    cpu = on(CPU, ops.kmeans_quantize, a, 16, snap_zero=snap_zero, implementation="native")
    composite = on(GPU, ops.kmeans_quantize, a, 16, snap_zero=snap_zero, implementation="composite")
    # Fixed-point bin sums on the GPU, double ones on the CPU: the same atoms up to rounding.
    assert_close(gpu[0], cpu[0], 1e-6)
    assert np.mean(gpu[1] != cpu[1]) < 1e-4
    values = a.numpy().reshape(-1)
    error = {
        name: np.mean((values - r[0][r[1].reshape(-1).astype(np.int64), 0]) ** 2)
        for name, r in (("gpu", gpu), ("composite", composite))
    }
    assert error["gpu"] <= error["composite"] * 1.01
    again = on(GPU, ops.kmeans_quantize, a, 16, snap_zero=snap_zero, implementation="native")
    np.testing.assert_array_equal(again[0], gpu[0])  # same input, same bits
    np.testing.assert_array_equal(again[1], gpu[1])


VECTOR_FIT_TOLERANCE = {tf.float32: 1e-5, tf.float64: 1e-10}


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize(
    "shape,num_clusters,block_size",
    [((256, 64), 8, 2), ((256, 64), 300, 4), ((1024, 256), 16, 4), ((512, 96), 64, 3)],
)
def test_kmeans_vector_gpu_fit_matches_cpu(dtype, shape, num_clusters, block_size):
    a = tf.constant(np.random.default_rng(block_size).standard_normal(shape), dtype)
    args = dict(block_size=block_size, seed=3, max_iterations=20, implementation="native")
    gpu = on(GPU, ops.kmeans_quantize, a, num_clusters, **args)
    cpu = on(CPU, ops.kmeans_quantize, a, num_clusters, **args)
    # The same k-means++ draws and Lloyd steps (cc/core/kmeans_vector_fit.h); the device sums in
    # another order, so the centroids agree to rounding and codes may differ at ties.
    assert_close(gpu[0], cpu[0], VECTOR_FIT_TOLERANCE[dtype])
    assert np.mean(gpu[1] != cpu[1]) < 1e-3
    assert gpu[1].dtype == (np.uint8 if num_clusters <= 256 else np.int32)
    again = on(GPU, ops.kmeans_quantize, a, num_clusters, **args)
    np.testing.assert_array_equal(again[0], gpu[0])  # same input, same bits
    np.testing.assert_array_equal(again[1], gpu[1])


def test_kmeans_vector_gpu_with_fewer_distinct_points_than_clusters():
    # Small integers: every distance and mean is exact, so the GPU and CPU fits are bit-equal.
    points = np.random.default_rng(5).integers(0, 3, (4000, 2)).astype(np.float32)
    a = tf.constant(points.reshape(100, 80))
    args = dict(block_size=2, seed=1, max_iterations=10, implementation="native")
    gpu = on(GPU, ops.kmeans_quantize, a, 20, **args)
    cpu = on(CPU, ops.kmeans_quantize, a, 20, **args)
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[1], cpu[1])
    distinct = np.unique(points, axis=0)
    assert np.array_equal(np.unique(gpu[0][: len(distinct)], axis=0), distinct)
    np.testing.assert_array_equal(gpu[0][len(distinct) :], 0)  # padding rows
    np.testing.assert_array_equal(gpu[0][gpu[1].reshape(-1).astype(np.int64)], points)


def test_kmeans_gpu_range_check_and_empty_input():
    bad = np.zeros((4, 4), np.float32)
    bad[1, 1] = np.inf
    with tf.device(GPU), pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        ops.kmeans_quantize(tf.constant(bad), 2, implementation="native")
    codebook, codes = on(GPU, ops.kmeans_quantize, tf.zeros((0, 4)), 3, implementation="native")
    np.testing.assert_array_equal(codebook, np.zeros((3, 1), np.float32))
    assert codes.shape == (0, 4)


def test_kmeans_dequantize_and_its_gradient_on_gpu():
    codebook = tf.constant(np.random.default_rng(1).standard_normal((5, 2)))
    codes = tf.constant(np.random.default_rng(2).integers(0, 5, (6, 3)), tf.uint8)
    with tf.device(GPU), tf.GradientTape() as tape:
        tape.watch(codebook)
        rebuilt = ops.kmeans_dequantize(codebook, codes)
        loss = tf.reduce_sum(rebuilt)
    np.testing.assert_array_equal(rebuilt.numpy(), codebook.numpy()[codes.numpy()].reshape(6, 6))
    counts = np.bincount(codes.numpy().reshape(-1), minlength=5)
    np.testing.assert_array_equal(
        tf.convert_to_tensor(tape.gradient(loss, codebook)).numpy(),
        np.repeat(counts[:, None], 2, axis=1).astype(np.float64),
    )


def test_kmeans_auto_runs_native_on_gpu():
    a = tf.ones((16, 16))
    assert ran_on_gpu(lambda: ops.kmeans_quantize(a, 4), "Matcomp>KMeansQuantize")


def test_placement_sees_the_gpu():
    assert _dispatch._placement() == "GPU"
    with tf.device(CPU):
        assert _dispatch._placement() == "CPU"
