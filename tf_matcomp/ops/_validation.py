"""Argument checks shared by the op wrappers: ValueError naming the argument and the rule.

Checks use static shapes; dimensions unknown until run time are checked by the kernels
(InvalidArgumentError) or by the composites' assertions.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
SINGLE_OR_DOUBLE = (tf.float32, tf.float64)


def as_tensor(value, name: str, dtype: Optional[tf.DType] = None) -> tf.Tensor:
    """Converts `value`, rejecting a dtype other than `dtype` with a ValueError naming `name`."""
    # A hint would silently cast arrays and tensors; only Python numbers and lists take it.
    typed = isinstance(value, (np.ndarray, np.generic, tf.Tensor, tf.Variable))
    try:
        tensor = tf.convert_to_tensor(value, dtype_hint=None if typed else dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` could not be converted to a tensor: {error}") from error
    if dtype is not None and tensor.dtype != dtype:
        raise ValueError(f"`{name}` must have dtype {dtype.name}, got {tensor.dtype.name}")
    return tensor


def as_float_tensor(value, name: str, dtype: Optional[tf.DType] = None) -> tf.Tensor:
    """Converts to a floating tensor (of `dtype` when given) or raises ValueError."""
    tensor = as_tensor(value, name, dtype)
    if tensor.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"`{name}` must be a floating tensor (float16, bfloat16, float32 or "
            f"float64), got {tensor.dtype.name}"
        )
    return tensor


def as_single_or_double_tensor(value, name: str, dtype: Optional[tf.DType] = None) -> tf.Tensor:
    """Converts to a float32 or float64 tensor (of `dtype` when given) or raises ValueError."""
    tensor = as_float_tensor(value, name, dtype)
    if tensor.dtype not in SINGLE_OR_DOUBLE:
        raise ValueError(f"`{name}` must have dtype float32 or float64, got {tensor.dtype.name}")
    return tensor


def require_rank(tensor: tf.Tensor, rank: int, name: str) -> None:
    if tensor.shape.rank is not None and tensor.shape.rank != rank:
        what = "a scalar" if rank == 0 else f"rank {rank}"
        raise ValueError(f"`{name}` must be {what}, got shape {tensor.shape}")


def require_equal_dims(dim_x, dim_y, rule: str) -> None:
    """Raises ValueError(rule) when both static dimensions are known and differ."""
    if dim_x is not None and dim_y is not None and dim_x != dim_y:
        raise ValueError(f"{rule} (got {dim_x} and {dim_y})")


def require_int_in_range(value, name: str, low: int, high: Optional[int] = None) -> int:
    """Python int attribute checks: `low <= value` (and `<= high` when given); bools are not
    integers here."""
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be an integer, got {value!r}")
    if not isinstance(value, int):
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            as_int = None
        if as_int is None or as_int != value:
            raise ValueError(f"`{name}` must be an integer, got {value!r}")
        value = as_int
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"`{name}` must be {bound}, got {value}")
    return value
