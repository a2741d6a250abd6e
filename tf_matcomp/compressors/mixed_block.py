"""Mixed-block compression (compression_option 12): every block of A a mix of shared bases.

With A [m, n], g the `compression_factor` hparam (g must divide m and n), r = m / g,
c = n / g, and K the `num_bases` hparam (1 <= K <= min(g², r·c)):

    A viewed as a g × g grid of r × c blocks A_ij (rows i·r … (i+1)·r − 1, columns
    j·c … (j+1)·c − 1: the split convention, the same for Â, every product and the layers)
    stored: bases [K, r, c] (`b_matrix`) and coefficients [g, g, K] (`c_matrix`)
    Â_ij = Σ_k coefficients[i, j, k] · bases[k]

so K·(r·c + g²) values are stored instead of m·n. The compressor computes the least-squares
fit: with the blocks as the g² rows of a [g², r·c] matrix M, the best K-term mix is M's
truncated SVD U_K S_K V_Kᵀ (Eckart–Young): coefficients = U_K √S_K, bases = √S_K V_Kᵀ.

Products never form Â when the factored route is cheaper: x [..., m] is split into g chunks
x_i of r entries (the split convention above), z_ik = x_i · bases[k], then output chunk j is
Σ_ik coefficients[i, j, k] · z_ik; `transposed_matmul` is the same with the bases transposed
and i, j swapped; `gather_rows` mixes the gathered rows of the bases. A convolution mixes every
row of its kernel view, so `conv` goes through Â.
"""

import math
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.compressors import base, low_rank
from tf_matcomp.compressors.block_diagonal import (
    divisors,
    merge_last_axes,
    require_block_grid,
    split_last_axis,
)
from tf_matcomp.compressors.form import CompressedForm
from tf_matcomp.compressors.method import Method
from tf_matcomp.hparams import HParams


