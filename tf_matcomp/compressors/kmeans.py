"""k-means quantization (compression_option 4): each block of A replaced by its nearest centroid.

With A [m, n], b = block_size (must divide n) and r the `rank` hparam — here r is the number of
centroids, not a compression factor:

    A viewed as m·n/b blocks of b values;  codebook [r, b] (float);  codes [m, n/b]
    Â[i, j·b:(j+1)·b] = codebook[codes[i, j]]
    codes are uint8 when r <= 256, else int32

Stored: r·b floats plus m·n/b codes (8 or 32 bits each). As in the peer, the centroid nearest
zero is snapped to exactly 0 and the codebook has exactly r rows (zero rows pad it when A has
fewer distinct blocks); `pruning_fraction` p first zeroes the ⌊p·m·n⌋ smallest-magnitude entries.
The TF path runs the `kmeans_quantize` op (native kernel; composite under XLA); the NumPy path is
Lloyd's algorithm (1-D: sorted values, prefix sums and binary search; blocks: k-means++ seeded
from a local generator, then Lloyd).
"""
from typing import List, Sequence

import numpy as np
import tensorflow as tf

from tf_matcomp import ops
from tf_matcomp.compressors import base

MAX_UINT8_CLUSTERS = 256
MAX_ITERATIONS = 100
DEFAULT_SEED = 42
_KMEANS_PP_SAMPLE = 8192
_ASSIGN_CHUNK = 1 << 22  # blocks × clusters per distance chunk


def code_dtype_for(num_clusters: int) -> tf.DType:
    return tf.uint8 if num_clusters <= MAX_UINT8_CLUSTERS else tf.int32


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
    keep = tf.tensor_scatter_nd_update(tf.ones_like(flat), smallest[:, None],
                                       tf.zeros([count], a.dtype))
    return tf.reshape(flat * keep, tf.shape(a))


def _np_lloyd_1d(values: np.ndarray, k: int, max_iterations: int) -> np.ndarray:
    """Sorted 1-D centroids by Lloyd on sorted values (O(k log N) per iteration)."""
    x = np.sort(values)
    distinct = np.unique(x)
    if distinct.size <= k:
        return distinct
    prefix = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    centroids = np.unique(np.quantile(distinct, (np.arange(k) + 0.5) / k))
    if centroids.size < k:
        centroids = np.unique(np.concatenate([centroids, distinct[np.linspace(
            0, distinct.size - 1, k).astype(np.int64)]]))[:k]
    centroids = np.sort(centroids)
    for _ in range(max_iterations):
        bounds = np.searchsorted(x, (centroids[:-1] + centroids[1:]) / 2, side="left")
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [x.size]])
        counts = ends - starts
        sums = prefix[ends] - prefix[starts]
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        updated = np.sort(updated)
        if np.array_equal(updated, centroids):
            break
        centroids = updated
    return centroids


