"""Native ops with pure-TF composite twins.

Each public op takes `implementation="auto" | "native" | "composite"`; see `_dispatch`.
"""

from tf_matcomp.ops._loader import native_available, native_gpu_kernels, native_unavailable_reason
from tf_matcomp.ops.householder_q import householder_q
from tf_matcomp.ops.kmeans import kmeans_dequantize, kmeans_quantize
from tf_matcomp.ops.low_rank_blend import low_rank_blend
from tf_matcomp.ops.simhash import simhash_compress, simhash_decompress, simhash_projection

__all__ = [
    "householder_q",
    "kmeans_dequantize",
    "kmeans_quantize",
    "low_rank_blend",
    "native_available",
    "native_gpu_kernels",
    "native_unavailable_reason",
    "simhash_compress",
    "simhash_decompress",
    "simhash_projection",
]
