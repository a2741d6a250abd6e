"""`get_apply_compression(spec, global_step)`: compressor and ApplyCompression from the option.

The option → method table is `tf_matcomp.compressors.registry` (0 and 1 low-rank, 2 simhash,
3 dictionary learning, 4 k-means, 8 pruning + k-means, 9 input/output, 10 block-diagonal, 12
mixed-block); any other value raises ValueError (graph_compression silently fell back to
low-rank). The ApplyCompression class follows graph_compression's naming:
SimhashApplyCompression for simhash and k-means, DLApplyCompression for dictionary learning,
ApplyCompression otherwise.
"""

from tf_matcomp import compression_op
from tf_matcomp.compression_op import (
    ApplyCompression,
    CompressionOp,
    DLCompressionOp,
    KMeansCompressionOp,
    SimhashCompressionOp,
)
from tf_matcomp.compressors import registry
from tf_matcomp.compressors.dictionary_learning import DLMatrixCompressor
from tf_matcomp.compressors.kmeans import KmeansMatrixCompressor
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor
from tf_matcomp.compressors.simhash import SimhashMatrixCompressor
from tf_matcomp.hparams import HParams

__all__ = [
    "ApplyCompression",
    "CompressionOp",
    "DLApplyCompression",
    "DLCompressionOp",
    "DLMatrixCompressor",
    "KMeansCompressionOp",
    "KmeansMatrixCompressor",
    "LowRankDecompMatrixCompressor",
    "SimhashApplyCompression",
    "SimhashCompressionOp",
    "SimhashMatrixCompressor",
    "get_apply_compression",
    "make_compressor",
]


class SimhashApplyCompression(ApplyCompression):
    """ApplyCompression for simhash and k-means (ops chosen from the compressor)."""


class DLApplyCompression(ApplyCompression):
    """ApplyCompression for dictionary learning."""

    compression_op_class = DLCompressionOp


# graph_compression's ApplyCompression class per method (by name, looked up when called).
_APPLY_CLASS_NAMES = {
    "simhash": "SimhashApplyCompression",
    "kmeans": "SimhashApplyCompression",
    "dictionary": "DLApplyCompression",
}


def make_compressor(compression_op_spec: HParams):
    """The compressor for a validated op spec; its compressor spec takes rank, block_size,
    pruning_fraction and use_tpu from the op spec (the op spec is not modified)."""
    compression_op.validate_spec(compression_op_spec)
    return registry.method_for_option(compression_op_spec.compression_option).make_compressor(
        compression_op_spec
    )


def get_apply_compression(
    compression_op_spec: HParams, global_step=None, variable_factory=None
) -> ApplyCompression:
    """The ApplyCompression object for `compression_op_spec.compression_option`.

    Args:
      compression_op_spec: op hparams (`CompressionOp.get_default_hparams()`, parsed); copied.
      global_step: step variable or tensor for updates that are not given a step.
      variable_factory: optional variable creator passed to each CompressionOp.

    Raises:
      ValueError: an unknown option or any invalid hparam (named, with the rule).
    """
    method = registry.method_for_option(compression_op_spec.compression_option)
    return build_apply_compression(
        compression_op_spec,
        global_step,
        method.compressor_class,
        globals()[apply_class_name(method.name)],
        variable_factory,
    )


def apply_class_name(method_name: str) -> str:
    """graph_compression's ApplyCompression class name for a registry method name."""
    return _APPLY_CLASS_NAMES.get(method_name, "ApplyCompression")


def build_apply_compression(
    compression_op_spec: HParams,
    global_step,
    compressor_class: type,
    apply_class: type,
    variable_factory=None,
):
    """`apply_class(scope=, compression_spec=, compressor=, global_step=)` with
    `compressor_class(spec=...)` built from the validated spec's compressor hparams (the
    classes given, so callers may look them up when called, as graph_compression does)."""
    compression_op.validate_spec(compression_op_spec)
    method = registry.method_for_option(compression_op_spec.compression_option)
    compressor = compressor_class(spec=method.compressor_spec(compression_op_spec))
    extra = {} if variable_factory is None else {"variable_factory": variable_factory}
    return apply_class(
        scope="default_scope",
        compression_spec=compression_op_spec,
        compressor=compressor,
        global_step=global_step,
        **extra,
    )
