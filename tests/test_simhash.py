"""Simhash: native kernels and composites against a NumPy oracle of the generator and formulas,
R bit-exact everywhere, gradients, thread-count independence, bad input."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import outputs_by_thread_count, needs_plain_memory, run_in_mode
from simhash_oracle import GOLDEN, mix64, oracle_scales, unpack

from tf_matcomp import ops

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


# ---------------------------------------------------------------- NumPy oracle of the generator
def oracle_integers(num_rows, num_bits, seed):
    """K = (byte sum of SplitMix64(key + (row·2³² + col)·G)) − 1020, written from the spec."""
    with np.errstate(over="ignore"):
        key = mix64(np.array([seed], np.uint64) + GOLDEN)
        rows = np.arange(num_rows, dtype=np.uint64)[:, None]
        cols = np.arange(num_bits, dtype=np.uint64)[None, :]
        h = mix64(key + ((rows << np.uint64(32)) | cols) * GOLDEN)
    byte_sum = h.view(np.uint8).reshape(num_rows, num_bits, 8).astype(np.int64).sum(-1)
    return byte_sum - 1020


def oracle_projection(num_rows, num_bits, seed, dtype):
    scale = dtype(1 / np.sqrt(8 * (256**2 - 1) / 12))  # 1/σ of a sum of 8 uniform bytes
    return oracle_integers(num_rows, num_bits, seed).astype(dtype) * scale


def compress(a, num_bits, implementation, seed=5, scale="least_squares"):
    signs, scales = ops.simhash_compress(
        a, num_bits, seed=seed, scale=scale, implementation=implementation
    )
    return signs.numpy(), scales.numpy()


# ---------------------------------------------------------------- the generator
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
def test_projection_bit_exact_everywhere(implementation, dtype, seed):
    expected = oracle_projection(37, 70, seed, dtype)
    for mode in ("eager", "jit") if implementation == "composite" else ("eager",):
        got = run_in_mode(
            mode, lambda: ops.simhash_projection(37, 70, seed, dtype, implementation=implementation)
        )
        assert got.dtype == tf.as_dtype(dtype)
        np.testing.assert_array_equal(got.numpy().view(np.uint8), expected.view(np.uint8))


def test_projection_distribution():
    integers = oracle_integers(400, 500, 11)
    np.testing.assert_array_equal(
        ops.simhash_projection(400, 500, 11, tf.float64).numpy(), integers * (1 / np.sqrt(43690))
    )
    assert integers.min() >= -1020 and integers.max() <= 1020
    r = integers / np.sqrt(43690)
    assert abs(r.mean()) < 0.01 and abs(r.var() - 1) < 0.01
    excess_kurtosis = np.mean(r**4) / r.var() ** 2 - 3
    assert abs(excess_kurtosis + 0.15) < 0.03
    # Entries depend on (row, col) only, not on the shape asked for; seeds give new draws.
    np.testing.assert_array_equal(oracle_integers(3, 4, 11), integers[:3, :4])
    assert np.mean(oracle_integers(400, 500, 12) == integers) < 0.01


# ---------------------------------------------------------------- compression
SHAPES = [(1, 1, 1), (9, 5, 3), (40, 17, 64), (64, 130, 16), (33, 8, 200)]  # (m, n, num_bits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", ["least_squares", "norm"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_compress_matches_oracle(implementation, shape, scale, dtype, rng):
    m, n, num_bits = shape
    a = rng.standard_normal((m, n)).astype(dtype)
    signs, scales = compress(a, num_bits, implementation, scale=scale)
    assert signs.dtype == np.uint8 and signs.shape == (num_bits, (n + 7) // 8)
    assert scales.dtype == dtype and scales.shape == (n,)
    r = oracle_projection(m, num_bits, 5, dtype).astype(np.float64)
    projected = r.T @ a.astype(np.float64)
    expected = np.packbits(projected >= 0, axis=1, bitorder="little")
    # Where the float64 product is clearly away from zero the signs must agree exactly.
    clear = np.abs(projected) > 1e-3 * (np.abs(r).T @ np.abs(a))
    s = unpack(signs, n)
    np.testing.assert_array_equal(s[clear], unpack(expected, n)[clear])
    assert np.all(np.unpackbits(signs, axis=1, bitorder="little")[:, n:] == 0)  # padding
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(scales, oracle_scales(a, r, s, scale), rtol=tolerance)


def test_native_and_composite_signs_differ_only_near_zero(rng):
    a = rng.standard_normal((512, 300)).astype(np.float32)
    a[:, :10] *= 1e-3  # small columns: products near zero are common there
    native, native_scales = compress(a, 256, "native")
    composite, composite_scales = compress(a, 256, "composite")
    differ = unpack(native, 300) != unpack(composite, 300)
    r = oracle_projection(512, 256, 5, np.float32).astype(np.float64)
    projected = r.T @ a.astype(np.float64)
    noise = 1e-5 * (np.abs(r).T @ np.abs(a.astype(np.float64)))  # float32 rounding, generously
    assert differ.mean() < 1e-3
    assert np.all(np.abs(projected[differ]) <= noise[differ])
    np.testing.assert_allclose(
        native_scales[~differ.any(0)], composite_scales[~differ.any(0)], rtol=1e-5
    )


def low_rank_plus_noise(rng, m, n):
    return rng.standard_normal((m, 4)) @ rng.standard_normal((4, n)) + 0.05 * rng.standard_normal(
        (m, n)
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.standard_normal((128, 96)) * 3 + 1,
        lambda rng: low_rank_plus_noise(rng, 128, 96),
    ],
    ids=["shifted_gaussian", "low_rank"],
)
def test_least_squares_never_worse_than_zero_nor_than_norm(implementation, make, rng):
    a = make(rng)
    for num_bits in (1, 8, 32, 256):
        errors = {}
        for scale in ("least_squares", "norm"):
            signs, scales = ops.simhash_compress(
                a, num_bits, scale=scale, implementation=implementation
            )
            approx = ops.simhash_decompress(signs, scales, 128, implementation=implementation)
            errors[scale] = np.linalg.norm(approx.numpy() - a, axis=0)
        assert np.all(errors["least_squares"] <= np.linalg.norm(a, axis=0) * (1 + 1e-12))
        assert np.all(errors["least_squares"] <= errors["norm"] * (1 + 1e-12))


def test_norm_scale_is_the_peer_formula(implementation, rng):
    """D_j = ‖A_j‖ / ‖(R S)_j‖, so each column of Â has the norm of A's column."""
    a = rng.standard_normal((50, 40))
    signs, scales = ops.simhash_compress(a, 30, scale="norm", implementation=implementation)
    approx = ops.simhash_decompress(signs, scales, 50, implementation=implementation).numpy()
    np.testing.assert_allclose(
        np.linalg.norm(approx, axis=0), np.linalg.norm(a, axis=0), rtol=1e-12
    )


