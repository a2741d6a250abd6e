"""Sizes of a model and of its compressed layers: `model_size`, `compression_report`."""

import dataclasses
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.keras import layers as compressed_layers
from tf_matcomp.keras.stripped_layers import _StrippedBase

keras = tf.keras


def _variable_bytes(variable) -> int:
    return int(np.prod(variable.shape)) * tf.as_dtype(variable.dtype).size


@dataclasses.dataclass(frozen=True)
class SizeReport:
    """Stored scalars and their bytes (packed codes count at their storage size)."""

    params: int
    bytes: int


def model_size(model: keras.Model) -> SizeReport:
    """Parameters and bytes of every variable the model stores."""
    weights = {id(w): w for w in model.weights}.values()
    return SizeReport(
        params=sum(int(np.prod(w.shape)) for w in weights),
        bytes=sum(_variable_bytes(w) for w in weights),
    )


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """One row of `compression_report`."""

    name: str
    kind: str  # "dense" (uncompressed), "training" (CompressedX) or "stripped"
    method: str
    shape: Tuple[int, int]
    k: str
    alpha: Optional[float]
    relative_error: Optional[float]
    bytes_before: int
    bytes_after: int


def _matrix_shape(kernel_shape) -> Tuple[int, int]:
    return int(np.prod(kernel_shape[:-1])), int(kernel_shape[-1])


def _row(name: str, kind: str, form, alpha=None, error=None) -> LayerReport:
    return LayerReport(
        name,
        kind,
        form.kind,
        (form.rows, form.cols),
        form.label(),
        alpha,
        error,
        form.dense_nbytes(),
        form.nbytes(),
    )


def compression_report(model: keras.Model, include_dense: bool = False) -> List[LayerReport]:
    """Per-layer sizes: compressed (training form), stripped and, optionally, plain layers.

    For a training-form layer whose factors exist, `relative_error` is ‖A − Ŵ‖ / ‖A‖ with A
    its dense kernel and Ŵ the matrix its compressed form stands for.
    """
    rows = []
    for layer in model.layers:
        if isinstance(layer, compressed_layers._CompressedKernelLayer):
            form, arrays = layer.compression.compressed_form()
            error = None
            if layer.compression.last_update_step() >= 0:
                a = np.asarray(layer.kernel).reshape(form.rows, form.cols)
                w_hat = form.matrix([tf.convert_to_tensor(v) for v in arrays.values()])
                error = float(np.linalg.norm(a - w_hat.numpy()) / max(np.linalg.norm(a), 1e-30))
            rows.append(_row(layer.name, "training", form, float(layer.alpha), error))
        elif isinstance(layer, _StrippedBase):
            rows.append(_row(layer.name, "stripped", layer.form))
        elif include_dense and isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            shape = _matrix_shape(tuple(layer.kernel.shape))
            size = _variable_bytes(layer.kernel)
            rows.append(LayerReport(layer.name, "dense", "-", shape, "-", None, None, size, size))
    return rows


def format_report(rows: List[LayerReport]) -> str:
    """A fixed-width table of `compression_report` rows."""
    header = (
        f"{'layer':<16} {'form':<9} {'method':<9} {'shape':>11} {'k':>10} {'alpha':>6} "
        f"{'rel.err':>8} {'bytes':>9} {'->':^2} {'bytes':>9} {'ratio':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        alpha = "-" if r.alpha is None else f"{r.alpha:.2f}"
        error = "-" if r.relative_error is None else f"{r.relative_error:.4f}"
        lines.append(
            f"{r.name:<16} {r.kind:<9} {r.method:<9} {f'{r.shape[0]}x{r.shape[1]}':>11} "
            f"{r.k:>10} {alpha:>6} {error:>8} {r.bytes_before:9d} {'->':^2} "
            f"{r.bytes_after:9d} {r.bytes_before / max(r.bytes_after, 1):6.2f}"
        )
    return "\n".join(lines)
