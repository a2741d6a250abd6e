"""The one dispatcher between native kernels and their pure-TF composites."""

import functools
from typing import Callable, FrozenSet, TypeVar

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
def _visible_device_types() -> FrozenSet[str]:
    """The accelerator kinds ("GPU", "TPU") TensorFlow sees."""
    return frozenset(kind for kind in ("GPU", "TPU") if tf.config.list_logical_devices(kind))


def _device_type(name: str) -> str:
    return tf.DeviceSpec.from_string(name).device_type or "" if name else ""


def _requested_device_type() -> str:
    """The device type the innermost `tf.device` scope asks for ("" when none does, or when a
    device function decides). Internal API (checked on TF 2.21): the graph's device stack, then
    the eager context, whose scope also governs functions traced under it."""
    try:
        stack = _tf_ops.get_default_graph()._device_function_stack.peek_objs()  # innermost first
        for spec in stack:
            if spec.display_name == "None":  # tf.device(None) clears the outer scopes
                return ""
            if callable(spec.display_name) or not isinstance(spec.display_name, str):
                return ""
            kind = _device_type(spec.display_name)
            if kind:
                return kind
        from tensorflow.python.eager import context as _context

        return _device_type(_context.context().device_name or "")
    except (AttributeError, ImportError, ValueError):  # pragma: no cover - other TF versions
        return ""


def _placement() -> str:
    """Where an op created now will run: the requested device type, else TF's default choice
    (a TPU, else a GPU, when visible); a GPU request with no GPU visible falls back to the CPU
    (soft placement)."""
    visible = _visible_device_types()
    kind = _requested_device_type().upper()
    if not kind:
        kind = "TPU" if "TPU" in visible else "GPU" if "GPU" in visible else "CPU"
    if kind == "GPU" and "GPU" not in visible:
        kind = "CPU"
    return kind


def check_implementation(implementation: str) -> None:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")


def dispatch(
    op_name: str,
    implementation: str,
    native_fn: Callable[..., Result],
    composite_fn: Callable[..., Result],
    gpu_kernel: bool = True,
) -> Result:
    """Runs `native_fn(library)` or `composite_fn()` as `implementation` asks.

    "auto" takes the native kernel where the library is loaded, the graph is not being built
    for XLA, and the op will run on the CPU, or on a GPU when the library holds CUDA kernels
    (`_loader.native_gpu_kernels()`) and the op has one (`gpu_kernel`); the composite
    everywhere else: under
    `tf.function(jit_compile=True)`, where XLA cannot compile custom ops, on TPUs, and on GPUs
    with a CPU-only library (the native op would run on the CPU, copying its inputs). Inputs may
    live on another device than the op: TF copies them. The choice is made while tracing, so
    the graph holds one plain op and no device-switch Case (whose gradient crashes TF 2.21
    inside tf.function).
    """
    check_implementation(implementation)
    if implementation == "composite":
        return composite_fn()
    library = _loader.native_library()
    if implementation == "native":
        if library.module is None:
            raise RuntimeError(
                f"{op_name}: native implementation unavailable: "
                f"{_loader.native_unavailable_reason()}"
            )
        return native_fn(library.module)
    if library.module is None or _building_for_xla():
        return composite_fn()
    placement = _placement()
    if placement == "CPU" or (placement == "GPU" and library.gpu_kernels and gpu_kernel):
        return native_fn(library.module)
    return composite_fn()
