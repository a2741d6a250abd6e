"""Simhash compression (compression_option 2): Â = R · S · diag(D).

With A [m, n] and r the `rank` hparam (a compression factor ×100):

    k = floor(min(m, n) · 100 / r) + 1                 sign bits per column
    R [m, k]: fixed pseudo-random projection, regenerated from `seed` (never stored): the
              `projection` hparam "gaussian" (default; the counter-based generator of
              cc/core/counter_rng.h, mean 0, variance 1) or "hadamard" (signed Walsh–Hadamard
              columns, cc/core/hadamard.h: no GEMM to compress or decompress)
    S = sign(Rᵀ A) [k, n], sign(0) = +1               stored packed: uint8 [k, ceil(n/8)]
    D_j = ⟨A_j, (R S)_j⟩ / ‖(R S)_j‖²                 least-squares column scale (default), or
    D_j = ‖A_j‖ / ‖(R S)_j‖                            the peer's norm matching (scale="norm")

The least-squares scale is the best multiple of each column's direction, so the error is never
above ‖A‖ (the peer's norm matching reaches ≈1.12·‖A‖ at k = m/4). Stored: k·ceil(n/8) bytes of
signs plus n scales. The TF path runs the `simhash_compress` op (native kernel, or its composite
under XLA); the NumPy path runs the same C++ core through `tf_matcomp._core`.
"""

from typing import List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import _core_loader, constants, ops
from tf_matcomp.compressors import base, simhash_builtin_ops
from tf_matcomp.compressors.form import CompressedForm, matmul_last_axis
from tf_matcomp.compressors.method import Method
from tf_matcomp.hparams import HParams
from tf_matcomp.ops.composites import simhash as simhash_composite

SCALES = ("least_squares", "norm")
PROJECTIONS = ops.simhash.PROJECTIONS


def require_projection(value) -> str:
    """`value` when it is one of PROJECTIONS; else ValueError naming the projection hparam."""
    if value not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {value!r}")
    return value


def num_bits_for(m: int, n: int, rank: int) -> int:
    """k = floor(min(m, n) · 100 / rank) + 1."""
    return int(min(m, n) * 100 // rank) + 1


def _batch_zero(x) -> tf.Tensor:
    """min(batch size, 0): a 0 known only at run time."""
    return tf.minimum(tf.shape(x)[0], 0)


def _run_time_zero(signs) -> tf.Tensor:
    """0 from the values of `signs` (uint8, never negative), which stripped layers read at run
    time (a gather the converter cannot fold), so neither can it fold what depends on it."""
    return tf.minimum(tf.reduce_min(tf.cast(signs, tf.int32)), 0)


class SimhashForm(CompressedForm):
    """Â = R·S·diag(scales): R [m, k] of kind `projection` regenerated from `seed` (never
    stored), S = ±1 [k, n] stored as packed bits (uint8 [k, ceil(n/8)]), scales [n]."""

    kind = "simhash"

    def __init__(
        self,
        rows: int,
        cols: int,
        num_bits: int,
        seed: int,
        dtype="float32",
        implementation: str = "auto",
        projection: str = "gaussian",
    ):
        super().__init__(rows, cols, dtype, implementation)
        self.num_bits, self.seed = int(num_bits), int(seed)
        self.projection = require_projection(projection)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_bits": self.num_bits,
            "seed": self.seed,
            "projection": self.projection,
        }

    def variables(self):
        return [
            ("signs", (self.num_bits, simhash_composite.packed_width(self.cols)), "uint8"),
            ("scales", (self.cols,), self.dtype),
        ]

    def label(self) -> str:
        suffix = "" if self.projection == "gaussian" else f",{self.projection}"
        return f"bits={self.num_bits}{suffix}"

    def matrix(self, arrays):
        signs, scales = arrays
        if self.implementation == "composite":  # stripped layers: builtin ops only (TFLite)
            r, s = self._projection_and_signs(signs, _run_time_zero(signs), scales.dtype)
            return tf.matmul(r, s) * scales
        return ops.simhash_decompress(
            signs,
            scales,
            self.rows,
            seed=self.seed,
            implementation=self.implementation,
            projection=self.projection,
        )

    def _projection_and_signs(self, signs, zero, dtype):
        """(R, S) at `dtype`; with implementation "composite" (stripped layers) in TFLite
        builtin ops, R's indices offset by `zero`, a run-time 0, so that the converter keeps
        R unstored."""
        if self.implementation == "composite":
            rows, cols = tf.range(self.rows) + zero, tf.range(self.num_bits) + zero
            projection = (
                simhash_builtin_ops.hadamard_projection
                if self.projection == "hadamard"
                else simhash_builtin_ops.projection
            )
            return (
                projection(rows, cols, self.seed, dtype, self.rows),
                simhash_builtin_ops.unpack_signs(signs, self.cols, dtype),
            )
        r = ops.simhash_projection(
            self.rows,
            self.num_bits,
            seed=self.seed,
            dtype=dtype,
            implementation=self.implementation,
            projection=self.projection,
        )
        return r, simhash_composite.unpack_signs(signs, self.cols, dtype)

    def matmul(self, x, arrays):
        signs, scales = arrays
        if self._narrower_than_dense(self.num_bits):
            r, s = self._projection_and_signs(signs, _batch_zero(x), x.dtype)
            return matmul_last_axis(matmul_last_axis(x, r), s) * tf.cast(scales, x.dtype)
        return super().matmul(x, arrays)

    def transposed_matmul(self, x, arrays):
        if not self._narrower_than_dense(self.num_bits):
            return super().transposed_matmul(x, arrays)
        signs, scales = arrays  # x·Âᵀ = ((x·diag(D))·Sᵀ)·Rᵀ
        r, s = self._projection_and_signs(signs, _batch_zero(x), x.dtype)
        scaled = x * tf.cast(scales, x.dtype)
        return tf.matmul(tf.matmul(scaled, s, transpose_b=True), r, transpose_b=True)


