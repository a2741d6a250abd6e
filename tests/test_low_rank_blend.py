"""LowRankBlend: native kernel and composite against a NumPy oracle, gradients, bad input."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_in_mode, run_python_script
from tf_matcomp import ops

SHAPES = [  # (m, n, k)
    (1, 1, 1),
    (7, 5, 1),
    (1, 9, 3),
    (9, 1, 3),
    (6, 6, 6),
    (33, 17, 8),
    (64, 300, 20),
    (257, 129, 64),
    (300, 1100, 64),  # several row bands and column tiles of the small-k path, partial ones too
    (130, 520, 65),  # the smallest inner dimension of the threaded path
    # Ws of >= 16 MiB in float32 are written with non-temporal stores: rows of an odd length
    # (misaligned, so stored plainly) and of an aligned one, partial row tiles and panels.
    (2048, 2051, 7),
    (2051, 2064, 64),
]
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}


def oracle(a, b, c, alpha):
    return alpha * a + (1 - alpha) * (b @ c)


def random_inputs(rng, m, n, k, dtype):
    return (
        rng.standard_normal((m, n)).astype(dtype),
        rng.standard_normal((m, k)).astype(dtype),
        rng.standard_normal((k, n)).astype(dtype),
    )


def assert_close(actual, expected, dtype):
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE[dtype] * scale * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mode", ["eager", "function"])
def test_matches_numpy(implementation, mode, shape, dtype, rng):
    a, b, c = random_inputs(rng, *shape, dtype)
    for alpha in (0.0, 0.37, 1.0):
        got = run_in_mode(
            mode,
            lambda *x: ops.low_rank_blend(*x, implementation=implementation),
            a,
            b,
            c,
            dtype(alpha),
        )
        assert got.dtype == tf.as_dtype(dtype)
        assert_close(got.numpy(), oracle(a, b, c, dtype(alpha)), dtype)


@pytest.mark.parametrize("implementation", ["auto", "composite"])
def test_jit_compile_runs_the_composite(implementation, rng):
    a, b, c = random_inputs(rng, 40, 30, 5, np.float32)
    got = run_in_mode(
        "jit",
        lambda *x: ops.low_rank_blend(*x, implementation=implementation),
        a,
        b,
        c,
        np.float32(0.25),
    )
    assert_close(got.numpy(), oracle(a, b, c, np.float32(0.25)), np.float32)


def test_native_and_composite_agree(rng):
    a, b, c = random_inputs(rng, 513, 257, 96, np.float32)
    native = ops.low_rank_blend(a, b, c, 0.6, implementation="native")
    composite = ops.low_rank_blend(a, b, c, 0.6, implementation="composite")
    np.testing.assert_allclose(native.numpy(), composite.numpy(), rtol=1e-5, atol=1e-4)


def test_auto_uses_native_in_functions_and_the_composite_under_xla():
    assert ops.native_available(), ops.native_unavailable_reason()

    @tf.function
    def blend(a, b, c):
        return ops.low_rank_blend(a, b, c, 0.5)

    specs = (tf.TensorSpec([4, 3]), tf.TensorSpec([4, 2]), tf.TensorSpec([2, 3]))
    traced = blend.get_concrete_function(*specs).graph
    assert "Matcomp>LowRankBlend" in {op.type for op in traced.get_operations()}
    jitted = tf.function(blend.python_function, jit_compile=True).get_concrete_function(*specs)
    assert "Matcomp>LowRankBlend" not in {op.type for op in jitted.graph.get_operations()}


@pytest.mark.parametrize("dtype", [np.float16, tf.bfloat16.as_numpy_dtype])
def test_half_precision(implementation, dtype, rng):
    a, b, c = random_inputs(rng, 30, 20, 4, np.float32)
    got = ops.low_rank_blend(
        a.astype(dtype), b.astype(dtype), c.astype(dtype), 0.3, implementation=implementation
    )
    expected = oracle(*(x.astype(dtype).astype(np.float32) for x in (a, b, c)), 0.3)
    np.testing.assert_allclose(got.numpy().astype(np.float32), expected, rtol=0.05, atol=0.1)


def test_tf1_graph_and_session(implementation, rng):
    a, b, c = random_inputs(rng, 12, 10, 3, np.float32)
    with tf.Graph().as_default():
        alpha = tf.compat.v1.placeholder(tf.float32, [])
        w = ops.low_rank_blend(
            tf.constant(a), tf.constant(b), tf.constant(c), alpha, implementation=implementation
        )
        with tf.compat.v1.Session() as session:
            got = session.run(w, {alpha: 0.8})
    assert_close(got, oracle(a, b, c, np.float32(0.8)), np.float32)


def test_unknown_dims_in_graph_are_checked_at_run_time(implementation):
    with tf.Graph().as_default():
        a = tf.compat.v1.placeholder(tf.float32, [None, None])
        b = tf.compat.v1.placeholder(tf.float32, [None, None])
        c = tf.compat.v1.placeholder(tf.float32, [None, None])
        w = ops.low_rank_blend(a, b, c, 0.5, implementation=implementation)
        assert w.shape.as_list() == [None, None]
        with tf.compat.v1.Session() as session:
            with pytest.raises(tf.errors.InvalidArgumentError):
                session.run(w, {a: np.ones((3, 4)), b: np.ones((3, 2)), c: np.ones((5, 4))})


def test_shape_function_infers_known_dims():
    assert ops.native_available(), ops.native_unavailable_reason()
    with tf.Graph().as_default():
        a = tf.compat.v1.placeholder(tf.float32, [None, 7])
        b = tf.compat.v1.placeholder(tf.float32, [5, None])
        c = tf.compat.v1.placeholder(tf.float32, [3, None])
        w = ops.low_rank_blend(a, b, c, 0.5, implementation="native")
        assert w.shape.as_list() == [5, 7]


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_gradients_match_formulas_and_finite_differences(implementation, mode, rng):
    a, b, c = random_inputs(rng, 6, 5, 2, np.float64)
    alpha = np.float64(0.3)
    upstream = rng.standard_normal((6, 5))

    def loss_and_grads(a, b, c, alpha):
        with tf.GradientTape() as tape:
            tape.watch([a, b, c, alpha])
            w = ops.low_rank_blend(a, b, c, alpha, implementation=implementation)
            loss = tf.reduce_sum(w * upstream)
        return tape.gradient(loss, [a, b, c, alpha])

    grads = run_in_mode(mode, loss_and_grads, *(tf.constant(x) for x in (a, b, c, alpha)))
    expected = [
        alpha * upstream,
        (1 - alpha) * upstream @ c.T,
        (1 - alpha) * b.T @ upstream,
        np.sum(upstream * (a - b @ c)),
    ]
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)

    theoretical, numerical = tf.test.compute_gradient(
        lambda a, b, c, alpha: ops.low_rank_blend(a, b, c, alpha, implementation=implementation),
        [tf.constant(x) for x in (a, b, c, alpha)],
    )
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, rtol=1e-6, atol=1e-6)


def test_tf1_gradients(rng):
    a, b, c = random_inputs(rng, 4, 3, 2, np.float32)
    with tf.Graph().as_default():
        tensors = [tf.constant(x) for x in (a, b, c)]
        alpha = tf.constant(0.25)
        w = ops.low_rank_blend(*tensors, alpha, implementation="native")
        grads = tf.compat.v1.gradients(tf.reduce_sum(w), tensors + [alpha])
        with tf.compat.v1.Session() as session:
            got = session.run(grads)
    ones = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(got[0], 0.25 * ones)
    np.testing.assert_allclose(got[1], 0.75 * ones @ c.T, rtol=1e-6)
    np.testing.assert_allclose(got[2], 0.75 * b.T @ ones, rtol=1e-6)
    np.testing.assert_allclose(got[3], np.sum(a - b @ c), rtol=1e-5)


@pytest.mark.parametrize("m,n,k", [(0, 4, 2), (4, 0, 2), (0, 0, 0), (3, 4, 0)])
def test_zero_sized_dims(implementation, m, n, k, rng):
    a, b, c = random_inputs(rng, m, n, k, np.float32)
    got = ops.low_rank_blend(a, b, c, 0.5, implementation=implementation).numpy()
    assert got.shape == (m, n)
    np.testing.assert_allclose(got, 0.5 * a)  # an empty product contributes zero


BAD_INPUTS = [  # (a shape, b shape, c shape, alpha, argument named in the error)
    ((2, 3, 1), (2, 1), (1, 3), 0.5, "`a`"),
    ((2, 3), (2,), (1, 3), 0.5, "`b`"),
    ((2, 3), (2, 1), (1, 3, 1), 0.5, "`c`"),
    ((2, 3), (2, 1), (1, 3), [0.5, 0.5], "`alpha`"),
    ((2, 3), (3, 1), (1, 3), 0.5, "`b` must have as many rows as `a`"),
    ((2, 3), (2, 1), (1, 4), 0.5, "`c` must have as many columns as `a`"),
    ((2, 3), (2, 2), (1, 3), 0.5, "`c` must have as many rows as `b` has columns"),
]


@pytest.mark.parametrize("a_shape,b_shape,c_shape,alpha,message", BAD_INPUTS)
def test_bad_shapes_raise_value_error(implementation, a_shape, b_shape, c_shape, alpha, message):
    with pytest.raises(ValueError, match=message):
        ops.low_rank_blend(
            np.ones(a_shape, np.float32),
            np.ones(b_shape, np.float32),
            np.ones(c_shape, np.float32),
            np.float32(alpha) if np.isscalar(alpha) else np.array(alpha, np.float32),
            implementation=implementation,
        )


@pytest.mark.parametrize("a_shape,b_shape,c_shape,alpha,message", BAD_INPUTS)
def test_bad_shapes_raise_in_kernel(a_shape, b_shape, c_shape, alpha, message):
    """The kernel validates on its own, for callers that bypass the Python checks."""
    library = tf.load_op_library(ops._loader.native_library().path)
    argument = message.split("`")[1]
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{argument}`"):
        library.matcomp_low_rank_blend(
            np.ones(a_shape, np.float32),
            np.ones(b_shape, np.float32),
            np.ones(c_shape, np.float32),
            np.array(alpha, np.float32),
        )


def test_wrong_dtypes_raise_value_error(implementation):
    ints = np.ones((2, 2), np.int32)
    floats = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="`a` must be a floating tensor"):
        ops.low_rank_blend(ints, floats, floats, 0.5, implementation=implementation)
    with pytest.raises(ValueError, match="`b` must have dtype float32"):
        ops.low_rank_blend(
            floats, floats.astype(np.float64), floats, 0.5, implementation=implementation
        )


def test_unknown_implementation_raises():
    with pytest.raises(ValueError, match="implementation must be one of"):
        ops.low_rank_blend(
            np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), 0.5, implementation="fast"
        )


def test_auto_gradients_inside_tf_function_and_keras_style_variables(rng):
    """Gradients of "auto" in a traced function (the path Keras' fit takes)."""
    a, b, c = (tf.Variable(x) for x in random_inputs(rng, 12, 16, 3, np.float32))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(ops.low_rank_blend(a, b, c, 0.25) ** 2)
        return tape.gradient(loss, [a, b, c])

    w = 0.25 * a.numpy() + 0.75 * b.numpy() @ c.numpy()
    got = step()
    np.testing.assert_allclose(got[0].numpy(), 0.25 * 2 * w, rtol=1e-5)
    np.testing.assert_allclose(got[1].numpy(), 0.75 * 2 * w @ c.numpy().T, rtol=1e-4)
    np.testing.assert_allclose(got[2].numpy(), 0.75 * b.numpy().T @ (2 * w), rtol=1e-4)


_THREADS_SCRIPT = """
import sys, numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
from tf_matcomp import ops
rng = np.random.default_rng(3)
out = []
for m, n, k, dtype in [(300, 1100, 16, np.float32), (520, 700, 64, np.float64),
                       (384, 640, 65, np.float32), (256, 512, 300, np.float32),
                       (200, 300, 1024, np.float32), (96, 96, 2048, np.float64)]:
    a, b, c = (rng.standard_normal(s).astype(dtype) for s in ((m, n), (m, k), (k, n)))
    out.append(ops.low_rank_blend(a, b, c, dtype(0.3), implementation="native").numpy())
sys.stdout.write("".join(w.tobytes().hex() for w in out))
"""


def test_native_results_do_not_depend_on_thread_count():
    """Same bits on 1, 2 and 3 intra-op threads, for every inner dimension regime (tiles,
    Eigen's threaded contraction, its sharding over k)."""

    single = run_python_script(_THREADS_SCRIPT, "1")
    assert len(single) > 0
    assert run_python_script(_THREADS_SCRIPT, "2") == single
    assert run_python_script(_THREADS_SCRIPT, "3") == single
