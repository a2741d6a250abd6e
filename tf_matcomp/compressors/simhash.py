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
under XLA); the NumPy path runs the same C++ core through `tf_matcomp._core`.
"""
from typing import List, Sequence

import numpy as np
import tensorflow as tf

from tf_matcomp import _core, ops
from tf_matcomp.compressors import base

SCALES = ("least_squares", "norm")
DEFAULT_SEED = 42


def num_bits_for(m: int, n: int, rank: int) -> int:
    """k = floor(min(m, n) · 100 / rank) + 1."""
    return int(min(m, n) * 100 // rank) + 1


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
        """[signs uint8 [k, ceil(n/8)], scales [n]] in NumPy.

        Runs the C++ core (`tf_matcomp._core`, bit-identical to the kernel) with the GIL
        released and no TF graph built.
        """
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        signs, scales = _core.simhash_compress(a, self.num_bits(a.shape), seed=self._seed,
                                               scale=self._scale)
        return [signs, scales]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[signs, scales] through the `simhash_compress` op (composite under XLA)."""
        a = tf.convert_to_tensor(a_matrix)
        k = self.num_bits(a.shape)
        signs, scales = ops.simhash_compress(a, k, seed=self._seed, scale=self._scale)
        return [signs, scales]

    def reconstruct(self, factors: Sequence[tf.Tensor], shape) -> tf.Tensor:
        signs, scales = factors
        m, _ = base.matrix_shape(shape)
        return ops.simhash_decompress(signs, scales, m, seed=self._seed)

    def np_reconstruct(self, factors: Sequence[np.ndarray], shape) -> np.ndarray:
        """Â in NumPy (for tests and reports), by the C++ core."""
        signs, scales = factors
        m, _ = base.matrix_shape(shape)
        return _core.simhash_decompress(signs, scales, m, seed=self._seed)
