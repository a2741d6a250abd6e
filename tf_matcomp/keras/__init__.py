"""Keras integration: compressed layers, model conversion, the fit callback and export.

    model = tf_matcomp.keras.compress_model(model, "compression_option=1,rank=400")
    model.fit(x, y, callbacks=[tf_matcomp.keras.CompressionCallback()])
    deployable = tf_matcomp.keras.strip_compression(model)   # once alpha is 0

Uses `tf.keras`: Keras 3, or tf_keras (Keras 2) when TF_USE_LEGACY_KERAS=1.
"""

from tf_matcomp.keras.callback import CompressionCallback
from tf_matcomp.keras.compress_model import ONE_SHOT_SCHEDULE, compress_model, compressed_layers
from tf_matcomp.keras.layers import CompressedConv2D, CompressedDense
from tf_matcomp.keras.report import (
    LayerReport,
    SizeReport,
    compression_report,
    format_report,
    model_size,
)
from tf_matcomp.keras.strip import strip_compression
from tf_matcomp.keras.stripped_layers import StrippedConv2D, StrippedDense


def custom_objects() -> dict:
    """The classes to pass as `custom_objects` when loading a `.keras` file (they are also
    registered under the "tf_matcomp>" prefix, so importing tf_matcomp.keras suffices)."""
    return {
        cls.__name__: cls
        for cls in (CompressedDense, CompressedConv2D, StrippedDense, StrippedConv2D)
    }


__all__ = [
    "CompressedConv2D",
    "CompressedDense",
    "CompressionCallback",
    "LayerReport",
    "ONE_SHOT_SCHEDULE",
    "SizeReport",
    "StrippedConv2D",
    "StrippedDense",
    "compress_model",
    "compressed_layers",
    "compression_report",
    "custom_objects",
    "format_report",
    "model_size",
    "strip_compression",
]
