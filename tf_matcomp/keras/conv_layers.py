"""Compressed convolutions: Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D (channels_last).

Thin subclasses of `layers._CompressedKernelLayer`; the matrix each kernel is compressed as:

  * CompressedConv1D/2D/3D: kernel [k..., cin, filters] → [∏k · cin, filters];
  * CompressedDepthwiseConv2D: kernel [kh, kw, cin, mult] → [kh·kw, cin·mult] (one column per
    output channel, one row per tap);
  * CompressedSeparableConv2D: the pointwise kernel [1, 1, cin·mult, filters] →
    [cin·mult, filters]; the small depthwise kernel stays dense and trains as usual.
"""

from typing import Tuple

import tensorflow as tf

from tf_matcomp.keras.layers import (
    _PACKAGE,
    Spec,
    _CompressedKernelLayer,
    keras,
    positive_int,
)


def _tuple(value, rank: int, layer: str, name: str) -> Tuple[int, ...]:
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank:
        raise ValueError(f"{layer}: `{name}` must be an int or {rank} ints, got {value!r}")
    return tuple(positive_int(v, layer, name) for v in values)


def channels_last_reason(layer):
    """Why a stock convolution cannot be compressed (channels_first, groups), or None."""
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        return "data_format='channels_first' is not supported (channels_last only)"
    if config.get("groups", 1) != 1:
        return f"groups={config['groups']} is not supported (groups=1 only)"
    return None


class _CompressedConvBase(_CompressedKernelLayer):
    """Kernel size, strides, padding and dilation of an N-D channels_last convolution."""

    rank = 2
    paddings = ("valid", "same")
    # The stock layer's name for the compressed kernel's initializer/regularizer/constraint
    # arguments ("depthwise_" for DepthwiseConv2D's), taken as kernel_*.
    kernel_prefix = "kernel_"
    _KERNEL_ARGUMENTS = ("initializer", "regularizer", "constraint")

    @classmethod
    def _as_kernel_arguments(cls, arguments: dict) -> dict:
        renamed = dict(arguments)
        for suffix in cls._KERNEL_ARGUMENTS:
            if cls.kernel_prefix + suffix in renamed:
                renamed["kernel_" + suffix] = renamed.pop(cls.kernel_prefix + suffix)
        return renamed

    @classmethod
    def twin_config(cls, config):
        return super().twin_config(cls._as_kernel_arguments(config))

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding: str = "valid",
        dilation_rate=1,
        spec: Spec = None,
        activation=None,
        use_bias: bool = True,
        **kwargs,
    ):
        kwargs = self._as_kernel_arguments(kwargs)
        kwargs.pop("data_format", None)  # channels_last (checked by unsupported_reason)
        kwargs.pop("groups", None)
        layer = type(self).__name__
        if str(padding).lower() not in self.paddings:
            raise ValueError(f"{layer}: `padding` must be one of {self.paddings}, got {padding!r}")
        super().__init__(spec, activation, use_bias, **kwargs)
        self.kernel_size = _tuple(kernel_size, self.rank, layer, "kernel_size")
        self.strides = _tuple(strides, self.rank, layer, "strides")
        self.dilation_rate = _tuple(dilation_rate, self.rank, layer, "dilation_rate")
        self.padding = str(padding).lower()

    @classmethod
    def unsupported_reason(cls, layer):
        return channels_last_reason(layer)

    def _input_channels(self, input_shape) -> int:
        if len(input_shape) != self.rank + 2 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: needs inputs [batch, {self.rank} "
                f"spatial axes, channels] with known channels, got {input_shape}"
            )
        return int(input_shape[-1])

    def _pad_causal(self, inputs):
        if self.padding != "causal":
            return inputs, "VALID" if self.padding == "valid" else "SAME"
        left = self.dilation_rate[0] * (self.kernel_size[0] - 1)
        return tf.pad(inputs, [[0, 0], [left, 0], [0, 0]]), "VALID"

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
        }


