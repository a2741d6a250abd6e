"""`compress_model`: the same model with its compressible layers compressed.

Layer kinds (stock Keras class → compressed twin, see `layers` and `conv_layers` for how each
kernel is viewed as a matrix): Dense, EinsumDense (and so MultiHeadAttention's projections),
Embedding, Conv1D, Conv2D, Conv3D, DepthwiseConv2D, SeparableConv2D. Layers inside nested
Functional / Sequential models and inside other layers are found too; subclassed models are
compressed in place (see `_rebuild`). Each compressed layer's dense kernel A starts as the
original kernel (alpha starts at 1, so the model computes the same outputs until the first
compression update).

Every layer holding a matrix that is left uncompressed gets a `SkippedLayerWarning` naming the
layer and why; a layer whose compressed form would not be smaller than its kernel gets a
`LayerGrowthWarning`.
"""

import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Union

import tensorflow as tf

from tf_matcomp.compressors import registry
from tf_matcomp.keras import _kernel_compression
from tf_matcomp.keras import conv_layers
from tf_matcomp.keras import layers as compressed
from tf_matcomp.keras._rebuild import rebuild_model

keras = tf.keras

# Post-training compression: one update at step 0 computes the factors and takes alpha to 0.
ONE_SHOT_SCHEDULE = (
    "begin_compression_step=0,end_compression_step=-1,"
    "compression_frequency=1,alpha_decrement_value=1.0"
)

COMPRESSED_CLASSES = (
    compressed.CompressedDense,
    compressed.CompressedEinsumDense,
    compressed.CompressedEmbedding,
    conv_layers.CompressedConv1D,
    conv_layers.CompressedConv2D,
    conv_layers.CompressedConv3D,
    conv_layers.CompressedDepthwiseConv2D,
    conv_layers.CompressedSeparableConv2D,
)
_TWIN_CLASS = {cls.stock_class: cls for cls in COMPRESSED_CLASSES}
KINDS = ", ".join(cls.stock_class.__name__ for cls in COMPRESSED_CLASSES)

LayerSpecs = Mapping[Union[str, type], object]


class SkippedLayerWarning(UserWarning):
    """A layer holding a matrix was left uncompressed (the message says why)."""


class LayerGrowthWarning(UserWarning):
    """A layer's compressed form would not be smaller than its dense kernel."""


def _holds_a_matrix(layer) -> bool:
    return any(len(w.shape) >= 2 for w in layer._trainable_variables)


class _Planner:
    """Decides, per layer, whether and how to compress it; makes the built, filled twin."""

    def __init__(self, model, spec, layers, layer_specs, compression_ratio):
        self.model_name = model.name
        self.default = None if spec is None else _kernel_compression.parse_spec(spec)
        self.layer_specs = dict(layer_specs or {})
        self.names = None if layers is None else set(layers)
        self.ratio = compression_ratio
        self.compressed: List[str] = []

    def _skip(self, layer, why: str) -> None:
        if self.names is not None and layer.name in self.names:
            raise ValueError(f"compress_model: layer {layer.name!r} cannot be compressed: {why}")
        warnings.warn(
            f"compress_model: layer {layer.name!r} ({type(layer).__name__}) is not "
            f"compressed: {why}",
            SkippedLayerWarning,
            stacklevel=4,
        )

    def _spec_for(self, layer):
        """(found, spec): the layer's entry in layer_specs (by name, then class), else the
        default spec."""
        if layer.name in self.layer_specs:
            return True, self.layer_specs[layer.name]
        for cls in type(layer).__mro__:
            if cls in self.layer_specs:
                return True, self.layer_specs[cls]
        return False, self.default

    def __call__(self, layer):
        if isinstance(layer, compressed._CompressedKernelLayer) or not getattr(
            layer, "built", False
        ):
            return None
        twin_class = _TWIN_CLASS.get(type(layer))
        if twin_class is None and self.names is not None and layer.name in self.names:
            raise ValueError(
                f"compress_model: `layers` names {layer.name!r}, a {type(layer).__name__}; "
                f"only {KINDS} layers can be compressed"
            )
        if twin_class is None:
            if _holds_a_matrix(layer) and not layer._layers and not isinstance(layer, keras.Model):
                self._skip(layer, f"no compressed form for {type(layer).__name__} (has: {KINDS})")
            return None
        if self.names is not None and layer.name not in self.names:
            return None
        _, spec = self._spec_for(layer)
        if spec is None:  # left dense by layer_specs, or not in a map given without `spec`
            return None
        reason = twin_class.unsupported_reason(layer)
        if reason is not None:
            self._skip(layer, reason)
            return None
        return self._twin(layer, twin_class, _kernel_compression.parse_spec(spec))

    def _twin(self, layer, twin_class, spec):
        kernel = getattr(layer, twin_class.stock_kernel)
        shape = twin_class.from_layer(layer, spec).matrix_view(tuple(kernel.shape))
        method = registry.method_for_option(spec.compression_option)
        if self.ratio is not None:
            spec = method.spec_for_ratio(spec, shape, self.ratio)
        compressor = method.make_compressor(spec)  # a spec error is raised as it is
        try:
            form = compressor.form(shape)  # a shape it cannot take skips the layer
        except ValueError as error:
            self._skip(layer, str(error))
            return None
        if form.nbytes() >= form.dense_nbytes():
            warnings.warn(
                f"compress_model: layer {layer.name!r} would not shrink: its "
                f"{shape[0]}x{shape[1]} kernel takes {form.dense_nbytes()} bytes dense and "
                f"{form.nbytes()} as "
                f"{method.label} ({form.label()}); raise the spec's rank or pass "
                "compression_ratio=",
                LayerGrowthWarning,
                stacklevel=4,
            )
        twin = twin_class.from_layer(layer, spec)
        twin.build(layer.get_build_config()["input_shape"])
        twin.copy_from(layer)
        self.compressed.append(layer.name)
        return twin


