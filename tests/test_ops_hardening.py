"""Op wrappers and composites on careless inputs: the same error as the kernel, never a silently
broadcast or NaN result."""

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import ops


@pytest.mark.parametrize("alpha_shape", [(1, 1), (2, 1), (1,)])
def test_alpha_of_unknown_rank_must_be_a_scalar_at_run_time(implementation, alpha_shape):
    a, b, c = np.ones((2, 3), np.float32), np.ones((2, 1), np.float32), np.ones((1, 3), np.float32)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def blend(alpha):
        return ops.low_rank_blend(a, b, c, alpha, implementation=implementation)

    with pytest.raises(tf.errors.InvalidArgumentError, match="alpha"):
        blend(np.full(alpha_shape, 0.5, np.float32))
    np.testing.assert_allclose(blend(np.float32(0.25)).numpy(), 0.25 * a + 0.75 * (b @ c))


@pytest.mark.parametrize("alpha", [np.inf, -np.inf, 2.0])
def test_an_empty_product_leaves_alpha_times_a(implementation, alpha):
    a = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
    w = ops.low_rank_blend(
        a,
        np.zeros((2, 0), np.float32),
        np.zeros((0, 2), np.float32),
        alpha,
        implementation=implementation,
    )
    np.testing.assert_array_equal(w.numpy(), np.float32(alpha) * a)


@pytest.mark.parametrize("dtype,value", [(np.float32, 3e38), (np.float64, 1e308)])
def test_overflowing_scales_raise_in_the_composite_too(dtype, value):
    a = np.ones((4, 4), dtype)
    a[1, 1] = value
    a[:, 0] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        ops.simhash_compress(a, 4, implementation="composite")


def test_decompress_gradient_rejects_an_upstream_gradient_of_the_wrong_shape():
    # The native op's registered gradient (the composite is differentiated by TF itself).
    implementation = "native"
    signs, scales = ops.simhash_compress(np.ones((6, 5), np.float32), 3)
    scales = tf.Variable(scales)
    for wrong in (np.ones((6, 1), np.float32), np.ones((3, 5), np.float32)):
        with tf.GradientTape() as tape:
            out = ops.simhash_decompress(signs, scales, 6, implementation=implementation)
        with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
            tape.gradient(out, scales, output_gradients=tf.constant(wrong))


@pytest.mark.parametrize("bad", [True, 2.5, 2**63])
def test_integer_attributes_refuse_bools_fractions_and_overflow(bad):
    with pytest.raises(ValueError, match="`num_bits` must be"):
        ops.simhash_compress(np.ones((4, 4), np.float32), bad)


def test_kmeans_composite_under_xla_gives_nan_for_values_beyond_the_bound():
    # XLA drops the run-time check; the codebook is then NaN, never finite from overflow.
    a = np.ones((4, 8), np.float64)
    a[0, 0] = 2e150
    quantize = tf.function(
        lambda x: ops.kmeans_quantize(x, 2, block_size=2, implementation="composite")[0],
        jit_compile=True,
    )
    assert np.isnan(quantize(a).numpy()).all()
    assert np.isfinite(quantize(np.ones((4, 8), np.float64)).numpy()).all()
