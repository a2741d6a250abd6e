"""Composite LowRankBlend: W = alpha * A + (1 - alpha) * B @ C."""

import tensorflow as tf


def low_rank_blend(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    return alpha * a + (1 - alpha) * tf.matmul(b, c)
