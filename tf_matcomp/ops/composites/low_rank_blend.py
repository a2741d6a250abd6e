"""Composite LowRankBlend: W = alpha * A + (1 - alpha) * B @ C."""

import tensorflow as tf


def low_rank_blend(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """As the kernel: alpha must be a scalar (checked at run time when its rank is unknown),
    and with k = 0 there is no product term, so W = alpha·A even for an infinite alpha."""
    rank_check = tf.debugging.assert_rank(
        alpha, 0, message="LowRankBlend: `alpha` must be a scalar"
    )  # an alpha of unknown rank, e.g. [2, 1], fails here instead of broadcasting
    with tf.control_dependencies([rank_check] if rank_check is not None else []):
        alpha = tf.identity(alpha)
    if b.shape[1] == 0:
        return alpha * a
    return alpha * a + (1 - alpha) * tf.matmul(b, c)
