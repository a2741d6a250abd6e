"""The one dispatcher between native kernels and their pure-TF composites."""
import functools
from typing import Callable, TypeVar

import tensorflow as tf

from tf_matcomp.ops import _loader

IMPLEMENTATIONS = ("auto", "native", "composite")
Result = TypeVar("Result")

try:  # Internal API (checked on TF 2.21): is the graph being built for XLA compilation?
    from tensorflow.python.framework import ops as _tf_ops
    from tensorflow.python.ops import control_flow_util as _control_flow_util

    def _building_for_xla() -> bool:
        return _control_flow_util.GraphOrParentsInXlaContext(_tf_ops.get_default_graph())
except ImportError:  # pragma: no cover - only on TF versions that moved it
    def _building_for_xla() -> bool:
        return tf.inside_function()  # cannot tell: keep native kernels to eager code


@functools.lru_cache(maxsize=None)
def _accelerators_visible() -> bool:
    """The native kernels are CPU-only: where a GPU/TPU is visible, ops would be placed there."""
    return any(tf.config.list_logical_devices(kind) for kind in ("GPU", "TPU"))


def check_implementation(implementation: str) -> None:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, "
                         f"got {implementation!r}")


def dispatch(op_name: str, implementation: str, native_fn: Callable[..., Result],
             composite_fn: Callable[..., Result]) -> Result:
    """Runs `native_fn(library)` or `composite_fn()` as `implementation` asks.

    "auto" takes the native kernel where the library is loaded, no accelerator is visible (the
    kernels are CPU-only) and the graph is not being built for XLA; the composite everywhere
    else, in particular under `tf.function(jit_compile=True)`, where XLA cannot compile custom
    ops. The choice is made while tracing, so the graph holds one plain op and no device-switch
    Case (whose gradient crashes TF 2.21 inside tf.function).
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
    if library is None or _accelerators_visible() or _building_for_xla():
        return composite_fn()
    return native_fn(library)
