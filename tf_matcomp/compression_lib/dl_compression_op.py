"""graph_compression's `dl_compression_op`: dictionary learning, A ≈ B · C with sparse B.

`DLMatrixCompressor` is tf_matcomp's (`static_matrix_compressor(a, n_iterations=None)` returns
[code_indices [m, s], code_values [m, s], dictionary [k, n]]). `DLCompressionOp` is tf_matcomp's
with graph_compression's factor names: `b_matrix_tfvar` is B [m, k] as a tf.SparseTensor of the
current codes, `c_matrix_tfvar` the dictionary, `b_matrix_indices_tfvar` /
`b_matrix_values_tfvar` the stored codes. `DLApplyCompression` builds DLCompressionOps.
"""

from tf_matcomp import compression_op as _compression_op
from tf_matcomp import compression_wrapper as _compression_wrapper
from tf_matcomp.compression_lib.compression_op import PeerFactorNames
from tf_matcomp.compressors.dictionary_learning import DLMatrixCompressor

__all__ = ["DLApplyCompression", "DLCompressionOp", "DLMatrixCompressor"]


class DLCompressionOp(PeerFactorNames, _compression_op.DLCompressionOp):
    """tf_matcomp's DLCompressionOp; `b_matrix_tfvar` is the sparse B [m, k]."""


class DLApplyCompression(_compression_wrapper.DLApplyCompression):
    """ApplyCompression for dictionary learning, one DLCompressionOp per weight."""

    compression_op_class = DLCompressionOp
