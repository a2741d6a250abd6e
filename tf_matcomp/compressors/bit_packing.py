"""Unsigned integers of a fixed bit width packed into bytes, and unpacked with TFLite builtins.

The layout simhash's packed signs use, for any width: value i occupies bits [i·width,
(i + 1)·width) of one bit stream, least significant bit first, and bit t of the stream is bit
t % 8 of byte t // 8 (`numpy.packbits(..., bitorder="little")`); the last byte's unused bits
are 0. Unpacking uses uint32 MUL and RIGHT_SHIFT, CAST and SUM only (TFLite has no
BITWISE_AND): a bit is isolated by shifting it to the top and back down.
"""

import numpy as np
import tensorflow as tf

BITS_PER_BYTE = 8


def bits_for(count: int) -> int:
    """The bits of a code taking `count` values: ceil(log2(count)); 0 for a single value."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    return (int(count) - 1).bit_length()


def packed_nbytes(count: int, width: int) -> int:
    """Bytes holding `count` values of `width` bits: ceil(count·width / 8)."""
    return -(-int(count) * int(width) // BITS_PER_BYTE)


def np_pack(values: np.ndarray, width: int) -> np.ndarray:
    """uint8 [packed_nbytes(len(values), width)] holding `values` (ints in [0, 2^width)).

    Raises:
      ValueError: a value is negative or needs more than `width` bits.
    """
    values = np.asarray(values, np.int64).reshape(-1)
    if values.size and (values.min() < 0 or values.max() >> width):
        raise ValueError(
            f"values must be in [0, 2^{width}) to pack in {width} bits, got "
            f"[{values.min()}, {values.max()}]"
        )
    bits = (values[:, None] >> np.arange(width)) & 1
    return np.packbits(bits.astype(np.uint8).reshape(-1), bitorder="little")


def unpack_bits(packed: tf.Tensor) -> tf.Tensor:
    """uint8 [..., b] → the bits, uint32 0/1 [..., b·8] (bit j of byte i at i·8 + j)."""
    to_top = tf.constant([1 << (31 - bit) for bit in range(BITS_PER_BYTE)], tf.uint32)
    shifted = tf.cast(packed, tf.uint32)[..., None] * to_top  # bit j moved to bit 31
    bits = tf.bitwise.right_shift(shifted, tf.constant(31, tf.uint32))
    return tf.reshape(bits, tf.concat([tf.shape(packed)[:-1], [-1]], 0))


def unpack(packed: tf.Tensor, count: int, width: int) -> tf.Tensor:
    """int32 [count]: the first `count` values of `width` (>= 1) bits in uint8 `packed` [b]."""
    bits = tf.cast(unpack_bits(packed)[: count * width], tf.int32)
    weights = tf.constant([1 << bit for bit in range(width)], tf.int32)
    return tf.reduce_sum(tf.reshape(bits, [count, width]) * weights, axis=1)
