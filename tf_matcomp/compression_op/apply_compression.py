"""`ApplyCompression`: one compression spec applied to several weights, one op per weight."""

from typing import List, Optional

import tensorflow as tf

from tf_matcomp.compression_op import spec as spec_lib
from tf_matcomp.compression_op.method_ops import op_class_for
from tf_matcomp.compression_op.op import CompressionOp, in_graph_mode, module_name, scope_name
from tf_matcomp.compressors.base import MatrixCompressorInterface
from tf_matcomp.hparams import HParams


class ApplyCompression(tf.Module):
    """Applies one compression spec to several weights, each with its own op and schedule.

    Args:
      scope: name scope of the combined update op.
      compression_spec: op hparams (copied; validated as in CompressionOp).
      compressor: a MatrixCompressorInterface.
      global_step: step variable/tensor for updates that are not given a step.
      variable_factory: passed to every CompressionOp.

    `apply_compression(w, scope)` returns the weight to use; calling it again with the same
    variable returns a fresh weight tensor from the existing op (so eager code and retraced
    functions can call it every step). `uncompressed_size`, `compressed_size` (and `_bits`) are
    summed over the ops; `compression_ratio` is their bit ratio.
    """

    compression_op_class = None  # None: chosen from the compressor (see op_class_for)

    def __init__(
        self, scope, compression_spec, compressor, global_step=None, variable_factory=None
    ):
        super().__init__(name=module_name(scope_name(scope)))
        self._scope = scope_name(scope)
        self._compression_op_spec = compression_spec.copy()
        spec_lib.validate_spec(self._compression_op_spec)
        self._global_step = global_step
        self._matrix_compressor = compressor
        self._variable_factory = variable_factory
        self._compression_ops = []
        self._all_update_op = None

    def _new_op(self, scope, spec=None, compressor=None) -> CompressionOp:
        op_class = self.compression_op_class or op_class_for(compressor)
        return op_class(
            scope=scope,
            spec=spec if spec is not None else self._compression_op_spec,
            global_step=self._global_step,
            variable_factory=self._variable_factory,
        )

    def find_compression_op(self, a_matrix_tfvar) -> Optional[CompressionOp]:
        """The op that compresses this very variable object, if any."""
        for op in self._compression_ops:
            if op.a_matrix_tfvar is a_matrix_tfvar:
                return op
        return None

    def apply_compression(
        self, a_matrix_tfvar, scope="default_scope", spec=None, compressor=None
    ) -> tf.Tensor:
        """The compressed weight to use instead of `a_matrix_tfvar` (see class doc).

        spec, compressor: this weight's op spec and compressor instead of the object's
        (graph_compression's compression_wrapper_py2 signature).
        """
        existing = self.find_compression_op(a_matrix_tfvar)
        if existing is not None:
            return (
                existing.final_op
                if in_graph_mode() and existing.final_op is not None
                else existing.get_weight()
            )
        return self._add_op(a_matrix_tfvar, scope, spec, compressor)

    def apply_compression_keras(
        self, a_matrix_tfvar, scope="default_scope", layer=None, spec=None, compressor=None
    ) -> tf.Tensor:
        """`apply_compression` for a Keras layer's kernel: the op's state is created as
        `layer`'s weights (graph_compression's Keras entry point)."""
        if layer is None:
            raise ValueError("apply_compression_keras needs the Keras `layer` owning the kernel")
        return self._add_op(a_matrix_tfvar, scope, spec, compressor, layer)

    def _add_op(self, a_matrix_tfvar, scope, spec, compressor, layer=None) -> tf.Tensor:
        """A new op for `a_matrix_tfvar` (state as `layer`'s weights when given); its weight."""
        compressor = compressor if compressor is not None else self._matrix_compressor
        op = self._new_op(scope, spec, compressor)
        if layer is None:
            weight, _ = op.get_apply_compression_op(a_matrix_tfvar, compressor, scope=scope)
        else:
            weight, _ = op.get_apply_compression_op_keras(a_matrix_tfvar, compressor, layer)
        self._compression_ops.append(op)
        return weight

    # --- sizes ---------------------------------------------------------------------------
    @property
    def uncompressed_size(self) -> int:
        return sum(op.uncompressed_size for op in self._compression_ops)

    @property
    def compressed_size(self) -> int:
        return sum(op.compressed_size for op in self._compression_ops)

    @property
    def uncompressed_bits(self) -> int:
        return sum(op.uncompressed_bits for op in self._compression_ops)

    @property
    def compressed_bits(self) -> int:
        return sum(op.compressed_bits for op in self._compression_ops)

    @property
    def compression_ratio(self) -> float:
        bits = self.compressed_bits
        return self.uncompressed_bits / bits if bits else 0.0

    # --- updates -------------------------------------------------------------------------
    def all_update_op(self):
        """Graph mode: one op running every weight's TF update (a no-op for update options 1
        and 3). Inside tf.function: the same, built now. Eagerly: runs them now; None."""
        if in_graph_mode():
            ops_list = [op.update_op for op in self._compression_ops]
        else:
            ops_list = [op.update() for op in self._compression_ops]
        # graph_compression keeps the last one built (its tests run `_all_update_op`).
        self._all_update_op = CompressionOp.all_update_op(ops_list, self._scope)
        return self._all_update_op

    def update(self, step=None) -> List[tf.Tensor]:
        """Every op's `update(step)` (TF ops; eager, tf.function, XLA); the fired flags."""
        return [op.update(step) for op in self._compression_ops]

    def run_update_step(self, session=None, step_number=None) -> List[bool]:
        """Every op's Python `run_update_step`; the fired flags."""
        return [
            op.run_update_step(session=session, step_number=step_number)
            for op in self._compression_ops
        ]

    def add_compression_summaries(self, step=None) -> list:
        """Every op's summaries (see CompressionOp.add_compression_summaries)."""
        return [op.add_compression_summaries(step=step) for op in self._compression_ops]

    # --- accessors -----------------------------------------------------------------------
    def get_last_compression_op(self) -> CompressionOp:
        return self._compression_ops[-1]

    def get_compression_ops(self) -> List[CompressionOp]:
        return list(self._compression_ops)

    def get_spec(self) -> HParams:
        return self._compression_op_spec

    def get_operator_hparam(self, hparam: str):
        return self._compression_op_spec.get(hparam)

    def get_matrix_compressor(self) -> MatrixCompressorInterface:
        return self._matrix_compressor
