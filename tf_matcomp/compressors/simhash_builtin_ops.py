"""Simhash's projection R and sign unpacking in uint32 ops that are TFLite builtins.

The same bits as `ops.composites.counter_rng` (cc/core/counter_rng.h): each uint64 of the
SplitMix64 generator is held as a (high, low) pair of uint32 and computed with wrapping MUL,
ADD, RIGHT_SHIFT and BITWISE_XOR only (TFLite has no uint64 arithmetic and no BITWISE_AND);
a left shift is a multiply by a power of two, a mask a shift pair. The stripped simhash layers
use these so that a `.tflite` of them converts with builtin ops, keeping only the packed signs
and the scales (R is regenerated at run time, never stored).
"""

import tensorflow as tf

from tf_matcomp import constants
from tf_matcomp.compressors import bit_packing
from tf_matcomp.ops.composites import counter_rng

_MASK32 = (1 << 32) - 1


def _u32(value: int) -> tf.Tensor:
    return tf.constant(value & _MASK32, tf.uint32)


def _shl(x: tf.Tensor, bits: int) -> tf.Tensor:
    """x << bits (bits < 32), wrapping."""
    return x * _u32(1 << bits)


def _shr(x: tf.Tensor, bits: int) -> tf.Tensor:
    return tf.bitwise.right_shift(x, _u32(bits))


def _low_bits(x: tf.Tensor, bits: int) -> tf.Tensor:
    """x mod 2^bits."""
    return _shr(_shl(x, 32 - bits), 32 - bits)


def _mul_high(a: tf.Tensor, b: int) -> tf.Tensor:
    """The high 32 bits of the 64-bit product a·b, from 16-bit halves."""
    a0, a1, b0, b1 = _low_bits(a, 16), _shr(a, 16), _u32(b & 0xFFFF), _u32(b >> 16)
    p01, p10 = a0 * b1, a1 * b0
    middle = _shr(a0 * b0, 16) + _low_bits(p01, 16) + _low_bits(p10, 16)
    return a1 * b1 + _shr(p01, 16) + _shr(p10, 16) + _shr(middle, 16)


def _mul64(high, low, constant: int):
    """(high, low) · constant mod 2^64."""
    c_high, c_low = constant >> 32, constant & _MASK32
    return high * _u32(c_low) + low * _u32(c_high) + _mul_high(low, c_low), low * _u32(c_low)


def _add64(high, low, constant: int):
    c_high, c_low = constant >> 32, constant & _MASK32
    carry = _shr(_shr(low, 1) + _u32(c_low >> 1) + _low_bits(low, 1) * _u32(c_low & 1), 31)
    return high + _u32(c_high) + carry, low + _u32(c_low)


def _xor_shift(high, low, bits: int):
    """z ^ (z >> bits) for 0 < bits < 32."""
    return (
        tf.bitwise.bitwise_xor(high, _shr(high, bits)),
        tf.bitwise.bitwise_xor(low, _shr(low, bits) + _shl(high, 32 - bits)),
    )


def _byte_sum(x: tf.Tensor) -> tf.Tensor:
    return sum(_shr(_shl(x, 24 - 8 * i), 24) for i in range(4))


def _hash(high: tf.Tensor, low: tf.Tensor, seed: int):
    """(high, low) words of mix(key + (high·2³² + low)·G), the generator's hash of a counter."""
    high, low = _mul64(high, low, constants.GOLDEN_GAMMA)
    high, low = _add64(high, low, counter_rng.projection_key(seed))
    high, low = _mul64(*_xor_shift(high, low, 30), 0xBF58476D1CE4E5B9)
    high, low = _mul64(*_xor_shift(high, low, 27), 0x94D049BB133111EB)
    return _xor_shift(high, low, 31)


def projection(
    rows: tf.Tensor, cols: tf.Tensor, seed: int, dtype: tf.DType, num_rows: int = 0
) -> tf.Tensor:
    """R[rows, cols] [len(rows), len(cols)] for int32 index vectors, bit-identical to
    `counter_rng.projection`. (Indices computed at run time keep the converter from folding
    R into a stored constant.) `num_rows` is unused: the Gaussian R does not depend on it."""
    del num_rows
    high = tf.cast(rows, tf.uint32)[:, None] + tf.zeros([1, 1], tf.uint32)
    low = tf.cast(cols, tf.uint32)[None, :] + tf.zeros([1, 1], tf.uint32)
    high, low = _hash(high, low, seed)
    integers = tf.cast(_byte_sum(high) + _byte_sum(low), tf.int32) - constants.BYTE_SUM_OFFSET
    return tf.cast(integers, dtype) * tf.constant(constants.PROJECTION_SCALE, dtype)


def hadamard_projection(
    rows: tf.Tensor, cols: tf.Tensor, seed: int, dtype: tf.DType, num_rows: int
) -> tf.Tensor:
    """The structured R[rows, cols] for a matrix of `num_rows` rows, bit-identical to
    `counter_rng.hadamard_projection`: σ_q(i) from the top bit of the hash of (i, q), times
    (−1)^popcount(i & t), the parity summed bit by bit with shifts (no BITWISE_AND in TFLite)."""
    log_block = max(int(num_rows) - 1, 0).bit_length()  # L = 2^log_block
    rows = tf.cast(rows, tf.uint32)[:, None] + tf.zeros([1, 1], tf.uint32)
    cols = tf.cast(cols, tf.uint32)[None, :] + tf.zeros([1, 1], tf.uint32)
    block, within = _shr(cols, log_block), _low_bits(cols, log_block) if log_block else cols * 0
    high, _ = _hash(rows, block, seed)
    flips = _shr(high, 31)  # σ_q(i) < 0
    for bit in range(log_block):
        flips += _low_bits(_shr(rows, bit), 1) * _low_bits(_shr(within, bit), 1)
    return tf.cast(_low_bits(flips, 1), dtype) * tf.constant(-2, dtype) + tf.constant(1, dtype)


def unpack_signs(signs: tf.Tensor, num_columns: int, dtype: tf.DType) -> tf.Tensor:
    """uint8 [k, ceil(n/8)] → ±1 [k, n] (column j is bit j % 8 of byte j // 8)."""
    bits = bit_packing.unpack_bits(signs)[:, :num_columns]
    return tf.cast(bits, dtype) * 2 - 1
