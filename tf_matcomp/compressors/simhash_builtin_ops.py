"""Simhash's projection R and sign unpacking in ops that are TFLite builtins.

The same bits as `ops.composites.counter_rng` (cc/core/counter_rng.h): each uint64 of the
SplitMix64 generator is held as a (high, low) pair of uint32 and computed with wrapping MUL,
RIGHT_SHIFT and BITWISE_XOR on uint32, and ADD on int32 (TFLite has no uint64 arithmetic, no
BITWISE_AND and no uint32 ADD); a left shift is a multiply by a power of two, a mask a shift
pair. The stripped simhash layers use these so that a `.tflite` of them converts with builtin
ops, keeping only the packed signs and the scales (R is regenerated at run time, never stored).

Every op here is a few hundred bytes of graph in each layer's `.tflite`, whatever the layer's
size, so the formulas are written for few ops: sums run in int32 (one CAST per term, where the
converter would wrap every uint32 ADD in casts), disjoint bit fields are joined by XOR, bytes
and bits are taken along a new axis by one MUL and one RIGHT_SHIFT.
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
    return tf.bitwise.right_shift(x, tf.constant(bits, x.dtype))


def _low_bits(x: tf.Tensor, bits: int) -> tf.Tensor:
    """x mod 2^bits."""
    return _shr(_shl(x, 32 - bits), 32 - bits)


def _as_int32(x: tf.Tensor) -> tf.Tensor:
    return x if x.dtype == tf.int32 else tf.cast(x, tf.int32)


def _wrapping_sum(terms, constant: int = 0) -> tf.Tensor:
    """(Σ terms + constant) mod 2^32 as uint32, the terms broadcasting. The ADDs run in int32,
    whose wrapping sum has the same bits."""
    total = _as_int32(terms[0])
    for term in terms[1:]:
        total += _as_int32(term)
    constant &= _MASK32
    if constant:
        total += tf.constant(constant - (1 << 32) if constant >> 31 else constant, tf.int32)
    return tf.cast(total, tf.uint32)


def _mul_high_terms(a: tf.Tensor, b: int) -> list:
    """Terms summing exactly to the high 32 bits of the 64-bit product a·b, from 16-bit halves:
    a1·b1 + ⌊p01/2¹⁶⌋ + ⌊p10/2¹⁶⌋ + ⌊(⌊p00/2¹⁶⌋ + p01 mod 2¹⁶ + p10 mod 2¹⁶)/2¹⁶⌋."""
    a0, a1, b0, b1 = _low_bits(a, 16), _shr(a, 16), _u32(b & 0xFFFF), _u32(b >> 16)
    p01, p10 = a0 * b1, a1 * b0
    carries = _as_int32(_shr(a0 * b0, 16)) + _as_int32(_low_bits(p01, 16))
    carries += _as_int32(_low_bits(p10, 16))  # < 3·2¹⁶: int32's arithmetic shift is exact
    return [a1 * b1, _shr(p01, 16), _shr(p10, 16), _shr(carries, 16)]


def _mul64(high, low, constant: int):
    """(high, low) · constant mod 2^64."""
    c_high, c_low = constant >> 32, constant & _MASK32
    terms = [high * _u32(c_low), low * _u32(c_high)] + _mul_high_terms(low, c_low)
    return _wrapping_sum(terms), low * _u32(c_low)


def _add64(high, low, constant: int):
    """(high, low) + constant mod 2^64; the carry is bit 31 of ⌊low/2⌋ + ⌊c/2⌋ + (low·c mod 2)."""
    c_high, c_low = constant >> 32, constant & _MASK32
    halves = [_shr(low, 1)] + ([_low_bits(low, 1)] if c_low & 1 else [])
    carry = _shr(_wrapping_sum(halves, c_low >> 1), 31)
    return _wrapping_sum([high, carry], c_high), _wrapping_sum([low], c_low)


def _xor_shift(high, low, bits: int):
    """z ^ (z >> bits) for 0 < bits < 32 (the two parts of the shifted low word are disjoint)."""
    shifted_low = tf.bitwise.bitwise_xor(_shr(low, bits), _shl(high, 32 - bits))
    return (
        tf.bitwise.bitwise_xor(high, _shr(high, bits)),
        tf.bitwise.bitwise_xor(low, shifted_low),
    )


def _byte_sum(x: tf.Tensor) -> tf.Tensor:
    """int32 sum of the 4 bytes of each uint32: every byte moved to the top and back down along
    a new axis, then one SUM."""
    to_top = tf.constant([1 << (24 - 8 * i) for i in range(4)], tf.uint32)
    return tf.reduce_sum(_as_int32(_shr(x[..., None] * to_top, 24)), axis=-1)


def _bits(x: tf.Tensor, count: int, dtype: tf.DType) -> tf.Tensor:
    """Bits 0..count-1 of a uint32 vector [n] as 0/1 of `dtype` [n, count]."""
    to_top = tf.constant([1 << (31 - bit) for bit in range(count)], tf.uint32)
    return tf.cast(_shr(x[:, None] * to_top, 31), dtype)


def _hash(high: tf.Tensor, low: tf.Tensor, seed: int):
    """(high, low) words of mix(key + (high·2³² + low)·G), the generator's hash of a counter."""
    high, low = _mul64(high, low, constants.GOLDEN_GAMMA)
    high, low = _add64(high, low, counter_rng.projection_key(seed))
    high, low = _mul64(*_xor_shift(high, low, 30), 0xBF58476D1CE4E5B9)
    high, low = _mul64(*_xor_shift(high, low, 27), 0x94D049BB133111EB)
    return _xor_shift(high, low, 31)


