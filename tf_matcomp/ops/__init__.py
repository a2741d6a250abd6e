"""Native ops with pure-TF composite twins.

Each public op takes `implementation="auto" | "native" | "composite"`; see `_dispatch`.
"""
from tf_matcomp.ops._loader import native_available, native_unavailable_reason
from tf_matcomp.ops.low_rank_blend import low_rank_blend

__all__ = ["low_rank_blend", "native_available", "native_unavailable_reason"]
