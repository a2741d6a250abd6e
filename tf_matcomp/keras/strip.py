"""`strip_compression(model)`: the deployable model, each compressed layer in stripped form."""

import numpy as np
import tensorflow as tf

from tf_matcomp.keras import layers as compressed_layers
from tf_matcomp.keras._rebuild import rebuild_model
from tf_matcomp.keras.stripped_layers import StrippedConv2D, StrippedDense, _StrippedBase

keras = tf.keras


def _stripped_twin(layer) -> _StrippedBase:
    form, _ = layer.compression.compressed_form()
    common = {
        "form": form.get_config(),
        "use_bias": layer.use_bias,
        "name": layer.name,
        "activation": keras.activations.serialize(layer.activation),
    }
    if isinstance(layer, compressed_layers.CompressedDense):
        return StrippedDense(layer.units, **common)
    return StrippedConv2D(
        layer.filters,
        layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
        **common,
    )


def strip_compression(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` whose compressed layers hold only their compressed form.

    Other layers are copied with their weights. The result needs no native library and no
    compression state; `model.export()` and `tf.lite.TFLiteConverter` take it.

    Raises:
      ValueError: a compressed layer's alpha is not 0 yet (the stripped model would compute
        something else), or its factors were never computed, or `model` is not a Functional /
        Sequential model.
    """

    def copy_compressed(layer, twin):
        _, arrays = layer.compression.compressed_form()
        twin.set_compressed(arrays, np.asarray(layer.bias) if layer.bias is not None else None)

    replacements = {}
    for layer in model.layers:
        if isinstance(layer, compressed_layers._CompressedKernelLayer):
            alpha = float(layer.alpha)
            if alpha != 0.0:
                raise ValueError(
                    f"strip_compression: layer {layer.name!r} has alpha={alpha:g}; "
                    "strip only once compression has finished (alpha=0)"
                )
            replacements[layer.name] = (_stripped_twin, copy_compressed)
    return rebuild_model(model, replacements, "strip_compression")