def _counters(rows: tf.Tensor, cols: tf.Tensor):
    """The (high, low) words of the counters rows[i]·2³² + cols[j], as [len(rows), 1] and
    [1, len(cols)]: the first products broadcast them."""
    return tf.cast(rows, tf.uint32)[:, None], tf.cast(cols, tf.uint32)[None, :]


def projection(
    rows: tf.Tensor, cols: tf.Tensor, seed: int, dtype: tf.DType, num_rows: int = 0
) -> tf.Tensor:
    """R[rows, cols] [len(rows), len(cols)] for int32 index vectors, bit-identical to
    `counter_rng.projection`. (Indices computed at run time keep the converter from folding
    R into a stored constant.) `num_rows` is unused: the Gaussian R does not depend on it."""
    del num_rows
    high, low = _hash(*_counters(rows, cols), seed)
    integers = _byte_sum(high) + _byte_sum(low) - constants.BYTE_SUM_OFFSET
    return tf.cast(integers, dtype) * tf.constant(constants.PROJECTION_SCALE, dtype)


def hadamard_projection(
    rows: tf.Tensor, cols: tf.Tensor, seed: int, dtype: tf.DType, num_rows: int
) -> tf.Tensor:
    """The structured R[rows, cols] for a matrix of `num_rows` rows, bit-identical to
    `counter_rng.hadamard_projection`: σ_q(i) from the top bit of the hash of (i, q), times
    (−1)^popcount(i & t). popcount(i & t) is the product of the 0/1 bit matrices of i and t, one
    float MATMUL (exact: its sums are at most 32)."""
    log_block = max(int(num_rows) - 1, 0).bit_length()  # L = 2^log_block
    high, block = _counters(rows, _shr(cols, log_block) if log_block else cols)
    negative, _ = _hash(high, block, seed)
    flips = tf.cast(_shr(negative, 31), tf.float32)  # σ_q(i) < 0
    if log_block:
        within = _low_bits(tf.cast(cols, tf.uint32), log_block)
        row_bits = _bits(tf.cast(rows, tf.uint32), log_block, tf.float32)
        flips += tf.matmul(row_bits, _bits(within, log_block, tf.float32), transpose_b=True)
    odd = _low_bits(tf.cast(flips, tf.uint32), 1)
    return tf.cast(odd, dtype) * tf.constant(-2, dtype) + tf.constant(1, dtype)


def unpack_signs(signs: tf.Tensor, num_columns: int, dtype: tf.DType) -> tf.Tensor:
    """uint8 [k, ceil(n/8)] → ±1 [k, n] (column j is bit j % 8 of byte j // 8)."""
    bits = bit_packing.unpack_bits(signs)[:, :num_columns]
    return tf.cast(bits, dtype) * 2 - 1
