"""Dictionary learning (compression_option 3): A ≈ B · D, B sparse codes, D a dictionary.

With A [m, n] and r the `rank` hparam (a compression factor ×100, applied twice as in the peer's
row and column percentages):

    k = min(ceil(min(m, n) · 100 / r), min(m, n))     atoms (rows of D [k, n])
    s = min(max(ceil(k · 100 / r), 1), k)             non-zeros per row of B [m, k]
    B stored as indices [m, s] (int32) and values [m, s]; D stored dense

Algorithm (the same in NumPy and in TF ops):
  1. D₀ = V_kᵀ from a truncated SVD (randomized for large matrices, see `low_rank`); with
     orthonormal atoms the best s-sparse code of row i keeps the s largest |(A V_k)_ij|, so the
     initial support and values are exact for D₀.
  2. `iterations` rounds of alternating least squares on that support:
       D = (BᵀB + λI)⁻¹ BᵀA                   (normal equations: a k × k system)
       b_i[S_i] = (D_S D_Sᵀ + λI)⁻¹ D_S a_iᵀ    (one s × s system per row, batched in chunks)
     then a final dictionary solve. Each solve minimises ‖A − B D‖_F over its block, so the
     error never rises above that of the initial sparse code.
Nothing of size (m·n) × (k·n) is ever formed (the peer built that operator explicitly: 6.5 GB
at 1024²): the largest temporaries are BᵀA and A·Dᵀ ([k, n] and [m, k], at most A's size), the
k × k Gram matrix and one chunk of s × s systems (≤ `SOLVE_CHUNK_ELEMENTS` values in NumPy), so
4096² runs in a few times the matrix's memory (measured: 412 MiB peak of NumPy allocations, 6.4×
the float32 matrix, 35 s on 2 shared cores at rank 400).
"""

import math
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import ops
from tf_matcomp.compressors import base
from tf_matcomp.compressors import low_rank
from tf_matcomp.compressors.form import CompressedForm, matmul_last_axis
from tf_matcomp.compressors.method import Method

ITERATIONS = 1
SOLVE_CHUNK_ELEMENTS = 1 << 19  # NumPy: s × s systems per chunk (4 MB of float64)
TF_SOLVE_CHUNK_ELEMENTS = 1 << 22  # TF: larger chunks keep the unrolled graph small
_RIDGE = 1e-6


def sizes_for(m: int, n: int, rank: int):
    """(k atoms, s non-zeros per code row) for an m × n matrix and `rank` r."""
    k = base.compression_factor_rank(m, n, rank)
    s = min(max(int(math.ceil(k * 100 / rank)), 1), k)
    return k, s


def _ridge(gram_trace, k):
    return _RIDGE * gram_trace / k + 1e-30


