"""The matrix-compressor interface shared by every algorithm, and its compressor hparams.

A compressor turns a matrix A [m, n] into factors (NumPy: `static_matrix_compressor`; TF ops:
`tpu_matrix_compressor`, which also compiles under `tf.function(jit_compile=True)`), says what
those factors look like for a given shape before any compression runs (`factor_specs`, derived
analytically, so no zero matrix is ever compressed just to learn shapes), how to rebuild the
approximation Â from them (`reconstruct`) and how many bits they take (`compressed_bits`).
A compressor never mutates the spec it is given: it keeps its own copy.
"""
import dataclasses
import math
from typing import List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.hparams import HParams


def compressor_hparams() -> HParams:
    """The compressor spec of graph_compression's LowRankDecompMatrixCompressor, same defaults.

    name: compressor name. rank: the compression hparam (its meaning per algorithm is in each
    compressor's docstring; for factorisations it is a compression factor ×100, so 400 keeps a
    quarter of the rank). num_rows/num_cols: the shape `default_matrix` returns. use_tpu: use
    only TF ops (`tpu_matrix_compressor`). compressor_option: kept for compatibility (unused).
    is_b/c/d_matrix_trainable: whether the optimizer trains each factor. is_c_matrix_present:
    whether the factorisation has a C factor (low-rank: True). block_size: k-means block length.
    pruning_fraction: fraction of smallest-magnitude entries zeroed before k-means. use_lsh:
    kept for compatibility (the peer's LSH initialisation of dictionary learning; unused).
    """
    return HParams(
        name="model_compression",
        rank=100,
        num_rows=10,
        num_cols=10,
        use_tpu=False,
        compressor_option=0,
        is_b_matrix_trainable=True,
        is_c_matrix_trainable=True,
        is_d_matrix_trainable=True,
        is_c_matrix_present=True,
        block_size=1,
        pruning_fraction=0.0,
        use_lsh=False)


@dataclasses.dataclass(frozen=True)
class FactorSpec:
    """One stored factor of a compressed matrix: its variable name, shape, dtype, trainability."""

    name: str
    shape: Tuple[int, ...]
    dtype: tf.DType
    trainable: bool

    @property
    def bits(self) -> int:
        """Storage in bits (dtype size × elements; packed sign bytes count 8 bits each)."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.size * 8


def matrix_shape(shape, what: str = "weight") -> Tuple[int, int]:
    """(m, n) of a fully known 2-D shape, else ValueError."""
    shape = tf.TensorShape(shape)
    if shape.rank != 2:
        raise ValueError(f"the {what} to compress must be a 2-D matrix, got shape {shape}")
    if not shape.is_fully_defined():
        raise ValueError(f"the {what} to compress needs a fully known shape, got {shape}")
    m, n = shape.as_list()
    if m < 1 or n < 1:
        raise ValueError(f"the {what} to compress must not be empty, got shape {shape}")
    return m, n


def compression_factor_rank(m: int, n: int, rank: int) -> int:
    """k = min(ceil(min(m, n) · 100 / rank), min(m, n)): `rank` read as a factor ×100."""
    smaller = min(m, n)
    return int(min(math.ceil(smaller * 100 / rank), smaller))


def require_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class MatrixCompressorInterface:
    """Interface of a matrix compression algorithm (graph_compression's MatrixCompressorInferface).

    Subclasses implement `static_matrix_compressor` (NumPy), `tpu_matrix_compressor` (TF ops,
    XLA-compilable), `factor_specs` and `reconstruct`; `blend` and `compressed_bits` have
    defaults.
    """

    def __init__(self, spec: HParams = None) -> None:
        self._spec = (spec if spec is not None else self.get_default_hparams()).copy()
        require_positive_int(self._spec.rank, "rank")

    @staticmethod
    def get_default_hparams() -> HParams:
        """The compressor spec with graph_compression's defaults (see `compressor_hparams`)."""
        return compressor_hparams()

    def get_spec(self) -> HParams:
        """The compressor's own copy of its spec."""
        return self._spec

    # --- to implement ------------------------------------------------------------------
    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """The factors of `a_matrix` [m, n], computed with NumPy."""
        raise NotImplementedError()

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """The factors of `a_matrix` [m, n] in TF ops (graph, tf.function, jit_compile)."""
        raise NotImplementedError()

    def factor_specs(self, shape, dtype: tf.DType = tf.float32) -> List[FactorSpec]:
        """The factors' variable names, shapes and dtypes for a matrix of `shape` and `dtype`."""
        raise NotImplementedError()

    def reconstruct(self, factors: Sequence[tf.Tensor], shape) -> tf.Tensor:
        """Â [m, n] rebuilt from the factors (differentiable w.r.t. the float factors)."""
        raise NotImplementedError()

    # --- defaults ------------------------------------------------------------------------
    def validate_shape(self, shape) -> Tuple[int, int]:
        """(m, n); ValueError when this compressor cannot compress a matrix of `shape`."""
        return matrix_shape(shape)

    def blend(self, a_matrix: tf.Tensor, factors: Sequence[tf.Tensor], alpha) -> tf.Tensor:
        """alpha · A + (1 − alpha) · Â (exactly Â once alpha is 0, for finite A)."""
        approx = tf.cast(self.reconstruct(factors, a_matrix.shape), a_matrix.dtype)
        alpha = tf.cast(alpha, a_matrix.dtype)
        return alpha * a_matrix + (1 - alpha) * approx

    def compressed_bits(self, shape, dtype: tf.DType = tf.float32) -> int:
        """Bits stored by the factors of a matrix of `shape`, `dtype`."""
        return sum(spec.bits for spec in self.factor_specs(shape, dtype))

    def default_matrix(self) -> np.ndarray:
        """A zero matrix of the spec's num_rows × num_cols (graph_compression compatibility)."""
        return np.zeros((self._spec.num_rows, self._spec.num_cols), dtype=np.float32)


# graph_compression's spelling.
MatrixCompressorInferface = MatrixCompressorInterface
