"""tf_matcomp: compress weight matrices while they train, with native TF kernels.

Submodules (and `apply_compression` / `get_compression`) load on first use (PEP 562), so that
`import tf_matcomp` alone — e.g. for `tf-matcomp --help` — does not import TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("ops", "hparams", "compression_op", "compression_wrapper", "keras")
_FROM_APPLY = ("apply_compression", "get_compression")

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


def __getattr__(name: str):
    if name == "_core":  # `from tf_matcomp import _core`: the best ISA build (see _isa)
        from tf_matcomp import _core_loader

        module = _core_loader.core()
        if module is None:
            raise AttributeError(f"tf_matcomp._core: {_core_loader.unavailable_reason()}")
        globals()["_core"] = module
        return module
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FROM_APPLY:
        return getattr(importlib.import_module(f"{__name__}.apply"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
