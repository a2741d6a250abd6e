"""ops.householder_q: the Q of a thin Householder QR, native (blocked, multithreaded) and composite
(tf.linalg.qr), against NumPy's LAPACK QR in float64 (the same reflectors, so the same signs)."""

import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import outputs_by_thread_count, run_in_mode
from tf_matcomp import ops

# Around the kernel's 48-column panels and 128-column chunks; square; one column; tall.
SHAPES = [(1, 1), (7, 3), (130, 130), (300, 200), (500, 97), (64, 49)]


def _oracle(y: np.ndarray) -> np.ndarray:
    return np.linalg.qr(y.astype(np.float64))[0]


@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_lapack(implementation, mode, dtype, shape, rng):
    y = rng.standard_normal(shape).astype(dtype)
    q = run_in_mode(mode, lambda t: ops.householder_q(t, implementation=implementation), y)
    assert q.dtype == dtype and q.shape == shape
    tolerance = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(q.numpy(), _oracle(y), atol=tolerance)


def test_auto_under_jit_is_tf_qr(rng):
    y = rng.standard_normal((90, 60)).astype(np.float32)
    q = run_in_mode("jit", lambda t: ops.householder_q(t), y)
    np.testing.assert_allclose(q.numpy(), _oracle(y), atol=2e-4)


def test_rank_deficient_input_still_gives_an_orthonormal_basis_of_its_span(implementation, rng):
    left = rng.standard_normal((400, 20))
    y = (left @ rng.standard_normal((20, 150))).astype(np.float32)  # rank 20 of 150 columns
    q = ops.householder_q(y, implementation=implementation).numpy().astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(150), atol=1e-5)
    np.testing.assert_allclose(q @ (q.T @ y), y, atol=1e-4 * np.abs(y).max())


def test_zero_columns(implementation):
    for shape in [(5, 0), (0, 0)]:
        q = ops.householder_q(np.zeros(shape, np.float32), implementation=implementation)
        assert q.shape == shape


THREAD_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
    from tf_matcomp import ops
    y = np.random.default_rng(4).standard_normal((700, 300)).astype(np.float32)
    sys.stdout.buffer.write(ops.householder_q(y, implementation="native").numpy().tobytes())
""")


def test_native_results_do_not_depend_on_thread_count():
    outputs = outputs_by_thread_count(THREAD_SCRIPT)
    assert len(outputs[0]) == 700 * 300 * 4 and outputs[0] == outputs[1]


@pytest.mark.parametrize(
    "y,message",
    [
        (np.zeros(5, np.float32), "`y` must be rank 2"),
        (np.zeros((3, 5), np.float32), "`y` must have at least as many rows as columns"),
        (np.zeros((5, 3), np.int32), "`y` must be a floating tensor"),
        (np.zeros((5, 3), np.float16), "`y` must have dtype float32 or float64"),
    ],
)
def test_bad_arguments_raise_value_error(implementation, y, message):
    with pytest.raises(ValueError, match=message):
        ops.householder_q(y, implementation=implementation)


def test_wide_input_known_only_at_run_time_raises(implementation):
    traced = tf.function(
        lambda t: ops.householder_q(t, implementation=implementation),
        input_signature=[tf.TensorSpec([None, None], tf.float32)],
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least as many rows as columns"):
        traced(tf.zeros((3, 5)))


@pytest.mark.parametrize(
    "y,message",
    [
        (tf.zeros((2, 3, 4)), "`y` must have rank 2"),
        (tf.zeros((3, 5)), "`y` must have at least as many rows as columns"),
    ],
)
def test_raw_kernel_validates_on_its_own(y, message):
    library = ops._loader.native_library().module
    raw = tf.function(
        lambda t: library.matcomp_householder_q(t),
        input_signature=[tf.TensorSpec(None, tf.float32)],  # no shape function check
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        raw(y)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=message):
        library.matcomp_householder_q(y)  # eager: the shape function runs first


def test_no_gradient_is_defined():
    y = tf.Variable(np.eye(4, 3, dtype=np.float32))
    with tf.GradientTape() as tape:
        q = ops.householder_q(y, implementation="native")
    with pytest.raises(LookupError, match="HouseholderQ"):
        tape.gradient(q, y)


@pytest.mark.parametrize("magnitude", [1e30, 1e-30])
def test_huge_and_tiny_inputs_give_the_same_q(implementation, magnitude, rng):
    """Q does not depend on y's scale; unscaled, the reflectors' squared norms would overflow
    (1e30² in float32) or underflow."""
    y = rng.standard_normal((120, 70)).astype(np.float32)
    q = ops.householder_q(y, implementation=implementation).numpy()
    scaled = ops.householder_q(y * np.float32(magnitude), implementation=implementation).numpy()
    np.testing.assert_allclose(scaled, q, atol=1e-5)
