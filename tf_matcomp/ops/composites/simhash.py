"""Composite SimhashCompress / SimhashDecompress: the pure-TF twins of the kernels, XLA-compilable.

Same formulas, bit order and generator as cc/core/simhash.h; R is bit-identical to the kernel's,
while the products are summed in another order, so a sign may differ from the kernel's where
|RᵀA| is within rounding noise of zero, and scales differ by rounding. `projection` "gaussian"
forms R and uses matmuls; "hadamard" never forms R (composites/hadamard.py) and needs the rows
of `a` known when the graph is built.
"""

import tensorflow as tf

from tf_matcomp.ops.composites import counter_rng, hadamard

_BIT_WEIGHTS = [1 << bit for bit in range(8)]  # bit b of a byte holds column 8·byte + b


def packed_width(num_columns):
    """Bytes per packed row: ceil(num_columns / 8)."""
    return (num_columns + 7) // 8


def pack_signs(positive: tf.Tensor) -> tf.Tensor:
    """bool [k, n] → uint8 [k, ceil(n/8)]; column j is bit j % 8 (LSB first) of byte j // 8."""
    num_columns = tf.shape(positive)[1]
    padding = packed_width(num_columns) * 8 - num_columns
    bits = tf.pad(tf.cast(positive, tf.int32), [[0, 0], [0, padding]])
    bits = tf.reshape(bits, [tf.shape(bits)[0], -1, 8])
    return tf.cast(tf.reduce_sum(bits * _BIT_WEIGHTS, axis=-1), tf.uint8)


def unpack_signs(signs: tf.Tensor, num_columns, dtype: tf.DType) -> tf.Tensor:
    """uint8 [k, ceil(n/8)] → ±1 [k, n] of `dtype` (padding bits ignored)."""
    bits = tf.bitwise.bitwise_and(tf.cast(signs, tf.int32)[:, :, None], _BIT_WEIGHTS) > 0
    bits = tf.reshape(bits, [tf.shape(signs)[0], -1])[:, :num_columns]
    return tf.where(bits, tf.constant(1, dtype), tf.constant(-1, dtype))


def _squared_norms_of_rs(r: tf.Tensor, s: tf.Tensor) -> tf.Tensor:
    """‖(R S)_j‖² for every column j, through RᵀR when that is cheaper than forming R S.

    Through the Gram matrix: k·k·m + k·k·n multiply-adds; directly: m·k·n.
    """
    m, k, n = tf.shape(r, tf.int64)[0], tf.shape(r, tf.int64)[1], tf.shape(s, tf.int64)[1]

    def through_gram():
        gram = tf.matmul(r, r, transpose_a=True)
        return tf.reduce_sum(s * tf.matmul(gram, s), axis=0)

    def directly():
        return tf.reduce_sum(tf.square(tf.matmul(r, s)), axis=0)

    return tf.cond(k * (m + n) < m * n, through_gram, directly)


def projection(num_rows, num_bits: int, seed: int, dtype: tf.DType, kind: str) -> tf.Tensor:
    """R [num_rows, num_bits] of either kind (bit-identical to the kernels')."""
    if kind == "hadamard":
        return counter_rng.hadamard_projection(num_rows, num_bits, seed, dtype)
    return counter_rng.projection(num_rows, num_bits, seed, dtype)


def simhash_compress(a: tf.Tensor, num_bits: int, seed: int, scale: str, kind: str = "gaussian"):
    """Returns (signs uint8 [num_bits, ceil(n/8)], scales [n]) for a [m, n]; see ops.simhash."""
    a = tf.debugging.check_numerics(a, "SimhashCompress: `a` must contain only finite values")
    if kind == "hadamard":
        projected = hadamard.transpose_times(a, num_bits, seed)
    else:
        r = counter_rng.projection(tf.shape(a)[0], num_bits, seed, a.dtype)
        projected = tf.matmul(r, a, transpose_a=True)  # P = Rᵀ A, [k, n]
    positive = projected >= 0  # sign(0) = +1
    s = tf.where(positive, tf.constant(1, a.dtype), tf.constant(-1, a.dtype))
    if kind == "hadamard":
        squared_norms = tf.reduce_sum(
            tf.square(hadamard.times(s, num_bits, int(a.shape[0]), seed)), axis=0
        )
    else:
        squared_norms = _squared_norms_of_rs(r, s)
    if scale == "least_squares":
        # ⟨A_j, R S_j⟩ = S_jᵀ Rᵀ A_j = Σ_b |P_bj|: no product with R S needed.
        scales = tf.math.divide_no_nan(tf.reduce_sum(tf.abs(projected), axis=0), squared_norms)
    else:  # "norm": the peer's ‖A_j‖ / ‖(R S)_j‖
        scales = tf.math.divide_no_nan(tf.norm(a, axis=0), tf.sqrt(squared_norms))
    scales = tf.debugging.check_numerics(
        scales,
        "SimhashCompress: `a` must contain only finite values (got NaN or infinity in `a`, or "
        "Rᵀa overflows)",
    )
    return pack_signs(positive), scales


def simhash_decompress(
    signs: tf.Tensor, scales: tf.Tensor, num_rows: int, seed: int, kind: str = "gaussian"
) -> tf.Tensor:
    """Â = R · S · diag(scales), [num_rows, n]."""
    num_columns = tf.shape(scales)[0]
    with tf.control_dependencies(
        [
            tf.debugging.assert_equal(
                tf.shape(signs)[1],
                packed_width(num_columns),
                message="SimhashDecompress: `signs` must have ceil(n / 8) columns for `scales` of "
                "length n",
            ),
            tf.debugging.assert_positive(
                tf.shape(signs)[0],
                message="SimhashDecompress: `signs` must have at least one row (num_bits >= 1)",
            ),
        ]
    ):
        s = unpack_signs(signs, num_columns, scales.dtype)
    if kind == "hadamard":
        return hadamard.times(s * scales[None, :], int(signs.shape[0]), num_rows, seed)
    r = counter_rng.projection(num_rows, tf.shape(signs)[0], seed, scales.dtype)
    return tf.matmul(r, s * scales[None, :])


def scales_gradient(
    signs: tf.Tensor, scales: tf.Tensor, grad: tf.Tensor, seed: int, kind: str = "gaussian"
) -> tf.Tensor:
    """d⟨grad, Â⟩/d scales_j = ⟨grad_j, R S_j⟩ = Σ_b S_bj (Rᵀ grad)_bj, for the native op."""
    s = unpack_signs(signs, tf.shape(scales)[0], scales.dtype)
    if kind == "hadamard":
        return tf.reduce_sum(s * hadamard.transpose_times(grad, int(signs.shape[0]), seed), axis=0)
    r = counter_rng.projection(tf.shape(grad)[0], tf.shape(signs)[0], seed, scales.dtype)
    return tf.reduce_sum(s * tf.matmul(r, grad, transpose_a=True), axis=0)
