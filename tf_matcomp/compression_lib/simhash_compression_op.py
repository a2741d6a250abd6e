"""graph_compression's `simhash_compression_op`: simhash and k-means compressors and ops.

Aliases of tf_matcomp's classes. The factors differ in form from the peer's (see the README's
"Porting from graph_compression"): simhash stores packed sign bits and one scale per column
(`b_matrix_tfvar` = signs, `c_matrix_tfvar` = scales) instead of the dense Â; k-means stores
the codebook (`b_matrix_tfvar`) and uint8 codes (`c_matrix_tfvar`) as the peer does.
"""

from typing import List

import numpy as np

from tf_matcomp import compression_wrapper as _compression_wrapper
from tf_matcomp.compression_op import KMeansCompressionOp, SimhashCompressionOp
from tf_matcomp.compressors import kmeans
from tf_matcomp.compressors.simhash import SimhashMatrixCompressor

SimhashApplyCompression = _compression_wrapper.SimhashApplyCompression

__all__ = [
    "KMeansCompressionOp",
    "KmeansMatrixCompressor",
    "SimhashApplyCompression",
    "SimhashCompressionOp",
    "SimhashMatrixCompressor",
]


class KmeansMatrixCompressor(kmeans.KmeansMatrixCompressor):
    """tf_matcomp's k-means compressor with graph_compression's `skip_decomp` argument."""

    def static_matrix_compressor(self, a_matrix, skip_decomp: bool = False) -> List[np.ndarray]:
        """[codebook, codes] of `a_matrix`; with skip_decomp, random factors of their shapes
        and dtypes instead (N(0, 1) codebook, uniform codes), from the compressor's seed."""
        if not skip_decomp:
            return super().static_matrix_compressor(a_matrix)
        (_, book_shape, book_dtype), (_, codes_shape, codes_dtype) = self.form(
            np.shape(a_matrix)
        ).variables()
        rng = np.random.default_rng(self._seed)
        return [
            rng.standard_normal(book_shape).astype(book_dtype),
            rng.integers(0, self._spec.rank, size=codes_shape).astype(codes_dtype),
        ]
