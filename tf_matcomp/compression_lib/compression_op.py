"""graph_compression's `compression_op`: compressor interface, CompressionOp, ApplyCompression.

Aliases of tf_matcomp's classes (`tf_matcomp.compression_op`, `tf_matcomp.compressors`), plus:

* `CompressionOp`: tf_matcomp's, where `b_matrix_tfvar` of a dictionary-learning weight is the
  peer's B [m, k], a `tf.SparseTensor` of the current codes (tf_matcomp stores them as
  `b_matrix_indices_tfvar` [m, s] column indices and `b_matrix_values_tfvar` [m, s] values);
* `CompressionOpEager`: the peer's eager Keras-layer op, over a tf_matcomp CompressionOp;
* `InputOutputCompressionOp`: the peer's option-9 op, tf_matcomp's CompressionOp with the
  peer's defaults and its x·A `get_apply_matmul`.
"""

import warnings
from typing import Optional

import tensorflow as tf

from tf_matcomp import compression_op as _compression_op
from tf_matcomp.compression_op.state import layer_variable_factory
from tf_matcomp.compressors import dictionary_learning, registry
from tf_matcomp.compressors.base import MatrixCompressorInferface, MatrixCompressorInterface
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor

ApplyCompression = _compression_op.ApplyCompression
CompressionOpInterface = _compression_op.CompressionOpInterface

__all__ = [
    "ApplyCompression",
    "CompressionOp",
    "CompressionOpEager",
    "CompressionOpInterface",
    "InputOutputCompressionOp",
    "LowRankDecompMatrixCompressor",
    "MatrixCompressorInferface",
    "MatrixCompressorInterface",
    "PeerFactorNames",
]


class PeerFactorNames:
    """Mixin for a CompressionOp: `b_matrix_tfvar` as graph_compression names it.

    For a weight stored as sparse codes (dictionary learning) it is B [m, k] as a
    `tf.SparseTensor` built from the current code variables at each access; for every other
    method it is tf_matcomp's factor variable.
    """

    @property
    def b_matrix_tfvar(self):
        factor = self.__dict__.get("_b_matrix_factor")
        form = self.__dict__.get("_form")
        if not isinstance(form, dictionary_learning.SparseCodeForm):
            return factor
        indices, values, _ = self.factors()
        return tf.sparse.from_dense(form.codes(indices, values))

    @b_matrix_tfvar.setter
    def b_matrix_tfvar(self, value) -> None:
        self.__dict__["_b_matrix_factor"] = value


class CompressionOp(PeerFactorNames, _compression_op.CompressionOp):
    """tf_matcomp's CompressionOp with graph_compression's `b_matrix_tfvar` (see module doc)."""


class CompressionOpEager(tf.keras.layers.Layer):
    """graph_compression's eager op: explicit `run_update_step(step_number)`, no global step.

    Args:
      last_alpha_update_step: the last firing step to start from (−1: none yet).
      spec: op hparams (`get_default_hparams()`); copied.

    `set_up_variables(a_matrix_tfvar, matrix_compressor)` builds a tf_matcomp CompressionOp
    for the weight; `get_apply_compression()` is its weight alpha·A + (1 − alpha)·Â. The op's
    alpha, last_alpha_update_step, a/b/c_matrix_tfvar and matrix_compressor are read through.
    """

    def __init__(self, last_alpha_update_step: int = -1, spec=None):
        super().__init__()
        self._spec = (spec if spec is not None else self.get_default_hparams()).copy()
        self._initial_last_step = int(last_alpha_update_step)
        self.compression_op: Optional[CompressionOp] = None
        self.final_op = None

    get_default_hparams = staticmethod(_compression_op.CompressionOp.get_default_hparams)

    def set_up_variables(self, a_matrix_tfvar, matrix_compressor) -> None:
        """Creates the compression state of `a_matrix_tfvar` for `matrix_compressor`."""
        op = CompressionOp(
            scope=self.name, spec=self._spec, variable_factory=layer_variable_factory(self)
        )
        op.get_apply_compression_op(a_matrix_tfvar, matrix_compressor, scope=self.name)
        op.last_alpha_update_step.assign(self._initial_last_step)
        self.compression_op = op
        self.built = True  # its state is the op's, created here

    def _op(self) -> CompressionOp:
        if self.compression_op is None:
            raise ValueError("call set_up_variables(a_matrix_tfvar, matrix_compressor) first")
        return self.compression_op

    def get_apply_compression(self) -> tf.Tensor:
        """alpha·A + (1 − alpha)·Â from the current variables."""
        self.final_op = self._op().get_weight()
        return self.final_op

    def run_update_step(self, step_number) -> bool:
        """Fires the scheduled update at `step_number` (Python path); whether it fired."""
        return self._op().run_update_step(step_number=step_number)

    alpha = property(lambda self: self._op().alpha)
    last_alpha_update_step = property(lambda self: self._op().last_alpha_update_step)
    a_matrix_tfvar = property(lambda self: self._op().a_matrix_tfvar)
    b_matrix_tfvar = property(lambda self: self._op().b_matrix_tfvar)
    c_matrix_tfvar = property(lambda self: self._op().c_matrix_tfvar)
    matrix_compressor = property(lambda self: self._op().matrix_compressor)


