"""Rebuilding a Keras model with some layers replaced, its other weights copied over.

Shared by `compress_model` (Dense/Conv2D → compressed twins) and `strip_compression`
(compressed layers → their stripped form).
"""

from typing import Callable, Dict

import tensorflow as tf

keras = tf.keras


def rebuild_model(
    model: keras.Model, replacements: Dict[str, Callable], caller: str
) -> keras.Model:
    """A clone of `model` in which layer `name` becomes `replacements[name][0](layer)`.

    `replacements[name]` is a pair (make_twin, copy_weights): `copy_weights(layer, twin)` fills
    the twin once the model is rebuilt. Every other layer is cloned with its weights.

    Raises:
      ValueError: `model` cannot be cloned (only Functional and Sequential models can).
    """

    def clone(layer):
        if layer.name in replacements:
            return replacements[layer.name][0](layer)
        return layer.__class__.from_config(layer.get_config())

    try:
        result = keras.models.clone_model(model, clone_function=clone)
    except ValueError as error:
        raise ValueError(
            f"{caller}: cannot rebuild {model.name!r} (Functional and "
            f"Sequential models only): {error}"
        ) from error
    for layer in model.layers:
        if not layer.weights:  # input layers (renamed by clone_model), activations, ...
            continue
        twin = result.get_layer(layer.name)
        if layer.name in replacements:
            replacements[layer.name][1](layer, twin)
        else:
            twin.set_weights(layer.get_weights())
    return result
