"""tf_matcomp: compress weight matrices while they train, with native TF kernels."""
from tf_matcomp import ops

__version__ = "0.1.0"

__all__ = ["ops", "__version__"]
