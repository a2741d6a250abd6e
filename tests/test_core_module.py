"""tf_matcomp._core: the C++ core for NumPy, against the TF kernels that share it."""

import threading
import time

import numpy as np
import pytest

from tf_matcomp import _core, ops


@pytest.fixture
def matrix(rng):
    return rng.standard_normal((96, 64)).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_clusters,block_size", [(16, 1), (300, 1), (8, 4)])
def test_kmeans_bit_exact_with_native_op(rng, dtype, num_clusters, block_size):
    a = rng.standard_normal((64, 48)).astype(dtype)
    codebook, codes = _core.kmeans_quantize(a, num_clusters, block_size=block_size, seed=3)
    tf_codebook, tf_codes = ops.kmeans_quantize(
        a, num_clusters, block_size=block_size, seed=3, implementation="native"
    )
    assert codebook.dtype == dtype and codes.dtype == tf_codes.numpy().dtype
    np.testing.assert_array_equal(codebook, tf_codebook.numpy())
    np.testing.assert_array_equal(codes, tf_codes.numpy())


def test_kmeans_codes_point_to_nearest_centroid(matrix):
    codebook, codes = _core.kmeans_quantize(matrix, 8)
    distances = np.abs(matrix[..., None] - codebook[:, 0])
    np.testing.assert_array_equal(
        np.take_along_axis(distances, codes[..., None].astype(int), -1)[..., 0], distances.min(-1)
    )


def test_kmeans_agrees_with_composite_quality(rng):
    a = rng.standard_normal((256, 256)).astype(np.float32)
    codebook, codes = _core.kmeans_quantize(a, 16)
    core_error = np.linalg.norm(codebook[codes, 0] - a) / np.linalg.norm(a)
    tf_codebook, tf_codes = ops.kmeans_quantize(a, 16, implementation="composite")
    composite = ops.kmeans_dequantize(tf_codebook, tf_codes).numpy()
    composite_error = np.linalg.norm(composite - a) / np.linalg.norm(a)
    assert core_error <= composite_error + 1e-4


def test_thread_count_does_not_change_results(rng):
    a = rng.standard_normal((300, 40)).astype(np.float64)
    results = [
        _core.kmeans_quantize(a, 12, block_size=4, seed=9, num_threads=threads)
        for threads in (1, 2, 3, 0)
    ]
    for codebook, codes in results[1:]:
        np.testing.assert_array_equal(codebook, results[0][0])
        np.testing.assert_array_equal(codes, results[0][1])


def test_non_contiguous_input_gives_the_contiguous_result(matrix):
    transposed = np.asfortranarray(matrix)
    assert not transposed.flags.c_contiguous
    for got, want in zip(_core.kmeans_quantize(transposed, 8), _core.kmeans_quantize(matrix, 8)):
        np.testing.assert_array_equal(got, want)
    strided = matrix[::2, ::2]
    for got, want in zip(
        _core.kmeans_quantize(strided, 8), _core.kmeans_quantize(np.ascontiguousarray(strided), 8)
    ):
        np.testing.assert_array_equal(got, want)


def test_empty_input_is_well_defined():
    codebook, codes = _core.kmeans_quantize(np.zeros((0, 4), np.float32), 4)
    assert codebook.shape == (4, 1) and codes.shape == (0, 4)
    np.testing.assert_array_equal(codebook, 0)