class SimhashMatrixCompressor(base.MatrixCompressorInterface):
    """Simhash: signs of k random projections per column plus one scale per column.

    Args:
      spec: compressor hparams; `rank` r gives k = floor(min(m, n)·100/r) + 1 bits per column;
        is_c_matrix_trainable decides whether the optimizer trains the scales.
        `projection` ("gaussian" default, or "hadamard") is the kind of R.
      scale: "least_squares" (default) or "norm" (the peer's).
      seed: seed of the projection R.

    Raises:
      ValueError: scale or the projection hparam is not one of the names above.
    """

    def __init__(
        self, spec=None, scale: str = "least_squares", seed: int = constants.DEFAULT_SEED
    ) -> None:
        super().__init__(spec)
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        self._scale = scale
        self._seed = int(seed)
        self._projection = require_projection(self._spec.get("projection", "gaussian"))

    @staticmethod
    def get_default_hparams() -> HParams:
        """The shared compressor spec plus projection ("gaussian": the kind of R)."""
        spec = base.compressor_hparams()
        spec.add_hparam("projection", "gaussian")
        return spec

    @property
    def seed(self) -> int:
        return self._seed

    def num_bits(self, shape) -> int:
        m, n = base.matrix_shape(shape)
        return num_bits_for(m, n, self._spec.rank)

    factor_names = ("signs", "scales")

    def form(self, shape, dtype: tf.DType = tf.float32) -> SimhashForm:
        m, n = base.matrix_shape(shape)
        return SimhashForm(
            m,
            n,
            num_bits_for(m, n, self._spec.rank),
            self._seed,
            tf.as_dtype(dtype).name,
            projection=self._projection,
        )

    def factor_trainable(self) -> Tuple[bool, ...]:
        return (False, self._spec.is_c_matrix_trainable)  # sign bits are never trained

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[signs uint8 [k, ceil(n/8)], scales [n]] in NumPy.

        Runs the C++ core (`tf_matcomp._core`, bit-identical to the kernel) with the GIL
        released and no TF graph built.
        """
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        core = _core_loader.core_or_warn("SimhashMatrixCompressor.static_matrix_compressor")
        if core is None:
            return [np.asarray(f) for f in self.tpu_matrix_compressor(tf.constant(a))]
        signs, scales = core.simhash_compress(
            a,
            self.num_bits(a.shape),
            seed=self._seed,
            scale=self._scale,
            projection=self._projection,
        )
        return [signs, scales]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[signs, scales] through the `simhash_compress` op (composite under XLA)."""
        a = tf.convert_to_tensor(a_matrix)
        k = self.num_bits(a.shape)
        signs, scales = ops.simhash_compress(
            a, k, seed=self._seed, scale=self._scale, projection=self._projection
        )
        return [signs, scales]

    def np_reconstruct(self, factors: Sequence[np.ndarray], shape) -> np.ndarray:
        """Â in NumPy (for tests and reports), by the C++ core."""
        signs, scales = factors
        m, _ = base.matrix_shape(shape)
        core = _core_loader.core_or_warn("SimhashMatrixCompressor.np_reconstruct")
        if core is None:
            return np.asarray(self.reconstruct([tf.constant(signs), tf.constant(scales)], shape))
        return core.simhash_decompress(
            signs, scales, m, seed=self._seed, projection=self._projection
        )


METHOD = Method(
    name="simhash",
    label="simhash",
    options=(2,),
    compressor_class=SimhashMatrixCompressor,
    form_class=SimhashForm,
    compressor_overrides={
        "is_b_matrix_trainable": False,  # sign bits
        "is_c_matrix_present": False,
    },
    op_hparams=("projection",),
)
