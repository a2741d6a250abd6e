"""Magnitude pruning + k-means (compression_option 8): prune gradually, quantize what survives.

With A [m, n], b = block_size (must divide n, and block_width when it is not −1) and
K = `rank` codes (2 <= K; uint8 codes up to 256):

    codebook [K − 1, b] (float): the centroids of the surviving blocks;  codes [m, n/b]
    code K − 1 is the zero block: pruned (its row is not stored)
    Â[i, j·b:(j+1)·b] = codebook[codes[i, j]], or 0 where codes[i, j] = K − 1

so the mask is implied by the zero code. That is the training form (`PrunedKMeansForm`: one
code per block, so a mask update is an assignment; the CompressionOp's `compressed_bits` count
it). What is deployed — strip_compression, sizes, `compression_ratio`, export — is its packed
form of the current codes (`pruned_kmeans_packed`: a mask bit per pruning block and the kept
blocks' codes at ceil(log2(K − 1)) bits, or all codes at ceil(log2 K) bits, whichever is
smaller), so the bytes follow the sparsity. While training, the layer computes with

    W = alpha · (A ⊙ M) + (1 − alpha) · Â,    M = (codes ≠ K − 1)

(graph_compression's `alpha·(A⊙M) + (1 − alpha)·(Â⊙M)`; Â is zero where M is). Codes start at
0, so before the first update M is all ones and W = A.

Updates. The mask follows the gradual sparsity schedule of `magnitude_pruning` (pruning hparams
of the op spec). Every mask update recomputes, from the weight the layer computes with (W):
the mask at s(step) and then the k-means of the surviving blocks (K − 1 centroids, the kept
blocks' codes, the zero code elsewhere) — so mask and codebook move together in every update
mode, TF ops included. The compression schedule's first firing computes the k-means of W's
blocks kept by the current mask; alpha then steps as for every method, and the optimizer trains
the codebook between updates. Working from W rather than A means a pruned weight (zero in W)
stays pruned, and once alpha is 0 a mask update re-clusters the trained codebook's values
instead of the stale A.

k-means of the survivors with static shapes (so it compiles under jit_compile): the kept blocks
are listed first (in position order) and the pruned slots are filled by cycling through them,
so the `kmeans_quantize` op clusters all m·n/b slots, each kept block entering ⌊N/S⌋ or ⌈N/S⌉
times (N slots, S kept: exactly equal weights when S divides N, e.g. sparsity 0 or 0.5 on an
even count); the kept blocks' codes are their first copy's. The NumPy path does the same
through the C++ core, so both give the same bytes as the native kernel.

Differences from graph_compression, each a fix:
  * TF-op updates (update_option 0) update the mask and the codebook/codes and step alpha
    (graph_compression's TF update only pruned, its k-means ran only from Python, once);
  * the zero code is reserved and not trained (graph_compression snapped the centroid nearest
    zero to 0 and then let the optimizer move it, so pruned weights came back), and the
    surviving weights are clustered without the pruned zeros pulling a centroid to 0;
  * past end_compression_step the weight stays the compressed one (graph_compression switched
    back to the pruned dense A there);
  * mask updates from Python (update_option 1) exist (graph_compression had a TODO).
"""

from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import _core_loader, constants, ops
from tf_matcomp.compressors import base, kmeans
from tf_matcomp.compressors import magnitude_pruning as pruning
from tf_matcomp.compressors.method import Method
from tf_matcomp.compressors.pruned_kmeans_packed import (
    PackedPrunedKMeansForm,
    coarsest_mask_group,
    pruned_code,
)
from tf_matcomp.hparams import HParams

MIN_CODES = 2  # the zero code and one centroid


