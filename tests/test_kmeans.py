"""KMeansQuantize / kmeans_dequantize: native kernel and composite against NumPy oracles."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import needs_plain_memory, run_in_mode, run_python_script
from tf_matcomp import ops


def blocks_of(a, block_size):
    return np.asarray(a, np.float64).reshape(-1, block_size)


def assert_nearest_codes(a, codebook, codes, block_size=1, atol=1e-9):
    """Every code points to a nearest codebook row (NumPy brute force)."""
    points = blocks_of(a, block_size)
    distances = ((points[:, None, :] - np.asarray(codebook, np.float64)[None]) ** 2).sum(-1)
    chosen = distances[np.arange(len(points)), np.asarray(codes).reshape(-1).astype(np.int64)]
    np.testing.assert_array_less(chosen, distances.min(1) + atol)


def assert_member_means(a, codebook, codes, block_size=1, atol=1e-6):
    """Every used codebook row is the mean of the blocks coded to it (a Lloyd fixed point)."""
    points, flat_codes = blocks_of(a, block_size), np.asarray(codes).reshape(-1)
    for row in np.unique(flat_codes):
        np.testing.assert_allclose(
            codebook[row], points[flat_codes == row].mean(0), rtol=0, atol=atol
        )


def relative_error(a, codebook, codes):
    rebuilt = ops.kmeans_dequantize(codebook, codes).numpy()
    return np.linalg.norm(rebuilt - a) / np.linalg.norm(a)


def numpy_lloyd_1d(x, k, iterations):
    """Plain Lloyd with brute-force assignment from equal-count quantiles (the reference)."""
    x = np.sort(np.asarray(x, np.float64).ravel())
    centroids = x[(2 * np.arange(k) + 1) * len(x) // (2 * k)]
    for _ in range(iterations):
        codes = np.abs(x[:, None] - centroids[None]).argmin(1)
        for j in range(k):
            if np.any(codes == j):
                centroids[j] = x[codes == j].mean()
    return np.sqrt(
        ((x - centroids[np.abs(x[:, None] - centroids).argmin(1)]) ** 2).sum() / (x**2).sum()
    )


def numpy_optimal_1d_cost(x, k):
    """Exact minimum within-cluster sum of squares over contiguous splits (O(k·n²) DP)."""
    x = np.sort(np.asarray(x, np.float64))
    n = len(x)
    prefix, squares = np.concatenate([[0], np.cumsum(x)]), np.concatenate([[0], np.cumsum(x * x)])

    def cost(i, j):
        return squares[j] - squares[i] - (prefix[j] - prefix[i]) ** 2 / (j - i)

    best = np.array([cost(0, j) if j else np.inf for j in range(n + 1)])
    for _ in range(1, k):
        best = np.array(
            [min((best[i] + cost(i, j) for i in range(1, j)), default=np.inf) for j in range(n + 1)]
        )
    return best[n]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,num_clusters", [((1, 1), 1), ((37, 50), 8), ((200, 300), 16), ((30, 40), 300)]
)
def test_scalar_result_is_a_lloyd_fixed_point(implementation, shape, num_clusters, dtype, rng):
    a = rng.standard_normal(shape).astype(dtype)
    codebook, codes = ops.kmeans_quantize(
        a, num_clusters, max_iterations=1000, implementation=implementation
    )
    assert codebook.dtype == dtype and codebook.shape == (num_clusters, 1)
    assert codes.shape == shape and codes.dtype == ops.kmeans.code_dtype_for(num_clusters)
    codebook, codes = codebook.numpy(), codes.numpy()
    assert_nearest_codes(a, codebook, codes)
    assert_member_means(a, codebook, codes, atol=1e-5 if dtype == np.float32 else 1e-9)
    if implementation == "native":
        assert np.all(np.diff(codebook[:, 0]) > 0)  # sorted ascending, distinct


@pytest.mark.parametrize("implementation", ["native", "composite"])
def test_gaussian_1024_error_within_peer_bound(implementation, rng):
    """N(0,1) 1024², 16 levels: ≤ 0.107 (the peer's 20-restart SciPy k-means reaches 0.106),
    and no worse than plain NumPy Lloyd on a subsample-free reference run."""
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    codebook, codes = ops.kmeans_quantize(a, 16, implementation=implementation)
    error = relative_error(a, codebook, codes)
    assert error <= 0.107
    assert error <= numpy_lloyd_1d(a[:64], 16, 100) + 2e-3
    assert_nearest_codes(a[:8], codebook.numpy(), codes.numpy()[:8])
    if implementation == "native":  # the histogram path: bin-level members, so close means
        assert_member_means(a, codebook.numpy(), codes.numpy(), atol=1e-3)


def test_optimal_method_matches_exact_dynamic_programme(rng):
    x = rng.standard_normal((1, 60))
    for k in (1, 3, 7):
        codebook, codes = ops.kmeans_quantize(x, k, method="optimal", implementation="native")
        rebuilt = ops.kmeans_dequantize(codebook, codes).numpy()
        np.testing.assert_allclose(
            ((rebuilt - x) ** 2).sum(), numpy_optimal_1d_cost(x[0], k), rtol=1e-9
        )
        lloyd = ops.kmeans_quantize(x, k, implementation="native")
        assert relative_error(x, codebook, codes) <= relative_error(x, *lloyd) + 1e-12


@pytest.mark.parametrize("block_size", [2, 4])
def test_vector_result_is_a_lloyd_fixed_point(block_size, rng):
    a = rng.standard_normal((64, 48)).astype(np.float32)
    codebook, codes = ops.kmeans_quantize(
        a, 12, block_size=block_size, seed=7, max_iterations=1000, implementation="native"
    )
    assert codebook.shape == (12, block_size) and codes.shape == (64, 48 // block_size)
    assert_nearest_codes(a, codebook.numpy(), codes.numpy(), block_size, atol=1e-6)
    assert_member_means(a, codebook.numpy(), codes.numpy(), block_size, atol=1e-5)
    composite = ops.kmeans_quantize(
        a, 12, block_size=block_size, seed=7, implementation="composite"
    )
    assert_nearest_codes(a, composite[0].numpy(), composite[1].numpy(), block_size, atol=1e-4)
    assert abs(relative_error(a, *composite) - relative_error(a, codebook, codes)) < 0.03


def test_same_seed_same_result_other_seed_other_init(rng):
    a = rng.standard_normal((40, 60)).astype(np.float32)
    first = ops.kmeans_quantize(
        a, 10, block_size=3, seed=1, max_iterations=2, implementation="native"
    )
    again = ops.kmeans_quantize(
        a, 10, block_size=3, seed=1, max_iterations=2, implementation="native"
    )
    other = ops.kmeans_quantize(
        a, 10, block_size=3, seed=2, max_iterations=2, implementation="native"
    )
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


_THREADS_SCRIPT = """
import sys, numpy as np, tensorflow as tf
if sys.argv[1] != "default":
    tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
from tf_matcomp import ops
a = np.random.default_rng(5).standard_normal((512, 512)).astype(np.float32)
outs = [ops.kmeans_quantize(a, 16, implementation="native"),
        ops.kmeans_quantize(a, 32, block_size=4, seed=3, max_iterations=5,
                            implementation="native")]
sys.stdout.write("".join(t.numpy().tobytes().hex() for pair in outs for t in pair))
"""


def test_results_do_not_depend_on_thread_count():
    single = run_python_script(_THREADS_SCRIPT, "1")
    assert len(single) > 0 and single == run_python_script(_THREADS_SCRIPT, "default")


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_dequantize_round_trip_and_codebook_gradient(mode, rng):
    codebook = rng.standard_normal((5, 3))
    codes = rng.integers(0, 5, (4, 6)).astype(np.uint8)
    rebuilt = run_in_mode(mode, ops.kmeans_dequantize, tf.constant(codebook), tf.constant(codes))
    np.testing.assert_array_equal(rebuilt.numpy(), codebook[codes].reshape(4, 18))
    upstream = rng.standard_normal((4, 18))

    def gradient(codebook):
        with tf.GradientTape() as tape:
            tape.watch(codebook)
            loss = tf.reduce_sum(ops.kmeans_dequantize(codebook, codes) * upstream)
        return tf.convert_to_tensor(tape.gradient(loss, codebook))

    expected = np.zeros_like(codebook)
    np.add.at(expected, codes.reshape(-1), upstream.reshape(-1, 3))
    np.testing.assert_allclose(
        run_in_mode(mode, gradient, tf.constant(codebook)).numpy(), expected, rtol=1e-12
    )
    theoretical, numerical = tf.test.compute_gradient(
        lambda c: ops.kmeans_dequantize(c, codes), [tf.constant(codebook)]
    )
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-6)


def test_quantize_then_dequantize_round_trip(implementation, rng):
    a = rng.standard_normal((6, 8)).astype(np.float32)
    codebook, codes = ops.kmeans_quantize(a, 4, block_size=2, implementation=implementation)
    expected = codebook.numpy()[codes.numpy().astype(int)].reshape(6, 8)
    np.testing.assert_array_equal(ops.kmeans_dequantize(codebook, codes).numpy(), expected)


@pytest.mark.parametrize(
    "num_clusters,dtype", [(1, tf.uint8), (256, tf.uint8), (257, tf.int32), (4000, tf.int32)]
)
def test_code_dtype(implementation, num_clusters, dtype, rng):
    a = rng.standard_normal((50, 100)).astype(np.float32)
    codebook, codes = ops.kmeans_quantize(
        a, num_clusters, max_iterations=5, implementation=implementation
    )
    assert codes.dtype == dtype and codebook.shape == (num_clusters, 1)
    assert int(codes.numpy().max()) < num_clusters


def test_fewer_distinct_values_than_clusters_pads_with_zeros(implementation):
    a = np.array([[2.0, -1.0, 0.5, 2.0], [0.5, 0.5, -1.0, 2.0]], np.float32)
    codebook, codes = ops.kmeans_quantize(a, 6, implementation=implementation)
    np.testing.assert_array_equal(codebook.numpy()[:, 0], [-1.0, 0.5, 2.0, 0, 0, 0])
    np.testing.assert_array_equal(codes.numpy(), [[2, 0, 1, 2], [1, 1, 0, 2]])


def test_fewer_distinct_values_than_clusters_on_the_histogram_path(rng):
    """Above 65,536 values with only 5 distinct ones the kernel still returns them exactly."""
    levels = np.array([-3.0, -0.25, 0.0, 1.5, 40.0], np.float32)
    a = levels[rng.integers(0, 5, (300, 300))]
    codebook, codes = ops.kmeans_quantize(a, 8, implementation="native")
    np.testing.assert_array_equal(codebook.numpy()[:, 0], np.concatenate([levels, [0, 0, 0]]))
    np.testing.assert_array_equal(ops.kmeans_dequantize(codebook, codes).numpy(), a)


def test_fewer_distinct_blocks_than_clusters_pads_with_zeros():
    a = np.array([[1.0, 2.0, 1.0, 2.0], [3.0, -4.0, 1.0, 2.0]], np.float32)
    codebook, codes = ops.kmeans_quantize(a, 4, block_size=2, implementation="native")
    rows = {tuple(row) for row in codebook.numpy()[:2]}
    assert rows == {(1.0, 2.0), (3.0, -4.0)}
    np.testing.assert_array_equal(codebook.numpy()[2:], 0)
    np.testing.assert_array_equal(ops.kmeans_dequantize(codebook, codes).numpy(), a)


@pytest.mark.parametrize("block_size", [1, 2])
def test_snap_zero(implementation, block_size, rng):
    a = (rng.standard_normal((40, 40)) + 0.3).astype(np.float32)
    plain, _ = ops.kmeans_quantize(a, 8, block_size=block_size, implementation=implementation)
    codebook, codes = ops.kmeans_quantize(
        a, 8, block_size=block_size, snap_zero=True, implementation=implementation
    )
    plain, codebook = plain.numpy(), codebook.numpy()
    nearest = np.argmin((plain**2).sum(1))
    np.testing.assert_array_equal(codebook[nearest], 0)
    np.testing.assert_array_equal(np.delete(codebook, nearest, 0), np.delete(plain, nearest, 0))
    assert_nearest_codes(a, codebook, codes.numpy(), block_size, atol=1e-5)


@pytest.mark.parametrize("shape,block_size", [((0, 4), 1), ((3, 0), 1), ((0, 0), 2), ((0, 6), 3)])
def test_zero_sized_input(implementation, shape, block_size):
    codebook, codes = ops.kmeans_quantize(
        np.zeros(shape, np.float32), 3, block_size=block_size, implementation=implementation
    )
    np.testing.assert_array_equal(codebook.numpy(), np.zeros((3, block_size)))
    assert codes.shape == (shape[0], shape[1] // block_size)


@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
@pytest.mark.parametrize("implementation", ["auto", "composite"])
def test_modes(implementation, mode, rng):
    a = rng.standard_normal((30, 20)).astype(np.float32)
    codebook, codes = run_in_mode(
        mode,
        lambda x: ops.kmeans_quantize(x, 6, max_iterations=300, implementation=implementation),
        a,
    )
    assert_nearest_codes(a, codebook.numpy(), codes.numpy(), atol=1e-6)
    assert_member_means(a, codebook.numpy(), codes.numpy(), atol=1e-5)


@pytest.mark.parametrize("block_size,snap_zero", [(2, False), (1, True)])
def test_tf1_graph_and_session(implementation, block_size, snap_zero, rng):
    a = rng.standard_normal((12, 10)).astype(np.float32)
    with tf.Graph().as_default():
        placeholder = tf.compat.v1.placeholder(tf.float32, [None, 10])
        codebook, codes = ops.kmeans_quantize(
            placeholder,
            4,
            block_size=block_size,
            snap_zero=snap_zero,
            implementation=implementation,
        )
        assert codebook.shape.as_list() == [4, block_size]
        assert codes.shape.as_list() == [None, 10 // block_size]
        with tf.compat.v1.Session() as session:
            got_codebook, got_codes = session.run([codebook, codes], {placeholder: a})
    assert_nearest_codes(a, got_codebook, got_codes, block_size, atol=1e-5)
    if snap_zero:
        assert np.any(np.all(got_codebook == 0, axis=1))


@pytest.mark.parametrize("implementation", ["native", "composite"])
@pytest.mark.parametrize(
    "bad,dtype",
    [
        (np.nan, np.float32),
        (np.inf, np.float32),
        (-np.inf, np.float32),
        (1.7e308, np.float64),
        (-2e150, np.float64),
    ],
)
def test_non_finite_or_overflowing_values_raise(implementation, bad, dtype):
    """Beyond 1e150 the squared distances overflow: an error, never an inf codebook."""
    a = np.ones((3, 4), dtype)
    a[1, 2] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match="`a` must contain only finite"):
        ops.kmeans_quantize(a, 2, implementation=implementation)


BAD_ARGUMENTS = [  # (a shape, keyword arguments, text of the error)
    ((2, 4), dict(num_clusters=0), "`num_clusters` must be in"),
    ((2, 4), dict(num_clusters=65537), "`num_clusters` must be in"),
    ((2, 4), dict(num_clusters=2, block_size=0), "`block_size` must be >= 1"),
    ((2, 4), dict(num_clusters=2, block_size=3), "`block_size` \\(3\\) must divide"),
    ((2, 4), dict(num_clusters=2, max_iterations=0), "`max_iterations` must be >= 1"),
    ((2, 4), dict(num_clusters=65536, block_size=512), "`num_clusters` \\* `block_size`"),
    ((2, 4), dict(num_clusters=2, block_size=2, method="optimal"), "`method`"),
    ((2, 4), dict(num_clusters=300, method="optimal"), "`method`"),
    ((2, 4, 1), dict(num_clusters=2), "`a` must be rank 2"),
    ((8,), dict(num_clusters=2), "`a` must be rank 2"),
]


@pytest.mark.parametrize("shape,kwargs,message", BAD_ARGUMENTS)
def test_bad_arguments_raise_value_error(implementation, shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ops.kmeans_quantize(np.ones(shape, np.float32), implementation=implementation, **kwargs)


def test_other_bad_python_arguments():
    a = np.ones((2, 2), np.float32)
    for kwargs, message in [
        (dict(seed=-1), "`seed`"),
        (dict(snap_zero=1), "`snap_zero`"),
        (dict(method="kmeans"), "`method`"),
        (dict(num_clusters=2.5), "`num"),
    ]:
        with pytest.raises(ValueError, match=message):
            ops.kmeans_quantize(a, **{"num_clusters": 2, **kwargs})
    for value, message in [
        (np.ones((2, 2), np.int32), "`a` must be a floating"),
        (np.ones((2, 2), np.float16), "`a` must have dtype float32"),
    ]:
        with pytest.raises(ValueError, match=message):
            ops.kmeans_quantize(value, 2)
    with pytest.raises(ValueError, match="`codes` must have dtype"):
        ops.kmeans_dequantize(np.ones((2, 1), np.float32), np.zeros((1, 1), np.float32))
    with pytest.raises(ValueError, match="`codebook` must be rank 2"):
        ops.kmeans_dequantize(np.ones((2,), np.float32), np.zeros((1, 1), np.int32))


KERNEL_BAD_ARGUMENTS = [  # (a shape, attributes, argument named in the error)
    ((2, 4), dict(num_clusters=0), "num_clusters"),
    ((2, 4), dict(num_clusters=70000), "num_clusters"),
    ((2, 4), dict(num_clusters=300, code_dtype=tf.uint8), "num_clusters"),
    ((2, 4), dict(num_clusters=2, block_size=0), "block_size"),
    ((2, 4), dict(num_clusters=2, block_size=3), "block_size"),
    ((2, 4), dict(num_clusters=2, max_iterations=0), "max_iterations"),
    ((2, 4), dict(num_clusters=65536, block_size=512), "num_clusters"),
    ((2, 4), dict(num_clusters=2, block_size=2, method="optimal"), "method"),
    ((2, 4, 1), dict(num_clusters=2), "a"),
]


@pytest.mark.parametrize("shape,attributes,argument", KERNEL_BAD_ARGUMENTS)
def test_bad_arguments_raise_in_kernel(shape, attributes, argument):
    """The kernel validates on its own, for callers that bypass the Python checks."""
    library = tf.load_op_library(ops._loader.native_library().path)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{argument}`"):
        library.matcomp_k_means_quantize(np.ones(shape, np.float32), **attributes)


def test_kernel_rejects_wrong_dtype():
    library = tf.load_op_library(ops._loader.native_library().path)
    with pytest.raises((TypeError, tf.errors.InvalidArgumentError)):
        library.matcomp_k_means_quantize(np.ones((2, 2), np.int32), num_clusters=2)


_SCRATCH_SCRIPT = """
import resource, numpy as np, tensorflow as tf
from tf_matcomp import ops
a = tf.constant(np.random.default_rng(0).standard_normal((2048, 8192)).astype(np.float32))
ops.kmeans_quantize(a[:64], 4, block_size=2, max_iterations=1, implementation="native")
status = open("/proc/self/status").read().split("VmSize:")[1].split()[0]
# Address space for a little more than the 8 MB of codes: not for ~100 MB of per-point scratch.
resource.setrlimit(resource.RLIMIT_AS, (int(status) * 1024 + (96 << 20), resource.RLIM_INFINITY))
try:
    ops.kmeans_quantize(a, 4, block_size=2, max_iterations=1, implementation="native")
    print("no error")
except tf.errors.ResourceExhaustedError as error:
    print(str(error).splitlines()[0])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs RLIMIT_AS and /proc")
@needs_plain_memory
def test_scratch_exhaustion_is_a_resource_exhausted_error():
    """The core's input-sized scratch failing to allocate is the op's ResourceExhaustedError,
    naming the op and the size, never a crash."""
    out = run_python_script(_SCRATCH_SCRIPT)
    assert (
        "KMeansQuantize: out of memory for the k-means scratch of 8388608 points of 2 values" in out
    )
