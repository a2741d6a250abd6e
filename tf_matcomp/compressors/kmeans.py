"""k-means quantization (compression_option 4): each block of A replaced by its nearest centroid.

With A [m, n], b = block_size (must divide n) and r the `rank` hparam — here r is the number of
centroids, not a compression factor:

    A viewed as m·n/b blocks of b values;  codebook [r, b] (float);  codes [m, n/b]
    Â[i, j·b:(j+1)·b] = codebook[codes[i, j]]
    codes are uint8 when r <= 256, else int32

Stored: r·b floats plus m·n/b codes (8 or 32 bits each). As in the peer, the centroid nearest
zero is snapped to exactly 0 and the codebook has exactly r rows (zero rows pad it when A has
fewer distinct blocks); `pruning_fraction` p first zeroes the ⌊p·m·n⌋ smallest-magnitude entries.
The TF path runs the `kmeans_quantize` op (native kernel; composite under XLA); the NumPy path
runs the same C++ core through `tf_matcomp._core` (see cc/core/kmeans.h for the algorithm).
"""

from typing import List, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import _core_loader, constants, ops
from tf_matcomp.compressors import base
from tf_matcomp.compressors.form import CompressedForm
from tf_matcomp.compressors.method import Method


def np_prune(a: np.ndarray, fraction: float) -> np.ndarray:
    """Zeroes the ⌊fraction·size⌋ smallest-magnitude entries."""
    count = int(fraction * a.size)
    if count <= 0:
        return a
    flat = np.abs(a).ravel()
    order = np.argpartition(flat, count - 1)[:count]
    pruned = a.copy().ravel()
    pruned[order] = 0
    return pruned.reshape(a.shape)


def tf_prune(a: tf.Tensor, fraction: float) -> tf.Tensor:
    count = int(fraction * a.shape.num_elements())
    if count <= 0:
        return a
    flat = tf.reshape(a, [-1])
    _, smallest = tf.math.top_k(-tf.abs(flat), k=count)
    keep = tf.tensor_scatter_nd_update(
        tf.ones_like(flat), smallest[:, None], tf.zeros([count], a.dtype)
    )
    return tf.reshape(flat * keep, tf.shape(a))


class KMeansForm(CompressedForm):
    """W = codebook[codes] with codebook [K, block_size], codes [m, n / block_size] (uint8 when
    K <= 256, else int32)."""

    kind = "kmeans"

    def __init__(
        self,
        rows: int,
        cols: int,
        num_clusters: int,
        block_size: int,
        dtype="float32",
        implementation: str = "auto",
    ):
        super().__init__(rows, cols, dtype, implementation)
        self.num_clusters, self.block_size = int(num_clusters), int(block_size)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_clusters": self.num_clusters,
            "block_size": self.block_size,
        }

    def variables(self):
        return [
            ("codebook", (self.num_clusters, self.block_size), self.dtype),
            (
                "codes",
                (self.rows, self.cols // self.block_size),
                ops.kmeans.code_dtype_for(self.num_clusters).name,
            ),
        ]

    def label(self) -> str:
        return f"{self.num_clusters}x{self.block_size}"

    def matrix(self, arrays):
        codebook, codes = arrays
        return ops.kmeans_dequantize(codebook, codes)


class KmeansMatrixCompressor(base.MatrixCompressorInterface):
    """k-means quantization: `rank` centroids of `block_size` values; codes index them.

    Args:
      spec: compressor hparams (rank = number of centroids, block_size, pruning_fraction;
        is_b_matrix_trainable decides whether the optimizer trains the codebook).
      seed: seed of the k-means++ initialisation (block_size > 1).
      max_iterations: most Lloyd iterations.
    """

    def __init__(
        self,
        spec=None,
        seed: int = constants.DEFAULT_SEED,
        max_iterations: int = constants.DEFAULT_MAX_ITERATIONS,
    ) -> None:
        super().__init__(spec)
        base.require_positive_int(self._spec.block_size, "block_size")
        fraction = self._spec.pruning_fraction
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"pruning_fraction must be in [0, 1), got {fraction}")
        self._seed = int(seed)
        self._max_iterations = base.require_positive_int(max_iterations, "max_iterations")

    def validate_shape(self, shape):
        m, n = base.matrix_shape(shape)
        block = self._spec.block_size
        if n % block:
            raise ValueError(
                f"block_size ({block}) must divide the number of columns of the "
                f"weight ({n}); shape {m}x{n}"
            )
        return m, n

    factor_names = ("b_matrix", "c_matrix")  # graph_compression's: codebook, codes

    @classmethod
    def hparams_for_ratio(cls, shape, ratio, spec):
        """The smallest block_size (dividing the columns) at which some number of centroids
        (2..256, uint8 codes) reaches `ratio`, with the most centroids that still do;
        the widest block and 2 centroids when none reaches it."""
        m, n = base.matrix_shape(shape)
        dense = m * n * tf.float32.size
        for block in (b for b in range(1, n + 1) if n % b == 0):
            codes = m * (n // block) * tf.uint8.size
            for clusters in range(min(constants.MAX_UINT8_CLUSTERS, m * n // block), 1, -1):
                if dense >= ratio * (codes + clusters * block * tf.float32.size):
                    return {"rank": clusters, "block_size": block}
        return {"rank": 2, "block_size": n}

    def form(self, shape, dtype: tf.DType = tf.float32) -> KMeansForm:
        m, n = self.validate_shape(shape)
        return KMeansForm(m, n, self._spec.rank, self._spec.block_size, tf.as_dtype(dtype).name)

    def factor_trainable(self) -> Tuple[bool, ...]:
        return (self._spec.is_b_matrix_trainable, False)  # integer codes are never trained

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[codebook [rank, block_size], codes [m, n/block_size]] in NumPy.

        Runs the C++ core (`tf_matcomp._core`, the same algorithm and bytes as the kernel)
        with the GIL released and no TF graph built.
        """
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        self.validate_shape(a.shape)
        core = _core_loader.core_or_warn("KmeansMatrixCompressor.static_matrix_compressor")
        if core is None:
            return [np.asarray(f) for f in self.tpu_matrix_compressor(tf.constant(a))]
        codebook, codes = core.kmeans_quantize(
            np_prune(a, self._spec.pruning_fraction),
            self._spec.rank,
            block_size=self._spec.block_size,
            max_iterations=self._max_iterations,
            seed=self._seed,
            snap_zero=True,
        )
        return [codebook, codes]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[codebook, codes] through the `kmeans_quantize` op (composite under XLA)."""
        a = tf.convert_to_tensor(a_matrix)
        self.validate_shape(a.shape)
        a = tf_prune(a, self._spec.pruning_fraction)
        codebook, codes = ops.kmeans_quantize(
            a,
            self._spec.rank,
            block_size=self._spec.block_size,
            max_iterations=self._max_iterations,
            seed=self._seed,
            snap_zero=True,
        )
        return [codebook, codes]


METHOD = Method(
    name="kmeans",
    label="k-means",
    options=(4,),
    compressor_class=KmeansMatrixCompressor,
    form_class=KMeansForm,
    compressor_overrides={"is_c_matrix_trainable": False},
)  # integer codes
