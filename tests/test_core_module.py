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
    tf_codebook, tf_codes = ops.kmeans_quantize(a, num_clusters, block_size=block_size, seed=3,
                                                implementation="native")
    assert codebook.dtype == dtype and codes.dtype == tf_codes.numpy().dtype
    np.testing.assert_array_equal(codebook, tf_codebook.numpy())
    np.testing.assert_array_equal(codes, tf_codes.numpy())


def test_kmeans_codes_point_to_nearest_centroid(matrix):
    codebook, codes = _core.kmeans_quantize(matrix, 8)
    distances = np.abs(matrix[..., None] - codebook[:, 0])
    np.testing.assert_array_equal(np.take_along_axis(distances, codes[..., None].astype(int),
                                                     -1)[..., 0], distances.min(-1))


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
    results = [_core.kmeans_quantize(a, 12, block_size=4, seed=9, num_threads=threads)
               for threads in (1, 2, 3, 0)]
    for codebook, codes in results[1:]:
        np.testing.assert_array_equal(codebook, results[0][0])
        np.testing.assert_array_equal(codes, results[0][1])


def test_non_contiguous_input_gives_the_contiguous_result(matrix):
    transposed = np.asfortranarray(matrix)
    assert not transposed.flags.c_contiguous
    for got, want in zip(_core.kmeans_quantize(transposed, 8), _core.kmeans_quantize(matrix, 8)):
        np.testing.assert_array_equal(got, want)
    strided = matrix[::2, ::2]
    for got, want in zip(_core.kmeans_quantize(strided, 8),
                         _core.kmeans_quantize(np.ascontiguousarray(strided), 8)):
        np.testing.assert_array_equal(got, want)


def test_empty_input_is_well_defined():
    codebook, codes = _core.kmeans_quantize(np.zeros((0, 4), np.float32), 4)
    assert codebook.shape == (4, 1) and codes.shape == (0, 4)
    np.testing.assert_array_equal(codebook, 0)


@pytest.mark.parametrize("array,kwargs,message", [
    (np.zeros(8, np.float32), {}, "`a` must have 2 dimensions"),
    (np.zeros((2, 2, 2), np.float32), {}, "`a` must have 2 dimensions"),
    (np.zeros((4, 4), np.int32), {}, "`a` must have dtype float32 or float64"),
    (np.zeros((4, 4), np.float32), {"num_clusters": 0}, "num_clusters"),
    (np.zeros((4, 6), np.float32), {"block_size": 4}, "`block_size`"),
    (np.zeros((4, 4), np.float32), {"max_iterations": 0}, "max_iterations"),
    (np.zeros((4, 4), np.float32), {"method": "fast"}, "`method`"),
    (np.array([[1.0, np.nan]], np.float32), {}, "finite"),
])
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
