"""`householder_q`: the Q factor of a thin Householder QR, native kernel or `tf.linalg.qr`."""

import numpy as np
import tensorflow as tf

from tf_matcomp.ops import _dispatch, _validation


def householder_q(y, implementation: str = "auto", name=None) -> tf.Tensor:
    """Returns Q [m, n] with orthonormal columns, y = Q·R with R upper triangular.

    The Q of `tf.linalg.qr(y)` (the same Householder reflectors, so the same signs to rounding):
    the native kernel is blocked and runs on all of the op's CPU threads, where TF's QR uses
    one. It has no gradient (nothing in the package differentiates through a QR).

    Args:
      y: [m, n] float32 or float64 matrix, m >= n.
      implementation: "native" (the C++ kernel, CPU only), "composite" (`tf.linalg.qr`,
        XLA-compilable) or "auto" (native where loaded, not XLA-compiled and on the CPU; on a
        GPU `tf.linalg.qr`, cuSOLVER's, which uses the whole device).
      name: optional name scope.

    Raises:
      ValueError: a rank, dtype or statically known shape breaks the rules above.
      tf.errors.InvalidArgumentError: the same, found only at run time.
    """
    _dispatch.check_implementation(implementation)
    with tf.name_scope(name or "householder_q"):
        y = _validation.as_single_or_double_tensor(y, "y")
        _validation.require_rank(y, 2, "y")
        rows, cols = y.shape if y.shape.rank == 2 else (None, None)
        if rows is not None and cols is not None and rows < cols:
            raise ValueError(f"`y` must have at least as many rows as columns, got shape {y.shape}")
        return _dispatch.dispatch(
            "householder_q",
            implementation,
            lambda lib: lib.matcomp_householder_q(y),
            lambda: _composite(y),
            gpu_kernel=False,
        )


def _composite(y: tf.Tensor) -> tf.Tensor:
    # tf.linalg.qr takes m < n too; the rule is the kernel's, checked at run time as there.
    rows, cols = tf.shape(y)[0], tf.shape(y)[1]
    with tf.control_dependencies(
        [
            tf.debugging.assert_greater_equal(
                rows, cols, message="`y` must have at least as many rows as columns"
            )
        ]
    ):
        return tf.linalg.qr(_scaled_largest_near_one(y))[0]


def _scaled_largest_near_one(y: tf.Tensor) -> tf.Tensor:
    """y times the power of two that brings its largest |entry| near 1, as the kernel scales it
    (Q does not change; TF's QR squares the entries unscaled, so huge or denormal y would
    overflow or underflow); y with NaN or ±Inf, or all zeros, as it is."""
    largest = tf.reduce_max(tf.abs(y))
    usable = tf.math.is_finite(largest) & (largest > 0)
    shift = -tf.floor(tf.math.log(tf.where(usable, largest, tf.ones_like(largest))) / np.log(2.0))
    half = tf.floor(shift / 2)  # two factors: 2^shift alone can overflow
    return y * tf.pow(tf.constant(2, y.dtype), half) * tf.pow(tf.constant(2, y.dtype), shift - half)
