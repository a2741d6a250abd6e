"""graph_compression's `compression_wrapper_py2`: one ApplyCompression class for every option.

`ApplyCompression` is tf_matcomp's (its `apply_compression(a, scope, spec=None,
compressor=None)` and `apply_compression_keras(a, scope, layer)` take this module's
signatures); `get_apply_compression` looks it and the compressor class up when called, so
`mock.patch.object` on this package's modules takes effect. Dictionary learning (option 3) is
available here too (the peer fell back to low-rank).
"""

from tf_matcomp import compression_wrapper as _compression_wrapper
from tf_matcomp.compression_lib import compression_op, compression_op_utils, dl_compression_op
from tf_matcomp.compression_lib import simhash_compression_op
from tf_matcomp.compression_lib.compression_wrapper import compressor_class_for
from tf_matcomp.compressors import registry
from tf_matcomp.hparams import HParams

CompressionOptions = compression_op_utils.CompressionOptions
UpdateOptions = compression_op_utils.UpdateOptions
ApplyCompression = compression_op.ApplyCompression

# CompressionOptions → the op class of each option tf_matcomp implements.
COMP_OP_MAP = {
    CompressionOptions.NO_MATRIX_COMPRESSION: compression_op.CompressionOp,
    CompressionOptions.LOWRANK_MATRIX_COMPRESSION: compression_op.CompressionOp,
    CompressionOptions.SIMHASH_MATRIX_COMPRESSION: simhash_compression_op.SimhashCompressionOp,
    CompressionOptions.DL_MATRIX_COMPRESSION: dl_compression_op.DLCompressionOp,
    CompressionOptions.KMEANS_MATRIX_COMPRESSION: simhash_compression_op.KMeansCompressionOp,
}


def get_apply_compression(compression_op_spec: HParams, global_step=None):
    """This module's ApplyCompression for `compression_op_spec` (compressor from the option;
    ValueError for an unknown option or a bad hparam)."""
    method = registry.method_for_option(compression_op_spec.compression_option)
    return _compression_wrapper.build_apply_compression(
        compression_op_spec,
        global_step,
        compressor_class_for(method),
        ApplyCompression,  # a module global: read when called
    )
