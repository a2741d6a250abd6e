"""The structured simhash projection (cc/core/hadamard.h) applied in TF ops, XLA-compilable.

R [m, k] is never formed: Rᵀ·A is, per block of bits, a signed fold of A's rows followed by a
Walsh–Hadamard transform H_F, and R·X is H_F·[X; 0] unfolded over the rows with the signs.
H_F = H_F1 ⊗ H_F2 (F = F1·F2) is applied as two small matmuls, so the cost is
2·(F1 + F2)·F·n flops per block instead of the 2·m·F·n of a dense product. The block structure
follows the number of rows, which must therefore be known when the graph is built.
"""

from typing import List

import numpy as np
import tensorflow as tf

from tf_matcomp.ops.composites import counter_rng


def _blocks(num_rows: int, num_bits: int) -> List[int]:
    """Bits in each block (L = hadamard_block(num_rows) each, the last maybe fewer)."""
    block = counter_rng.hadamard_block(num_rows)
    return [min(block, num_bits - start) for start in range(0, num_bits, block)]


def _fold_length(bits: int) -> int:
    """F: the smallest power of two >= bits."""
    return 1 << max(bits - 1, 0).bit_length()


def _sylvester(order: int) -> np.ndarray:
    """H_order[r, c] = (−1)^popcount(r & c)."""
    index = np.arange(order)
    bits = np.bitwise_and(index[:, None], index[None, :])
    parity = np.zeros_like(bits)
    while bits.any():
        parity ^= bits & 1
        bits >>= 1
    return 1 - 2 * parity


def transform(x: tf.Tensor, length: int) -> tf.Tensor:
    """H_length · x for x [length, n] (length a power of two), as H_F1 ⊗ H_F2."""
    low = 1 << ((length.bit_length() - 1) // 2)  # F2, the factor of the low index bits
    high = length // low
    h_high = tf.constant(_sylvester(high), x.dtype)
    h_low = tf.constant(_sylvester(low), x.dtype)
    y = tf.reshape(x, [high, low, -1])
    y = tf.einsum("ab,bcn->acn", h_high, y)
    y = tf.einsum("cd,adn->acn", h_low, y)
    return tf.reshape(y, [length, -1])


def _row_signs(num_rows: int, block: int, seed: int, dtype: tf.DType) -> tf.Tensor:
    """σ_q(i) as ±1 [num_rows, 1]."""
    negative = counter_rng.hadamard_row_negative(
        counter_rng.row_indices(num_rows), tf.constant(block, tf.uint64), seed
    )
    return tf.where(negative, tf.constant(-1, dtype), tf.constant(1, dtype))[:, None]


def transpose_times(a: tf.Tensor, num_bits: int, seed: int) -> tf.Tensor:
    """Rᵀ · a [num_bits, n] for a [m, n] with m static."""
    num_rows = int(a.shape[0])
    if num_rows == 0:  # R has no rows: Rᵀ a = 0
        return tf.zeros([num_bits, tf.shape(a)[1]], a.dtype)
    parts = []
    for q, bits in enumerate(_blocks(num_rows, num_bits)):
        length = _fold_length(bits)
        signed = a * _row_signs(num_rows, q, seed, a.dtype)
        padded_rows = -(-num_rows // length) * length
        signed = tf.pad(signed, [[0, padded_rows - num_rows], [0, 0]])
        fold = tf.reduce_sum(tf.reshape(signed, [padded_rows // length, length, -1]), axis=0)
        parts.append(transform(fold, length)[:bits])
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def times(x: tf.Tensor, num_bits: int, num_rows: int, seed: int) -> tf.Tensor:
    """R · x [num_rows, n] for x [num_bits, n]."""
    if num_rows == 0:
        return tf.zeros([0, tf.shape(x)[1]], x.dtype)
    total, start = None, 0
    for q, bits in enumerate(_blocks(num_rows, num_bits)):
        length = _fold_length(bits)
        transformed = transform(
            tf.pad(x[start : start + bits], [[0, length - bits], [0, 0]]), length
        )
        copies = -(-num_rows // length)
        unfolded = tf.tile(transformed, [copies, 1])[:num_rows]
        term = unfolded * _row_signs(num_rows, q, seed, x.dtype)
        total = term if total is None else total + term
        start += bits
    return total