class PrunedKMeansForm(kmeans.KMeansForm):
    """Â = [codebook; 0][codes] with codebook [K − 1, block_size] and codes [m, n/block_size]
    (uint8 when K <= 256, else int32); code K − 1 is the zero (pruned) block."""

    kind = "pruned_kmeans"

    def __init__(
        self,
        rows: int,
        cols: int,
        num_codes: int,
        block_size: int,
        dtype="float32",
        implementation: str = "auto",
    ):
        super().__init__(rows, cols, int(num_codes) - 1, block_size, dtype, implementation)
        self.num_codes = int(num_codes)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["num_clusters"]  # K − 1: the stored centroids
        return {**config, "num_codes": self.num_codes}

    def variables(self):
        codebook, (name, shape, _) = super().variables()
        return [codebook, (name, shape, ops.kmeans.code_dtype_for(self.num_codes).name)]

    def label(self) -> str:
        return f"{self.num_codes}x{self.block_size} pruned"

    def matrix(self, arrays):
        codebook, codes = arrays
        with_zero = tf.concat([codebook, tf.zeros([1, self.block_size], codebook.dtype)], 0)
        return super().matrix([with_zero, codes])

    def keep_mask(self, codes, dtype) -> tf.Tensor:
        """M [m, n]: 1 where the code is not the zero code, else 0 (at `dtype`)."""
        kept = tf.not_equal(tf.cast(codes, tf.int32), pruned_code(self.num_codes))
        return tf.repeat(tf.cast(kept, dtype), self.block_size, axis=1)

    def dense_part(self, a, arrays):
        """A ⊙ M, M implied by the codes (so the blend is alpha·(A ⊙ M) + (1 − alpha)·Â)."""
        return a * self.keep_mask(arrays[1], a.dtype)

    def deployed_form(self, arrays):
        """The packed form (`pruned_kmeans_packed`) of these codes: sized by their mask."""
        codebook, codes = (np.asarray(arrays[name]) for name, _, _ in self.variables())
        kept = codes != pruned_code(self.num_codes)
        packed = PackedPrunedKMeansForm(
            self.rows,
            self.cols,
            self.num_codes,
            self.block_size,
            int(np.count_nonzero(kept)),
            coarsest_mask_group(kept),
            self.dtype,
        )
        return packed, {"codebook": codebook, **packed.pack(codes)}


def _fill_order(keep: np.ndarray) -> Tuple[np.ndarray, int]:
    """(slot → block index: the kept blocks in order, then cycling through them; count kept)."""
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        return np.zeros(keep.size, np.int64), 0
    return kept[np.arange(keep.size) % kept.size], int(kept.size)


