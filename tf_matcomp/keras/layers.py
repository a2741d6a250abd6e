"""Keras layers whose kernel is compressed while it trains: CompressedDense, CompressedConv2D.

Each layer owns its dense kernel A and one `tf_matcomp.compression_op.CompressionOp` for it (its
own alpha, last update step and factors, created as the layer's weights: no state shared
between layers). The layer computes with W = alpha·A + (1 − alpha)·Â; A is stored as a 2-D
matrix: [in, units] for Dense, [kh·kw·cin, filters] for Conv2D (reshaped to the 4-D kernel in
`call`). Updates run from
`CompressionCallback` during `model.fit`, or from `layer.run_alpha_update(step)` in a custom
loop; `layer.update(step)` is the TF-op update for use inside a `tf.function`.

The layers use only APIs that Keras 3 and tf_keras (Keras 2) share, through `tf.keras`.
"""

from typing import Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from tf_matcomp.keras import _kernel_compression

keras = tf.keras
_PACKAGE = "tf_matcomp"

Spec = Union[None, str, dict, object]


class _CompressedKernelLayer(keras.layers.Layer):
    """The part CompressedDense and CompressedConv2D share: kernel A, bias, compression state.

    Subclasses give the kernel's shape (`_kernel_shape`) and apply it (`_apply_kernel`).
    """

    def __init__(
        self,
        spec: Spec = None,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.spec = _kernel_compression.parse_spec(spec)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.compression: Optional[_kernel_compression.KernelCompression] = None
        self.kernel_shape: Tuple[int, ...] = ()

    # -- subclass hooks
    def _kernel_shape(self, input_shape) -> Tuple[int, ...]:
        raise NotImplementedError

    def _output_channels(self) -> int:
        raise NotImplementedError

    def _apply_kernel(self, inputs, kernel):
        raise NotImplementedError

    # -- Keras
    def build(self, input_shape):
        self.kernel_shape = tuple(self._kernel_shape(input_shape))
        matrix_shape = (int(np.prod(self.kernel_shape[:-1])), self.kernel_shape[-1])
        initializer = self.kernel_initializer

        def matrix_initializer(shape, dtype=None):  # fans of the kernel's own shape
            return tf.reshape(initializer(self.kernel_shape, dtype=dtype), shape)

        # A, the dense kernel, is stored as the 2-D matrix that gets compressed.
        self.kernel = self.add_weight(
            name="kernel",
            shape=matrix_shape,
            initializer=matrix_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            trainable=True,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self._output_channels(),),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                trainable=True,
            )
        self.compression = _kernel_compression.KernelCompression(self, self.kernel, self.spec)
        super().build(input_shape)

    def call(self, inputs):
        outputs = self._apply_kernel(inputs, self.compressed_kernel())
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def compressed_kernel(self) -> tf.Tensor:
        """The kernel the layer computes with, alpha·A + (1 − alpha)·Â, in the kernel's shape."""
        return tf.reshape(self._require_built().weight(), self.kernel_shape)

    # -- compression
    @property
    def alpha(self) -> tf.Tensor:
        """Current alpha (1: dense kernel only, 0: compressed form only)."""
        return self._require_built().alpha()

    def update(self, step) -> tf.Tensor:
        """The TF-op update at `step` (update_option 0 and 2); usable inside tf.function."""
        return self._require_built().update(step)

    def run_alpha_update(self, step_number: int) -> None:
        """Runs the update the spec's update_option asks for at `step_number` (eagerly)."""
        self._require_built().run_update(int(step_number))

    def _require_built(self) -> "_kernel_compression.KernelCompression":
        if self.compression is None:
            raise ValueError(f"layer {self.name!r} is not built yet: call it on an input first")
        return self.compression

    def get_config(self):
        ser = keras.initializers.serialize
        return {
            **super().get_config(),
            "spec": _kernel_compression.spec_to_config(self.spec),
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedDense(_CompressedKernelLayer):
    """Drop-in for `keras.layers.Dense` whose kernel is compressed during training.

    Args:
      units: output size.
      spec: the compression hparams: an HParams from `CompressionOp.get_default_hparams()`, a
        "k=v,..." string or a dict, parsed onto the defaults (see `tf_matcomp.compression_op`).
      Other arguments as `keras.layers.Dense`.

    Raises:
      ValueError: `units` < 1, or the spec has an unknown key or a bad value (naming it).
    """

    def __init__(
        self, units: int, spec: Spec = None, activation=None, use_bias: bool = True, **kwargs
    ):
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"CompressedDense: `units` must be a positive int, got {units!r}")
        super().__init__(spec, activation, use_bias, **kwargs)
        self.units = units

    def _kernel_shape(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                f"CompressedDense {self.name!r}: the last input dimension must be known"
            )
        return (int(input_shape[-1]), self.units)

    def _output_channels(self):
        return self.units

    def _apply_kernel(self, inputs, kernel):
        return (
            tf.matmul(inputs, kernel)
            if inputs.shape.rank == 2
            else tf.tensordot(inputs, kernel, axes=1)
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _pair(value, name: str) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(
            f"CompressedConv2D: `{name}` must be a positive int or a pair of them, got {value!r}"
        )
    return pair


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedConv2D(_CompressedKernelLayer):
    """2-D convolution (channels_last) whose kernel, reshaped to [kh·kw·cin, filters], is
    compressed during training.

    Args:
      filters, kernel_size, strides, padding ("valid" or "same"), dilation_rate: as
        `keras.layers.Conv2D`.
      spec: the compression hparams, as for `CompressedDense`.

    Raises:
      ValueError: a bad argument (named).
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=(1, 1),
        padding: str = "valid",
        dilation_rate=(1, 1),
        spec: Spec = None,
        activation=None,
        use_bias: bool = True,
        **kwargs,
    ):
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"CompressedConv2D: `filters` must be a positive int, got {filters!r}")
        if str(padding).lower() not in ("valid", "same"):
            raise ValueError(
                f"CompressedConv2D: `padding` must be 'valid' or 'same', got {padding!r}"
            )
        super().__init__(spec, activation, use_bias, **kwargs)
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.padding = str(padding).lower()

    def _kernel_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"CompressedConv2D {self.name!r}: needs inputs [batch, height, "
                f"width, channels] with known channels, got {input_shape}"
            )
        return self.kernel_size + (int(input_shape[-1]), self.filters)

    def _output_channels(self):
        return self.filters

    def _apply_kernel(self, inputs, kernel):
        return tf.nn.conv2d(
            inputs,
            kernel,
            strides=(1,) + self.strides + (1,),
            padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
        }