# ---------------------------------------------------------------- decompression
@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decompress_round_trip(implementation, mode, dtype, rng):
    if mode == "jit" and implementation == "native":
        implementation = "auto"  # XLA cannot compile the custom op: `auto` must fall back
    m, n, num_bits = 45, 21, 50
    a = rng.standard_normal((m, n)).astype(dtype)
    signs, scales = run_in_mode(
        mode, lambda a: ops.simhash_compress(a, num_bits, seed=9, implementation=implementation), a
    )
    approx = run_in_mode(
        mode,
        lambda s, d: ops.simhash_decompress(s, d, m, seed=9, implementation=implementation),
        signs,
        scales,
    )
    r = oracle_projection(m, num_bits, 9, dtype).astype(np.float64)
    expected = r @ (unpack(signs.numpy(), n) * scales.numpy())
    np.testing.assert_allclose(
        approx.numpy(), expected, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12
    )
    error = np.linalg.norm(approx.numpy() - a) / np.linalg.norm(a)
    assert 0.3 < error < 1.0


def test_auto_under_jit_uses_the_composite(rng):
    a = rng.standard_normal((20, 12)).astype(np.float32)
    jitted = run_in_mode("jit", lambda a: ops.simhash_compress(a, 16), a)
    eager = ops.simhash_compress(a, 16, implementation="composite")
    np.testing.assert_array_equal(jitted[0].numpy(), eager[0].numpy())
    np.testing.assert_allclose(jitted[1].numpy(), eager[1].numpy(), rtol=1e-6)