# graph_compression's InputOutputCompressionOp.get_default_hparams() values (the rest of the
# spec keeps CompressionOp's defaults). Its op-level is_*_matrix_trainable keys are parsed but,
# as there, trainability is read from the compressor's spec.
_INPUT_OUTPUT_DEFAULTS = {
    "name": "input_compression",
    "compression_frequency": 10,
    "use_tpu": False,
    "compression_option": 0,
    "begin_compression_step": 1000,
    "end_compression_step": 2000,
    "rank": 4,
    "compress_input": True,
    "compress_output": False,
    "input_compression_factor": 1,
    "input_block_size": 32,
    "output_compression_factor": 1,
    "output_block_size": 1,
}
_TRAINABLE_KEYS = ("is_b_matrix_trainable", "is_c_matrix_trainable", "is_d_matrix_trainable")
_INPUT_OUTPUT_OPTION = 9


class InputOutputCompressionOp(CompressionOp):
    """graph_compression's option-9 op over tf_matcomp's (factors fitted to A, alpha blended;
    see `tf_matcomp.compressors.input_output`).

    Differs from `CompressionOp` as graph_compression's class does: `get_default_hparams()`
    has its defaults (input side on, input_block_size 32, begin/end steps 1000/2000, ...);
    the class always compresses with option 9 (a spec's `compression_option` must be 0, the
    peer's default, or 9), whatever compressor `get_apply_compression_op` is given (the peer
    passes a LowRankDecompMatrixCompressor and reads only its is_*_matrix_trainable): the op
    makes its own `InputOutputCompressor` from its spec, with those flags where the given
    compressor's spec has them; `get_apply_matmul(x)` is x·W with W as [in, out] (x·A), not
    x·Wᵀ.

    Raises:
      ValueError: the spec's compression_option is neither 0 nor 9.
    """

    def __init__(self, scope="default_scope", spec=None, global_step=None, variable_factory=None):
        spec = (spec if spec is not None else self.get_default_hparams()).copy()
        if spec.compression_option not in (0, _INPUT_OUTPUT_OPTION):
            raise ValueError(
                "InputOutputCompressionOp: compression_option must be 0 or 9 (it is the "
                f"input/output op), got {spec.compression_option!r}"
            )
        for key in _TRAINABLE_KEYS:
            if key in spec.values() and not spec.get(key):
                warnings.warn(
                    f"InputOutputCompressionOp: the op spec's {key}=False has no effect (as "
                    "in graph_compression): set it on the compressor's spec",
                    UserWarning,
                    stacklevel=2,
                )
        spec.set_hparam("compression_option", _INPUT_OUTPUT_OPTION)
        super().__init__(scope, spec, global_step, variable_factory)

    @staticmethod
    def get_default_hparams():
        """CompressionOp's spec with graph_compression's InputOutputCompressionOp defaults."""
        hparams = _compression_op.CompressionOp.get_default_hparams()
        for key, value in _INPUT_OUTPUT_DEFAULTS.items():
            hparams.set_hparam(key, value)
        for key in _TRAINABLE_KEYS:
            hparams.add_hparam(key, True)
        return hparams

    def get_apply_compression_op(self, a_matrix_tfvar, matrix_compressor, scope="default_scope"):
        """`CompressionOp.get_apply_compression_op` with the op's own input/output compressor
        (see the class doc)."""
        method = registry.method_for_option(_INPUT_OUTPUT_OPTION)
        if not isinstance(matrix_compressor, method.compressor_class):
            given = matrix_compressor.get_spec()
            compressor_spec = method.compressor_spec(self._spec)
            for key in _TRAINABLE_KEYS:
                if key in given.values():
                    compressor_spec.set_hparam(key, given.get(key))
            matrix_compressor = method.compressor_class(spec=compressor_spec)
        return super().get_apply_compression_op(a_matrix_tfvar, matrix_compressor, scope)

    def get_apply_matmul(self, left_operand) -> tf.Tensor:
        """left_operand · W, W as [in, out] (graph_compression's x·A for option 9)."""
        return self.get_apply_matmul_keras(left_operand)
