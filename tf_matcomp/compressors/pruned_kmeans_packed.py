"""The stored form of pruning + k-means (option 8): bytes that follow the sparsity.

During training option 8 holds one code per block (`PrunedKMeansForm`, the zero code K − 1 for
pruned blocks), so every mask update is a plain assignment. What strip_compression stores (and
what sizes, `compression_ratio`, `.keras` after strip, SavedModel and TFLite hold) is this form,
built from the current codes. With N = m·n/b blocks, S of them kept, K codes:

    codebook [K − 1, b]    float, the centroids (the zero block is not stored)
    layout "sparse":  keep_bits  ceil(N/(8·g)) bytes, one bit per group of g consecutive
                                 blocks (g = mask_group: the pruning blocks' width in k-means
                                 blocks, found from the codes by `coarsest_mask_group`);
                                 omitted when S is 0 or N (the mask is then implied)
                      codes      the S kept blocks' codes (0..K − 2), bits_for(K − 1) bits each
                                 (none at all for K = 2: one centroid)
    layout "dense":   codes      all N codes (0..K − 1), bits_for(K) bits each

packed LSB first (`bit_packing`); the layout is whichever takes fewer bytes (ties: "dense",
fewer ops), so the stored bytes are a function of (m, n, b, K, S, g) alone and are exactly
the arrays' bytes. Â is rebuilt at run time with TFLite builtins: the bits unpacked, the kept
blocks' positions by a CUMSUM of the mask, the codebook rows by GATHER.
"""

import math
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.compressors import bit_packing
from tf_matcomp.compressors.form import CompressedForm

SPARSE, DENSE = "sparse", "dense"


def pruned_code(num_codes: int) -> int:
    """The code of the zero (pruned) block: the last one."""
    return num_codes - 1