def np_dense_codes(indices: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    b = np.zeros((indices.shape[0], k), dtype=values.dtype)
    np.put_along_axis(b, indices.astype(np.int64), values, axis=1)
    return b


def _np_solve_dictionary(a, indices, values, k):
    b = np_dense_codes(indices, values, k).astype(np.float64)
    gram = b.T @ b
    gram[np.diag_indices(k)] += _ridge(np.trace(gram), k)
    return np.linalg.solve(gram, b.T @ a)


def _np_refit_codes(a, dictionary, indices):
    gram = dictionary @ dictionary.T
    ridge = _ridge(np.trace(gram), gram.shape[0])
    projections = a @ dictionary.T  # [m, k]
    m, s = indices.shape
    values = np.empty((m, s), dtype=np.float64)
    rows = max(1, SOLVE_CHUNK_ELEMENTS // (s * s))
    eye = np.eye(s) * ridge
    for start in range(0, m, rows):
        idx = indices[start : start + rows].astype(np.int64)
        systems = gram[idx[:, :, None], idx[:, None, :]] + eye
        rhs = np.take_along_axis(projections[start : start + rows], idx, axis=1)
        values[start : start + rows] = np.linalg.solve(systems, rhs[:, :, None])[:, :, 0]
    return values


def _tf_dense_codes(indices: tf.Tensor, values: tf.Tensor, k: int) -> tf.Tensor:
    m, s = indices.shape
    rows = tf.repeat(tf.range(m, dtype=indices.dtype), s)
    coords = tf.stack([rows, tf.reshape(indices, [-1])], axis=1)
    return tf.scatter_nd(coords, tf.reshape(values, [-1]), [m, k])


def _tf_solve_dictionary(a, indices, values, k):
    b = _tf_dense_codes(indices, values, k)
    gram = tf.matmul(b, b, transpose_a=True)
    gram += _ridge(tf.linalg.trace(gram), k) * tf.eye(k, dtype=gram.dtype)
    return tf.linalg.cholesky_solve(tf.linalg.cholesky(gram), tf.matmul(b, a, transpose_a=True))


def _tf_refit_codes(a, dictionary, indices):
    gram = tf.matmul(dictionary, dictionary, transpose_b=True)
    ridge = _ridge(tf.linalg.trace(gram), gram.shape[0])
    projections = tf.matmul(a, dictionary, transpose_b=True)
    m, s = indices.shape
    rows = max(1, TF_SOLVE_CHUNK_ELEMENTS // (s * s))
    eye = ridge * tf.eye(s, dtype=a.dtype)
    chunks = []
    for start in range(0, m, rows):  # static chunks: XLA-compilable
        idx = indices[start : start + rows]
        systems = tf.gather(tf.gather(gram, idx), idx, axis=2, batch_dims=1) + eye
        rhs = tf.gather(projections[start : start + rows], idx, batch_dims=1)
        chunks.append(
            tf.linalg.cholesky_solve(tf.linalg.cholesky(systems), rhs[:, :, None])[:, :, 0]
        )
    return tf.concat(chunks, axis=0)


class SparseCodeForm(CompressedForm):
    """W = B·D: B [m, k] sparse with s non-zeros per row, stored as indices [m, s] (int32) and
    values [m, s]; the dictionary D [k, n] dense."""

    kind = "sparse_code"

    def __init__(
        self,
        rows: int,
        cols: int,
        k: int,
        nonzeros: int,
        dtype="float32",
        implementation: str = "auto",
    ):
        super().__init__(rows, cols, dtype, implementation)
        self.k, self.nonzeros = int(k), int(nonzeros)

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k, "nonzeros": self.nonzeros}

    def variables(self):
        return [
            ("code_indices", (self.rows, self.nonzeros), "int32"),
            ("code_values", (self.rows, self.nonzeros), self.dtype),
            ("c_matrix", (self.k, self.cols), self.dtype),
        ]

    def label(self) -> str:
        return f"k={self.k},s={self.nonzeros}"

    def codes(self, indices: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        """B [m, k] as a dense matrix (differentiable w.r.t. the values)."""
        return _tf_dense_codes(indices, values, self.k)

    def matrix(self, arrays):
        indices, values, dictionary = arrays
        return tf.matmul(self.codes(indices, values), dictionary)

    def blend(self, a, arrays, alpha):
        """alpha·A + (1 − alpha)·B·D through the fused `low_rank_blend` op."""
        indices, values, dictionary = arrays
        b = self.codes(indices, tf.cast(values, a.dtype))
        return ops.low_rank_blend(
            a, b, tf.cast(dictionary, a.dtype), alpha, implementation=self.implementation
        )

    def matmul(self, x, arrays):
        if not self._narrower_than_dense(self.k):
            return super().matmul(x, arrays)
        indices, values, dictionary = arrays
        return matmul_last_axis(matmul_last_axis(x, self.codes(indices, values)), dictionary)

    def transposed_matmul(self, x, arrays):
        if not self._narrower_than_dense(self.k):
            return super().transposed_matmul(x, arrays)
        indices, values, dictionary = arrays  # x·(B·D)ᵀ = (x·Dᵀ)·Bᵀ
        b = tf.cast(self.codes(indices, values), x.dtype)
        return tf.matmul(
            tf.matmul(x, tf.cast(dictionary, x.dtype), transpose_b=True), b, transpose_b=True
        )


def _check_iterations(iterations, name: str = "iterations") -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"{name} must be an int >= 0, got {iterations!r}")
    return iterations


class DLMatrixCompressor(base.MatrixCompressorInterface):
    """Dictionary learning: A ≈ B·D with s non-zeros per row of B and k atoms (see module doc).

    Factors: code_indices int32 [m, s], code_values [m, s] (trained when
    is_b_matrix_trainable), c_matrix = the dictionary [k, n] (trained when
    is_c_matrix_trainable).

    Args:
      spec: compressor hparams; `rank` r sets k and s as above.
      iterations: rounds of alternating least squares after the SVD initialisation.
    """

    def __init__(self, spec=None, iterations: int = ITERATIONS) -> None:
        super().__init__(spec)
        self._iterations = _check_iterations(iterations)

    def sizes(self, shape):
        """(k atoms, s non-zeros per row) for a matrix of `shape`."""
        m, n = base.matrix_shape(shape)
        return sizes_for(m, n, self._spec.rank)

    factor_names = ("code_indices", "code_values", "c_matrix")

    def form(self, shape, dtype: tf.DType = tf.float32) -> SparseCodeForm:
        m, n = base.matrix_shape(shape)
        k, s = sizes_for(m, n, self._spec.rank)
        return SparseCodeForm(m, n, k, s, tf.as_dtype(dtype).name)

    def factor_trainable(self) -> Tuple[bool, ...]:
        return (False, self._spec.is_b_matrix_trainable, self._spec.is_c_matrix_trainable)

    def static_matrix_compressor(
        self, a_matrix: np.ndarray, n_iterations: Optional[int] = None
    ) -> List[np.ndarray]:
        """[code_indices, code_values, dictionary] in NumPy.

        n_iterations: rounds of alternating least squares (graph_compression's argument);
        default the compressor's `iterations`.
        """
        iterations = (
            self._iterations
            if n_iterations is None
            else _check_iterations(n_iterations, "n_iterations")
        )
        a_in = np.asarray(a_matrix)
        dtype = np.float64 if a_in.dtype == np.float64 else np.float32
        a = a_in.astype(dtype)
        k, s = self.sizes(a.shape)
        u, sv, vt = low_rank.np_truncated_svd(a, k)
        full = (u * sv[None, :]).astype(np.float64)
        indices = (
            np.argpartition(-np.abs(full), s - 1, axis=1)[:, :s]
            if s < k
            else np.tile(np.arange(k), (a.shape[0], 1))
        )
        indices = np.sort(indices, axis=1).astype(np.int32)
        values = np.take_along_axis(full, indices.astype(np.int64), axis=1)
        a64 = a.astype(np.float64)
        dictionary = _np_solve_dictionary(a64, indices, values, k)
        for _ in range(iterations):
            values = _np_refit_codes(a64, dictionary, indices)
            dictionary = _np_solve_dictionary(a64, indices, values, k)
        return [indices, values.astype(dtype), dictionary.astype(dtype)]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[code_indices, code_values, dictionary] in TF ops (XLA-compilable)."""
        a = tf.convert_to_tensor(a_matrix)
        k, s = self.sizes(a.shape)
        u, sv, _ = low_rank.tf_truncated_svd(a, k)
        full = u * sv[None, :]
        _, indices = tf.math.top_k(tf.abs(full), k=s, sorted=False)
        indices = tf.sort(indices, axis=1)
        values = tf.gather(full, indices, batch_dims=1)
        dictionary = _tf_solve_dictionary(a, indices, values, k)
        for _ in range(self._iterations):
            values = _tf_refit_codes(a, dictionary, indices)
            dictionary = _tf_solve_dictionary(a, indices, values, k)
        return [indices, values, dictionary]


METHOD = Method(
    name="dictionary",
    label="dictionary",
    options=(3,),
    compressor_class=DLMatrixCompressor,
    form_class=SparseCodeForm,
    # graph_compression's DLCompressionOp names B by its values and C the dictionary.
    factor_attributes={
        "b_matrix_indices_tfvar": 0,
        "b_matrix_values_tfvar": 1,
        "b_matrix_tfvar": 1,
        "c_matrix_tfvar": 2,
    },
)
