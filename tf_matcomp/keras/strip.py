"""`strip_compression(model)`: the deployable model, each compressed layer in its smallest
deployable form.

Per compressed layer, once alpha is 0 (A no longer matters):

  * a form no smaller than the dense kernel → the stock layer with the dense kernel Â;
  * a low-rank form (`CompressedForm.low_rank_factors`) where the kind has a stock pair
    (`stock_low_rank`) → a stock `keras.Sequential` named like the layer, of two stock layers
    (`<name>_factor_b`, `<name>_factor_c`): Dense → Dense(k) + Dense, ConvND → ConvND(k) +
    1×1 ConvND, Embedding → Embedding(k) + Dense, EinsumDense → two EinsumDense. These load
    anywhere, without tf_matcomp;
  * otherwise (simhash, k-means, dictionary learning; low-rank depthwise / separable
    convolutions) → the kind's `Stripped*` layer holding only the form's arrays (loading its
    `.keras` needs tf_matcomp; SavedModel and TFLite exports do not).

The result carries no optimizer state and no compression state.
"""

from typing import Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.keras import compress_model as compress_model_lib
from tf_matcomp.keras import layers as compressed_layers
from tf_matcomp.keras._rebuild import rebuild_model
from tf_matcomp.keras.stripped_layers import STRIPPED_CLASS, is_stripped

keras = tf.keras

FACTOR_SUFFIXES: Tuple[str, str] = ("_factor_b", "_factor_c")


def main_weight(layer):
    """The first weight of two or more axes of a stock layer (its kernel or table)."""
    return next(w for w in layer.weights if len(w.shape) >= 2)


def _assign(variable, value) -> None:
    variable.assign(np.asarray(value).astype(variable.dtype).reshape(variable.shape))


def _input_shape(layer):
    return layer.get_build_config()["input_shape"]


def _dense_stock(layer, form, arrays):
    stock = layer.stock_class.from_config(layer.stock_config())
    stock.build(_input_shape(layer))
    kernel = form.matrix([tf.convert_to_tensor(a) for a in arrays.values()])
    layer.copy_to_stock(stock, kernel)
    return stock


def _stock_pair(layer, pair, b, c):
    first, second = pair
    stock = keras.Sequential([first, second], name=layer.name)
    stock.build(_input_shape(layer))
    _assign(main_weight(first), b)
    _assign(main_weight(second), c)
    if layer.bias is not None:
        _assign(second.bias, layer.bias)
    return stock


def _stripped(layer, form, arrays):
    config = {key: v for key, v in layer.get_config().items() if key != "spec"}
    stripped = STRIPPED_CLASS[type(layer)].from_config({**config, "form": form.get_config()})
    stripped.build(_input_shape(layer))
    stripped.set_compressed(arrays, None if layer.bias is None else np.asarray(layer.bias))
    layer.copy_other_weights(stripped)
    return stripped


def _deployed_form(layer) -> keras.layers.Layer:
    """The smallest deployable layer computing what compressed `layer` computes at alpha 0."""
    form, arrays = layer.compression.deployed_form()
    if form.nbytes() >= form.dense_nbytes():
        return _dense_stock(layer, form, arrays)
    factors = form.low_rank_factors(list(arrays.values()))
    names = tuple(layer.name + suffix for suffix in FACTOR_SUFFIXES)
    pair = None if factors is None else layer.stock_low_rank(factors[0].shape[-1], names)
    if pair is not None:
        return _stock_pair(layer, pair, *factors)
    return _stripped(layer, form, arrays)


def strip_compression(model: keras.Model) -> keras.Model:
    """Returns `model` with each compressed layer in its deployed form (see module doc).

    Other layers are copied with their weights. The result needs no native library and no
    compression state; `model.export()` and `tf.lite.TFLiteConverter` take it. A Functional or
    Sequential result is not compiled, so it carries no optimizer state; a subclassed model
    is changed in place and keeps its compile state (save it with `save_weights`, or compile
    it again).

    Raises:
      ValueError: a compressed layer's alpha is not 0 yet (the stripped model would compute
        something else).
    """
    for layer in compress_model_lib.compressed_layers(model):
        alpha = float(layer.alpha)
        if alpha != 0.0:
            raise ValueError(
                f"strip_compression: layer {layer.name!r} has alpha={alpha:g}; "
                "strip only once compression has finished (alpha=0)"
            )

    def replace(layer):
        if isinstance(layer, compressed_layers._CompressedKernelLayer) and not is_stripped(layer):
            return _deployed_form(layer)
        return None

    return rebuild_model(model, replace, compile_clone=False)
