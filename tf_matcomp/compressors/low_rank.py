"""Low-rank decomposition (compression_option 1, and 0): A ≈ B · C.

With A [m, n] and r the `rank` hparam (a compression factor ×100, so r = 400 keeps a quarter):

    k = min(ceil(min(m, n) · 100 / r), min(m, n))
    A ≈ U_k S_k V_kᵀ (truncated SVD),   B = U_k √S_k  [m, k],   C = √S_k V_kᵀ  [k, n]

stored as k·(m + n) values instead of m·n. The SVD is exact (LAPACK / `tf.linalg.svd`) for small
matrices and randomized (`randomized_svd`: a Gaussian sketch of l = k + max(32, k/4) columns,
subspace iterations and a Rayleigh–Ritz step, all GEMMs but for l × l factorisations) once
min(m, n) exceeds `EXACT_SVD_MAX_DIM` and k < min(m, n) / 2: its Frobenius error stays within 1%
of the exact truncated SVD's (checked in the tests) at a fraction of the cost of a full SVD.
"""

from typing import List, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import ops
from tf_matcomp.compressors import base, randomized_svd
from tf_matcomp.compressors.form import CompressedForm, matmul_last_axis
from tf_matcomp.compressors.method import Method

METHODS = ("auto", "exact", "randomized")
EXACT_SVD_MAX_DIM = 1024
oversampling = randomized_svd.oversampling


def _use_randomized(method: str, m: int, n: int, k: int) -> bool:
    if method == "exact":
        return False
    smaller = min(m, n)
    if method == "randomized":
        return k + oversampling(k) < smaller
    return smaller > EXACT_SVD_MAX_DIM and 2 * k < smaller


def np_truncated_svd(a: np.ndarray, k: int, method: str = "auto"):
    """(U_k [m, k], s_k [k], V_kᵀ [k, n]) of `a` as NumPy arrays, exact or randomized per `method`.

    The randomized SVD is `randomized_svd` run on `a` (TF's GEMMs and small factorisations):
    the same numbers as the TF path's."""
    m, n = a.shape
    if not _use_randomized(method, m, n, k):
        u, s, vt = np.linalg.svd(a, full_matrices=False)
        return u[:, :k], s[:k], vt[:k]
    return randomized_svd.randomized_svd_numpy(a, k)


def tf_truncated_svd(a: tf.Tensor, k: int, method: str = "auto"):
    """(U_k [m, k], s_k [k], V_kᵀ [k, n]) of `a` in TF ops (XLA-compilable)."""
    m, n = base.matrix_shape(a.shape)
    if not _use_randomized(method, m, n, k):
        s, u, v = tf.linalg.svd(a, full_matrices=False)
        return u[:, :k], s[:k], tf.transpose(v[:, :k])
    return randomized_svd.randomized_svd(a, k)


class LowRankForm(CompressedForm):
    """W = B·C with B [m, k], C [k, n] (low-rank; dictionary learning's codes densified)."""

    kind = "low_rank"

    def __init__(self, rows: int, cols: int, k: int, dtype="float32", implementation: str = "auto"):
        super().__init__(rows, cols, dtype, implementation)
        self.k = int(k)

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}

    def variables(self):
        return [
            ("b_matrix", (self.rows, self.k), self.dtype),
            ("c_matrix", (self.k, self.cols), self.dtype),
        ]

    def label(self) -> str:
        return f"k={self.k}"

    def factored_is_cheaper(self) -> bool:
        """Whether x·B·C takes fewer multiplications than x·W."""
        return self._narrower_than_dense(self.k)

    def matrix(self, arrays):
        b, c = arrays
        return tf.matmul(b, c)

    def low_rank_factors(self, arrays):
        b, c = arrays
        return b, c

    def blend(self, a, arrays, alpha):
        """alpha·A + (1 − alpha)·B·C through the fused `low_rank_blend` op."""
        b, c = arrays
        return ops.low_rank_blend(
            a, tf.cast(b, a.dtype), tf.cast(c, a.dtype), alpha, implementation=self.implementation
        )

    def matmul(self, x, arrays):
        b, c = arrays
        if self.factored_is_cheaper():
            return matmul_last_axis(matmul_last_axis(x, b), c)
        return super().matmul(x, arrays)

    def transposed_matmul(self, x, arrays):
        b, c = (tf.cast(f, x.dtype) for f in arrays)  # (x·Cᵀ)·Bᵀ: B·C is never formed
        return tf.matmul(tf.matmul(x, c, transpose_b=True), b, transpose_b=True)

    def gather_rows(self, ids, arrays):
        b, c = arrays
        return tf.matmul(tf.nn.embedding_lookup(b, ids), c)

    def conv(self, x, arrays, kernel_shape, conv_fn):
        if not self.factored_is_cheaper():
            return super().conv(x, arrays, kernel_shape, conv_fn)
        # A convolution is linear in its kernel's output channels: conv(x, B·C) = conv(x, B)·C.
        b, c = arrays
        narrow = conv_fn(x, tf.reshape(b, tuple(kernel_shape[:-1]) + (self.k,)))
        return tf.tensordot(narrow, c, axes=1)


class LowRankDecompMatrixCompressor(base.MatrixCompressorInterface):
    """A ≈ B·C with B = U_k√S_k, C = √S_k V_kᵀ, k = min(ceil(min(m,n)·100/rank), min(m,n)).

    Args:
      spec: compressor hparams (`get_default_hparams()`); copied, never mutated.
      method: "auto" (exact SVD for small matrices, randomized for large ones), "exact" or
        "randomized".
    """

    def __init__(self, spec=None, method: str = "auto") -> None:
        super().__init__(spec)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self._method = method

    def rank_for(self, shape) -> int:
        """k for a matrix of `shape`."""
        m, n = base.matrix_shape(shape)
        return base.compression_factor_rank(m, n, self._spec.rank)

    factor_names = ("b_matrix", "c_matrix")

    def form(self, shape, dtype: tf.DType = tf.float32) -> LowRankForm:
        m, n = base.matrix_shape(shape)
        return LowRankForm(m, n, self.rank_for(shape), tf.as_dtype(dtype).name)

    def factor_trainable(self) -> Tuple[bool, ...]:
        return (self._spec.is_b_matrix_trainable, self._spec.is_c_matrix_trainable)

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[B, C] of `a_matrix` in NumPy (float64 stays float64, anything else float32)."""
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        k = self.rank_for(a.shape)
        u, s, vt = np_truncated_svd(a, k, self._method)
        root = np.sqrt(s).astype(a.dtype)
        return [(u * root[None, :]).astype(a.dtype), (root[:, None] * vt).astype(a.dtype)]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[B, C] of `a_matrix` in TF ops."""
        a = tf.convert_to_tensor(a_matrix)
        k = self.rank_for(a.shape)
        u, s, vt = tf_truncated_svd(a, k, self._method)
        root = tf.sqrt(s)
        return [u * root[None, :], root[:, None] * vt]


METHOD = Method(
    name="lowrank",
    label="low-rank",
    options=(0, 1),
    compressor_class=LowRankDecompMatrixCompressor,
    form_class=LowRankForm,
)