def _np_assign(blocks: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest codebook row for every block, in chunks."""
    chunk = max(1, _ASSIGN_CHUNK // max(1, codebook.shape[0]))
    norms = np.sum(codebook * codebook, axis=1)
    codes = np.empty(blocks.shape[0], dtype=np.int64)
    for start in range(0, blocks.shape[0], chunk):
        part = blocks[start:start + chunk]
        codes[start:start + chunk] = np.argmin(norms[None, :] - 2 * part @ codebook.T, axis=1)
    return codes


def _np_lloyd_blocks(blocks: np.ndarray, k: int, max_iterations: int, seed: int) -> np.ndarray:
    distinct = np.unique(blocks, axis=0)
    if distinct.shape[0] <= k:
        return distinct
    rng = np.random.default_rng(seed)  # local: the global NumPy RNG is untouched
    sample = blocks if blocks.shape[0] <= _KMEANS_PP_SAMPLE else blocks[
        rng.choice(blocks.shape[0], _KMEANS_PP_SAMPLE, replace=False)]
    centroids = [sample[rng.integers(sample.shape[0])]]
    distance = np.sum((sample - centroids[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = distance.sum()
        pick = rng.choice(sample.shape[0], p=distance / total) if total > 0 else rng.integers(
            sample.shape[0])
        centroids.append(sample[pick])
        distance = np.minimum(distance, np.sum((sample - sample[pick]) ** 2, axis=1))
    codebook = np.array(centroids)
    codes = None
    for _ in range(max_iterations):
        new_codes = _np_assign(blocks, codebook)
        if codes is not None and np.array_equal(new_codes, codes):
            break
        codes = new_codes
        counts = np.bincount(codes, minlength=k)
        sums = np.zeros_like(codebook)
        np.add.at(sums, codes, blocks)
        empty = counts == 0
        codebook = np.where(empty[:, None], codebook, sums / np.maximum(counts, 1)[:, None])
        if empty.any():  # restart empty clusters on the farthest blocks
            error = np.sum((blocks - codebook[codes]) ** 2, axis=1)
            codebook[empty] = blocks[np.argsort(error)[::-1][:int(empty.sum())]]
    return codebook


class KmeansMatrixCompressor(base.MatrixCompressorInterface):
    """k-means quantization: `rank` centroids of `block_size` values; codes index them.

    Args:
      spec: compressor hparams (rank = number of centroids, block_size, pruning_fraction;
        is_b_matrix_trainable decides whether the optimizer trains the codebook).
      seed: seed of the k-means++ initialisation (block_size > 1).
      max_iterations: most Lloyd iterations.
    """

    def __init__(self, spec=None, seed: int = DEFAULT_SEED,
                 max_iterations: int = MAX_ITERATIONS) -> None:
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
            raise ValueError(f"block_size ({block}) must divide the number of columns of the "
                             f"weight ({n}); shape {m}x{n}")
        return m, n

    def factor_specs(self, shape, dtype: tf.DType = tf.float32) -> List[base.FactorSpec]:
        m, n = self.validate_shape(shape)
        k, block = self._spec.rank, self._spec.block_size
        return [base.FactorSpec("b_matrix", (k, block), dtype, self._spec.is_b_matrix_trainable),
                base.FactorSpec("c_matrix", (m, n // block), code_dtype_for(k), False)]

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[codebook [rank, block_size], codes [m, n/block_size]] in NumPy."""
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        m, n = self.validate_shape(a.shape)
        k, block = self._spec.rank, self._spec.block_size
        a = np_prune(a, self._spec.pruning_fraction)
        blocks = a.reshape(m * n // block, block).astype(np.float64)
        if block == 1:
            centroids = _np_lloyd_1d(blocks[:, 0], k, self._max_iterations)[:, None]
        else:
            centroids = _np_lloyd_blocks(blocks, k, self._max_iterations, self._seed)
        if centroids.shape[0] > 0:  # snap the centroid nearest zero to 0, as the peer
            centroids[np.argmin(np.sum(centroids * centroids, axis=1))] = 0.0
        used = centroids.shape[0]
        codebook = np.zeros((k, block), dtype=np.float64)
        codebook[:used] = centroids
        if used == 0:
            codes = np.zeros(blocks.shape[0], np.int64)
        elif block == 1:  # nearest of sorted levels by binary search on the midpoints
            order = np.argsort(centroids[:, 0], kind="stable")
            codebook[:used] = centroids[order]
            levels = codebook[:used, 0]
            codes = np.searchsorted((levels[:-1] + levels[1:]) / 2, blocks[:, 0], side="right")
        else:
            codes = _np_assign(blocks, centroids)
        return [codebook.astype(a.dtype),
                codes.reshape(m, n // block).astype(code_dtype_for(k).as_numpy_dtype)]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[codebook, codes] through the `kmeans_quantize` op (composite under XLA)."""
        a = tf.convert_to_tensor(a_matrix)
        self.validate_shape(a.shape)
        a = tf_prune(a, self._spec.pruning_fraction)
        codebook, codes = ops.kmeans_quantize(
            a, self._spec.rank, block_size=self._spec.block_size,
            max_iterations=self._max_iterations, seed=self._seed, snap_zero=True)
        return [codebook, codes]

    def reconstruct(self, factors: Sequence[tf.Tensor], shape) -> tf.Tensor:
        codebook, codes = factors
        return ops.kmeans_dequantize(codebook, codes)