def test_decompress_ignores_padding_bits(implementation, rng):
    signs = rng.integers(0, 256, (6, 2), dtype=np.uint8)
    scales = rng.standard_normal(11)
    cleared = signs.copy()
    cleared[:, 1] &= 0b111  # columns 8, 9, 10 only
    got = [
        ops.simhash_decompress(s, scales, 7, implementation=implementation).numpy()
        for s in (signs, cleared)
    ]
    np.testing.assert_array_equal(got[0], got[1])


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_gradient_with_respect_to_scales(implementation, mode, rng):
    signs = rng.integers(0, 256, (12, 2), dtype=np.uint8)
    scales = tf.constant(rng.standard_normal(13))
    upstream = rng.standard_normal((9, 13))

    def gradient(scales):
        with tf.GradientTape() as tape:
            tape.watch(scales)
            approx = ops.simhash_decompress(signs, scales, 9, seed=4, implementation=implementation)
            loss = tf.reduce_sum(approx * upstream)
        return tape.gradient(loss, scales)

    r = oracle_projection(9, 12, 4, np.float64)
    expected = np.sum(unpack(signs, 13) * (r.T @ upstream), axis=0)
    np.testing.assert_allclose(run_in_mode(mode, gradient, scales).numpy(), expected, rtol=1e-10)
    theoretical, numerical = tf.test.compute_gradient(
        lambda d: ops.simhash_decompress(signs, d, 9, seed=4, implementation=implementation),
        [scales],
    )
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-6)


def test_tf1_graph_and_session(implementation, rng):
    a = rng.standard_normal((16, 10)).astype(np.float32)
    with tf.Graph().as_default():
        placeholder = tf.compat.v1.placeholder(tf.float32, [None, 10])
        signs, scales = ops.simhash_compress(placeholder, 24, implementation=implementation)
        approx = ops.simhash_decompress(signs, scales, 16, implementation=implementation)
        grad = tf.compat.v1.gradients(tf.reduce_sum(approx), scales)[0]
        with tf.compat.v1.Session() as session:
            got_signs, got_approx, got_grad = session.run([signs, approx, grad], {placeholder: a})
    expected_signs, expected_scales = compress(a, 24, implementation, seed=0)
    np.testing.assert_array_equal(got_signs, expected_signs)
    r = oracle_projection(16, 24, 0, np.float64)
    s = unpack(got_signs, 10)
    np.testing.assert_allclose(got_approx, r @ (s * expected_scales), atol=1e-5)
    np.testing.assert_allclose(got_grad, np.sum(r @ s, axis=0), rtol=1e-5)


# ---------------------------------------------------------------- determinism and threads
THREAD_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
    from tf_matcomp import ops
    a = np.random.default_rng(3).standard_normal((300, 520)).astype(np.float32)
    parts = []
    for num_bits in (300, 700):  # through RᵀR, and through R·S
        for scale in ("least_squares", "norm"):
            signs, scales = ops.simhash_compress(a, num_bits, scale=scale,
                                                 implementation="native")
            approx = ops.simhash_decompress(signs, scales, 300, implementation="native")
            parts += [signs.numpy().tobytes(), scales.numpy().tobytes(),
                      approx.numpy().tobytes()]
    sys.stdout.buffer.write(b"".join(parts))
""")


def test_native_results_do_not_depend_on_thread_count():
    outputs = outputs_by_thread_count(THREAD_SCRIPT)
    assert len(outputs[0]) > 0 and outputs[0] == outputs[1]


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_compress_after_other_row_counts_uses_their_own_projection(implementation, mode, rng):
    """The CPU kernel keeps RᵀR between calls (it depends on the row count, seed and bit count
    only): one kernel given a sequence of row counts, repeated and alternating, must match the
    oracle on each call and repeat each matrix's first result bit for bit."""
    fn = lambda a: ops.simhash_compress(a, 48, seed=5, implementation=implementation)  # noqa: E731
    if mode == "function":
        fn = tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    matrices = [rng.standard_normal(shape).astype(np.float32) for shape in [(160, 200), (96, 200)]]
    matrices.append(matrices[0][:, :120].copy())  # the first row count again, other columns
    first = {}
    for index in [0, 0, 1, 1, 2, 0, 1, 2]:
        a = matrices[index]
        signs, scales = (t.numpy() for t in fn(tf.constant(a)))
        m, n = a.shape
        r = oracle_projection(m, 48, 5, np.float64)
        expected = oracle_scales(a, r, unpack(signs, n), "least_squares")
        np.testing.assert_allclose(scales, expected, rtol=2e-5)
        first.setdefault(index, (signs, scales))
        np.testing.assert_array_equal(signs, first[index][0])
        np.testing.assert_array_equal(scales, first[index][1])


