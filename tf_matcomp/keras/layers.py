"""Keras layers whose kernel is compressed while it trains: one base, a thin subclass per kind.

Each layer owns its dense kernel A and one `tf_matcomp.compression_op.CompressionOp` for it (its
own alpha, last update step and factors, created as the layer's weights: no state shared
between layers). The layer computes with W = alpha·A + (1 − alpha)·Â. A is stored as the 2-D
matrix that gets compressed, the kernel's leading axes as rows and the rest as columns
(`matrix_view`); `call` reshapes W back to the kernel's own shape:

  * CompressedDense: kernel [in, units] → [in, units];
  * CompressedEinsumDense: kernel [contracted axes..., output axes...] → [∏ contracted,
    ∏ output] (e.g. MultiHeadAttention's query kernel [d, heads, head_dim] → [d, heads·head_dim]);
  * CompressedEmbedding: embeddings [vocab, dim] → [vocab, dim];
  * the convolutions (`conv_layers`): Conv1D/2D/3D [k..., cin, filters] → [∏k·cin, filters],
    DepthwiseConv2D [kh, kw, cin, mult] → [kh·kw, cin·mult], SeparableConv2D's pointwise
    kernel [1, 1, cin·mult, filters] → [cin·mult, filters] (its depthwise kernel stays dense).

Updates run from `CompressionCallback` during `model.fit`, or from `layer.run_alpha_update(step)`
in a custom loop; `layer.update(step)` is the TF-op update for use inside a `tf.function`.
Every subclass names the stock Keras layer it replaces (`stock_class`), builds itself from that
layer (`from_layer`) and says why it cannot take one (`unsupported_reason`).
"""

import inspect
import warnings
from typing import ClassVar, Dict, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from tf_matcomp.compressors import registry
from tf_matcomp.keras import _kernel_compression

keras = tf.keras
_PACKAGE = "tf_matcomp"

Spec = Union[None, str, dict, object]
# Config keys every Keras layer takes.
_LAYER_KEYS = ("name", "dtype", "trainable")


class NoCallbackWarning(UserWarning):
    """Training a model with compressed layers without a CompressionCallback."""


def _runtime_zero(inputs) -> tf.Tensor:
    """min(batch size, 0) = 0 as an int32 the TFLite converter cannot constant-fold."""
    return tf.minimum(tf.shape(inputs)[0], 0)


def _unfolded(array, zero):
    """An integer array the TFLite converter cannot constant-fold (its rows gathered at a
    RANGE offset by a run-time zero, so no index constant as long as the array is stored):
    uint8 codes stay codes instead of being folded into a dense float kernel."""
    if tf.as_dtype(array.dtype).is_floating:
        return tf.convert_to_tensor(array)
    rows = tf.gather(array, tf.range(zero, tf.shape(array)[0] + zero))
    rows.set_shape(array.shape)  # the run-time RANGE hides the length from shape inference
    return rows


