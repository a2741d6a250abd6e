"""`get_apply_compression(spec, global_step)`: compressor and ApplyCompression from the option.

compression_option (graph_compression's numbers):
  0, 1 — low-rank (LowRankDecompMatrixCompressor, ApplyCompression)
  2    — simhash (SimhashMatrixCompressor, SimhashApplyCompression)
  3    — dictionary learning (DLMatrixCompressor, DLApplyCompression)
  4    — k-means quantization (KmeansMatrixCompressor, SimhashApplyCompression, as the peer)
Any other value raises ValueError (graph_compression silently fell back to low-rank; its
options 8 and 9 are not provided).
"""
from tf_matcomp import compression_op
from tf_matcomp.compression_op import (ApplyCompression, CompressionOp, DLCompressionOp,
                                       KMeansCompressionOp, SimhashCompressionOp)
from tf_matcomp.compressors.dictionary_learning import DLMatrixCompressor
from tf_matcomp.compressors.kmeans import KmeansMatrixCompressor
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor
from tf_matcomp.compressors.simhash import SimhashMatrixCompressor
from tf_matcomp.hparams import HParams

__all__ = ["ApplyCompression", "CompressionOp", "DLApplyCompression", "DLCompressionOp",
           "DLMatrixCompressor", "KMeansCompressionOp", "KmeansMatrixCompressor",
           "LowRankDecompMatrixCompressor", "SimhashApplyCompression", "SimhashCompressionOp",
           "SimhashMatrixCompressor", "get_apply_compression", "make_compressor"]


class SimhashApplyCompression(ApplyCompression):
    """ApplyCompression for simhash and k-means (ops chosen from the compressor)."""


class DLApplyCompression(ApplyCompression):
    """ApplyCompression for dictionary learning."""

    compression_op_class = DLCompressionOp


_COMPRESSORS = {
    0: (LowRankDecompMatrixCompressor, ApplyCompression),
    1: (LowRankDecompMatrixCompressor, ApplyCompression),
    2: (SimhashMatrixCompressor, SimhashApplyCompression),
    3: (DLMatrixCompressor, DLApplyCompression),
    4: (KmeansMatrixCompressor, SimhashApplyCompression),
}


def make_compressor(compression_op_spec: HParams):
    """The compressor for a validated op spec; its compressor spec takes rank, block_size,
    pruning_fraction and use_tpu from the op spec (the op spec is not modified)."""
    compression_op.validate_spec(compression_op_spec)
    compressor_class, _ = _COMPRESSORS[compression_op_spec.compression_option]
    compressor_spec = LowRankDecompMatrixCompressor.get_default_hparams()
    for key in ("rank", "block_size", "pruning_fraction", "use_tpu"):
        if key in compression_op_spec:
            compressor_spec.set_hparam(key, compression_op_spec.get(key))
    if compression_op_spec.compression_option == 2:
        compressor_spec.set_hparam("is_b_matrix_trainable", False)  # signs
        compressor_spec.set_hparam("is_c_matrix_present", False)
    if compression_op_spec.compression_option == 4:
        compressor_spec.set_hparam("is_c_matrix_trainable", False)  # codes
    return compressor_class(spec=compressor_spec)


def get_apply_compression(compression_op_spec: HParams, global_step=None,
                          variable_factory=None) -> ApplyCompression:
    """The ApplyCompression object for `compression_op_spec.compression_option`.

    Args:
      compression_op_spec: op hparams (`CompressionOp.get_default_hparams()`, parsed); copied.
      global_step: step variable or tensor for updates that are not given a step.
      variable_factory: optional variable creator passed to each CompressionOp.

    Raises:
      ValueError: an unknown option or any invalid hparam (named, with the rule).
    """
    compressor = make_compressor(compression_op_spec)
    _, apply_class = _COMPRESSORS[compression_op_spec.compression_option]
    return apply_class(scope="default_scope", compression_spec=compression_op_spec,
                       compressor=compressor, global_step=global_step,
                       variable_factory=variable_factory)
