"""Block-diagonal compression (compression_option 10): A replaced by its diagonal blocks.

With A [m, n] and f the `block_compression_factor` hparam (f must divide m and n),
r = m / f, c = n / f:

    A viewed as an f × f grid of r × c blocks;  stored: blocks [f, r, c] (`c_matrix`)
    Â = diag(blocks[0], …, blocks[f−1])   (zero off the diagonal blocks)

so f·r·c = m·n / f values are stored: exactly f times smaller than dense at any dtype. The
compressor keeps A's diagonal blocks, the least-squares fit among block-diagonal matrices;
training then moves the blocks like any weight. Input chunk i (entries i·r … (i+1)·r − 1 of
x's last axis) meets only block i, which writes output chunk i: `matmul`,
`transposed_matmul` and `gather_rows` work block by block and never form Â.

`block_method` (graph_compression's hparam) says how the blocks are applied, with the same
result either way: "loop" goes over the f blocks (f small matmuls; Â assembled row of blocks
by row of blocks), "mask" treats them at once (one batched contraction; Â as the blocks
spread over the f × f grid times the constant block-diagonal mask). Unlike graph_compression,
"mask" stores the same f·r·c values as "loop" — its m×n `c_matrix` and m×n `c_mask` took twice
the dense bytes — and both start from A's blocks (graph_compression started from random
values, its "loop" blocks had the wrong shape [f, m/2, n/2], and alpha was never used).
A convolution mixes every row of its kernel view, so `conv` goes through Â.
"""

import math
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.compressors import base
from tf_matcomp.compressors.form import CompressedForm, matmul_last_axis
from tf_matcomp.compressors.method import Method
from tf_matcomp.hparams import HParams

BLOCK_METHODS = ("loop", "mask")


def divisors(value: int) -> List[int]:
    """The divisors of `value`, ascending."""
    return [d for d in range(1, value + 1) if value % d == 0]


def require_block_grid(shape, factor: int, name: str) -> Tuple[int, int]:
    """(m, n) of `shape` when `factor` (hparam `name`) divides both; else ValueError."""
    m, n = base.matrix_shape(shape)
    if m % factor or n % factor:
        raise ValueError(
            f"{name} ({factor}) must divide both dimensions of the weight; shape {m}x{n} "
            f"(it may be any common divisor of {m} and {n}: {divisors(math.gcd(m, n))})"
        )
    return m, n


def require_block_method(value) -> str:
    """`value` when it is a `BLOCK_METHODS` name; else ValueError naming block_method."""
    if value not in BLOCK_METHODS:
        raise ValueError(f"block_method must be one of {BLOCK_METHODS}, got {value!r}")
    return value


