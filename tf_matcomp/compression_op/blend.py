"""The weight a model uses while it is compressed: W = alpha·A + (1 − alpha)·Â, and products.

Â and every factored product come from the method's `CompressedForm`; the blend itself goes
through the compressor (`blend`, which asks the form), so a compressor subclass that overrides
it is honoured.
"""

import tensorflow as tf

from tf_matcomp.compression_op.state import WeightState, read
from tf_matcomp.compressors.form import CompressedForm


class BlendedWeight:
    """alpha·A + (1 − alpha)·Â for one weight A, from its state and compressed form."""

    def __init__(self, compressor, form: CompressedForm, state: WeightState, a_matrix):
        self._compressor, self._form, self._state = compressor, form, state
        self._a_matrix = a_matrix

    def weight(self) -> tf.Tensor:
        """alpha·A + (1 − alpha)·Â from the current variables (a fresh tensor each call)."""
        return self._compressor.blend(
            read(self._a_matrix), self._state.factors(), read(self._state.alpha)
        )

    def compressed(self) -> tf.Tensor:
        """Â alone, at A's dtype (what the weight is once alpha is 0)."""
        a_dtype = tf.as_dtype(self._a_matrix.dtype).base_dtype
        return tf.cast(
            self._compressor.reconstruct(self._state.factors(), self._a_matrix.shape), a_dtype
        )

    def reconstruction_error(self) -> tf.Tensor:
        """‖A − Â‖_F / ‖A‖_F (1 before the first firing, when Â is zero)."""
        a = read(self._a_matrix)
        return tf.math.divide_no_nan(tf.norm(a - self.compressed()), tf.norm(a))

    def _alpha_and_a(self, dtype: tf.DType):
        """alpha and the dense part of the blend (the form's `dense_part` of A), at `dtype`."""
        a = self._form.dense_part(read(self._a_matrix), self._state.factors())
        return tf.cast(read(self._state.alpha), dtype), tf.cast(a, dtype)

    def matmul(self, left_operand) -> tf.Tensor:
        """left_operand · Wᵀ (W as [out, in]), Â's part by the form's factored product."""
        x = tf.convert_to_tensor(left_operand)
        alpha, a = self._alpha_and_a(x.dtype)
        return alpha * tf.matmul(x, a, transpose_b=True) + (
            1 - alpha
        ) * self._form.transposed_matmul(x, self._state.factors())

    def embedding_lookup(self, ids) -> tf.Tensor:
        """Rows `ids` of W, Â's rows by the form (low-rank gathers rows of B only)."""
        alpha, a = self._alpha_and_a(tf.as_dtype(self._a_matrix.dtype).base_dtype)
        rows = tf.cast(self._form.gather_rows(ids, self._state.factors()), a.dtype)
        return alpha * tf.nn.embedding_lookup(a, ids) + (1 - alpha) * rows
