"""`low_rank_blend`: W = alpha·A + (1 − alpha)·B·C, native kernel or TF composite."""

import tensorflow as tf

from tf_matcomp.ops import _dispatch, _validation
from tf_matcomp.ops.composites import low_rank_blend as composite

NATIVE_OP_NAME = "Matcomp>LowRankBlend"


def low_rank_blend(a, b, c, alpha, implementation: str = "auto", name=None) -> tf.Tensor:
    """Returns `alpha * a + (1 - alpha) * b @ c`.

    Args:
      a: [m, n] float16/bfloat16/float32/float64 matrix.
      b: [m, k] matrix of the same dtype.
      c: [k, n] matrix of the same dtype.
      alpha: scalar, converted to `a`'s dtype.
      implementation: "native" (the C++ kernel), "composite" (pure TF, XLA-compilable) or
        "auto" (native where loaded and not XLA-compiled, else composite).
      name: optional name scope.

    Raises:
      ValueError: a rank, dtype or statically known dimension breaks the rules above.
      tf.errors.InvalidArgumentError: the same, found only at run time.
    """
    _dispatch.check_implementation(implementation)
    with tf.name_scope(name or "low_rank_blend"):
        a = _validation.as_float_tensor(a, "a")
        b = _validation.as_float_tensor(b, "b", a.dtype)
        c = _validation.as_float_tensor(c, "c", a.dtype)
        alpha = _validation.as_float_tensor(alpha, "alpha", None)
        if alpha.dtype != a.dtype:
            alpha = tf.cast(alpha, a.dtype)
        for tensor, arg, rank in ((a, "a", 2), (b, "b", 2), (c, "c", 2), (alpha, "alpha", 0)):
            _validation.require_rank(tensor, rank, arg)
        _validation.require_equal_dims(a.shape[0], b.shape[0], "`b` must have as many rows as `a`")
        _validation.require_equal_dims(
            a.shape[1], c.shape[1], "`c` must have as many columns as `a`"
        )
        _validation.require_equal_dims(
            b.shape[1], c.shape[0], "`c` must have as many rows as `b` has columns"
        )
        return _dispatch.dispatch(
            "low_rank_blend",
            implementation,
            lambda lib: lib.matcomp_low_rank_blend(a, b, c, alpha),
            lambda: composite.low_rank_blend(a, b, c, alpha),
        )


@tf.RegisterGradient(NATIVE_OP_NAME)
def _low_rank_blend_grad(op, grad):
    """dA = α·g, dB = (1−α)·g·Cᵀ, dC = (1−α)·Bᵀ·g, dα = Σ g⊙(A − B·C)."""
    a, b, c, alpha = op.inputs
    beta = 1 - alpha
    bt_grad = tf.matmul(b, grad, transpose_a=True)
    grad_b = beta * tf.matmul(grad, c, transpose_b=True)
    grad_c = beta * bt_grad
    # Σ g⊙(B·C) = Σ (Bᵀ·g)⊙C: reuses Bᵀ·g and needs no m×n product.
    grad_alpha = tf.reduce_sum(grad * a) - tf.reduce_sum(bt_grad * c)
    return alpha * grad, grad_b, grad_c, grad_alpha