def compress_model(
    model: keras.Model,
    spec=None,
    layers: Optional[Sequence[str]] = None,
    layer_specs: Optional[LayerSpecs] = None,
    compression_ratio: Optional[float] = None,
) -> keras.Model:
    """Returns `model` with its compressible layers compressed under `spec`.

    Args:
      model: a built Keras model: Functional or Sequential (copied, the original untouched) or
        subclassed (compressed in place and returned).
      spec: compression hparams (HParams, "k=v,..." string or dict) for every layer
        `layer_specs` does not name; None compresses only the layers `layer_specs` names.
      layers: names of the layers to compress (None: every compressible one).
      layer_specs: {layer name or layer class: spec or None}: a layer's own spec, by name
        first, then by class (a base class matches its subclasses); None leaves it dense.
      compression_ratio: a method-neutral target: each layer's method hparams (rank, or
        k-means' centroids and block size) are chosen so that its kernel is about this many
        times smaller than dense (see `Method.spec_for_ratio`).

    Raises:
      ValueError: `model` is not a built model, `layers` names a missing or incompressible
        layer, nothing is compressed, or a spec is invalid (the spec's own error).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"compress_model: `model` must be a keras.Model, got {type(model).__name__}"
        )
    if not model.built:
        raise ValueError("compress_model: `model` must be built (call it or give it an Input)")
    if isinstance(layers, str):
        raise ValueError("compress_model: `layers` must be a list of layer names, not a str")
    if layers is not None and not list(layers):
        raise ValueError("compress_model: `layers` is empty")
    if spec is None and not layer_specs:
        raise ValueError("compress_model: give `spec` (or `layer_specs`)")
    planner = _Planner(model, spec, layers, layer_specs, compression_ratio)
    known = {layer.name for layer in model._flatten_layers(include_self=False)}
    for name in sorted(planner.names - known if planner.names else ()):
        raise ValueError(
            f"compress_model: `layers` names {name!r}, which is not a layer of "
            f"{model.name!r} (layers: {sorted(known)})"
        )
    result = rebuild_model(model, planner)
    if not planner.compressed:
        raise ValueError(
            f"compress_model: model {model.name!r} has no layer to compress (compressible "
            f"kinds: {KINDS}; channels_last convolutions with groups=1)"
        )
    return result


def compressed_layers(model: keras.Model) -> List["compressed._CompressedKernelLayer"]:
    """Every compressed layer in `model`, nested models and layers included (each once)."""
    found: Dict[int, compressed._CompressedKernelLayer] = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, compressed._CompressedKernelLayer) and layer.form is None:
            found.setdefault(id(layer), layer)
    return list(found.values())