def max_bases(m: int, n: int, factor: int) -> int:
    """The most bases a g × g grid of an m × n matrix can use: min(g², r·c)."""
    return min(factor * factor, (m // factor) * (n // factor))


def require_mixed_grid(shape, factor: int, num_bases: int) -> Tuple[int, int]:
    """(m, n) when `compression_factor` divides both and `num_bases` fits; else ValueError."""
    m, n = require_block_grid(shape, factor, "compression_factor")
    most = max_bases(m, n, factor)
    if num_bases > most:
        raise ValueError(
            f"num_bases ({num_bases}) must be at most min(compression_factor², block size) "
            f"= {most} for shape {m}x{n} with compression_factor {factor}"
        )
    return m, n


def stored_values(m: int, n: int, factor: int, num_bases: int) -> int:
    """K·(r·c + g²): the values a mixed-block form stores."""
    return num_bases * ((m // factor) * (n // factor) + factor * factor)


class MixedBlockForm(CompressedForm):
    """W's g × g blocks W_ij = Σ_k coefficients[i, j, k]·bases[k]; bases [K, m/g, n/g]
    (`b_matrix`), coefficients [g, g, K] (`c_matrix`)."""

    kind = "mixed_block"

    def __init__(
        self,
        rows: int,
        cols: int,
        num_blocks: int,
        num_bases: int,
        dtype="float32",
        implementation: str = "auto",
    ):
        super().__init__(rows, cols, dtype, implementation)
        self.num_blocks, self.num_bases = int(num_blocks), int(num_bases)
        require_mixed_grid((self.rows, self.cols), self.num_blocks, self.num_bases)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_blocks": self.num_blocks,
            "num_bases": self.num_bases,
        }

    def variables(self):
        g, k = self.num_blocks, self.num_bases
        return [
            ("b_matrix", (k, self.rows // g, self.cols // g), self.dtype),
            ("c_matrix", (g, g, k), self.dtype),
        ]

    def label(self) -> str:
        return f"{self.num_blocks}x{self.num_blocks}:{self.num_bases}"

    def factored_is_cheaper(self) -> bool:
        """Whether the factored product (K·m·n/g + g·K·n multiplications per row) beats x·W."""
        g, k = self.num_blocks, self.num_bases
        return k * self.rows * self.cols // g + g * k * self.cols < self.rows * self.cols

    def matrix(self, arrays):
        bases, coefficients = arrays
        grid = tf.einsum("ijk,kab->iajb", coefficients, bases)
        return tf.reshape(grid, [self.rows, self.cols])

    def _mixed_product(self, x, bases, coefficients) -> tf.Tensor:
        """x [..., g·p] times the matrix whose block (i, j) is Σ_k coefficients[i, j, k] ·
        bases[k], for bases [K, p, q]: input chunk i, output chunk j (the split convention)."""
        bases, coefficients = tf.cast(bases, x.dtype), tf.cast(coefficients, x.dtype)
        mixed = tf.einsum("...ip,kpq->...ikq", split_last_axis(x, self.num_blocks), bases)
        return merge_last_axes(tf.einsum("...ikq,ijk->...jq", mixed, coefficients))

    def matmul(self, x, arrays):
        if not self.factored_is_cheaper():
            return super().matmul(x, arrays)
        bases, coefficients = arrays
        return self._mixed_product(x, bases, coefficients)

    def transposed_matmul(self, x, arrays):
        if not self.factored_is_cheaper():
            return super().transposed_matmul(x, arrays)
        bases, coefficients = arrays  # Âᵀ's block (j, i) mixes the transposed bases
        return self._mixed_product(
            x, tf.transpose(bases, [0, 2, 1]), tf.transpose(coefficients, [1, 0, 2])
        )

    def gather_rows(self, ids, arrays):
        bases, coefficients = arrays
        ids = tf.convert_to_tensor(ids)
        height = self.rows // self.num_blocks
        rows = tf.gather(tf.transpose(bases, [1, 0, 2]), ids % height)  # [..., K, c]
        mix = tf.gather(coefficients, ids // height)  # [..., g, K]
        return merge_last_axes(tf.einsum("...kb,...jk->...jb", rows, mix))


class MixedBlockCompressor(base.MatrixCompressorInterface):
    """Mixed-block compression: `num_bases` shared r × c bases, g² × K mixing coefficients.

    Args:
      spec: compressor hparams (`get_default_hparams()`: compression_factor, num_bases;
        is_b/c_matrix_trainable decide whether the optimizer trains bases / coefficients).

    Raises:
      ValueError: compression_factor or num_bases is not a positive int.
    """

    factor_names = ("b_matrix", "c_matrix")  # bases, coefficients

    def __init__(self, spec=None) -> None:
        super().__init__(spec)
        self._factor = base.require_positive_int(
            self._spec.compression_factor, "compression_factor"
        )
        self._num_bases = base.require_positive_int(self._spec.num_bases, "num_bases")

    @staticmethod
    def get_default_hparams() -> HParams:
        """The shared compressor spec plus compression_factor (1: g, the blocks per side) and
        num_bases (1: K)."""
        spec = base.compressor_hparams()
        spec.add_hparam("compression_factor", 1)
        spec.add_hparam("num_bases", 1)
        return spec

    @classmethod
    def hparams_for_ratio(cls, shape, ratio: float, spec: HParams) -> Dict[str, int]:
        """The smallest grid (g a common divisor of m and n) on which some number of bases
        reaches `ratio`, with the most bases that still do; the finest grid and one basis
        when none reaches it."""
        m, n = base.matrix_shape(shape)
        common = divisors(math.gcd(m, n))
        for factor in common:
            for bases in range(max_bases(m, n, factor), 0, -1):
                if m * n >= ratio * stored_values(m, n, factor, bases):
                    return {"compression_factor": factor, "num_bases": bases}
        return {"compression_factor": common[-1], "num_bases": 1}

    def validate_shape(self, shape):
        return require_mixed_grid(shape, self._factor, self._num_bases)

    def form(self, shape, dtype: tf.DType = tf.float32) -> MixedBlockForm:
        m, n = self.validate_shape(shape)
        return MixedBlockForm(m, n, self._factor, self._num_bases, tf.as_dtype(dtype).name)

    def factor_trainable(self) -> Tuple[bool, ...]:
        return (self._spec.is_b_matrix_trainable, self._spec.is_c_matrix_trainable)

    def _grid(self, m: int, n: int) -> Tuple[int, int, int]:
        g = self._factor
        return g, m // g, n // g

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[bases [K, r, c], coefficients [g, g, K]]: the least-squares fit, in NumPy."""
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        g, r, c = self._grid(*self.validate_shape(a.shape))
        blocks = a.reshape(g, r, g, c).transpose(0, 2, 1, 3).reshape(g * g, r * c)
        u, s, vt = low_rank.np_truncated_svd(blocks, self._num_bases)
        root = np.sqrt(s).astype(a.dtype)
        bases = (root[:, None] * vt).reshape(self._num_bases, r, c)
        coefficients = (u * root[None, :]).reshape(g, g, self._num_bases)
        return [bases.astype(a.dtype), coefficients.astype(a.dtype)]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[bases, coefficients]: the least-squares fit, in TF ops (XLA-compilable)."""
        a = tf.convert_to_tensor(a_matrix)
        g, r, c = self._grid(*self.validate_shape(a.shape))
        blocks = tf.reshape(tf.transpose(tf.reshape(a, [g, r, g, c]), [0, 2, 1, 3]), [g * g, r * c])
        u, s, vt = low_rank.tf_truncated_svd(blocks, self._num_bases)
        root = tf.sqrt(s)
        bases = tf.reshape(root[:, None] * vt, [self._num_bases, r, c])
        coefficients = tf.reshape(u * root[None, :], [g, g, self._num_bases])
        return [bases, coefficients]


METHOD = Method(
    name="mixedblock",
    label="mixed-block",
    options=(12,),
    compressor_class=MixedBlockCompressor,
    form_class=MixedBlockForm,
    op_hparams=("compression_factor", "num_bases"),
)
