"""The one dispatcher between native kernels and their pure-TF composites."""
from typing import Callable, TypeVar

import tensorflow as tf

from tf_matcomp.ops import _loader

IMPLEMENTATIONS = ("auto", "native", "composite")
Result = TypeVar("Result")

try:  # Internal API (checked on TF 2.21): picks a branch by device, and the default under XLA.
    _execute_fn_for_device = tf.__internal__.execute_fn_for_device
except AttributeError:  # pragma: no cover - only on TF versions without it
    _execute_fn_for_device = None


def check_implementation(implementation: str) -> None:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, "
                         f"got {implementation!r}")


def dispatch(op_name: str, implementation: str, native_fn: Callable[..., Result],
             composite_fn: Callable[..., Result]) -> Result:
    """Runs `native_fn(library)` or `composite_fn()` as `implementation` asks.

    "auto" takes the native kernel where the library is loaded and the code runs on a device it
    has kernels for (CPU), and the composite everywhere else, in particular under
    `tf.function(jit_compile=True)`, where XLA cannot compile custom ops.
    """
    check_implementation(implementation)
    if implementation == "composite":
        return composite_fn()
    library = _loader.native_library().module
    if implementation == "native":
        if library is None:
            raise RuntimeError(f"{op_name}: native implementation unavailable: "
                               f"{_loader.native_unavailable_reason()}")
        return native_fn(library)
    if library is None:
        return composite_fn()
    if _execute_fn_for_device is None:  # Cannot tell XLA apart: keep native to eager code.
        return composite_fn() if tf.inside_function() else native_fn(library)
    return _execute_fn_for_device({"CPU": lambda: native_fn(library)}, composite_fn)