# ---------------------------------------------------------------- sizes and bad input
@pytest.mark.parametrize("m,n", [(0, 5), (5, 0), (0, 0), (0, 9)])
def test_zero_sized_inputs(implementation, m, n):
    signs, scales = compress(np.ones((m, n), np.float32), 3, implementation)
    assert signs.shape == (3, (n + 7) // 8) and scales.shape == (n,)
    if m == 0:  # Rᵀ a = 0: every sign is sign(0) = +1, every scale 0
        np.testing.assert_array_equal(unpack(signs, n), np.ones((3, n)))
        np.testing.assert_array_equal(scales, np.zeros(n))
    approx = ops.simhash_decompress(signs, scales, m, implementation=implementation)
    np.testing.assert_array_equal(approx.numpy(), np.zeros((m, n)))


def test_non_finite_input_raises(implementation):
    for bad in (np.nan, np.inf):
        a = np.ones((4, 3), np.float32)
        a[2, 1] = bad
        with pytest.raises(tf.errors.InvalidArgumentError, match="`a` must contain only finite"):
            ops.simhash_compress(a, 4, implementation=implementation)


BAD_COMPRESS = [  # (a, keyword arguments, message)
    (np.ones((3, 3), np.float32), {"num_bits": 0}, "`num_bits` must be in \\[1"),
    (np.ones((3, 3), np.float32), {"num_bits": 2**31}, "`num_bits` must be in \\[1"),
    (np.ones((3, 3), np.float32), {"num_bits": 2.5}, "`num_bits` must be an integer"),
    (np.ones((3, 3), np.float32), {"num_bits": 4, "seed": -1}, "`seed` must be in"),
    (np.ones((3, 3), np.float32), {"num_bits": 4, "scale": "l2"}, "`scale` must be one of"),
    (np.ones((3,), np.float32), {"num_bits": 4}, "`a` must be rank 2"),
    (np.ones((3, 3), np.int32), {"num_bits": 4}, "`a` must be a floating tensor"),
    (np.ones((3, 3), np.float16), {"num_bits": 4}, "`a` must have dtype float32 or float64"),
    (np.ones((4, 4), np.float32), {"num_bits": 2**30}, "`num_bits` \\(the projection R\\)"),
    (np.ones((2, 256), np.float32), {"num_bits": 2**19}, "per-thread scratch"),
]


@pytest.mark.parametrize("a,kwargs,message", BAD_COMPRESS)
def test_bad_compress_arguments_raise_value_error(implementation, a, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ops.simhash_compress(a, implementation=implementation, **kwargs)


def test_absurd_static_shapes_raise_before_running(implementation):
    with tf.Graph().as_default():
        huge = tf.compat.v1.placeholder(tf.float32, [2**20, 2**20])
        with pytest.raises(ValueError, match="columns must be at most"):
            ops.simhash_compress(huge, 8, implementation=implementation)


BAD_DECOMPRESS = [  # (signs, scales, num_rows, message)
    (np.zeros((2, 1), np.uint8), np.ones(9), 3, "`signs` must have ceil\\(n / 8\\) columns"),
    (np.zeros((0, 1), np.uint8), np.ones(3), 3, "`signs` must have at least one row"),
    (np.zeros((2,), np.uint8), np.ones(3), 3, "`signs` must be rank 2"),
    (np.zeros((2, 1), np.uint8), np.ones((3, 1)), 3, "`scales` must be rank 1"),
    (np.zeros((2, 1), np.int32), np.ones(3), 3, "`signs` must have dtype uint8"),
    (np.zeros((2, 1), np.uint8), np.ones(3), -1, "`num_rows` must be in"),
]


@pytest.mark.parametrize("signs,scales,num_rows,message", BAD_DECOMPRESS)
def test_bad_decompress_arguments_raise_value_error(
    implementation, signs, scales, num_rows, message
):
    with pytest.raises(ValueError, match=message):
        ops.simhash_decompress(signs, scales, num_rows, implementation=implementation)


def raw_library():
    return tf.load_op_library(ops._loader.native_library().path)


@pytest.mark.parametrize(
    "a,attrs,argument",
    [
        (np.ones((3, 3), np.float32), {"num_bits": 0}, "num_bits"),
        (np.ones((4, 4), np.float32), {"num_bits": 2**30}, "num_bits"),  # R: 2^32 elements
        (np.ones((2, 256), np.float32), {"num_bits": 2**19}, "num_bits"),  # scratch: 2^27
        (np.ones((3, 3), np.float32), {"num_bits": 4, "seed": -2}, "seed"),
        (np.ones((3, 3), np.float32), {"num_bits": 4, "scale": "l2"}, "scale"),
        (np.ones((3,), np.float32), {"num_bits": 4}, "a"),
        (np.array([[1.0, np.nan]], np.float32), {"num_bits": 4}, "a"),
    ],
)
def test_bad_compress_input_raises_in_kernel(a, attrs, argument):
    """The kernel validates on its own, for callers that bypass the Python checks."""
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{argument}`"):
        raw_library().matcomp_simhash_compress(a, **attrs)


@pytest.mark.parametrize(
    "signs,scales,num_rows,argument",
    [
        (np.zeros((2, 1), np.uint8), np.ones(9, np.float32), 3, "signs"),
        (np.zeros((0, 1), np.uint8), np.ones(3, np.float32), 3, "signs"),
        (np.zeros((2, 1), np.uint8), np.ones((3, 1), np.float32), 3, "scales"),
        (np.zeros((2, 1), np.uint8), np.ones(3, np.float32), -1, "num_rows"),
        (np.zeros((2**20, 1), np.uint8), np.ones(3, np.float32), 2**12, "num_rows"),
    ],
)
def test_bad_decompress_input_raises_in_kernel(signs, scales, num_rows, argument):
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{argument}`"):
        raw_library().matcomp_simhash_decompress(signs, scales, num_rows=num_rows)


def test_bad_projection_arguments(implementation):
    with pytest.raises(ValueError, match="`num_bits` must be in"):
        ops.simhash_projection(3, 0, implementation=implementation)
    with pytest.raises(ValueError, match="`dtype` must be float32 or float64"):
        ops.simhash_projection(3, 2, dtype=tf.int32, implementation=implementation)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`num_rows`"):
        raw_library().matcomp_simhash_projection(num_rows=2**20, num_bits=2**20, T=tf.float32)


_MEMORY_LIMITED = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]) << 30,) * 2)
    import numpy as np
    import tensorflow as tf
    from tf_matcomp import ops
    signs, scales = ops.simhash_compress(np.ones((1, 1), np.float32), 1 << 26,
                                         implementation="native")
    out = ops.simhash_decompress(signs, scales, 1, implementation="native")
    assert signs.shape == (1 << 26, 1) and np.isfinite(out.numpy()).all()
    print("ok")
""")


@needs_plain_memory
def test_many_bits_few_columns_needs_no_tile_wide_buffers():
    # Regression: per-tile buffers were sized k · 64 even for one column, so num_bits = 2**26 on a
    # [1, 1] matrix (R and signs 64 MiB) needed 16 GiB and crashed the process (SIGSEGV).
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_LIMITED, "8"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout


@pytest.mark.parametrize(
    "dtype,value,scale",
    [
        (np.float64, 1e200, "norm"),
        (np.float64, 1e308, "least_squares"),
        (np.float64, 1e308, "norm"),
    ],
)
def test_overflowing_scales_raise_instead_of_returning_inf(dtype, value, scale):
    # Regression: Rᵀa finite but |a_j|² or the scale overflowing returned Inf scales silently.
    a = np.ones((4, 4), dtype)
    a[1, 1] = value
    a[:, 0] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        ops.simhash_compress(a, 4, scale=scale, implementation="native")
