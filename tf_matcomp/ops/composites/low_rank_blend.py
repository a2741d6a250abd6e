"""Composite LowRankBlend: W = alpha * A + (1 - alpha) * B @ C."""

import tensorflow as tf


def _run_time_checks(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, alpha: tf.Tensor):
    """The kernel's shape rules on what is only known at run time (none are left under XLA,
    where every shape is static and the wrapper checked them): without them, a [2, 1] `a`
    with a [1, 0] product would broadcast to a [2, 0] result."""
    checks = [
        tf.debugging.assert_rank(alpha, 0, message="LowRankBlend: `alpha` must be a scalar"),
        tf.debugging.assert_equal(
            tf.shape(a)[0],
            tf.shape(b)[0],
            message="LowRankBlend: `b` must have as many rows as `a`",
        ),
        tf.debugging.assert_equal(
            tf.shape(a)[1],
            tf.shape(c)[1],
            message="LowRankBlend: `c` must have as many columns as `a`",
        ),
        tf.debugging.assert_equal(
            tf.shape(b)[1],
            tf.shape(c)[0],
            message="LowRankBlend: `c` must have as many rows as `b` has columns",
        ),
    ]
    return [check for check in checks if check is not None]  # None: passed statically (eager)


def low_rank_blend(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """As the kernel: alpha must be a scalar and the shapes must agree (checked at run time
    when not known before), and with k = 0 there is no product term, so W = alpha·A even for
    an infinite alpha."""
    with tf.control_dependencies(_run_time_checks(a, b, c, alpha)):
        alpha = tf.identity(alpha)
    k = b.shape[1]
    if k == 0:
        return alpha * a
    if k is None:  # decided at run time, as the kernel does
        return tf.cond(
            tf.shape(b)[1] > 0,
            lambda: alpha * a + (1 - alpha) * tf.matmul(b, c),
            lambda: alpha * a,
        )
    return alpha * a + (1 - alpha) * tf.matmul(b, c)
