"""tf_matcomp: compress weight matrices while they train, with native TF kernels."""

from tf_matcomp import ops
from tf_matcomp import hparams
from tf_matcomp import compression_op
from tf_matcomp import compression_wrapper
from tf_matcomp.apply import apply_compression, get_compression
from tf_matcomp import keras

__version__ = "0.1.0"

__all__ = [
    "apply_compression",
    "compression_op",
    "compression_wrapper",
    "get_compression",
    "hparams",
    "keras",
    "ops",
    "__version__",
]