def coarsest_mask_group(kept: np.ndarray) -> int:
    """The largest g dividing len(kept) with `kept` constant on each run of g entries (so one
    mask bit per g blocks loses nothing)."""
    kept = np.asarray(kept, bool).reshape(-1)
    size = kept.size
    small = [d for d in range(1, math.isqrt(size) + 1) if size % d == 0]
    for group in sorted({d for s in small for d in (s, size // s)}, reverse=True):
        runs = kept.reshape(-1, group)
        if np.all(runs == runs[:, :1]):
            return group
    return 1


def _layout_nbytes(blocks: int, kept: int, num_codes: int, group: int) -> Dict[str, int]:
    """Bytes of the mask and codes in each layout (the codebook is the same in both)."""
    mask = 0 if kept in (0, blocks) else bit_packing.packed_nbytes(blocks // group, 1)
    return {
        SPARSE: mask + bit_packing.packed_nbytes(kept, bit_packing.bits_for(num_codes - 1)),
        DENSE: bit_packing.packed_nbytes(blocks, bit_packing.bits_for(num_codes)),
    }


class PackedPrunedKMeansForm(CompressedForm):
    """Â = [codebook; 0][codes] with the codes bit-packed, in the layout (see the module doc)
    that stores the fewest bytes for `num_kept` kept blocks of the m·n/block_size, one mask
    bit per `mask_group` consecutive blocks.

    Raises:
      ValueError: block_size not dividing cols, num_codes < 2, num_kept outside
        [0, m·n/block_size], or mask_group not dividing m·n/block_size (each named).
    """

    kind = "pruned_kmeans_packed"

    def __init__(
        self,
        rows: int,
        cols: int,
        num_codes: int,
        block_size: int,
        num_kept: int,
        mask_group: int = 1,
        dtype="float32",
        implementation: str = "auto",
    ):
        super().__init__(rows, cols, dtype, implementation)
        self.num_codes, self.block_size = int(num_codes), int(block_size)
        if self.block_size < 1 or self.cols % self.block_size:
            raise ValueError(
                f"block_size must be >= 1 and divide cols ({self.cols}), got {block_size}"
            )
        if self.num_codes < 2:
            raise ValueError(
                f"num_codes must be >= 2 (a centroid and the zero code), got {num_codes}"
            )
        self.num_blocks = self.rows * self.cols // self.block_size
        self.num_kept = int(num_kept)
        if not 0 <= self.num_kept <= self.num_blocks:
            raise ValueError(
                f"num_kept must be in [0, {self.num_blocks}] (the number of blocks), got {num_kept}"
            )
        self.mask_group = int(mask_group)
        if self.mask_group < 1 or self.num_blocks % self.mask_group:
            raise ValueError(
                f"mask_group must be >= 1 and divide the number of blocks ({self.num_blocks}), "
                f"got {mask_group}"
            )
        sizes = _layout_nbytes(self.num_blocks, self.num_kept, self.num_codes, self.mask_group)
        self.layout = SPARSE if sizes[SPARSE] < sizes[DENSE] else DENSE

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_codes": self.num_codes,
            "block_size": self.block_size,
            "num_kept": self.num_kept,
            "mask_group": self.mask_group,
        }

    @property
    def _code_count_and_width(self) -> Tuple[int, int]:
        if self.layout == DENSE:
            return self.num_blocks, bit_packing.bits_for(self.num_codes)
        return self.num_kept, bit_packing.bits_for(self.num_codes - 1)

    @property
    def _has_mask(self) -> bool:
        return self.layout == SPARSE and 0 < self.num_kept < self.num_blocks

    def variables(self):
        arrays = [("codebook", (self.num_codes - 1, self.block_size), self.dtype)]
        if self._has_mask:
            groups = self.num_blocks // self.mask_group
            arrays.append(("keep_bits", (bit_packing.packed_nbytes(groups, 1),), "uint8"))
        code_bytes = bit_packing.packed_nbytes(*self._code_count_and_width)
        if code_bytes:
            arrays.append(("codes", (code_bytes,), "uint8"))
        return arrays

    def label(self) -> str:
        return f"{self.num_codes}x{self.block_size} s={1 - self.num_kept / self.num_blocks:.0%}"

    def pack(self, codes: np.ndarray) -> Dict[str, np.ndarray]:
        """The packed arrays (keep_bits, codes; as `variables()` lists them) of block codes
        [m, n/block_size] (0..K − 1, K − 1 pruned) with `num_kept` kept blocks, kept or pruned
        by whole runs of `mask_group`.

        Raises:
          ValueError: the codes do not have that many blocks, kept blocks or that grouping.
        """
        codes = np.asarray(codes, np.int64).reshape(-1)
        kept = codes != pruned_code(self.num_codes)
        if kept.size != self.num_blocks or int(kept.sum()) != self.num_kept:
            raise ValueError(
                f"codes: expected {self.num_blocks} block codes with {self.num_kept} kept, got "
                f"{kept.size} with {int(kept.sum())} kept"
            )
        groups = kept.reshape(-1, self.mask_group)
        if np.any(groups != groups[:, :1]):
            raise ValueError(
                f"codes: the mask is not constant on runs of mask_group={self.mask_group} blocks"
            )
        _, width = self._code_count_and_width
        packed = {"keep_bits": bit_packing.np_pack(groups[:, 0], 1)}
        packed["codes"] = bit_packing.np_pack(codes if self.layout == DENSE else codes[kept], width)
        return {name: packed[name] for name, _, _ in self.variables()[1:]}

    def block_codes(self, packed: List[tf.Tensor]) -> tf.Tensor:
        """int32 [N]: every block's code (K − 1 where pruned) from the packed arrays."""
        stored = dict(zip([name for name, _, _ in self.variables()[1:]], packed))
        count, width = self._code_count_and_width
        zero_code = pruned_code(self.num_codes)
        codes = (
            bit_packing.unpack(stored["codes"], count, width)
            if "codes" in stored
            else tf.zeros([count], tf.int32)  # K = 2: every kept block is centroid 0
        )
        if self.layout == DENSE or self.num_kept == self.num_blocks:
            return codes
        if self.num_kept == 0:
            return tf.fill([self.num_blocks], zero_code)
        groups = self.num_blocks // self.mask_group
        keep = tf.cast(bit_packing.unpack_bits(stored["keep_bits"])[:groups], tf.int32)
        if self.mask_group > 1:  # each group's bit for its blocks (a broadcast MUL)
            keep = tf.reshape(keep[:, None] * tf.ones([1, self.mask_group], tf.int32), [-1])
        # Kept block t takes kept code cumsum(keep)[t] − 1; pruned ones the appended zero code.
        rank = tf.cumsum(keep) - 1
        index = keep * (rank - self.num_kept) + self.num_kept
        return tf.gather(tf.concat([codes, [zero_code]], 0), index)

    def matrix(self, arrays):
        codebook, *packed = arrays
        with_zero = tf.concat([codebook, tf.zeros([1, self.block_size], codebook.dtype)], 0)
        blocks = tf.gather(with_zero, self.block_codes(packed))
        return tf.reshape(blocks, [self.rows, self.cols])
