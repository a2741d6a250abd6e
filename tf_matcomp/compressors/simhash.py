"""Simhash compression (compression_option 2): Â = R · S · diag(D).

With A [m, n] and r the `rank` hparam (a compression factor ×100):

    k = floor(min(m, n) · 100 / r) + 1                 sign bits per column
    R [m, k]: fixed pseudo-random projection, regenerated from `seed` (never stored;
              the counter-based generator of cc/core/counter_rng.h, mean 0, variance 1)
    S = sign(Rᵀ A) [k, n], sign(0) = +1               stored packed: uint8 [k, ceil(n/8)]
    D_j = ⟨A_j, (R S)_j⟩ / ‖(R S)_j‖²                 least-squares column scale (default), or
    D_j = ‖A_j‖ / ‖(R S)_j‖                            the peer's norm matching (scale="norm")

The least-squares scale is the best multiple of each column's direction, so the error is never
above ‖A‖ (the peer's norm matching reaches ≈1.12·‖A‖ at k = m/4). Stored: k·ceil(n/8) bytes of
signs plus n scales. The TF path runs the `simhash_compress` op (native kernel, or its composite
under XLA); the NumPy path computes the same R bit for bit.
"""
from typing import List, Sequence

import numpy as np
import tensorflow as tf

from tf_matcomp import ops
from tf_matcomp.compressors import base
from tf_matcomp.ops.composites import counter_rng
from tf_matcomp.ops.composites import simhash as simhash_composite

SCALES = ("least_squares", "norm")
DEFAULT_SEED = 42
_U64 = np.uint64


def num_bits_for(m: int, n: int, rank: int) -> int:
    """k = floor(min(m, n) · 100 / rank) + 1."""
    return int(min(m, n) * 100 // rank) + 1


def _np_mix64(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def np_projection(num_rows: int, num_bits: int, seed: int, dtype=np.float32) -> np.ndarray:
    """R [num_rows, num_bits], bit-identical to the kernel's and the composite's."""
    key = _U64(counter_rng.projection_key(seed))
    rows = np.arange(num_rows, dtype=_U64)[:, None]
    cols = np.arange(num_bits, dtype=_U64)[None, :]
    with np.errstate(over="ignore"):
        h = _np_mix64(key + ((rows << _U64(32)) | cols) * _U64(counter_rng.GOLDEN_GAMMA))
    byte_sum = np.zeros(h.shape, dtype=np.int32)
    for shift in range(0, 64, 8):
        byte_sum += ((h >> _U64(shift)) & _U64(0xFF)).astype(np.int32)
    integers = (byte_sum - counter_rng.BYTE_SUM_OFFSET).astype(dtype)
    return integers * dtype(counter_rng.PROJECTION_SCALE)


def np_pack_signs(positive: np.ndarray) -> np.ndarray:
    """bool [k, n] → uint8 [k, ceil(n/8)], column j in bit j % 8 (LSB first) of byte j // 8."""
    return np.packbits(positive, axis=1, bitorder="little")


def np_unpack_signs(signs: np.ndarray, num_columns: int, dtype=np.float32) -> np.ndarray:
    bits = np.unpackbits(signs, axis=1, count=num_columns, bitorder="little")
    return np.where(bits > 0, 1, -1).astype(dtype)


class SimhashMatrixCompressor(base.MatrixCompressorInterface):
    """Simhash: signs of k random projections per column plus one scale per column.

    Args:
      spec: compressor hparams; `rank` r gives k = floor(min(m, n)·100/r) + 1 bits per column;
        is_c_matrix_trainable decides whether the optimizer trains the scales.
      scale: "least_squares" (default) or "norm" (the peer's).
      seed: seed of the projection R.
    """

    def __init__(self, spec=None, scale: str = "least_squares", seed: int = DEFAULT_SEED) -> None:
        super().__init__(spec)
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        self._scale = scale
        self._seed = int(seed)

    @property
    def seed(self) -> int:
        return self._seed

    def num_bits(self, shape) -> int:
        m, n = base.matrix_shape(shape)
        return num_bits_for(m, n, self._spec.rank)

    def factor_specs(self, shape, dtype: tf.DType = tf.float32) -> List[base.FactorSpec]:
        m, n = base.matrix_shape(shape)
        k = num_bits_for(m, n, self._spec.rank)
        return [base.FactorSpec("signs", (k, (n + 7) // 8), tf.uint8, False),
                base.FactorSpec("scales", (n,), dtype, self._spec.is_c_matrix_trainable)]

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[signs uint8 [k, ceil(n/8)], scales [n]] in NumPy."""
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        m, n = a.shape
        k = num_bits_for(m, n, self._spec.rank)
        r = np_projection(m, k, self._seed, a.dtype.type)
        projected = r.T @ a
        positive = projected >= 0
        s = np.where(positive, 1, -1).astype(a.dtype)
        if k * (m + n) < m * n:
            squared = np.sum(s * ((r.T @ r) @ s), axis=0)
        else:
            squared = np.sum(np.square(r @ s), axis=0)
        if self._scale == "least_squares":
            numerator = np.sum(np.abs(projected), axis=0)
        else:
            numerator = np.linalg.norm(a, axis=0)
            squared = np.sqrt(squared)
        with np.errstate(divide="ignore", invalid="ignore"):
            scales = np.where(squared > 0, numerator / np.where(squared > 0, squared, 1), 0)
        return [np_pack_signs(positive), scales.astype(a.dtype)]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[signs, scales] through the `simhash_compress` op (composite under XLA)."""
        a = tf.convert_to_tensor(a_matrix)
        k = self.num_bits(a.shape)
        compress = getattr(ops, "simhash_compress", None)
        if compress is not None:
            signs, scales = compress(a, k, seed=self._seed, scale=self._scale)
        else:  # the op's wrapper has not landed: its composite is the same computation
            signs, scales = simhash_composite.simhash_compress(a, k, self._seed, self._scale)
        return [signs, scales]

    def reconstruct(self, factors: Sequence[tf.Tensor], shape) -> tf.Tensor:
        signs, scales = factors
        m, _ = base.matrix_shape(shape)
        decompress = getattr(ops, "simhash_decompress", None)
        if decompress is not None:
            return decompress(signs, scales, m, seed=self._seed)
        return simhash_composite.simhash_decompress(signs, scales, m, self._seed)

    def np_reconstruct(self, factors: Sequence[np.ndarray], shape) -> np.ndarray:
        """Â in NumPy (for tests and reports)."""
        signs, scales = factors
        m, n = base.matrix_shape(shape)
        r = np_projection(m, signs.shape[0], self._seed, scales.dtype.type)
        return r @ (np_unpack_signs(signs, n, scales.dtype) * scales[None, :])
