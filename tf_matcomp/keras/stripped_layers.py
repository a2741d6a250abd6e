"""Deployed layers holding a kernel only in its compressed form: one per compressed kind.

Each is its compressed kind's class in deployed form (`form=` given): it stores the method's
`CompressedForm` arrays (rebuilt with `implementation="composite"`, so plain TensorFlow ops
only: `model.export()` and the TFLite converter take them), no dense kernel and no compression
state, and computes with the form's factored products where they are cheaper (Dense:
`form.matmul`, convolutions: `form.conv`, Embedding: `form.gather_rows`). Loading a `.keras`
file holding them needs `import tf_matcomp.keras`; a SavedModel or `.tflite` does not.

`strip_compression` uses them for the methods (and layer kinds) with no stock Keras form
that keeps the savings: simhash, k-means, dictionary learning, and low-rank
DepthwiseConv2D / SeparableConv2D.
"""

from tf_matcomp.keras import conv_layers
from tf_matcomp.keras import layers as compressed
from tf_matcomp.keras.layers import _PACKAGE, keras


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedDense(compressed.CompressedDense):
    """Dense layer computing x·W + b with W held only in compressed form."""

    def __init__(self, units: int, form, activation=None, use_bias: bool = True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, form=form, **kwargs)


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedConv2D(conv_layers.CompressedConv2D):
    """2-D convolution whose kernel, viewed as [kh·kw·cin, filters], is held compressed."""

    def __init__(self, filters: int, kernel_size, form, **kwargs):
        super().__init__(filters, kernel_size, form=form, **kwargs)


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedEinsumDense(compressed.CompressedEinsumDense):
    """EinsumDense whose kernel is held only in compressed form."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedEmbedding(compressed.CompressedEmbedding):
    """Embedding whose table is held only in compressed form."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedConv1D(conv_layers.CompressedConv1D):
    """1-D convolution whose kernel is held only in compressed form."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedConv3D(conv_layers.CompressedConv3D):
    """3-D convolution whose kernel is held only in compressed form."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedDepthwiseConv2D(conv_layers.CompressedDepthwiseConv2D):
    """DepthwiseConv2D whose kernel is held only in compressed form."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class StrippedSeparableConv2D(conv_layers.CompressedSeparableConv2D):
    """SeparableConv2D whose pointwise kernel is held only in compressed form."""


STRIPPED_CLASSES = (
    StrippedDense,
    StrippedEinsumDense,
    StrippedEmbedding,
    StrippedConv1D,
    StrippedConv2D,
    StrippedConv3D,
    StrippedDepthwiseConv2D,
    StrippedSeparableConv2D,
)
# The deployed class of each compressed class (each Stripped class subclasses its own).
STRIPPED_CLASS = {cls.__mro__[1]: cls for cls in STRIPPED_CLASSES}


def is_stripped(layer) -> bool:
    """Whether `layer` is a compressed kind in deployed form."""
    return isinstance(layer, compressed._CompressedKernelLayer) and layer.form is not None
