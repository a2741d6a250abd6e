"""A Keras model as a `.tflite` flatbuffer: builtin ops only, no tensor names.

The stripped layers already convert with TFLite builtins (stripped_layers.py). `to_tflite` adds
the steps that are easy to get wrong by hand: a model still in training form is stripped first
(its training form would embed the custom ops); the SavedModel is exported with the batch left
unknown, so the converter cannot constant-fold the stripped layers' run-time zero (which keeps
codes as codes and R regenerated, not stored); the converter is held to TFLITE_BUILTINS, so a
flex or custom op is an error at conversion, never a runtime dependency; and the tensor names,
which the interpreter does not need, are dropped (a compressed layer's graph names each of its
tensors: a fifth of a small simhash layer's file). The signatures keep their own input and output
names, so `Interpreter.get_signature_runner()` works as before.
"""

import os
import tempfile
import warnings
from typing import Optional

import tensorflow as tf

from tf_matcomp.keras.compress_model import compressed_layers
from tf_matcomp.keras.strip import strip_compression


def _without_tensor_names(flatbuffer: bytes) -> bytes:
    """`flatbuffer` with the model description, subgraph and tensor names removed; unchanged,
    with a warning, where this TensorFlow lacks the flatbuffer tools."""
    try:
        from tensorflow.lite.tools import flatbuffer_utils
    except ImportError as error:
        warnings.warn(
            f"tf_matcomp.keras.to_tflite: tensor names kept (tensorflow.lite.tools."
            f"flatbuffer_utils unavailable: {error})",
            stacklevel=3,
        )
        return flatbuffer
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    model.description = None
    for subgraph in model.subgraphs:
        subgraph.name = None
        for tensor in subgraph.tensors:
            tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def to_tflite(model: tf.keras.Model, path: Optional[str] = None) -> bytes:
    """`model` (stripped first when it still holds compressed layers) as a `.tflite` flatbuffer
    of TFLite builtin ops, without tensor names; also written to `path` when given.

    Raises:
      ValueError: `path`'s directory does not exist.
      ConverterError: the model needs an op that is not a TFLite builtin.
    """
    if path is not None:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ValueError(f"to_tflite: `path` {path!r}: directory {directory} does not exist")
    if compressed_layers(model):
        model = strip_compression(model)
    with tempfile.TemporaryDirectory(prefix="tf_matcomp_tflite_") as saved_model:
        model.export(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = _without_tensor_names(converter.convert())
    if path is not None:
        with open(path, "wb") as file:
            file.write(flatbuffer)
    return flatbuffer