class _CompressedKernelLayer(keras.layers.Layer):
    """The part all compressed layers share: kernel A (2-D), bias, compression state.

    Subclasses set `stock_class`, give the kernel's shape (`_kernel_shape`), how many of its
    leading axes form the matrix's rows (`_row_axes`), the bias shape (`_bias_shape`) and
    apply the kernel (`_apply_kernel`); `_apply_form` computes with a compressed form.

    Given `form` (a `CompressedForm` or its config) instead of a spec, the layer is in deployed
    form (the `stripped_layers` classes): it holds only the form's arrays, no dense kernel and
    no compression state, and computes with the form's products.
    """

    stock_class: ClassVar[type] = keras.layers.Layer
    stock_kernel: ClassVar[str] = "kernel"  # the stock layer's attribute holding the kernel
    _warned_no_callback: ClassVar[set] = set()

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
        form=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.form = None
        if form is not None:
            config = form if isinstance(form, dict) else form.get_config()
            self.form = registry.form_from_config(config, implementation="composite")
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
        self._arrays: Dict[str, tf.Variable] = {}

    # -- subclass hooks
    def _kernel_shape(self, input_shape) -> Tuple[int, ...]:
        raise NotImplementedError

    def _row_axes(self, kernel_shape) -> int:
        """How many leading axes of a kernel of `kernel_shape` form the matrix's rows."""
        return len(kernel_shape) - 1

    def _bias_shape(self) -> Optional[Tuple[int, ...]]:
        return (self.kernel_shape[-1],)

    def _apply_kernel(self, inputs, kernel):
        raise NotImplementedError

    def _build_other_weights(self, input_shape) -> None:
        """Weights besides the kernel and the bias (e.g. SeparableConv2D's depthwise kernel)."""

    def _apply_form(self, inputs, form, arrays):
        """The kernel's product computed from a compressed form (stripped layers)."""
        kernel = tf.reshape(tf.cast(form.matrix(arrays), inputs.dtype), self.kernel_shape)
        return self._apply_kernel(inputs, kernel)

    # -- conversion from and to stock layers
    @classmethod
    def unsupported_reason(cls, layer) -> Optional[str]:
        """Why `layer` (a `stock_class`) cannot be compressed by this class, or None."""
        return None

    @classmethod
    def twin_config(cls, config: dict) -> dict:
        """The constructor arguments taken from a stock layer's config."""
        accepted = set(_LAYER_KEYS)
        for klass in cls.__mro__[: cls.__mro__.index(_CompressedKernelLayer) + 1]:
            if "__init__" in vars(klass):
                accepted.update(inspect.signature(klass.__init__).parameters)
        accepted -= {"self", "spec", "form", "kwargs"}
        return {key: value for key, value in config.items() if key in accepted}

    @classmethod
    def from_layer(cls, layer, spec) -> "_CompressedKernelLayer":
        """The compressed twin of a stock layer (unbuilt; `copy_from` fills it once built)."""
        return cls(spec=spec, **cls.twin_config(layer.get_config()))

    def copy_from(self, layer) -> None:
        """Takes the kernel (as the matrix A), the bias and other weights of a stock layer."""
        self.kernel.assign(tf.reshape(getattr(layer, self.stock_kernel), self.kernel.shape))
        if self.bias is not None:
            self.bias.assign(layer.bias)

    def stock_config(self) -> dict:
        """The config of the stock layer this layer stands for (its spec left out)."""
        config = self.get_config()
        parameters = inspect.signature(self.stock_class.__init__).parameters
        return {
            key: value
            for key, value in config.items()
            if key in parameters or key in _LAYER_KEYS or key == "name"
        }

    def stock_low_rank(
        self, k: int, names: Tuple[str, str]
    ) -> Optional[Tuple[keras.layers.Layer, keras.layers.Layer]]:
        """Two unbuilt stock layers named `names` computing x·B·C (B: rows × k, C: k × cols),
        this layer's bias and activation on the second; None where no stock pair exists."""
        return None

    def copy_to_stock(self, stock, kernel) -> None:
        """Fills a built stock layer with `kernel` (the matrix), the bias, other weights."""
        target = getattr(stock, self.stock_kernel)
        target.assign(tf.reshape(tf.cast(kernel, target.dtype), target.shape))
        if self.bias is not None:
            stock.bias.assign(self.bias)
        self.copy_other_weights(stock)

    def copy_other_weights(self, layer) -> None:
        """Copies the weights besides kernel and bias (`_build_other_weights`) to `layer`."""

    def matrix_view(self, kernel_shape) -> Tuple[int, int]:
        """(rows, cols) of the matrix a kernel of `kernel_shape` is compressed as."""
        split = self._row_axes(kernel_shape)
        return int(np.prod(kernel_shape[:split])), int(np.prod(kernel_shape[split:]))

    # -- Keras
    def build(self, input_shape):
        self.kernel_shape = tuple(int(d) for d in self._kernel_shape(input_shape))
        if self.form is not None:
            self._build_deployed(input_shape)
            return
        initializer = self.kernel_initializer

        def matrix_initializer(shape, dtype=None):  # fans of the kernel's own shape
            return tf.reshape(initializer(self.kernel_shape, dtype=dtype), shape)

        # A, the dense kernel, is stored as the 2-D matrix that gets compressed.
        self.kernel = self.add_weight(
            name="kernel",
            shape=self.matrix_view(self.kernel_shape),
            initializer=matrix_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            trainable=True,
        )
        self._build_bias_and_others(input_shape)
        self.compression = _kernel_compression.KernelCompression(self, self.kernel, self.spec)
        super().build(input_shape)

    def _build_bias_and_others(self, input_shape) -> None:
        self.bias = None
        bias_shape = self._bias_shape() if self.use_bias else None
        if bias_shape is not None:
            self.bias = self.add_weight(
                name="bias",
                shape=bias_shape,
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                trainable=True,
            )
        self._build_other_weights(input_shape)

    def _build_deployed(self, input_shape) -> None:
        """Deployed form (`form` given): the form's arrays instead of A and the compression
        state; float arrays trainable."""
        for name, shape, dtype in self.form.variables():
            self._arrays[name] = self.add_weight(
                name=name,
                shape=shape,
                dtype=dtype,
                initializer="zeros",
                trainable=tf.as_dtype(dtype).is_floating,
            )
        self._build_bias_and_others(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=None):
        if self.form is not None:
            zero = _runtime_zero(inputs)
            outputs = self._apply_form(
                inputs, self.form, [_unfolded(v, zero) for v in self._arrays.values()]
            )
            # + a run-time 0: TF 2.21's converter drops an activation fused straight into a
            # BATCH_MATMUL whose kernel is computed at run time; an ADD keeps it.
            return self.finish(outputs + tf.cast(zero, outputs.dtype))
        if training is True:
            self._warn_if_no_callback()
        return self.finish(self._apply_compressed(inputs))

    def _apply_compressed(self, inputs):
        """The kernel's product with W = alpha·A + (1 − alpha)·Â, skipping the half alpha zeroes.

        While alpha is 1 (before the first firing) W is A: Â is neither built nor read. Once
        alpha is 0 it is Â: the form's own product (x·B·C for low rank), A unread. In between,
        the blend, or α·(x·A) + (1 − α)·(x·B·C) where that takes fewer multiplications. The
        values are W's, and the gradients too (the skipped half has a zero factor in W)."""
        compression = self._require_built()
        alpha = compression.alpha()
        # Read once, outside the branches: each branch captures the values it uses.
        a = tf.reshape(compression.dense_matrix(), self.kernel_shape)
        factors = self._compute_factors()
        form = compression.op.form

        def dense():
            return self._apply_kernel(inputs, a)

        def compressed():
            return self._apply_form(inputs, form, factors)

        def blended():
            if not self._split_is_cheaper(inputs, form):
                return self._apply_kernel(inputs, self.compressed_kernel())
            weight = tf.cast(alpha, self.compute_dtype)
            return weight * dense() + (1 - weight) * compressed()

        return tf.cond(alpha >= 1, dense, lambda: tf.cond(alpha <= 0, compressed, blended))

    def _compute_factors(self) -> list:
        """The factors, float ones at the layer's compute dtype (integer codes as they are)."""
        return [
            tf.cast(f, self.compute_dtype) if f.dtype.is_floating else f
            for f in self._require_built().factors()
        ]

    def _split_is_cheaper(self, inputs, form) -> bool:
        """Whether α·(x·A) + (1 − α)·(x·Â by the form) beats x·(blended W) for these inputs
        (the layers that can tell say so)."""
        return False

    def set_compressed(self, arrays: Dict[str, np.ndarray], bias: Optional[np.ndarray]) -> None:
        """Deployed form: assigns the stored arrays (by the names of `form.variables()`) and
        the bias."""
        for name, var in self._arrays.items():
            var.assign(np.asarray(arrays[name]).astype(var.dtype).reshape(var.shape))
        if self.bias is not None:
            self.bias.assign(np.asarray(bias).astype(self.bias.dtype))

    def finish(self, outputs):
        """outputs + bias, then the activation."""
        if self.bias is not None:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        return self.activation(outputs) if self.activation is not None else outputs

    def _warn_if_no_callback(self) -> None:
        """Warns once per process when a model trains without a CompressionCallback."""
        if getattr(self, "driven_by_callback", False) or "fit" in self._warned_no_callback:
            return
        if self.compression is None or self.spec.update_option == 3:
            return
        self._warned_no_callback.add("fit")
        warnings.warn(
            f"layer {self.name!r} trains with compression but no CompressionCallback is "
            "running: alpha stays at its current value. Pass "
            "callbacks=[tf_matcomp.keras.CompressionCallback()] to fit (or call "
            "run_alpha_update(step) in a custom loop).",
            NoCallbackWarning,
            stacklevel=3,
        )

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        """Refuses SavedModel export in training form: it would embed the native op."""
        if save_type == "savedmodel" and self.form is None:
            raise ValueError(
                f"layer {self.name!r} is still in training form (dense kernel, compression "
                "state, native ops): export the deployable model instead, "
                "tf_matcomp.keras.strip_compression(model).export(path)"
            )
        return super()._trackable_children(save_type, **kwargs)

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
        stored = (
            {"form": self.form.get_config()}
            if self.form is not None
            else {"spec": _kernel_compression.spec_to_config(self.spec)}
        )
        return {
            **super().get_config(),
            **stored,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }


