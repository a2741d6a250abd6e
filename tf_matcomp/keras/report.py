"""Sizes of a model and of its compressed layers: `model_size`, `compression_report` and the
one definition of `compression_ratio` (used by the callback's logs, `tf-matcomp` and the demo).
"""

import dataclasses
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.keras import compress_model as compress_model_lib
from tf_matcomp.keras import layers as compressed_layers
from tf_matcomp.keras import strip as strip_lib

keras = tf.keras

_STOCK_KINDS = tuple(cls.stock_class for cls in compress_model_lib.COMPRESSED_CLASSES)


def _variable_bytes(variable) -> int:
    return int(np.prod(variable.shape)) * tf.as_dtype(variable.dtype).size


@dataclasses.dataclass(frozen=True)
class SizeReport:
    """Stored scalars and their bytes (packed codes count at their storage size)."""

    params: int
    bytes: int


def model_size(model: keras.Model) -> SizeReport:
    """Parameters and bytes of every variable the model stores (no optimizer state)."""
    weights = {id(w): w for w in model.weights}.values()
    return SizeReport(
        params=sum(int(np.prod(w.shape)) for w in weights),
        bytes=sum(_variable_bytes(w) for w in weights),
    )


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """One row of `compression_report`."""

    name: str
    kind: str  # "dense" (uncompressed), "training" (Compressed*) or "stripped"
    method: str
    shape: Tuple[int, int]
    k: str
    alpha: Optional[float]
    relative_error: Optional[float]
    bytes_before: int
    bytes_after: int


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


def _training_row(layer) -> LayerReport:
    form, arrays = layer.compression.deployed_form()  # sized as strip_compression stores it
    error = None
    if layer.compression.last_update_step() >= 0:
        a = np.asarray(layer.kernel).reshape(form.rows, form.cols)
        w_hat = form.matrix([tf.convert_to_tensor(v) for v in arrays.values()])
        error = float(np.linalg.norm(a - w_hat.numpy()) / max(np.linalg.norm(a), 1e-30))
    return _row(layer.name, "training", form, float(layer.alpha), error)


def _stock_pair_row(layer) -> Optional[LayerReport]:
    """A row for a stock low-rank pair `strip_compression` made, else None."""
    names = [sub.name for sub in getattr(layer, "layers", ())]
    if names != [layer.name + suffix for suffix in strip_lib.FACTOR_SUFFIXES]:
        return None
    b, c = (strip_lib.main_weight(sub) for sub in layer.layers)
    rows, k = int(np.prod(b.shape[:-1])), int(b.shape[-1])
    cols = int(np.prod(c.shape)) // k
    item = tf.as_dtype(b.dtype).size
    after = _variable_bytes(b) + _variable_bytes(c)
    return LayerReport(
        layer.name,
        "stripped",
        "low_rank",
        (rows, cols),
        f"k={k}",
        None,
        None,
        rows * cols * item,
        after,
    )


def compression_report(model: keras.Model, include_dense: bool = False) -> List[LayerReport]:
    """Per-layer sizes: compressed (training form), stripped and, optionally, plain layers of
    the compressible kinds; nested models and layers included.

    `relative_error` (training form, once factors exist) is ‖A − Â‖ / ‖A‖, A the dense kernel
    the layer keeps and Â what its factors stand for. Before alpha reaches 0 that is the
    error of the compressed form against the weight being trained; once alpha is 0, A gets no
    gradient and stays as the factors were last computed from, so the figure then measures
    how far training has moved the factors away from that kernel (not an error of the model).
    """
    rows = []
    inside_pairs = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if id(layer) in inside_pairs:
            continue
        if isinstance(layer, compressed_layers._CompressedKernelLayer):
            if layer.form is not None:
                rows.append(_row(layer.name, "stripped", layer.form))
            elif layer.compression is not None:
                rows.append(_training_row(layer))
            continue
        pair = _stock_pair_row(layer) if isinstance(layer, keras.Sequential) else None
        if pair is not None:
            rows.append(pair)
            inside_pairs.update(id(sub) for sub in layer.layers)
        elif include_dense and type(layer) in _STOCK_KINDS and layer.built:
            kernel = next(w for w in layer.weights if len(w.shape) >= 2)
            shape = (int(np.prod(kernel.shape[:-1])), int(kernel.shape[-1]))
            size = _variable_bytes(kernel)
            rows.append(LayerReport(layer.name, "dense", "-", shape, "-", None, None, size, size))
    return rows


def compression_ratio(model: keras.Model) -> float:
    """The model's dense bytes over its deployable bytes: every weight the model stores, with
    each compressed layer's kernel counted dense (numerator) or at its compressed size
    (denominator, what `strip_compression` keeps: each form's `deployed_form` of the current
    factors, so option 8's figure follows its current mask); compression state (A, alpha,
    counters) and optimizer state are left out. 1.0 for a model with nothing compressed."""
    total = model_size(model).bytes
    dense = deployed = total
    for layer in compress_model_lib.compressed_layers(model):
        state = {id(v): v for v in layer.compression.state_variables()}
        total_state = sum(_variable_bytes(v) for v in state.values())
        dense -= total_state - layer.compression.uncompressed_bytes()
        deployed -= total_state - layer.compression.compressed_bytes()
    for row in compression_report(model):
        if row.kind == "stripped":
            dense += row.bytes_before - row.bytes_after
    return dense / max(deployed, 1)


def format_report(rows: List[LayerReport]) -> str:
    """A fixed-width table of `compression_report` rows (rel.err: see `compression_report`)."""
    header = (
        f"{'layer':<16} {'form':<9} {'method':<11} {'shape':>11} {'k':>10} {'alpha':>6} "
        f"{'rel.err':>8} {'bytes':>9} {'->':^2} {'bytes':>9} {'ratio':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        alpha = "-" if r.alpha is None else f"{r.alpha:.2f}"
        error = "-" if r.relative_error is None else f"{r.relative_error:.4f}"
        lines.append(
            f"{r.name:<16} {r.kind:<9} {r.method:<11} {f'{r.shape[0]}x{r.shape[1]}':>11} "
            f"{r.k:>10} {alpha:>6} {error:>8} {r.bytes_before:9d} {'->':^2} "
            f"{r.bytes_after:9d} {r.bytes_before / max(r.bytes_after, 1):6.2f}"
        )
    return "\n".join(lines)
