"""`compress_model`: the same model with chosen Dense / Conv2D layers compressed.

The original model is left untouched; the returned model has the same layer names, topology
and weights, with each chosen layer replaced by a `CompressedDense` / `CompressedConv2D` whose
dense kernel A starts as the original kernel (alpha starts at 1, so it computes the same
outputs until the first compression update).
"""

from typing import Iterable, List, Optional, Sequence

import tensorflow as tf

from tf_matcomp.keras import layers as compressed
from tf_matcomp.keras._rebuild import rebuild_model

keras = tf.keras

# Post-training compression: one update at step 0 computes the factors and takes alpha to 0.
ONE_SHOT_SCHEDULE = (
    "begin_compression_step=0,end_compression_step=-1,"
    "compression_frequency=1,alpha_decrement_value=1.0"
)

_COMMON_KEYS = (
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "name",
    "dtype",
    "trainable",
)


def _is_eligible(layer) -> bool:
    if isinstance(layer, compressed._CompressedKernelLayer):
        return False
    if type(layer) is keras.layers.Dense:
        return True
    if type(layer) is keras.layers.Conv2D:
        config = layer.get_config()
        return (
            config.get("groups", 1) == 1
            and config.get("data_format", "channels_last") == "channels_last"
        )
    return False


def _compressed_twin(layer, spec):
    config = layer.get_config()
    common = {key: config[key] for key in _COMMON_KEYS if key in config}
    if isinstance(layer, keras.layers.Dense):
        return compressed.CompressedDense(config["units"], spec=spec, **common)
    return compressed.CompressedConv2D(
        config["filters"],
        tuple(config["kernel_size"]),
        strides=tuple(config["strides"]),
        padding=config["padding"],
        dilation_rate=tuple(config["dilation_rate"]),
        spec=spec,
        **common,
    )


def _chosen_names(model, layers: Optional[Sequence[str]]) -> List[str]:
    by_name = {layer.name: layer for layer in model.layers}
    if layers is None:
        names = [layer.name for layer in model.layers if _is_eligible(layer)]
        if not names:
            raise ValueError(
                f"compress_model: model {model.name!r} has no Dense or Conv2D "
                "layer (channels_last, groups=1) to compress"
            )
        return names
    if isinstance(layers, str):
        raise ValueError("compress_model: `layers` must be a list of layer names, not a str")
    names = list(layers)
    if not names:
        raise ValueError("compress_model: `layers` is empty")
    for name in names:
        if name not in by_name:
            raise ValueError(
                f"compress_model: `layers` names {name!r}, which is not a layer of "
                f"{model.name!r} (layers: {sorted(by_name)})"
            )
        if not _is_eligible(by_name[name]):
            raise ValueError(
                f"compress_model: `layers` names {name!r}, a "
                f"{type(by_name[name]).__name__}; only Dense and Conv2D "
                "(channels_last, groups=1) layers can be compressed"
            )
    return names


def compress_model(model: keras.Model, spec, layers: Optional[Sequence[str]] = None) -> keras.Model:
    """Returns a copy of `model` whose chosen layers are compressed under `spec`.

    Args:
      model: a built Functional or Sequential Keras model.
      spec: compression hparams (HParams, "k=v,..." string or dict), one CompressionOp per
        layer with its own schedule state.
      layers: names of the Dense / Conv2D layers to compress; None compresses all of them.

    Raises:
      ValueError: `model` is not a built Functional/Sequential model, `layers` names a missing
        or ineligible layer, there is nothing to compress, or the spec is invalid.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"compress_model: `model` must be a keras.Model, got {type(model).__name__}"
        )
    if not model.built:
        raise ValueError("compress_model: `model` must be built (call it or give it an Input)")

    def copy_kernel(layer, twin):
        twin.kernel.assign(tf.reshape(layer.kernel, twin.kernel.shape))
        if twin.bias is not None:
            twin.bias.assign(layer.bias)

    replacements = {
        name: (lambda layer: _compressed_twin(layer, spec), copy_kernel)
        for name in _chosen_names(model, layers)
    }
    return rebuild_model(model, replacements, "compress_model")


def compressed_layers(model: keras.Model) -> List["compressed._CompressedKernelLayer"]:
    """Every CompressedDense / CompressedConv2D in `model`, nested models included."""
    found: List[compressed._CompressedKernelLayer] = []

    def visit(layers: Iterable):
        for layer in layers:
            if isinstance(layer, compressed._CompressedKernelLayer):
                found.append(layer)
            elif isinstance(layer, keras.Model):
                visit(layer.layers)

    visit(model.layers if isinstance(model, keras.Model) else [model])
    # A layer used twice (shared) is listed once.
    unique = {id(layer): layer for layer in found}
    return list(unique.values())
