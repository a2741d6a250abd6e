"""The matrix-compressor interface shared by every method, and its compressor hparams.

A compressor turns a matrix A [m, n] into factors (NumPy: `static_matrix_compressor`; TF ops:
`tpu_matrix_compressor`, which also compiles under `tf.function(jit_compile=True)`). What those
factors are — their shapes and dtypes for a given matrix, how Â is rebuilt from them, the
factored products and the byte sizes — is the method's `CompressedForm` (`form(shape, dtype)`),
derived analytically, so no zero matrix is ever compressed just to learn shapes. The compressor
adds the training side: the factors' variable names (graph_compression's) and which of them the
optimizer trains. A compressor never mutates the spec it is given: it keeps its own copy.
"""

import dataclasses
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.compressors.form import CompressedForm
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
        use_lsh=False,
    )


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


def float_dtype_of(arrays: Sequence) -> tf.DType:
    """The dtype of the first floating array (the dtype a form computes Â in)."""
    for array in arrays:
        dtype = tf.as_dtype(array.dtype)
        if dtype.is_floating:
            return dtype
    raise ValueError("the factors hold no floating-point array")


class MatrixCompressorInterface:
    """Interface of a matrix compression algorithm (graph_compression's MatrixCompressorInferface).

    Subclasses set `factor_names` and implement `form`, `factor_trainable`,
    `static_matrix_compressor` (NumPy) and `tpu_matrix_compressor` (TF ops, XLA-compilable);
    `factor_specs`, `reconstruct` and `blend` follow from the form.
    """

    factor_names: Tuple[str, ...] = ()  # the factor variables' names, in factor order

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
    def form(self, shape, dtype: tf.DType = tf.float32) -> CompressedForm:
        """The compressed form of a matrix of `shape` and `dtype` (shapes of the factors)."""
        raise NotImplementedError()

    def factor_trainable(self) -> Tuple[bool, ...]:
        """Whether the optimizer trains each factor, in factor order (from the spec)."""
        raise NotImplementedError()

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """The factors of `a_matrix` [m, n], computed with NumPy."""
        raise NotImplementedError()

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """The factors of `a_matrix` [m, n] in TF ops (graph, tf.function, jit_compile)."""
        raise NotImplementedError()

    @classmethod
    def hparams_for_ratio(cls, shape, ratio: float, spec: HParams) -> Dict[str, int]:
        """The hparams that make a matrix of `shape` about `ratio` times smaller than dense.

        The default, for methods whose `rank` is a compression factor (larger = smaller form):
        the smallest `rank` whose form is at least `ratio` times smaller, found by bisection
        over the form's byte sizes; the largest `rank` tried when none reaches it.
        """

        def reached(rank: int) -> bool:
            trial = spec.copy()
            trial.set_hparam("rank", rank)
            form = cls(spec=trial).form(shape)
            return form.dense_nbytes() >= ratio * form.nbytes()

        low, high = 1, 100 * min(matrix_shape(shape)) + 100
        if not reached(high):
            return {"rank": high}
        while low < high:
            middle = (low + high) // 2
            if reached(middle):
                high = middle
            else:
                low = middle + 1
        return {"rank": low}

    # --- methods whose factors are recomputed during training (default: never) ------------
    def recompression_schedule(self):
        """The firing rule (a `schedule.AlphaSchedule`) on which the update engines recompute the
        factors from the weight the layer computes with, besides the compression schedule's
        first firing; None (the default) for a method whose factors are computed once.

        A method returning one implements `static_recompress` and `tpu_recompress`; the engines
        then also compute the first firing's factors with them (on_own_schedule False)."""
        return None

    def static_recompress(self, weight, factors, step: int, on_own_schedule: bool):
        """The factors recomputed in NumPy from `weight` (the layer's current blended weight)
        and the current `factors` at `step`; `on_own_schedule` says whether this is a firing
        of `recompression_schedule` (else the compression schedule's first firing)."""
        raise NotImplementedError()

    def tpu_recompress(self, weight, factors, step, on_own_schedule: bool):
        """`static_recompress` in TF ops (graph, tf.function, jit_compile); `step` a tensor."""
        raise NotImplementedError()

    # --- from the form -------------------------------------------------------------------
    def validate_shape(self, shape) -> Tuple[int, int]:
        """(m, n); ValueError when this compressor cannot compress a matrix of `shape`."""
        return matrix_shape(shape)

    def factor_specs(self, shape, dtype: tf.DType = tf.float32) -> List[FactorSpec]:
        """The factors' variable names, shapes and dtypes for a matrix of `shape` and `dtype`."""
        arrays = self.form(shape, dtype).variables()
        return [
            FactorSpec(name, tuple(shape), tf.as_dtype(array_dtype), trainable)
            for name, (_, shape, array_dtype), trainable in zip(
                self.factor_names, arrays, self.factor_trainable()
            )
        ]

    def reconstruct(self, factors: Sequence[tf.Tensor], shape) -> tf.Tensor:
        """Â [m, n] rebuilt from the factors (differentiable w.r.t. the float factors)."""
        return self.form(shape, float_dtype_of(factors)).matrix(factors)

    def blend(self, a_matrix: tf.Tensor, factors: Sequence[tf.Tensor], alpha) -> tf.Tensor:
        """alpha · A + (1 − alpha) · Â (exactly Â once alpha is 0, for finite A)."""
        return self.form(a_matrix.shape, a_matrix.dtype).blend(a_matrix, factors, alpha)

    def default_matrix(self) -> np.ndarray:
        """A zero matrix of the spec's num_rows × num_cols (graph_compression compatibility)."""
        return np.zeros((self._spec.num_rows, self._spec.num_cols), dtype=np.float32)


# graph_compression's spelling.
MatrixCompressorInferface = MatrixCompressorInterface