class PrunedKMeansCompressor(base.MatrixCompressorInterface):
    """Magnitude pruning (gradual, block-wise) and k-means of the surviving blocks.

    Args:
      spec: compressor hparams (`get_default_hparams()`: rank = number of codes including the
        zero code, block_size, the pruning hparams of `magnitude_pruning`; is_b_matrix_trainable
        decides whether the optimizer trains the codebook).
      seed: seed of the k-means++ initialisation (block_size > 1).
      max_iterations: most Lloyd iterations.

    Raises:
      ValueError: rank < 2 or above the k-means op's limit, block_size not a positive int, a
        pruning hparam out of its range (each named), or a pruning feature not implemented
        (gradient `prune_option`s, `weight_sparsity_map`, `block_dims_map`).
    """

    factor_names = ("b_matrix", "c_matrix")  # graph_compression's: codebook, codes

    def __init__(
        self,
        spec=None,
        seed: int = constants.DEFAULT_SEED,
        max_iterations: int = constants.DEFAULT_MAX_ITERATIONS,
    ) -> None:
        super().__init__(spec)
        spec = self._spec
        if not MIN_CODES <= spec.rank <= constants.MAX_CLUSTERS + 1:
            raise ValueError(
                f"rank (the number of codes, the zero code included) must be in "
                f"[{MIN_CODES}, {constants.MAX_CLUSTERS + 1}] for compression_option 8, "
                f"got {spec.rank}"
            )
        base.require_positive_int(spec.block_size, "block_size")
        if spec.prune_option != "weight":
            raise ValueError(
                f"prune_option must be 'weight' (magnitude pruning) for compression_option 8; "
                f"the gradient-based options are not implemented, got {spec.prune_option!r}"
            )
        for name in ("weight_sparsity_map", "block_dims_map"):
            if any(entry for entry in spec.get(name)):
                raise ValueError(
                    f"{name} (per-weight pruning settings) is not implemented for "
                    f"compression_option 8: leave it [''] and give each layer its own spec, "
                    f"got {spec.get(name)!r}"
                )
        self._sparsity = pruning.SparsitySchedule.from_spec(spec)
        self._masker = pruning.BlockMasker.from_spec(spec)
        self._seed = int(seed)
        self._max_iterations = base.require_positive_int(max_iterations, "max_iterations")

    @staticmethod
    def get_default_hparams() -> HParams:
        """The shared compressor spec plus the pruning hparams (graph_compression's defaults)."""
        spec = base.compressor_hparams()
        for name, value in pruning.DEFAULT_PRUNING_HPARAMS.items():
            spec.add_hparam(name, value)
        return spec

    @property
    def sparsity_schedule(self) -> pruning.SparsitySchedule:
        return self._sparsity

    def validate_shape(self, shape):
        m, n = base.matrix_shape(shape)
        block = self._spec.block_size
        if n % block:
            raise ValueError(
                f"block_size ({block}) must divide the number of columns of the "
                f"weight ({n}); shape {m}x{n}"
            )
        _, width = self._masker.block_shape(m, n)
        if width % block and width != n:
            raise ValueError(
                f"block_size ({block}) must divide block_width ({self._spec.block_width}) so "
                f"that each k-means block is pruned whole; shape {m}x{n}"
            )
        return m, n

    @classmethod
    def hparams_for_ratio(cls, shape, ratio, spec) -> Dict[str, int]:
        """The smallest block_size (dividing the columns) at which some number of codes
        (2..256, uint8 codes) reaches `ratio`, with the most codes that still do; block_width
        widened to that block_size where it does not divide it. The widest block and 2 codes
        when none reaches it."""
        m, n = base.matrix_shape(shape)

        def choice(block: int, codes: int) -> Dict[str, int]:
            width = spec.block_width
            if width != pruning.WHOLE_DIMENSION and width % block:
                width = block
            return {"rank": codes, "block_size": block, "block_width": width}

        for block in (b for b in range(1, n + 1) if n % b == 0):
            for codes in range(constants.MAX_UINT8_CLUSTERS, MIN_CODES - 1, -1):
                form = PrunedKMeansForm(m, n, codes, block)
                if form.dense_nbytes() >= ratio * form.nbytes():
                    return choice(block, codes)
        return choice(n, MIN_CODES)

    def form(self, shape, dtype: tf.DType = tf.float32) -> PrunedKMeansForm:
        m, n = self.validate_shape(shape)
        return PrunedKMeansForm(
            m, n, self._spec.rank, self._spec.block_size, tf.as_dtype(dtype).name
        )

    def factor_trainable(self) -> Tuple[bool, ...]:
        return (self._spec.is_b_matrix_trainable, False)  # integer codes are never trained

    # --- one-shot compression (a weight pruned straight to target_sparsity) -----------------
    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[codebook [K−1, b], codes [m, n/b]] of `a_matrix` pruned to target_sparsity, NumPy."""
        a = self._np_matrix(a_matrix)
        return self._np_quantize(a, self._masker.np_mask(a, self._sparsity.target_sparsity))

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[codebook, codes] of `a_matrix` pruned to target_sparsity, in TF ops."""
        a = tf.convert_to_tensor(a_matrix)
        self.validate_shape(a.shape)
        return self._tf_quantize(a, self._masker.tf_mask(a, self._sparsity.target_sparsity))

    # --- the updates during training (see the module docstring) -----------------------------
    def recompression_schedule(self):
        return self._sparsity.firing

    def static_recompress(self, weight, factors, step: int, on_own_schedule: bool):
        """The factors of `weight` (W) at `step` in NumPy: a new mask at s(step) and its k-means
        when `on_own_schedule` (a mask update), else the k-means under the current mask."""
        w = self._np_matrix(weight)
        if on_own_schedule:
            keep = self._masker.np_mask(w, self._sparsity.sparsity(step))
        else:
            codes = np.asarray(factors[1]).astype(np.int64)
            keep = np.repeat(codes != pruned_code(self._spec.rank), self._spec.block_size, 1)
        return self._np_quantize(w, keep)

    def tpu_recompress(self, weight, factors, step, on_own_schedule: bool):
        """`static_recompress` in TF ops (graph, tf.function, jit_compile)."""
        w = tf.convert_to_tensor(weight)
        if on_own_schedule:
            keep = self._masker.tf_mask(w, self._sparsity.sparsity_tf(step))
        else:
            keep = tf.cast(self.form(w.shape, w.dtype).keep_mask(factors[1], tf.int32), tf.bool)
        return self._tf_quantize(w, keep)

    # --- k-means of the kept blocks -------------------------------------------------------------
    def _np_matrix(self, a_matrix) -> np.ndarray:
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        self.validate_shape(a.shape)
        return a

    def _np_quantize(self, a: np.ndarray, keep: np.ndarray) -> List[np.ndarray]:
        core = _core_loader.core_or_warn("PrunedKMeansCompressor (NumPy path)")
        if core is None:
            return [np.asarray(f) for f in self._tf_quantize(tf.constant(a), tf.constant(keep))]
        block, codes_count = self._spec.block_size, self._spec.rank
        points = a.reshape(-1, block)
        kept = keep.reshape(-1, block)[:, 0]
        order, count = _fill_order(kept)
        codebook, slot_codes = core.kmeans_quantize(
            points[order],
            codes_count - 1,
            block_size=block,
            max_iterations=self._max_iterations,
            seed=self._seed,
            snap_zero=False,
        )
        codes = np.full(kept.size, pruned_code(codes_count), np.int64)
        codes[order[:count]] = np.asarray(slot_codes).reshape(-1)[:count]
        if count == 0:
            codebook = np.zeros_like(codebook)
        code_dtype = ops.kmeans.code_dtype_for(codes_count).as_numpy_dtype
        return [codebook, codes.astype(code_dtype).reshape(a.shape[0], -1)]

    def _tf_quantize(self, a: tf.Tensor, keep: tf.Tensor) -> List[tf.Tensor]:
        block, codes_count = self._spec.block_size, self._spec.rank
        m, n = a.shape.as_list()
        points = tf.reshape(a, [-1, block])
        kept = tf.reshape(keep, [-1, block])[:, 0]
        slots = m * n // block
        # Kept blocks first, in position order (a stable sort of "is pruned").
        order = tf.argsort(tf.cast(tf.logical_not(kept), tf.int32), stable=True)
        count = tf.reduce_sum(tf.cast(kept, tf.int32))
        filled = tf.gather(order, tf.range(slots) % tf.maximum(count, 1))
        codebook, slot_codes = ops.kmeans_quantize(
            tf.gather(points, filled),
            codes_count - 1,
            block_size=block,
            max_iterations=self._max_iterations,
            seed=self._seed,
            snap_zero=False,
        )
        # The kept block at position order[r] (r < count) takes slot r's code.
        slot_of_block = tf.math.invert_permutation(order)
        codes = tf.where(
            kept,
            tf.gather(tf.cast(tf.reshape(slot_codes, [-1]), tf.int32), slot_of_block),
            pruned_code(codes_count),
        )
        codebook = tf.where(count > 0, codebook, tf.zeros_like(codebook))
        code_dtype = ops.kmeans.code_dtype_for(codes_count)
        return [codebook, tf.reshape(tf.cast(codes, code_dtype), [m, n // block])]


METHOD = Method(
    name="pruned_kmeans",
    label="pruning+k-means",
    options=(8,),
    compressor_class=PrunedKMeansCompressor,
    form_class=PrunedKMeansForm,
    compressor_overrides={"is_c_matrix_trainable": False},  # integer codes
    op_hparams=pruning.PRUNING_HPARAMS,
    deployed_form_classes=(PackedPrunedKMeansForm,),
)
