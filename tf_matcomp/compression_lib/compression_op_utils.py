"""graph_compression's `compression_op_utils`: option enums and the compressed-rank formula."""

import enum
from typing import Sequence

import tensorflow as tf

from tf_matcomp.compression_op import spec as spec_lib
from tf_matcomp.compressors import base


class CompressionOptions(enum.IntEnum):
    """graph_compression's `compression_option` values. tf_matcomp implements 0–4 (see
    `tf_matcomp.compressors.registry`); selecting another is a ValueError."""

    NO_MATRIX_COMPRESSION = 0
    LOWRANK_MATRIX_COMPRESSION = 1
    SIMHASH_MATRIX_COMPRESSION = 2
    DL_MATRIX_COMPRESSION = 3
    KMEANS_MATRIX_COMPRESSION = 4
    KMEANS_AND_PRUNING_MATRIX_COMPRESSION = 8
    INPUTOUTPUT_COMPRESSION = 9
    BLOCK_COMPRESSION = 10
    MIXED_BLOCK_COMPRESSION = 12


class UpdateOptions(enum.IntEnum):
    """graph_compression's `update_option` values (tf_matcomp's `compression_op.spec`)."""

    TF_UPDATE = spec_lib.UPDATE_TF
    PYTHON_UPDATE = spec_lib.UPDATE_PYTHON
    TF_AND_PYTHON_UPDATE = spec_lib.UPDATE_BOTH
    NO_UPDATE = spec_lib.UPDATE_NONE


def compute_compressed_rank_from_matrix_shape(matrix_shape: Sequence[int], rank_factor: int) -> int:
    """min(ceil(min(matrix_shape) · 100 / rank_factor), min(matrix_shape)).

    The rank low-rank compression keeps: `rank_factor` is a compression factor ×100, and the
    result never exceeds the matrix's smallest dimension.
    """
    rank_factor = base.require_positive_int(rank_factor, "rank_factor")
    smallest = int(min(matrix_shape))
    return base.compression_factor_rank(smallest, smallest, rank_factor)


def flatten_last_dims(x, ndims: int = 1) -> tf.Tensor:
    """`x` with its last `ndims` dimensions flattened into one."""
    new_shape = tf.concat([tf.shape(x)[:-ndims], [-1]], axis=0)
    return tf.reshape(x, new_shape)
