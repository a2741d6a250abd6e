"""Upstream graph_compression's `keras_layers/layers.py`: Keras layers taking a compressor or a
`compression_obj` (an ApplyCompression, e.g. from `compression_wrapper.get_apply_compression`).

* `CompressedLinearLayer(input_dim, num_hidden_nodes, compressor)`: x·W + b with W compressed
  by a `CompressionOpEager` (call `set_up_variables()` before use, `run_alpha_update(step)`
  to step the schedule).
* `CompressedDense(units, ..., compression_obj=...)`: keras Dense whose kernel is compressed by
  `compression_obj` (its op is `compression_op`; the state is the layer's weights; updates run
  through `compression_obj.run_update_step(step_number=...)` or the op's `update(step)`).
* `CompressedConv2D(filters, kernel_size, ..., compression_obj=...)`: as upstream, a
  convolution with filters / rank output channels followed by a trained projection `b_matrix`
  [filters / rank, filters] (rank from `compression_obj.get_spec()`); no alpha schedule.

For models compressed by spec strings, with strip and export, see `tf_matcomp.keras`.
"""

import tensorflow as tf

from tf_matcomp.compression_lib.compression_op import CompressionOpEager

keras = tf.keras


# The weight arguments keras Dense and Conv2D share, passed through unchanged.
_WEIGHT_ARGUMENTS = (
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


def _weight_arguments(arguments: dict) -> dict:
    """The keras weight arguments among a constructor's `locals()`."""
    return {name: arguments[name] for name in _WEIGHT_ARGUMENTS}


def _require_compression_obj(compression_obj, layer: str):
    if compression_obj is None or not hasattr(compression_obj, "get_spec"):
        raise ValueError(
            f"{layer}: compression_obj must be an ApplyCompression (e.g. from "
            f"compression_wrapper.get_apply_compression), got {compression_obj!r}"
        )
    return compression_obj


class CompressedLinearLayer(keras.layers.Layer):
    """x·W + b with W [input_dim, num_hidden_nodes] replaced by its compressed version.

    Args:
      input_dim: input size.
      num_hidden_nodes: output size.
      compressor: a matrix compressor (`compression_op.MatrixCompressorInterface`).
    """

    def __init__(self, input_dim: int, num_hidden_nodes: int, compressor):
        super().__init__()
        self.num_hidden_nodes = num_hidden_nodes
        self.compressor = compressor
        self.w = self.add_weight(
            shape=(input_dim, num_hidden_nodes), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(
            shape=(num_hidden_nodes,), initializer="random_normal", trainable=True
        )
        self.compression_op = None

    def set_up_variables(self) -> None:
        """Creates the compression state of `w` (before the layer is called)."""
        self.compression_op = CompressionOpEager()
        self.compression_op.set_up_variables(self.w, self.compressor)

    def call(self, inputs):
        if self.compression_op is None:
            raise ValueError("CompressedLinearLayer: call set_up_variables() first")
        return tf.matmul(inputs, self.compression_op.get_apply_compression()) + self.b

    def run_alpha_update(self, step_number) -> None:
        """Runs the scheduled update at `step_number` (during training)."""
        self.compression_op.run_update_step(step_number)


class CompressedDense(keras.layers.Dense):
    """keras Dense whose kernel A is replaced by alpha·A + (1 − alpha)·Â from `compression_obj`.

    Args: those of keras.layers.Dense, and compression_obj: the ApplyCompression that
    compresses the kernel (one op per layer, appended to its ops).
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        compression_obj=None,
        **kwargs,
    ):
        super().__init__(
            units, activation=activation, use_bias=use_bias, **_weight_arguments(locals()), **kwargs
        )
        self.compression_obj = _require_compression_obj(compression_obj, "CompressedDense")
        self.compression_op = None

    def build(self, input_shape):
        super().build(input_shape)
        self.compression_obj.apply_compression_keras(self.kernel, scope=self.name, layer=self)
        self.compression_op = self.compression_obj.get_last_compression_op()

    def run_alpha_update(self, step_number) -> bool:
        """Runs this layer's scheduled update at `step_number` (eagerly); whether it fired."""
        return self.compression_op.run_update_step(step_number=step_number)

    def call(self, inputs, training=None):
        outputs = self.compression_op.get_apply_matmul_keras(inputs)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


class CompressedConv2D(keras.layers.Conv2D):
    """keras Conv2D with filters / rank output channels, projected back to `filters` by a
    trained `b_matrix` [filters / rank, filters] (rank: `compression_obj.get_spec().rank`).

    Raises:
      ValueError: `filters` not divisible by the rank, or no compression_obj.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format=None,
        dilation_rate=(1, 1),
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        compression_obj=None,
        **kwargs,
    ):
        compression_obj = _require_compression_obj(compression_obj, "CompressedConv2D")
        rank = compression_obj.get_spec().rank
        if filters % rank:
            raise ValueError(
                f"CompressedConv2D: filters ({filters}) must be divisible by the "
                f"compression spec's rank ({rank})"
            )
        self.orig_filters = filters
        self.compressed_filters = filters // rank
        super().__init__(
            filters=self.compressed_filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            groups=groups,
            activation=activation,
            use_bias=use_bias,
            **_weight_arguments(locals()),
            **kwargs,
        )
        self.compression_obj = compression_obj

    def build(self, input_shape):
        super().build(input_shape)
        self.b_matrix = self.add_weight(
            name="b_matrix",
            shape=(self.compressed_filters, self.orig_filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            trainable=True,
        )

    def call(self, inputs):
        narrow = super().call(inputs)
        if self.data_format == "channels_first":
            return tf.einsum("ijkl,jm->imkl", narrow, self.b_matrix)
        return tf.tensordot(narrow, self.b_matrix, axes=1)

    def compute_output_shape(self, input_shape):
        shape = list(super().compute_output_shape(input_shape))
        shape[1 if self.data_format == "channels_first" else -1] = self.orig_filters
        return tuple(shape)
