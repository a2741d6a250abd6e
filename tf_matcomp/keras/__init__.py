"""Keras integration: compressed layers, model conversion, the fit callback and export.

    model = tf_matcomp.keras.compress_model(model, "compression_option=1", compression_ratio=4)
    model.fit(x, y, callbacks=[tf_matcomp.keras.CompressionCallback()])
    deployable = tf_matcomp.keras.strip_compression(model)   # once alpha is 0

Uses `tf.keras` (Keras 3).
"""

from tf_matcomp.keras.callback import CompressionCallback
from tf_matcomp.keras.compress_model import (
    COMPRESSED_CLASSES,
    ONE_SHOT_SCHEDULE,
    LayerGrowthWarning,
    SkippedLayerWarning,
    compress_model,
    compressed_layers,
)
from tf_matcomp.keras.conv_layers import (
    CompressedConv1D,
    CompressedConv2D,
    CompressedConv3D,
    CompressedDepthwiseConv2D,
    CompressedSeparableConv2D,
)
from tf_matcomp.keras.layers import (
    CompressedDense,
    CompressedEinsumDense,
    CompressedEmbedding,
    NoCallbackWarning,
)
from tf_matcomp.keras.report import (
    LayerReport,
    SizeReport,
    compression_ratio,
    compression_report,
    format_report,
    model_size,
)
from tf_matcomp.keras.strip import strip_compression
from tf_matcomp.keras.sublayer_holders import NotReloadableWarning
from tf_matcomp.keras.tflite import to_tflite
from tf_matcomp.keras.stripped_layers import STRIPPED_CLASSES, StrippedConv2D, StrippedDense


def custom_objects() -> dict:
    """The classes to pass as `custom_objects` when loading a `.keras` file (they are also
    registered under the "tf_matcomp>" prefix, so importing tf_matcomp.keras suffices)."""
    return {cls.__name__: cls for cls in COMPRESSED_CLASSES + STRIPPED_CLASSES}


__all__ = [
    "COMPRESSED_CLASSES",
    "CompressedConv1D",
    "CompressedConv2D",
    "CompressedConv3D",
    "CompressedDense",
    "CompressedDepthwiseConv2D",
    "CompressedEinsumDense",
    "CompressedEmbedding",
    "CompressedSeparableConv2D",
    "CompressionCallback",
    "LayerGrowthWarning",
    "LayerReport",
    "NoCallbackWarning",
    "NotReloadableWarning",
    "ONE_SHOT_SCHEDULE",
    "STRIPPED_CLASSES",
    "SizeReport",
    "SkippedLayerWarning",
    "StrippedConv2D",
    "StrippedDense",
    "compress_model",
    "compressed_layers",
    "compression_ratio",
    "compression_report",
    "custom_objects",
    "format_report",
    "model_size",
    "strip_compression",
    "to_tflite",
]
