"""The counter-based projection generator of cc/core/counter_rng.h in TF ops, bit-exact with it.

R[row, col] is a pure function of (seed, row, col); see cc/core/counter_rng.h for the definition
and the distribution (mean 0, variance 1, a sum of 8 uniform bytes). Only uint64 integer ops and
one multiply in the output dtype, all of which XLA compiles with the same results.
"""

import tensorflow as tf

from tf_matcomp import constants

# The generator's constants (cc/core/constants.h).
GOLDEN_GAMMA = constants.GOLDEN_GAMMA
BYTE_SUM_OFFSET = constants.BYTE_SUM_OFFSET
PROJECTION_SCALE = constants.PROJECTION_SCALE
MAX_PROJECTION_INDEX = constants.MAX_PROJECTION_INDEX
_UINT64_MASK = (1 << 64) - 1


def _shift_right(x: tf.Tensor, bits: int) -> tf.Tensor:
    return tf.bitwise.right_shift(x, tf.constant(bits, tf.uint64))


def _mix64(z: tf.Tensor) -> tf.Tensor:
    """The SplitMix64 finalizer on a uint64 tensor (wrapping multiplies)."""
    z = tf.bitwise.bitwise_xor(z, _shift_right(z, 30)) * tf.constant(0xBF58476D1CE4E5B9, tf.uint64)
    z = tf.bitwise.bitwise_xor(z, _shift_right(z, 27)) * tf.constant(0x94D049BB133111EB, tf.uint64)
    return tf.bitwise.bitwise_xor(z, _shift_right(z, 31))


def projection_key(seed: int) -> int:
    """mix64(seed + golden gamma), computed in Python: a constant of the graph."""
    z = (seed + GOLDEN_GAMMA) & _UINT64_MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _UINT64_MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _UINT64_MASK
    return z ^ (z >> 31)


def _byte_sum(h: tf.Tensor) -> tf.Tensor:
    """Sum of the 8 bytes of each uint64, by halving the lane width (8 → 16 → 32 → 64 bits)."""

    def lanes(x, mask, shift):
        mask = tf.constant(mask, tf.uint64)
        return tf.bitwise.bitwise_and(x, mask) + tf.bitwise.bitwise_and(
            _shift_right(x, shift), mask
        )

    s = lanes(h, 0x00FF00FF00FF00FF, 8)
    s = lanes(s, 0x0000FFFF0000FFFF, 16)
    return lanes(s, 0x00000000FFFFFFFF, 32)


def projection_integers(num_rows, num_bits, seed: int) -> tf.Tensor:
    """K [num_rows, num_bits] int32 in [−1020, 1020]: the integer part of R (R = K · scale)."""
    rows = tf.cast(tf.range(tf.cast(num_rows, tf.int64)), tf.uint64)
    cols = tf.cast(tf.range(tf.cast(num_bits, tf.int64)), tf.uint64)
    counter = tf.bitwise.bitwise_or(
        tf.bitwise.left_shift(rows, tf.constant(32, tf.uint64))[:, None], cols[None, :]
    )
    h = _mix64(
        tf.constant(projection_key(seed), tf.uint64)
        + counter * tf.constant(GOLDEN_GAMMA, tf.uint64)
    )
    return tf.cast(_byte_sum(h), tf.int32) - BYTE_SUM_OFFSET


def projection(num_rows, num_bits, seed: int, dtype: tf.DType) -> tf.Tensor:
    """R [num_rows, num_bits] of `dtype`: one correctly rounded multiply of the exact integer."""
    integers = tf.cast(projection_integers(num_rows, num_bits, seed), dtype)
    return integers * tf.constant(PROJECTION_SCALE, dtype)


def _parity(x: tf.Tensor) -> tf.Tensor:
    """popcount(x) mod 2 of a uint64 tensor, by xor folding (as cc/core/hadamard.h)."""
    for bits in (32, 16, 8, 4, 2, 1):
        x = tf.bitwise.bitwise_xor(x, _shift_right(x, bits))
    return tf.bitwise.bitwise_and(x, tf.constant(1, tf.uint64))


def hadamard_row_negative(rows: tf.Tensor, blocks: tf.Tensor, seed: int) -> tf.Tensor:
    """σ_q(i) < 0 (bool) for uint64 row indices i and block indices q (broadcast together): the
    top bit of mix(key + (i·2³² + q)·G) (cc/core/hadamard.h)."""
    counter = tf.bitwise.bitwise_or(tf.bitwise.left_shift(rows, tf.constant(32, tf.uint64)), blocks)
    h = _mix64(
        tf.constant(projection_key(seed), tf.uint64)
        + counter * tf.constant(GOLDEN_GAMMA, tf.uint64)
    )
    return tf.not_equal(_shift_right(h, 63), tf.constant(0, tf.uint64))


def row_indices(num_rows) -> tf.Tensor:
    """0..num_rows−1 as uint64."""
    return tf.cast(tf.range(tf.cast(num_rows, tf.int64)), tf.uint64)


def hadamard_block(num_rows: int) -> int:
    """L: the smallest power of two >= num_rows (1 for num_rows <= 1), bits per block."""
    return 1 << max(int(num_rows) - 1, 0).bit_length()


def hadamard_projection(num_rows: int, num_bits: int, seed: int, dtype: tf.DType) -> tf.Tensor:
    """R [num_rows, num_bits] of the structured projection: R[i, qL + t] = σ_q(i)·(−1)^|i & t|."""
    block = hadamard_block(num_rows)
    cols = tf.cast(tf.range(num_bits, dtype=tf.int64), tf.uint64)
    rows = row_indices(num_rows)[:, None]
    block_of = tf.constant(block, tf.uint64)
    parity = _parity(tf.bitwise.bitwise_and(rows, (cols % block_of)[None]))
    negative = hadamard_row_negative(rows, (cols // block_of)[None], seed)
    flipped = tf.not_equal(negative, tf.equal(parity, tf.constant(1, tf.uint64)))
    return tf.where(flipped, tf.constant(-1, dtype), tf.constant(1, dtype))