def split_last_axis(x: tf.Tensor, parts: int) -> tf.Tensor:
    """x [..., parts·w] → [..., parts, w] (static dimensions kept where known)."""
    leading = [d if d is not None else tf.shape(x)[i] for i, d in enumerate(x.shape[:-1])]
    return tf.reshape(x, leading + [parts, x.shape[-1] // parts])


def merge_last_axes(x: tf.Tensor) -> tf.Tensor:
    """x [..., parts, w] → [..., parts·w]."""
    leading = [d if d is not None else tf.shape(x)[i] for i, d in enumerate(x.shape[:-2])]
    return tf.reshape(x, leading + [x.shape[-2] * x.shape[-1]])


def np_diagonal_blocks(a: np.ndarray, factor: int) -> np.ndarray:
    """The f diagonal blocks [f, m/f, n/f] of `a` (NumPy)."""
    m, n = a.shape
    return np.einsum("iaib->iab", a.reshape(factor, m // factor, factor, n // factor)).copy()


def tf_diagonal_blocks(a: tf.Tensor, factor: int) -> tf.Tensor:
    """The f diagonal blocks [f, m/f, n/f] of `a` (TF ops, XLA-compilable)."""
    m, n = base.matrix_shape(a.shape)
    grid = tf.reshape(a, [factor, m // factor, factor, n // factor])
    diagonal = tf.linalg.diag_part(tf.transpose(grid, [1, 3, 0, 2]))  # [r, c, f]
    return tf.transpose(diagonal, [2, 0, 1])


class BlockDiagonalForm(CompressedForm):
    """W = diag(blocks[0], …, blocks[f−1]) with blocks [f, m/f, n/f] (`c_matrix`)."""

    kind = "block_diagonal"

    def __init__(
        self,
        rows: int,
        cols: int,
        num_blocks: int,
        block_method: str = "loop",
        dtype="float32",
        implementation: str = "auto",
    ):
        super().__init__(rows, cols, dtype, implementation)
        self.num_blocks = int(num_blocks)
        self.block_method = require_block_method(block_method)
        require_block_grid((self.rows, self.cols), self.num_blocks, "block_compression_factor")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_blocks": self.num_blocks,
            "block_method": self.block_method,
        }

    def variables(self):
        f = self.num_blocks
        return [("c_matrix", (f, self.rows // f, self.cols // f), self.dtype)]

    def label(self) -> str:
        return f"{self.num_blocks} blocks"

    def matrix(self, arrays):
        (blocks,) = arrays
        f = self.num_blocks
        if self.block_method == "mask":
            mask = tf.eye(f, dtype=blocks.dtype)[:, None, :, None]  # [f, 1, f, 1]
            return tf.reshape(blocks[:, :, None, :] * mask, [self.rows, self.cols])
        width = self.cols // f
        return tf.concat(
            [tf.pad(blocks[i], [[0, 0], [i * width, (f - 1 - i) * width]]) for i in range(f)],
            axis=0,
        )

    def _blockwise(self, x: tf.Tensor, blocks: tf.Tensor) -> tf.Tensor:
        """x [..., f·p] times diag(blocks) for blocks [f, p, q]: [..., f·q]."""
        blocks = tf.cast(blocks, x.dtype)
        if self.block_method == "mask":
            return merge_last_axes(
                tf.einsum("...fp,fpq->...fq", split_last_axis(x, self.num_blocks), blocks)
            )
        chunks = tf.split(x, self.num_blocks, axis=-1)
        return tf.concat(
            [matmul_last_axis(chunk, blocks[i]) for i, chunk in enumerate(chunks)], axis=-1
        )

    def matmul(self, x, arrays):
        (blocks,) = arrays
        return self._blockwise(x, blocks)

    def transposed_matmul(self, x, arrays):
        (blocks,) = arrays
        return self._blockwise(x, tf.transpose(blocks, [0, 2, 1]))

    def gather_rows(self, ids, arrays):
        (blocks,) = arrays
        ids = tf.convert_to_tensor(ids)
        height = self.rows // self.num_blocks
        block, local = ids // height, ids % height
        values = tf.gather_nd(blocks, tf.stack([block, local], axis=-1))  # [..., c]
        placed = (
            tf.one_hot(block, self.num_blocks, dtype=blocks.dtype)[..., None] * values[..., None, :]
        )
        return merge_last_axes(placed)


class BlockDiagonalCompressor(base.MatrixCompressorInterface):
    """Block-diagonal compression: the `block_compression_factor` diagonal blocks of A.

    Args:
      spec: compressor hparams (`get_default_hparams()`: block_compression_factor,
        block_method; is_c_matrix_trainable decides whether the optimizer trains the blocks).

    Raises:
      ValueError: block_compression_factor is not a positive int, or block_method is not
        "loop" or "mask".
    """

    factor_names = ("c_matrix",)  # graph_compression's name of the blocks

    def __init__(self, spec=None) -> None:
        super().__init__(spec)
        self._factor = base.require_positive_int(
            self._spec.block_compression_factor, "block_compression_factor"
        )
        require_block_method(self._spec.block_method)

    @staticmethod
    def get_default_hparams() -> HParams:
        """The shared compressor spec plus block_method ("loop") and block_compression_factor
        (1: the number of diagonal blocks, so also the compression factor)."""
        spec = base.compressor_hparams()
        spec.add_hparam("block_method", "loop")
        spec.add_hparam("block_compression_factor", 1)
        return spec

    @classmethod
    def hparams_for_ratio(cls, shape, ratio: float, spec: HParams) -> Dict[str, int]:
        """The smallest number of blocks (a common divisor of m and n) of at least `ratio`;
        the largest common divisor when none is."""
        m, n = base.matrix_shape(shape)
        common = divisors(math.gcd(m, n))
        return {"block_compression_factor": next((f for f in common if f >= ratio), common[-1])}

    def validate_shape(self, shape):
        return require_block_grid(shape, self._factor, "block_compression_factor")

    def form(self, shape, dtype: tf.DType = tf.float32) -> BlockDiagonalForm:
        m, n = self.validate_shape(shape)
        return BlockDiagonalForm(
            m, n, self._factor, self._spec.block_method, tf.as_dtype(dtype).name
        )

    def factor_trainable(self) -> Tuple[bool, ...]:
        return (self._spec.is_c_matrix_trainable,)

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[blocks [f, m/f, n/f]]: A's diagonal blocks, in NumPy."""
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        self.validate_shape(a.shape)
        return [np_diagonal_blocks(a, self._factor)]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[blocks [f, m/f, n/f]]: A's diagonal blocks, in TF ops."""
        a = tf.convert_to_tensor(a_matrix)
        self.validate_shape(a.shape)
        return [tf_diagonal_blocks(a, self._factor)]


METHOD = Method(
    name="block",
    label="block-diagonal",
    options=(10,),
    compressor_class=BlockDiagonalCompressor,
    form_class=BlockDiagonalForm,
    factor_attributes={"c_matrix_tfvar": 0},
    op_hparams=("block_method", "block_compression_factor"),
)