@pytest.mark.parametrize(
    "array,kwargs,message",
    [
        (np.zeros(8, np.float32), {}, "`a` must have 2 dimensions"),
        (np.zeros((2, 2, 2), np.float32), {}, "`a` must have 2 dimensions"),
        (np.zeros((4, 4), np.int32), {}, "`a` must have dtype float32 or float64"),
        (np.zeros((4, 4), np.float32), {"num_clusters": 0}, "num_clusters"),
        (np.zeros((4, 6), np.float32), {"block_size": 4}, "`block_size`"),
        (np.zeros((4, 4), np.float32), {"max_iterations": 0}, "max_iterations"),
        (np.zeros((4, 4), np.float32), {"method": "fast"}, "`method`"),
        (np.array([[1.0, np.nan]], np.float32), {}, "finite"),
        (np.array([[1.7e308, 1.6e308]], np.float64), {}, "magnitude <= 1e150"),
        (np.zeros((4, 4), np.float32), {"seed": -1}, "`seed` must be >= 0"),
    ],
)
def test_bad_arrays_raise_value_error(array, kwargs, message):
    arguments = {"num_clusters": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        _core.kmeans_quantize(array, **arguments)


def test_gil_is_released_while_computing(rng):
    """While a long core call runs in one thread, Python code in another thread keeps going."""
    a = rng.standard_normal((1024, 1024)).astype(np.float64)  # ~0.3 s of work
    started, finished = threading.Event(), threading.Event()

    def work():
        started.set()
        _core.kmeans_quantize(a, 64, block_size=8, max_iterations=20, num_threads=1)
        finished.set()

    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    time.sleep(0.01)  # let the worker enter the C++ call
    ticks = 0
    while not finished.is_set():
        ticks += 1
    worker.join()
    assert ticks > 1000, f"only {ticks} Python iterations ran during the core call"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", ["least_squares", "norm"])
def test_simhash_bit_exact_with_native_op(rng, dtype, scale):
    a = rng.standard_normal((40, 29)).astype(dtype)
    signs, scales = _core.simhash_compress(a, 17, seed=5, scale=scale)
    tf_signs, tf_scales = ops.simhash_compress(a, 17, seed=5, scale=scale, implementation="native")
    np.testing.assert_array_equal(signs, tf_signs.numpy())
    np.testing.assert_array_equal(scales, tf_scales.numpy())
    restored = _core.simhash_decompress(signs, scales, 40, seed=5)
    tf_restored = ops.simhash_decompress(tf_signs, tf_scales, 40, seed=5, implementation="native")
    np.testing.assert_array_equal(restored, tf_restored.numpy())


def test_simhash_bit_exact_with_native_op_over_changing_row_counts(rng):
    """The kernel keeps RᵀR between calls; `_core` forms it on every call: the same bits, also
    when the kernel's row count changes and comes back."""
    matrices = [rng.standard_normal((rows, 70)).astype(np.float32) for rows in (90, 60)]
    for a in [matrices[0], matrices[0], matrices[1], matrices[0]]:
        signs, scales = _core.simhash_compress(a, 24, seed=5)
        tf_signs, tf_scales = ops.simhash_compress(a, 24, seed=5, implementation="native")
        np.testing.assert_array_equal(signs, tf_signs.numpy())
        np.testing.assert_array_equal(scales, tf_scales.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_simhash_projection_matches_native_and_composite(dtype):
    projection = _core.simhash_projection(33, 12, seed=7, dtype=dtype)
    for implementation in ("native", "composite"):
        np.testing.assert_array_equal(
            projection,
            ops.simhash_projection(
                33, 12, seed=7, dtype=dtype, implementation=implementation
            ).numpy(),
        )


def test_simhash_reconstruction_is_the_least_squares_fit(rng):
    """Independent oracle: Â = R·S·diag(D) with D the per-column least-squares scale."""
    a = rng.standard_normal((50, 20))
    signs, scales = _core.simhash_compress(a, 24, seed=1)
    r = _core.simhash_projection(50, 24, seed=1, dtype=np.float64)
    s = np.where(r.T @ a >= 0, 1.0, -1.0)
    rs = r @ s
    np.testing.assert_allclose(scales, np.sum(a * rs, 0) / np.sum(rs * rs, 0), rtol=1e-10)
    np.testing.assert_allclose(
        _core.simhash_decompress(signs, scales, 50, seed=1), rs * scales, rtol=1e-10, atol=1e-12
    )


def test_simhash_thread_count_does_not_change_results(rng):
    a = rng.standard_normal((130, 300)).astype(np.float32)
    results = [_core.simhash_compress(a, 40, num_threads=threads) for threads in (1, 2, 5, 0)]
    for signs, scales in results[1:]:
        np.testing.assert_array_equal(signs, results[0][0])
        np.testing.assert_array_equal(scales, results[0][1])


def test_simhash_non_contiguous_and_empty(matrix):
    for got, want in zip(
        _core.simhash_compress(np.asfortranarray(matrix), 8), _core.simhash_compress(matrix, 8)
    ):
        np.testing.assert_array_equal(got, want)
    signs, scales = _core.simhash_compress(np.zeros((5, 0), np.float32), 3)
    assert signs.shape == (3, 0) and scales.shape == (0,)
    assert _core.simhash_decompress(signs, scales, 5).shape == (5, 0)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: _core.simhash_compress(np.zeros(4, np.float32), 2), "`a` must have 2 dimensions"),
        (lambda: _core.simhash_compress(np.zeros((2, 2), np.int64), 2), "`a` must have dtype"),
        (lambda: _core.simhash_compress(np.zeros((2, 2), np.float32), 0), "num_bits"),
        (lambda: _core.simhash_compress(np.zeros((2, 2), np.float32), 2, scale="max"), "`scale`"),
        (lambda: _core.simhash_compress(np.array([[np.inf]], np.float32), 2), "finite"),
        (
            lambda: _core.simhash_decompress(
                np.zeros((2, 1), np.float32), np.ones(3, np.float32), 4
            ),
            "`signs` must have dtype uint8",
        ),
        (
            lambda: _core.simhash_decompress(np.zeros((2, 2), np.uint8), np.ones(3, np.float32), 4),
            "`signs` must have ceil",
        ),
        (
            lambda: _core.simhash_decompress(
                np.zeros((2, 1), np.uint8), np.ones(3, np.float32), -1
            ),
            "num_rows",
        ),
        (lambda: _core.simhash_projection(3, 2, dtype=np.int32), "`dtype`"),
        (lambda: _core.simhash_compress(np.zeros((2, 2), np.float32), 2, seed=-3), "`seed`"),
        (lambda: _core.simhash_compress(np.ones((2, 256), np.float32), 2**19), "scratch"),
    ],
)
def test_simhash_bad_arrays_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_simhash_many_bits_few_columns_and_overflowing_scales():
    # Regressions: per-tile buffers of k · 64 values for a single column (2**26 bits needed
    # 16 GiB: MemoryError or a crash), and Inf scales returned silently when |a_j|² overflows.
    signs, scales = _core.simhash_compress(np.ones((1, 1), np.float32), 1 << 26)
    assert signs.shape == (1 << 26, 1) and np.isfinite(scales).all()
    assert np.isfinite(_core.simhash_decompress(signs, scales, 1)).all()
    with pytest.raises(ValueError, match="finite"):
        _core.simhash_compress(np.full((4, 4), 1e200), 4, scale="norm")


def test_equivalent_dtype_objects_are_accepted(matrix):
    """A float32 dtype carrying metadata is still float32 (dtype equivalence, not identity)."""
    tagged = matrix.view(np.dtype(np.float32, metadata={"source": "test"}))
    for got, want in zip(_core.kmeans_quantize(tagged, 4), _core.kmeans_quantize(matrix, 4)):
        np.testing.assert_array_equal(got, want)