def positive_int(value, layer: str, name: str) -> int:
    """`value` if it is a positive int, else ValueError naming the layer class and argument."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: `{name}` must be a positive int, got {value!r}")
    return int(value)


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

    stock_class = keras.layers.Dense

    def __init__(
        self, units: int, spec: Spec = None, activation=None, use_bias: bool = True, **kwargs
    ):
        units = positive_int(units, "CompressedDense", "units")
        super().__init__(spec, activation, use_bias, **kwargs)
        self.units = units

    def _kernel_shape(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                f"CompressedDense {self.name!r}: the last input dimension must be known"
            )
        return (int(input_shape[-1]), self.units)

    def _apply_kernel(self, inputs, kernel):
        return (
            tf.matmul(inputs, kernel)
            if inputs.shape.rank == 2
            else tf.tensordot(inputs, kernel, axes=1)
        )

    def _apply_form(self, inputs, form, arrays):
        return form.matmul(inputs, arrays)

    def _split_is_cheaper(self, inputs, form):
        # Training cost beyond x·A (forward and both backward products), for r input rows:
        # x·(B·C) forms B·C and its two gradients, 6·m·n·k; x·B·C costs 6·r·k·(m + n).
        rows = tf.TensorShape(inputs.shape[:-1]).num_elements()  # None: not known when tracing
        if form.kind != "low_rank" or rows is None or not form.factored_is_cheaper():
            return False
        return rows * (form.rows + form.cols) < form.rows * form.cols

    def stock_low_rank(self, k, names):
        return (
            keras.layers.Dense(k, use_bias=False, name=names[0]),
            keras.layers.Dense(
                self.units, activation=self.activation, use_bias=self.use_bias, name=names[1]
            ),
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _einsum_parts(equation: str) -> Tuple[str, str, str]:
    """(input, kernel, output) subscripts of "input,kernel->output" ("..." kept)."""
    operands, _, output = equation.replace(" ", "").partition("->")
    inputs, _, kernel = operands.partition(",")
    return inputs, kernel, output


def einsum_row_axes(equation: str) -> Optional[int]:
    """How many leading kernel axes are contracted with the input, when the kernel's axes are
    all contracted ones first, then all output ones; None for any other equation."""
    inputs, kernel, output = _einsum_parts(equation)
    if "." in kernel or not kernel:
        return None
    contracted = [axis for axis in kernel if axis in inputs and axis not in output]
    free = [axis for axis in kernel if axis in output and axis not in inputs]
    if not contracted or not free or kernel != "".join(contracted + free):
        return None
    return len(contracted)


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedEinsumDense(_CompressedKernelLayer):
    """Drop-in for `keras.layers.EinsumDense` (MultiHeadAttention's projections) whose kernel
    [contracted axes..., output axes...] is compressed as [∏ contracted, ∏ output].

    Args:
      equation, output_shape, bias_axes: as `keras.layers.EinsumDense`; the kernel's axes
        must be the contracted ones first, then the output ones ("abc,cde->abde" is; a kernel
        axis shared by input and output is not).
      spec: the compression hparams, as for `CompressedDense`.
    """

    stock_class = keras.layers.EinsumDense

    def __init__(
        self,
        equation: str,
        output_shape,
        spec: Spec = None,
        activation=None,
        bias_axes: Optional[str] = None,
        **kwargs,
    ):
        if einsum_row_axes(equation) is None:
            raise ValueError(
                f"CompressedEinsumDense: `equation` {equation!r} must contract leading kernel "
                "axes with the input and produce the remaining ones"
            )
        super().__init__(spec, activation, bias_axes is not None, **kwargs)
        self.equation = equation
        self.partial_output_shape = (
            (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        )
        self.bias_axes = bias_axes
        self._bias = None

    @classmethod
    def unsupported_reason(cls, layer):
        if einsum_row_axes(layer.equation) is None:
            return (
                f"its equation {layer.equation!r} does not contract leading kernel axes "
                "and output the rest"
            )
        return None

    def _kernel_shape(self, input_shape):
        from keras.src.layers.core.einsum_dense import _analyze_einsum_string

        kernel_shape, bias_shape, _, _, _ = _analyze_einsum_string(
            self.equation, self.bias_axes, tuple(input_shape), self.partial_output_shape
        )
        self._bias = bias_shape
        return kernel_shape

    def _row_axes(self, kernel_shape):
        return einsum_row_axes(self.equation)

    def _bias_shape(self):
        return tuple(self._bias) if self._bias is not None else None

    def _apply_kernel(self, inputs, kernel):
        return tf.einsum(self.equation, inputs, kernel)

    def stock_low_rank(self, k, names):
        inputs, kernel, output = _einsum_parts(self.equation)
        split = einsum_row_axes(self.equation)
        contracted, free = kernel[:split], kernel[split:]
        rank_axis = next(a for a in "zyxwvutsrqponmlkjihgfedcba" if a not in self.equation)
        middle = "".join(a for a in inputs if a not in contracted) + rank_axis
        middle_shape = (None,) * (len(middle) - 2) + (k,)  # EinsumDense leaves out the batch
        return (
            keras.layers.EinsumDense(
                f"{inputs},{contracted}{rank_axis}->{middle}", middle_shape, name=names[0]
            ),
            keras.layers.EinsumDense(
                f"{middle},{rank_axis}{free}->{output}",
                self.partial_output_shape,
                activation=self.activation,
                bias_axes=self.bias_axes,
                name=names[1],
            ),
        )

    def get_config(self):
        config = super().get_config()
        del config["use_bias"]
        return {
            **config,
            "equation": self.equation,
            "output_shape": self.partial_output_shape,
            "bias_axes": self.bias_axes,
        }


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CompressedEmbedding(_CompressedKernelLayer):
    """Drop-in for `keras.layers.Embedding` whose table [input_dim, output_dim] is compressed.

    Args:
      input_dim, output_dim, embeddings_initializer, embeddings_regularizer,
        embeddings_constraint, mask_zero: as `keras.layers.Embedding`.
      spec: the compression hparams, as for `CompressedDense`.
    """

    stock_class = keras.layers.Embedding
    stock_kernel = "embeddings"

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        spec: Spec = None,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero: bool = False,
        **kwargs,
    ):
        for key in ("activation", "use_bias"):  # an embedding has neither
            kwargs.pop(key, None)
        super().__init__(
            spec,
            None,
            False,
            kernel_initializer=embeddings_initializer,
            kernel_regularizer=embeddings_regularizer,
            kernel_constraint=embeddings_constraint,
            **kwargs,
        )
        self.input_dim = positive_int(input_dim, "CompressedEmbedding", "input_dim")
        self.output_dim = positive_int(output_dim, "CompressedEmbedding", "output_dim")
        self.mask_zero = bool(mask_zero)

    @classmethod
    def twin_config(cls, config):
        keys = ("input_dim", "output_dim", "mask_zero") + _LAYER_KEYS
        keys += ("embeddings_initializer", "embeddings_regularizer", "embeddings_constraint")
        return {key: config[key] for key in keys if key in config}

    def _kernel_shape(self, input_shape):
        return (self.input_dim, self.output_dim)

    def _apply_kernel(self, inputs, kernel):
        return tf.gather(kernel, tf.cast(inputs, tf.int32))

    def _apply_form(self, inputs, form, arrays):
        return tf.cast(form.gather_rows(tf.cast(inputs, tf.int32), arrays), self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return tf.not_equal(inputs, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def stock_low_rank(self, k, names):
        return (
            keras.layers.Embedding(self.input_dim, k, mask_zero=self.mask_zero, name=names[0]),
            keras.layers.Dense(self.output_dim, use_bias=False, name=names[1]),
        )

    def get_config(self):
        config = super().get_config()
        for part in ("initializer", "regularizer", "constraint"):  # the table's are kernel_*
            config[f"embeddings_{part}"] = config.pop(f"kernel_{part}")
            del config[f"bias_{part}"]
        for key in ("activation", "use_bias"):
            del config[key]
        return {
            **config,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
        }