class _CompressedConv(_CompressedConvBase):
    """Drop-in for `keras.layers.ConvND` (channels_last, groups=1) whose kernel
    [k..., cin, filters], viewed as [∏k · cin, filters], is compressed during training."""

    def __init__(self, filters: int, kernel_size, spec: Spec = None, **kwargs):
        self.filters = positive_int(filters, type(self).__name__, "filters")
        super().__init__(kernel_size, spec=spec, **kwargs)

    def _kernel_shape(self, input_shape):
        return self.kernel_size + (self._input_channels(input_shape), self.filters)

    def _apply_kernel(self, inputs, kernel):
        inputs, padding = self._pad_causal(inputs)
        return tf.nn.convolution(
            inputs,
            tf.cast(kernel, inputs.dtype),
            strides=self.strides,
            padding=padding,
            dilations=self.dilation_rate,
        )

    def _apply_form(self, inputs, form, arrays):
        return form.conv(inputs, arrays, self.kernel_shape, self._apply_kernel)

    def stock_low_rank(self, k, names):
        first = self.stock_class(
            k,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            use_bias=False,
            name=names[0],
        )
        second = self.stock_class(
            self.filters, 1, activation=self.activation, use_bias=self.use_bias, name=names[1]
        )
        return first, second

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedConv1D(_CompressedConv):
    """`keras.layers.Conv1D` (padding "valid", "same" or "causal"), kernel compressed as
    [k · cin, filters]."""

    rank = 1
    stock_class = keras.layers.Conv1D
    paddings = ("valid", "same", "causal")


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedConv2D(_CompressedConv):
    """`keras.layers.Conv2D`, kernel compressed as [kh·kw·cin, filters]."""

    rank = 2
    stock_class = keras.layers.Conv2D


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedConv3D(_CompressedConv):
    """`keras.layers.Conv3D`, kernel compressed as [kd·kh·kw·cin, filters]."""

    rank = 3
    stock_class = keras.layers.Conv3D


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedDepthwiseConv2D(_CompressedConvBase):
    """`keras.layers.DepthwiseConv2D`, kernel [kh, kw, cin, mult] compressed as
    [kh·kw, cin·mult]."""

    stock_class = keras.layers.DepthwiseConv2D
    kernel_prefix = "depthwise_"

    def __init__(self, kernel_size, depth_multiplier: int = 1, spec: Spec = None, **kwargs):
        self.depth_multiplier = positive_int(
            depth_multiplier, "CompressedDepthwiseConv2D", "depth_multiplier"
        )
        super().__init__(kernel_size, spec=spec, **kwargs)

    def _kernel_shape(self, input_shape):
        return self.kernel_size + (self._input_channels(input_shape), self.depth_multiplier)

    def _row_axes(self, kernel_shape):
        return 2

    def _bias_shape(self):
        return (self.kernel_shape[2] * self.depth_multiplier,)

    def _apply_kernel(self, inputs, kernel):
        return tf.nn.depthwise_conv2d(
            inputs,
            tf.cast(kernel, inputs.dtype),
            strides=(1,) + self.strides + (1,),
            padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier}


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedSeparableConv2D(_CompressedConvBase):
    """`keras.layers.SeparableConv2D`: the pointwise kernel [1, 1, cin·mult, filters] is
    compressed as [cin·mult, filters]; the depthwise kernel stays dense."""

    stock_class = keras.layers.SeparableConv2D
    stock_kernel = "pointwise_kernel"
    kernel_prefix = "pointwise_"

    def __init__(
        self,
        filters: int,
        kernel_size,
        depth_multiplier: int = 1,
        spec: Spec = None,
        depthwise_initializer="glorot_uniform",
        **kwargs,
    ):
        self.filters = positive_int(filters, "CompressedSeparableConv2D", "filters")
        self.depth_multiplier = positive_int(
            depth_multiplier, "CompressedSeparableConv2D", "depth_multiplier"
        )
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)
        super().__init__(kernel_size, spec=spec, **kwargs)

    def _kernel_shape(self, input_shape):
        channels = self._input_channels(input_shape) * self.depth_multiplier
        return (1, 1, channels, self.filters)

    def _build_other_weights(self, input_shape):
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel",
            shape=self.kernel_size + (self._input_channels(input_shape), self.depth_multiplier),
            initializer=self.depthwise_initializer,
            trainable=True,
        )

    def copy_from(self, layer):
        super().copy_from(layer)
        self.depthwise_kernel.assign(layer.depthwise_kernel)

    def copy_other_weights(self, layer):
        layer.depthwise_kernel.assign(self.depthwise_kernel)

    def _apply_kernel(self, inputs, kernel):
        return tf.nn.separable_conv2d(
            inputs,
            tf.cast(self.depthwise_kernel, inputs.dtype),
            tf.cast(kernel, inputs.dtype),
            strides=(1,) + self.strides + (1,),
            padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": keras.initializers.serialize(self.depthwise_initializer),
        }
