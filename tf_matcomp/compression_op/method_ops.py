"""graph_compression's per-method op classes: CompressionOp checked against one compressor.

They add nothing but the check (which factor is `b_matrix_tfvar` and so on comes from the
method's registry entry), so a new method needs no class here: `op_class_for` falls back to
CompressionOp.
"""

from tf_matcomp.compression_op.op import CompressionOp
from tf_matcomp.compressors import dictionary_learning, kmeans, pruned_kmeans, registry, simhash


class SimhashCompressionOp(CompressionOp):
    """Simhash op: weight alpha·A + (1 − alpha)·R·S·diag(D); factors signs and scales."""

    expected_compressor = simhash.SimhashMatrixCompressor


class KMeansCompressionOp(CompressionOp):
    """k-means op: weight alpha·A + (1 − alpha)·codebook[codes]; b = codebook, c = codes."""

    expected_compressor = kmeans.KmeansMatrixCompressor


class KMeansPruningCompressionOp(CompressionOp):
    """Pruning + k-means op: weight alpha·(A ⊙ M) + (1 − alpha)·Â, M implied by the codes;
    b = codebook, c = codes (see `tf_matcomp.compressors.pruned_kmeans`)."""

    expected_compressor = pruned_kmeans.PrunedKMeansCompressor


class DLCompressionOp(CompressionOp):
    """Dictionary-learning op: weight alpha·A + (1 − alpha)·B·D with sparse B.

    Extra attributes: b_matrix_indices_tfvar, b_matrix_values_tfvar (the sparse codes);
    c_matrix_tfvar is the dictionary.
    """

    expected_compressor = dictionary_learning.DLMatrixCompressor


_OP_CLASSES = {
    op_class.expected_compressor: op_class
    for op_class in (
        SimhashCompressionOp,
        KMeansCompressionOp,
        KMeansPruningCompressionOp,
        DLCompressionOp,
    )
}


def op_class_for(compressor) -> type:
    """The CompressionOp class for a compressor (its method's named class, else
    CompressionOp)."""
    method = registry.method_for_compressor(compressor)
    return _OP_CLASSES.get(method.compressor_class, CompressionOp) if method else CompressionOp
